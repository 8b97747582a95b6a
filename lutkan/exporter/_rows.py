"""Bounded memory at any batch for the ``standard`` form: the whole network on row chunks past the first R rows.

The standard-op bodies gather O(N*I*O) floats per layer (the table rows of every sample and input), so a batch
of millions would need gigabytes. ``chunk_rows`` wraps the network's nodes (``x -> ... -> y``) as::

    x_head = Slice(x, 0, Min(N, R));  y_head = network(x_head)     # the readable chain, as exported
    x_rest = Slice(x, [Min(N, R), 0], [end, 0])                     # (N - Min(N, R), 0): no bytes
    y_rest = If(N > R, then: Slice(Reshape(Scan(network, Reshape(Gather(x, Min(Range(R, R + C*c), N-1)),
                                                             [c, C, n_in]))), 0, m),
                       else: Pad(x_rest, [0, 0, 0, n_out]))        # (0, n_out)
    y = Concat(y_head, y_rest)

with m = N - R = rows of x_rest, chunks of C = max(1, R // 8) rows and c = ceil(m / C) of them (the last one padded by repeating
the last row, sliced off: at most an eighth of the work). R = ``rows_per_pass``: the most rows whose largest
gathered tensor holds at most ``chunk_floats`` floats (2^25 by default: 6,721 rows for ids78).

Written for tract as well as onnxruntime and onnx.reference: one ``If`` per model (tract names the node it
builds for an ``If`` after the op, so a second one clashes), every division by a constant, padding by a Gather
(tract needs Pad's pads concrete), branch outputs of the same symbolic size, subgraphs without symbolic dim
names. tract evaluates an ``If`` branch without the outer graph's symbols, so in tract a batch of more than R
rows fails with an error (docs/deploy.md: split it). The Scan body is a copy of the network with its values
prefixed ``rest/``; it reads the same initializers (outer scope), so tables are stored once. Rows are
independent in the contract: results are those of one pass. Measured on ids78 at 1 M rows (onnxruntime, 1
thread): peak RSS growth 1.1x the input array (the padded copy of the rest rows, plus y).

The ``function`` form does not use this: onnx-graphsurgeon (and so onnxslim) recurses forever on a graph that
has both model-local functions and top-level subgraphs, so its ``LUTKanEdge`` body chunks per layer instead.
"""

from __future__ import annotations

import copy

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

_PREFIX = "rest/"


def floats_per_row(tables, *, poly_degree: int = 0) -> int:
    """The most floats one row of the network gathers in any layer's standard-op body (the function body's
    ``max_rows`` bound, for the whole network): I*O*2 (I*O*(degree+1) for poly), at least I*(K+1) for the
    knot comparison, and the symbolic edges' count."""
    per = 1
    for t in tables:
        n_in, n_out = t.base_weight.shape
        per = max(per, n_in * n_out * ((poly_degree + 1) if poly_degree else 2), t.knots.size)
        if t.symbolic is not None:
            per = max(per, 2 * len(t.symbolic.src))
    return per


def rows_per_pass(floats_per_row: int, chunk_floats: int) -> int:
    """R: the most rows whose gathered floats stay within ``chunk_floats`` (at least 1)."""
    return max(1, int(chunk_floats) // max(1, int(floats_per_row)))


def _renamed_copy(nodes, rename: dict[str, str], prefix: str) -> list[onnx.NodeProto]:
    """Deep copies of ``nodes``: values in ``rename`` renamed, every other value the nodes (or their subgraphs)
    produce and every node name prefixed with ``prefix``; values from outside (initializers) keep their names."""
    produced = set()

    def collect(ns) -> None:
        for n in ns:
            produced.update(o for o in n.output if o)
            for a in n.attribute:
                for g in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                    produced.update(vi.name for vi in g.input)
                    collect(g.node)

    collect(nodes)

    def name(v: str) -> str:
        return rename.get(v, prefix + v if v in produced else v)

    def fix(ns) -> None:
        for n in ns:
            n.input[:] = [name(v) for v in n.input]
            n.output[:] = [name(v) for v in n.output]
            n.name = prefix + n.name if n.name else n.name
            for a in n.attribute:
                for g in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                    for vi in list(g.input) + list(g.output) + list(g.value_info):
                        vi.name = name(vi.name)
                    fix(g.node)

    out = [copy.deepcopy(n) for n in nodes]
    fix(out)
    return out


def _tensor(name: str, width: int) -> onnx.ValueInfoProto:
    """A float32 (?, width) value with no symbolic dim name (tract unifies names with its own inferred sizes)."""
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [None, width])


def chunk_rows(nodes: list[onnx.NodeProto], x: str, y: str, n_in: int, n_out: int,
               rows: int) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """The graph nodes (and their constant initializers) computing ``y`` from ``x`` (float32 ``[N, n_in]``) by
    running ``nodes`` (which compute ``y`` from ``x``) on the first ``rows`` rows directly and on the rest in a
    ``Scan`` over chunks of ``max(1, rows // 8)`` rows."""
    R = int(rows)
    C = max(1, R // 8)
    consts = {"rows.cap": [R], "rows.chunk": [C], "rows.zero": [0], "rows.one": [1], "rows.cap0": R, "rows.one0": 1,
              "rows.width_in": [n_in], "rows.width_out": [n_out], "rows.pad_out": [0, 0, 0, n_out],
              "rows.x_rest_end": [np.iinfo(np.int64).max, 0], "rows.axes01": [0, 1]}
    inits = [numpy_helper.from_array(np.asarray(v, np.int64), k) for k, v in consts.items()]
    mk = helper.make_node
    head = [
        mk("Shape", [x], ["rows.n"], name="rows.n", start=0, end=1),
        mk("Min", ["rows.n", "rows.cap"], ["rows.head_n"], name="rows.head_n"),
        mk("Slice", [x, "rows.zero", "rows.head_n", "rows.zero"], ["x_head"], name="rows.x_head"),
        # the rest rows without their columns (no bytes): what the If's branches take their row count from
        mk("Concat", ["rows.head_n", "rows.zero"], ["rows.x_rest_start"], axis=0),
        mk("Slice", [x, "rows.x_rest_start", "rows.x_rest_end", "rows.axes01"], ["rows.x_rest"], name="rows.x_rest"),
    ]
    main = _renamed_copy(nodes, {x: "x_head", y: "y_head"}, "")  # the readable chain, on the head rows
    body_nodes = _renamed_copy(nodes, {x: _PREFIX + "x", y: _PREFIX + "y"}, _PREFIX)
    body = helper.make_graph(body_nodes, "rows_chunk", [_tensor(_PREFIX + "x", n_in)], [_tensor(_PREFIX + "y", n_out)])
    # both branches yield N - Min(N, R) rows: tract unifies the branches' output shapes; it evaluates a branch
    # without the outer graph's symbols (so, in tract, a batch beyond R rows fails with an error: docs/deploy.md).
    # The rest rows are gathered straight from x (one copy of them, padded)
    then_nodes = [
        mk("Shape", ["rows.x_rest"], ["rows.m"], name="rows.m", start=0, end=1),
        mk("Add", ["rows.m", "rows.chunk"], ["rows.m_plus"]),
        mk("Sub", ["rows.m_plus", "rows.one"], ["rows.m_up"]),
        mk("Div", ["rows.m_up", "rows.chunk"], ["rows.count"], name="rows.count"),
        mk("Mul", ["rows.count", "rows.chunk"], ["rows.padded_n"]),
        mk("Squeeze", ["rows.padded_n", "rows.zero"], ["rows.padded_n0"]),
        mk("Sub", ["rows.n", "rows.one"], ["rows.n_last"]),
        mk("Add", ["rows.padded_n0", "rows.cap0"], ["rows.range_end"]),
        mk("Range", ["rows.cap0", "rows.range_end", "rows.one0"], ["rows.range"]),  # R .. R + c*C - 1
        mk("Min", ["rows.range", "rows.n_last"], ["rows.index"], name="rows.index"),
        # padded by repeating the last row (sliced off below): a Gather, not Pad, whose pads tract needs concrete
        mk("Gather", [x, "rows.index"], ["rows.x_padded"], name="rows.pad", axis=0),
        mk("Concat", ["rows.count", "rows.chunk", "rows.width_in"], ["rows.chunk_shape"], axis=0),
        mk("Reshape", ["rows.x_padded", "rows.chunk_shape"], ["rows.x_chunks"], name="rows.x_chunks"),
        mk("Scan", ["rows.x_chunks"], ["rows.y_chunks"], name="rows.scan", body=body, num_scan_inputs=1),
        mk("Concat", ["rows.padded_n", "rows.width_out"], ["rows.y_shape"], axis=0),
        mk("Reshape", ["rows.y_chunks", "rows.y_shape"], ["rows.y_padded"]),
        mk("Slice", ["rows.y_padded", "rows.zero", "rows.m", "rows.zero"], ["rows.y_chunked"], name="rows.y_chunked"),
    ]
    then_branch = helper.make_graph(then_nodes, "rows_rest", [], [_tensor("rows.y_chunked", n_out)])
    else_branch = helper.make_graph([mk("Pad", ["rows.x_rest", "rows.pad_out"], ["rows.y_none"], name="rows.y_none")],
                                    "rows_none", [], [_tensor("rows.y_none", n_out)])  # (0, n_out) zeros
    rest = [
        mk("Greater", ["rows.n", "rows.cap"], ["rows.more"], name="rows.more"),
        mk("If", ["rows.more"], ["rows.y_rest"], name="rows", then_branch=then_branch, else_branch=else_branch,
           doc_string=f"rows beyond the first {R} run in a Scan over chunks of {C} rows (bounded memory)"),
        mk("Concat", ["y_head", "rows.y_rest"], [y], name="rows.concat", axis=0),
    ]
    return head + main + rest, inits


def strip_symbolic_dims(graph: onnx.GraphProto, *, values: bool = False) -> None:
    """In place: drop the symbolic dim names shape inference wrote into subgraphs' inputs, outputs and value
    infos, and (``values``) into the graph's own value infos: tract would try to unify them with the sizes it
    infers (``min(batch, R)`` for the head rows is not ``batch``)."""
    for vi in graph.value_info if values else ():
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_param"):
                d.ClearField("dim_param")
    for n in graph.node:
        for a in n.attribute:
            for g in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                for vi in list(g.input) + list(g.output) + list(g.value_info):
                    for d in vi.type.tensor_type.shape.dim:
                        if d.HasField("dim_param"):
                            d.ClearField("dim_param")
                strip_symbolic_dims(g)
