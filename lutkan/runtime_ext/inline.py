"""``inline_symbolic(model)``: a custom-form model whose ``KanSymbolic`` nodes are replaced by standard ops.

The native op library runs ``LUTKanEdge`` but not ``KanSymbolic`` (onnxruntime's custom-op C API cannot
read its STRINGS attribute). ``make_session`` inlines those nodes itself; for a plain
``onnxruntime.InferenceSession`` with ``library_path()`` registered (or any other runtime), save the model
this returns: each ``KanSymbolic`` node, validated, becomes its standard-op body, exactly as in the
function and standard forms (``lutkan.runtime_ext.graph``'s own expansion). ``LUTKanEdge`` nodes are left
as they are.
"""

from __future__ import annotations

import onnx

from lutkan.custom_ops.schema import DOMAIN, SYMBOLIC_OP
from lutkan.runtime_ext import graph

__all__ = ["inline_symbolic"]


def inline_symbolic(model) -> onnx.ModelProto:
    """A copy of ``model`` (path, bytes or ModelProto) with every ``KanSymbolic`` node inlined.

    Raises ``OnnxModelError`` naming the node for a malformed ``KanSymbolic`` node.
    """
    m = graph.read_model(model)
    top_inputs = {i.name for i in m.graph.input}
    dropped: set = set()  # Dst inputs: the expansion does not read them

    def walk(g: onnx.GraphProto, outer: dict) -> None:
        scope = {**outer, **{t.name: t for t in g.initializer}}
        overridable = top_inputs if g is m.graph else {i.name for i in g.input}
        nodes = []
        for node in g.node:
            if node.domain == DOMAIN and node.op_type == SYMBOLIC_OP:
                nodes += graph._symbolic_expansion(node, f"KanSymbolic node {node.name!r}", scope, overridable)
                dropped.update(node.input[2:3])
                continue
            for sub in graph.subgraphs(node):
                walk(sub, scope)
            nodes.append(node)
        del g.node[:]
        g.node.extend(nodes)

    walk(m.graph, {})
    used: set = set()
    graph._used_names(m.graph, used)
    if dropped - used:
        kept = [t for t in m.graph.initializer if t.name in used or t.name not in dropped]
        del m.graph.initializer[:]
        m.graph.initializer.extend(kept)
    return m
