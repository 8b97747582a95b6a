"""Model-level checks of a lutkan ONNX file before the plugin reads it (pure onnx, no onnxruntime).

The plugin must never compute numbers plain onnxruntime would not compute from the same file. Besides each
node's inputs (``lutkan.custom_ops.validate``), that needs:

* ``graph_names``: every graph's initializer names unique (onnxruntime uses the first of two copies, a reader
  of the proto could take the last), and the set of names nodes compute or subgraphs receive (an initializer
  shadowed by a computed value must not be read as the constant);
* ``check_functions``: the model-local ``lutkan.LUTKanEdge`` FunctionProto, which plain onnxruntime runs, is
  exactly the body lutkan builds for the nodes' attributes, table dtype and sizes (a different body, e.g. a
  tampered constant or a node attribute that disagrees with the body's specialization, would make the plugin
  and plain onnxruntime disagree); no other ``lutkan``-domain function exists;
* ``declared_bytes``: what evaluating the lutkan nodes allocates, from the declared Table dims (the budget).
"""

from __future__ import annotations

from collections import ChainMap
from functools import lru_cache

import onnx
from onnx import AttributeProto

from lutkan.budget import dense_table_bytes
from lutkan.custom_ops.function_body import BodySpec, build_function, search_steps
from lutkan.custom_ops.schema import DOMAIN, OP_TYPE
from lutkan.errors import OnnxModelError

__all__ = ["NODE_BYTES", "check_functions", "declared_bytes", "graph_names", "inlined_nodes", "subgraphs"]

_ITEMSIZE = {onnx.TensorProto.INT8: 1, onnx.TensorProto.UINT8: 1, onnx.TensorProto.FLOAT16: 2}
_DTYPE_NAME = {onnx.TensorProto.INT8: "int8", onnx.TensorProto.UINT8: "uint8", onnx.TensorProto.FLOAT16: "float16",
               onnx.TensorProto.FLOAT: "float32"}


def subgraphs(node: onnx.NodeProto):
    """The graphs held by ``node``'s attributes (If/Loop/Scan bodies)."""
    for a in node.attribute:
        if a.type == AttributeProto.GRAPH:
            yield a.g
        elif a.type == AttributeProto.GRAPHS:
            yield from a.graphs


def graph_names(graph: onnx.GraphProto, computed: set | None = None, where: str = "graph") -> set:
    """Names computed by any node or received as a subgraph input anywhere in ``graph`` (recursively); raises
    OnnxModelError for a name given to two initializers of one graph (dense or sparse)."""
    computed = set() if computed is None else computed
    seen: set[str] = set()
    for name in [t.name for t in graph.initializer] + [t.values.name for t in graph.sparse_initializer]:
        if name in seen:
            raise OnnxModelError(f"{where} {graph.name!r}: initializer {name!r} is defined twice; onnxruntime reads "
                                 f"the first copy, so the file has two meanings: remove the duplicate")
        seen.add(name)
    for n in graph.node:
        computed.update(o for o in n.output if o)
        for g in subgraphs(n):
            computed.update(i.name for i in g.input)
            graph_names(g, computed, f"subgraph of node {n.name!r} in")
    return computed


@lru_cache(maxsize=32)
def _canonical(spec: BodySpec, L: int) -> bytes:
    return _normalized(build_function(spec, L))


def _normalized(f: onnx.FunctionProto) -> bytes:
    """The function's serialization without value_info and doc strings (neither changes what it computes)."""
    g = onnx.FunctionProto()
    g.CopyFrom(f)
    del g.value_info[:]
    g.doc_string = ""
    for n in g.node:
        n.doc_string = ""
    return g.SerializeToString(deterministic=True)


def check_functions(model: onnx.ModelProto, prepared: list) -> None:
    """Refuse lutkan-domain functions other than one LUTKanEdge body equal to the one this lutkan builds for the
    prepared nodes (``PreparedNode``: attributes, table dtype, segments)."""
    ours = [f for f in model.functions if f.domain == DOMAIN]
    bodies = [f for f in ours if f.name == OP_TYPE]
    others = [f.name for f in ours if f.name != OP_TYPE]
    if others:
        raise OnnxModelError(f"the model defines lutkan-domain function(s) {others}: plain onnxruntime would run "
                             f"them where the plugin runs lutkan's own op; lutkan exports none")
    if not bodies:
        return
    if len(bodies) > 1 or bodies[0].overload:
        raise OnnxModelError(f"the model defines {len(bodies)} LUTKanEdge functions (overloads "
                             f"{[f.overload for f in bodies]}); lutkan exports exactly one, without overload")
    got = _normalized(bodies[0])
    n_steps = max((search_steps(p.tables.n_segments) for p in prepared), default=0)
    for p in prepared:
        a = p.attrs
        spec = BodySpec(interp=a["interp"], boundary=a["boundary"], oob=a["oob"], base_fun=a["base_fun"],
                        scheme=p.tables.table.dtype.name, n_steps=n_steps,
                        degree=a["L"] - 1 if a["interp"] == "poly" else 0)
        if _canonical(spec, a["L"]) != got:
            raise OnnxModelError(
                f"{p.where}: the model-local LUTKanEdge function is not the body lutkan builds for this node "
                f"(attributes {a}, {spec.scheme} tables, {n_steps} search steps): plain onnxruntime would compute "
                f"something else than the plugin. Re-export the model with this lutkan (lutkan export), or run it "
                f"without the plugin")


NODE_BYTES = 512
"""Budget charge per node an inlining creates (a NodeProto with its names and attributes)."""


def inlined_nodes(model: onnx.ModelProto, cap: int) -> int:
    """How many nodes inlining every model-local function (but LUTKanEdge) would produce, counted with memoized
    sizes before anything is inlined (a chain of functions that each call the next twice is 2**depth nodes);
    stops counting above ``cap``. Raises OnnxModelError for a function that calls itself."""
    funcs = {(f.domain, f.name, f.overload): f for f in model.functions}
    memo: dict = {}
    active: set = set()

    def nodes(seq) -> int:
        n = 0
        for node in seq:
            f = funcs.get((node.domain, node.op_type, node.overload))
            n += fn_size(f) if f is not None and not (f.domain == DOMAIN and f.name == OP_TYPE) else 1
            n += sum(nodes(g.node) for g in subgraphs(node))
            if n > cap:
                return n
        return n

    def fn_size(f: onnx.FunctionProto) -> int:
        key = (f.domain, f.name, f.overload)
        if key in active:
            raise OnnxModelError(f"model-local function {f.domain}::{f.name} calls itself; it cannot be inlined")
        if key not in memo:
            active.add(key)
            memo[key] = nodes(f.node)
            active.discard(key)
        return memo[key]

    return nodes(model.graph.node)


def declared_bytes(graph: onnx.GraphProto, per_cell_extra: int, scope: ChainMap | None = None) -> int:
    """Bytes evaluating the graph's LUTKanEdge nodes allocates, from the declared dims of their Table initializers
    (nothing is read): per node ``dense_table_bytes`` plus ``per_cell_extra`` bytes per table cell."""
    scope = (scope if scope is not None else ChainMap()).new_child({t.name: t for t in graph.initializer})
    total = 0
    for n in graph.node:
        if n.domain == DOMAIN and n.op_type == OP_TYPE and len(n.input) > 6:
            t = scope.get(n.input[6])
            if t is not None and len(t.dims) == 4 and all(d >= 0 for d in t.dims):
                I, K, L, O = (int(d) for d in t.dims)
                total += dense_table_bytes(I, K, L, O, _ITEMSIZE.get(t.data_type, 4), 2) + per_cell_extra * I * K * L * O
        for g in subgraphs(n):
            total += declared_bytes(g, per_cell_extra, scope)
    return total
