"""The graph every export form shares: input, per-layer initializers, node combination, output, stamp.

Graph (``docs/contract.md`` §3, step 8 as standard ops; identity ops are skipped)::

    x[batch, n_inputs] -> Gather(input_id, axis=1) -> per layer l:
        kan{l}: LUTKanEdge(h, kan{l}.knots, kan{l}.bounds, kan{l}.seg_scale, kan{l}.base_weight,
                           kan{l}.edge_mask, kan{l}.table[, kan{l}.table_scale[, kan{l}.table_offset]])
        -> Mul/Add(kan{l}.subnode_scale/bias) -> [Slice | Slice->Reshape->ReduceProd]->Concat (mult nodes)
        -> Mul/Add(kan{l}.node_scale/bias) -> h{l+1}  (the last one is y[batch, n_outputs])

A form supplies ``edge_nodes(l, inputs, output)``: the nodes that compute the edge sum of layer ``l``
(one ``LUTKanEdge`` node, or its body inlined). Initializers keep the table's stored dtype, so an int8
model stores its tables as int8. The result is shape-inferred (``data_prop=True``) so every edge carries
its shape (Netron labels them), and stamped with producer fields and ``lutkan.*`` ``metadata_props``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from lutkan.artifact import LUTModel, _to_json_value, to_bytes
from lutkan.custom_ops.function_body import inline_body
from lutkan.custom_ops.schema import (
    DOMAIN,
    INPUTS,
    SYMBOLIC_INPUTS,
    SYMBOLIC_OP,
    op_inputs,
    symbolic_attributes,
    symbolic_op_edges,
)
from lutkan.custom_ops.symbolic_body import build_symbolic_function
from lutkan.exporter._rows import chunk_rows, floats_per_row, rows_per_pass, strip_symbolic_dims
from lutkan.exporter._versions import FORMAT_VERSION, IR_VERSION, PRODUCER_NAME, producer_version
from lutkan.nodes import NodeStep
from lutkan.source import portable_provenance
from lutkan.tables import LayerTables, SymbolicEdges, model_tables

BATCH = "batch"
"""Name of the dynamic batch dimension of ``x``, ``y`` and every intermediate."""
INPUT_NAME = "x"
OUTPUT_NAME = "y"

# Formal op input -> initializer suffix (``kan{l}.<suffix>``).
TENSOR_NAMES = {"Knots": "knots", "Bounds": "bounds", "SegScale": "seg_scale", "BaseWeight": "base_weight",
                "EdgeMask": "edge_mask", "Table": "table", "TableScale": "table_scale", "TableOffset": "table_offset"}

EdgeNodes = Callable[[int, dict[str, str | None], str], Sequence[onnx.NodeProto]]


def layer_inputs(tables: LayerTables, l: int, x: str) -> tuple[dict[str, str | None], list[onnx.TensorProto]]:
    """Formal input -> value name of layer ``l``'s LUTKanEdge (None if absent), and its initializers."""
    tensors = op_inputs(tables)
    names: dict[str, str | None] = {"X": x}
    inits = []
    for formal in INPUTS[1:]:
        arr = tensors[formal]
        if arr is None:
            names[formal] = None
            continue
        names[formal] = f"kan{l}.{TENSOR_NAMES[formal]}"
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), names[formal]))
    return names, inits


def node_inputs(names: dict[str, str | None]) -> list[str]:
    """Actual input list of a LUTKanEdge node: the schema inputs the layer has (an absent optional input is
    left off the end, so the node's inputs equal its function body's formals: no "" actuals)."""
    return [names[n] for n in INPUTS if names[n]]


def symbolic_nodes(sym: SymbolicEdges, l: int, x: str, out: str, *, as_op: bool):
    """Layer ``l``'s exact symbolic edges reading ``x``, writing ``out``: a ``KanSymbolic`` node (``as_op``,
    the custom form) or its standard-op body inlined (function and standard forms); and the initializers."""
    sym = symbolic_op_edges(sym)
    names = {"Src": f"kan{l}.sym_src", "Dst": f"kan{l}.sym_dst", "Affine": f"kan{l}.sym_affine"}
    arrays = {"Src": sym.src, "Dst": sym.dst, "Affine": sym.affine}
    if as_op:
        inits = [numpy_helper.from_array(np.ascontiguousarray(arrays[k]), names[k]) for k in SYMBOLIC_INPUTS[1:]]
        node = helper.make_node(SYMBOLIC_OP, [x] + [names[k] for k in SYMBOLIC_INPUTS[1:]], [out],
                                name=f"kan{l}.symbolic", domain=DOMAIN,
                                doc_string=f"KAN layer {l}: exact symbolic edges", **symbolic_attributes(sym))
        return [node], inits
    inits = [numpy_helper.from_array(np.ascontiguousarray(arrays[k]), names[k]) for k in ("Src", "Affine")]
    body = build_symbolic_function(sym)
    return inline_body(body, {"X": x, "Src": names["Src"], "Affine": names["Affine"]}, out,
                       prefix=f"kan{l}.symbolic/"), inits


def _combine(layer: NodeStep | None, l: int, s: str, out: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """The node step (``lutkan.nodes``: subnode affine -> multiplication groups -> node affine, float32, in
    ``NodeStep.apply``'s order), reading ``s`` and writing ``out``; no nodes at all for an identity step."""
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    steps: list[tuple[str, list[str], str, dict]] = []  # (op, inputs, node/value name, attrs)

    def init(name: str, arr: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def const_i64(name: str, values) -> str:
        return init(name, np.asarray(values, dtype=np.int64))

    cur = s
    if layer is None:
        return nodes, inits
    if np.any(layer.subnode_scale != 1):
        steps.append(("Mul", [cur, init(f"kan{l}.subnode_scale", layer.subnode_scale)],
                      f"kan{l}.subnode_affine.scale", {}))
        cur = steps[-1][2]
    if np.any(layer.subnode_bias != 0):
        steps.append(("Add", [cur, init(f"kan{l}.subnode_bias", layer.subnode_bias)],
                      f"kan{l}.subnode_affine.bias", {}))
        cur = steps[-1][2]
    if layer.mult_groups:
        n_sum, groups, O = layer.n_sum, layer.mult_groups, len(layer.subnode_scale)
        axis1 = const_i64(f"kan{l}.mult.axis", [1])
        parts = []
        if n_sum:
            steps.append(("Slice", [cur, const_i64(f"kan{l}.mult.sum_start", [0]),
                                    const_i64(f"kan{l}.mult.sum_end", [n_sum]), axis1], f"kan{l}.mult.sums", {}))
            parts.append(steps[-1][2])
        if len(set(groups)) == 1:  # equal arity: one Reshape + ReduceProd for all groups
            steps.append(("Slice", [cur, const_i64(f"kan{l}.mult.start", [n_sum]), const_i64(f"kan{l}.mult.end", [O]),
                                    axis1], f"kan{l}.mult.factors", {}))
            steps.append(("Reshape", [steps[-1][2], const_i64(f"kan{l}.mult.shape", [0, len(groups), groups[0]])],
                          f"kan{l}.mult.groups", {}))
            steps.append(("ReduceProd", [steps[-1][2], const_i64(f"kan{l}.mult.prod_axes", [2])],
                          f"kan{l}.mult.products", {"keepdims": 0}))
            parts.append(steps[-1][2])
        else:
            start = n_sum
            for gi, size in enumerate(groups):
                steps.append(("Slice", [cur, const_i64(f"kan{l}.mult.g{gi}.start", [start]),
                                        const_i64(f"kan{l}.mult.g{gi}.end", [start + size]), axis1],
                              f"kan{l}.mult.g{gi}.factors", {}))
                steps.append(("ReduceProd", [steps[-1][2], axis1], f"kan{l}.mult.g{gi}.product", {"keepdims": 1}))
                parts.append(steps[-1][2])
                start += size
        if len(parts) > 1:
            steps.append(("Concat", parts, f"kan{l}.mult.nodes", {"axis": 1}))
        cur = steps[-1][2]
    if np.any(layer.node_scale != 1):
        steps.append(("Mul", [cur, init(f"kan{l}.node_scale", layer.node_scale)], f"kan{l}.affine.scale", {}))
        cur = steps[-1][2]
    if np.any(layer.node_bias != 0):
        steps.append(("Add", [cur, init(f"kan{l}.node_bias", layer.node_bias)], f"kan{l}.affine.bias", {}))
        cur = steps[-1][2]
    for i, (op, ins, name, attrs) in enumerate(steps):  # values are named after their node; the last is `out`
        nodes.append(helper.make_node(op, ins, [out if i == len(steps) - 1 else name], name=name, **attrs))
    return nodes, inits


def _value(name: str, width: int, doc: str = "") -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [BATCH, width], doc_string=doc)


def build_model(model: LUTModel, *, form: str, edge_nodes: EdgeNodes, opset_imports: Sequence[onnx.OperatorSetIdProto],
                functions: Sequence[onnx.FunctionProto] = (), symbolic_as_op: bool = False,
                chunk_floats: int | None = None) -> onnx.ModelProto:
    """Assemble, shape-infer and stamp the model graph around the form's ``edge_nodes`` (symbolic edges as
    ``KanSymbolic`` nodes when ``symbolic_as_op``, else inlined standard ops). With ``chunk_floats``, the whole
    network runs on row chunks that gather at most that many floats (``lutkan.exporter._rows``)."""
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    infos: list[onnx.ValueInfoProto] = []
    h = INPUT_NAME
    ii = np.asarray(model.input_id, dtype=np.int64)
    if not np.array_equal(ii, np.arange(model.n_inputs)):
        inits.append(numpy_helper.from_array(ii, "input_id"))
        nodes.append(helper.make_node("Gather", [h, "input_id"], ["x_selected"], name="input_select", axis=1))
        h = "x_selected"
        infos.append(_value(h, ii.size))
    n_layers = len(model.layers)
    tables_all = model_tables(model, max_bytes=0)  # sizes checked against the budget by exporter.export
    for l, (layer, tables) in enumerate(zip(model.layers, tables_all, strict=True)):
        names, layer_inits = layer_inputs(tables, l, h)
        inits += layer_inits
        out = OUTPUT_NAME if l == n_layers - 1 else f"h{l + 1}"
        comb_nodes, comb_inits = _combine(tables.nodes, l, f"kan{l}.edges", out)
        edges = f"kan{l}.edges" if comb_nodes else out
        if tables.symbolic is None:
            nodes += list(edge_nodes(l, names, edges))
        else:  # table and base edges, plus the symbolic edges: Add, in numpy_eval's order
            sym_nodes, sym_inits = symbolic_nodes(tables.symbolic, l, h, f"kan{l}.symbolic_sum",
                                                  as_op=symbolic_as_op)
            nodes += list(edge_nodes(l, names, f"kan{l}.table_sum")) + sym_nodes
            nodes.append(helper.make_node("Add", [f"kan{l}.table_sum", f"kan{l}.symbolic_sum"], [edges],
                                          name=f"kan{l}.edge_sum"))
            inits += sym_inits
            infos += [_value(f"kan{l}.table_sum", layer.out_dim), _value(f"kan{l}.symbolic_sum", layer.out_dim)]
        nodes += comb_nodes
        inits += comb_inits
        if comb_nodes:
            infos.append(_value(edges, layer.out_dim))
        if out != OUTPUT_NAME:
            infos.append(_value(out, layer.n_nodes))
        h = out
    if chunk_floats:
        degree = model.contract.L - 1 if model.contract.interp == "poly" else 0
        rows = rows_per_pass(floats_per_row(tables_all, poly_degree=degree), chunk_floats)
        nodes, row_inits = chunk_rows(nodes, INPUT_NAME, OUTPUT_NAME, model.n_inputs, model.n_outputs, rows)
        inits += row_inits
    c = model.contract
    x_doc = (f"float32 (batch, {model.n_inputs}) model input; any float value is legal: NaN poisons the outputs "
             f"of the edges it feeds, +-inf is evaluated at +-FLT_MAX (docs/contract.md)")
    graph = helper.make_graph(
        nodes, "lutkan",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [BATCH, model.n_inputs], doc_string=x_doc)],
        [_value(OUTPUT_NAME, model.n_outputs, f"float32 (batch, {model.n_outputs}) KAN output")],
        inits, value_info=infos,
        doc_string=(f"LUT-compiled KAN {model.width}: {c.scheme} tables, L={c.L}, interp={c.interp}, "
                    f"boundary={c.boundary}, oob={c.oob}, base_fun={model.base_fun}"),
    )
    m = helper.make_model(graph, opset_imports=list(opset_imports), ir_version=IR_VERSION, functions=list(functions),
                          producer_name=PRODUCER_NAME, producer_version=producer_version(),
                          doc_string=f"lutkan export, form={form}")
    _stamp(m, model, form=form)
    if chunk_floats:  # the batch beyond which the standard form runs its Scan (tract: the largest batch per run)
        m.metadata_props.add(key="lutkan.rows_per_pass", value=str(rows))
    m = onnx.shape_inference.infer_shapes(m, data_prop=True)
    strip_symbolic_dims(m.graph, values=bool(chunk_floats))
    return m


def _stamp(m: onnx.ModelProto, model: LUTModel, *, form: str) -> None:
    summary = model.summary()
    prov = _to_json_value(portable_provenance(model.provenance))
    props = {
        "lutkan.format_version": str(FORMAT_VERSION),
        "lutkan.form": form,
        "lutkan.contract": json.dumps(model.contract.to_dict(), sort_keys=True),
        "lutkan.base_fun": model.base_fun,
        "lutkan.layers": json.dumps(summary["layers"]),
        "lutkan.table_dtype": model.contract.scheme,
        "lutkan.provenance": json.dumps(prov, sort_keys=True),
        "lutkan.source_sha256": source_sha256(prov),
        "lutkan.artifact_sha256": hashlib.sha256(to_bytes(model)).hexdigest(),
        "lutkan.notes": json.dumps(list(model.notes)),
    }
    helper.set_model_props(m, props)


def source_sha256(provenance: dict) -> str:
    """SHA-256 of the pykan source recorded by the compiler (first ``*sha256*`` string key), else ""."""
    for key in ("source_sha256", "state_sha256", "sha256"):
        if isinstance(provenance.get(key), str):
            return provenance[key]
    for key, v in sorted(provenance.items()):
        if "sha256" in key and isinstance(v, str):
            return v
    return ""
