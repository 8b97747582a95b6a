"""Read, validate and rewrite a model's ``lutkan.LUTKanEdge`` nodes for the plugin (pure onnx, no ORT).

``prepare(model)`` works on a private in-memory copy (the file on disk is never touched and stays
self-contained):

1. Every LUTKanEdge node (top-level graph and control-flow subgraphs; wrapper functions that call
   LUTKanEdge are inlined first) is validated: attribute names, types and legal values; table inputs
   present exactly as the table dtype needs, initializers (not computed tensors, not overridable graph
   inputs, not defined twice), and every value against the schema and the attributes
   (``lutkan.custom_ops.validate``); the model-local LUTKanEdge function, which plain onnxruntime runs,
   must be the body lutkan builds for those nodes (``model_checks``), so the plugin never computes
   numbers plain onnxruntime would not; the tables' declared size is checked against the resource
   budget (``lutkan.budget``) before any is read. Any defect raises ``OnnxModelError`` naming the node
   and the problem. KanSymbolic nodes are validated and replaced by their standard-op expansion.
2. Each node is rewritten to ``Y = LUTKanEdge(X)`` with the single attribute ``kernel_key``;
   the tables it consumed (if nothing else uses them) and the model-local LUTKanEdge function
   are dropped from the copy.
"""

from __future__ import annotations

import os
from collections import ChainMap
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import onnx
import onnx.inliner
from onnx import AttributeProto, numpy_helper

from lutkan import budget
from lutkan.contract import BASE_FUNS, BOUNDARIES, INTERPS, MAX_L, MIN_L, OOB_POLICIES
from lutkan.custom_ops.function_body import inline_body
from lutkan.custom_ops.schema import (
    ATTRIBUTES,
    DOMAIN,
    INPUTS,
    OP_TYPE,
    READABLE_OP_VERSIONS,
    SYMBOLIC_ATTRIBUTES,
    SYMBOLIC_INPUTS,
    SYMBOLIC_OP,
    symbolic_from_op,
    tables_from_op,
)
from lutkan.custom_ops.symbolic_body import build_symbolic_function
from lutkan.custom_ops.validate import check_edge_inputs, check_symbolic_inputs
from lutkan.errors import OnnxModelError
from lutkan.runtime_ext.model_checks import (
    NODE_BYTES,
    check_functions,
    declared_bytes,
    graph_names,
    inlined_nodes,
    subgraphs,
)
from lutkan.tables import LayerTables

__all__ = ["PreparedNode", "read_model", "prepare", "is_lutkan_edge"]

_LEGAL = {"interp": INTERPS, "boundary": BOUNDARIES, "oob": OOB_POLICIES, "base_fun": BASE_FUNS}
_N_REQUIRED = len(INPUTS) - 2  # X + 6 required tables


@dataclass(frozen=True, eq=False)
class PreparedNode:
    """One validated LUTKanEdge node: its tables, attributes and widths."""

    where: str
    tables: LayerTables
    attrs: dict
    in_dim: int
    out_dim: int
    node: onnx.NodeProto  # the node inside the rewritten copy


def is_lutkan_edge(node: onnx.NodeProto) -> bool:
    return node.op_type == OP_TYPE and node.domain == DOMAIN


def read_model(src) -> onnx.ModelProto:
    """A private ModelProto copy of ``src`` (path, bytes or ModelProto); OnnxModelError if unreadable."""
    if isinstance(src, onnx.ModelProto):
        m = onnx.ModelProto()
        m.CopyFrom(src)
        return m
    if isinstance(src, (bytes, bytearray, memoryview)):
        try:
            return onnx.load_from_string(bytes(src))
        except Exception as e:  # noqa: BLE001 - protobuf decode errors have many types
            raise OnnxModelError(f"the bytes given are not a valid ONNX model: {e}") from None
    if isinstance(src, (str, os.PathLike)):
        path = os.fspath(src)
        if not os.path.isfile(path):
            raise OnnxModelError(f"ONNX file not found: {path}")
        try:
            return onnx.load(path)
        except Exception as e:  # noqa: BLE001
            raise OnnxModelError(f"{path}: cannot read the ONNX model (truncated, not ONNX, or its external "
                                 f"data is missing): {e}") from None
    raise TypeError(f"expected a path, bytes or onnx.ModelProto, got {type(src).__name__}")


def _attr_value(node_where: str, a: AttributeProto):
    name = a.name
    if a.ref_attr_name:
        raise OnnxModelError(f"{node_where}: attribute {name!r} refers to a function attribute "
                             f"({a.ref_attr_name!r}); only literal values are supported")
    want = ATTRIBUTES[name]
    if want is int:
        if a.type != AttributeProto.INT:
            raise OnnxModelError(f"{node_where}: attribute {name!r} must be an INT, got "
                                 f"{AttributeProto.AttributeType.Name(a.type)}")
        return int(a.i)
    if a.type != AttributeProto.STRING:
        raise OnnxModelError(f"{node_where}: attribute {name!r} must be a STRING, got "
                             f"{AttributeProto.AttributeType.Name(a.type)}")
    try:
        return a.s.decode("utf-8")
    except UnicodeDecodeError:
        raise OnnxModelError(f"{node_where}: attribute {name!r} is not valid UTF-8: {a.s!r}") from None


def _node_attrs(where: str, node: onnx.NodeProto) -> dict:
    attrs: dict = {}
    for a in node.attribute:
        if a.name not in ATTRIBUTES:
            raise OnnxModelError(f"{where}: unknown attribute {a.name!r}; LUTKanEdge has exactly "
                                 f"{', '.join(ATTRIBUTES)}")
        if a.name in attrs:
            raise OnnxModelError(f"{where}: attribute {a.name!r} is given twice")
        attrs[a.name] = _attr_value(where, a)
    missing = [n for n in ATTRIBUTES if n not in attrs]
    if missing:
        raise OnnxModelError(f"{where}: missing attribute(s) {', '.join(missing)} (LUTKanEdge needs "
                             f"{', '.join(ATTRIBUTES)})")
    if not MIN_L <= attrs["L"] <= MAX_L:
        raise OnnxModelError(f"{where}: attribute L={attrs['L']} is out of range; use {MIN_L} <= L <= {MAX_L}")
    for name, legal in _LEGAL.items():
        if attrs[name] not in legal:
            raise OnnxModelError(f"{where}: attribute {name}={attrs[name]!r} is not supported; choose one of "
                                 f"{', '.join(legal)}")
    return attrs


def _table_array(where: str, role: str, name: str, scope: Mapping, overridable: Mapping) -> np.ndarray:
    """The initializer ``name`` as an array; OnnxModelError if it is not a constant (``overridable`` maps the
    names that are graph inputs or computed by nodes to the reason)."""
    if name in overridable:
        raise OnnxModelError(f"{where}: input {role} ({name!r}) is also {overridable[name]}, not an initializer; "
                             f"the plugin reads the tables once, so they must be constant initializers")
    t = scope.get(name)
    if t is None:
        raise OnnxModelError(f"{where}: input {role} ({name!r}) is not an initializer (it is computed in the "
                             f"graph or fed at run time); the plugin reads the tables once when the session is "
                             f"created, so every input but X must be a graph initializer")
    try:
        return numpy_helper.to_array(t)
    except Exception as e:  # noqa: BLE001 - e.g. external data that was not loaded
        raise OnnxModelError(f"{where}: cannot read initializer {name!r} ({role}): {e} (if it uses external "
                             f"data, pass the file path instead of bytes)") from None


def _prepare_node(node: onnx.NodeProto, where: str, scope: Mapping, overridable: Mapping) -> tuple[LayerTables, dict, int, int]:
    if len(node.output) != 1 or not node.output[0]:
        raise OnnxModelError(f"{where}: LUTKanEdge has exactly one output Y, got {list(node.output)}")
    n_in = len(node.input)
    if not _N_REQUIRED <= n_in <= len(INPUTS):
        raise OnnxModelError(f"{where}: LUTKanEdge takes {_N_REQUIRED}-{len(INPUTS)} inputs "
                             f"({', '.join(INPUTS)}), got {n_in}")
    for role, name in zip(INPUTS[:_N_REQUIRED], node.input, strict=False):  # the optional ones are checked below
        if not name:
            raise OnnxModelError(f"{where}: required input {role} is empty")
    if node.overload:
        raise OnnxModelError(f"{where}: the node selects function overload {node.overload!r}; lutkan's op has none")
    attrs = _node_attrs(where, node)
    arrs: dict = {}
    for role, name in zip(INPUTS[1:], list(node.input[1:]) + [""] * (len(INPUTS) - n_in), strict=True):
        arrs[role] = _table_array(where, role, name, scope, overridable) if name else None
    I, O = check_edge_inputs(where, arrs, attrs)
    return tables_from_op(arrs, attrs), attrs, I, O


def _used_names(graph: onnx.GraphProto, used: set) -> None:
    for n in graph.node:
        used.update(n.input)
        for g in subgraphs(n):
            _used_names(g, used)
    used.update(o.name for o in graph.output)


def _contains_edge(nodes) -> bool:
    """Whether ``nodes`` (or their subgraphs) hold any lutkan-domain node."""
    for n in nodes:
        if n.domain == DOMAIN or any(_contains_edge(g.node) for g in subgraphs(n)):
            return True
    return False


def _symbolic_expansion(node: onnx.NodeProto, where: str, scope: Mapping, overridable: Mapping) -> list[onnx.NodeProto]:
    """A validated ``KanSymbolic`` node replaced by its standard-op body (the plugin has no kernel for it:
    onnxruntime runs the expansion natively, exactly as in the function form)."""
    if len(node.input) != len(SYMBOLIC_INPUTS) or len(node.output) != 1 or not all(node.input):
        raise OnnxModelError(f"{where}: KanSymbolic takes inputs {', '.join(SYMBOLIC_INPUTS)} and one output")
    attrs = {a.name: a for a in node.attribute}
    if set(attrs) != set(SYMBOLIC_ATTRIBUTES):
        raise OnnxModelError(f"{where}: KanSymbolic needs exactly the attributes {', '.join(SYMBOLIC_ATTRIBUTES)}")
    if attrs["functions"].type != AttributeProto.STRINGS or attrs["n_outputs"].type != AttributeProto.INT:
        raise OnnxModelError(f"{where}: attribute functions must be STRINGS and n_outputs an INT")
    try:
        funs = [s.decode("utf-8") for s in attrs["functions"].strings]
    except UnicodeDecodeError:
        raise OnnxModelError(f"{where}: attribute functions is not valid UTF-8") from None
    O = int(attrs["n_outputs"].i)
    arrs = {role: _table_array(where, role, name, scope, overridable)
            for role, name in zip(SYMBOLIC_INPUTS[1:], node.input[1:], strict=True)}
    check_symbolic_inputs(where, arrs, funs, O)
    sym = symbolic_from_op(arrs, {"functions": funs, "n_outputs": O})
    body = build_symbolic_function(sym)
    prefix = (node.name or node.output[0]) + "/"
    return inline_body(body, {"X": node.input[0], "Src": node.input[1], "Affine": node.input[3]}, node.output[0],
                       prefix)


PLUGIN_BYTES_PER_CELL = 2
"""Besides ``dense_table_bytes``: the Table's copy in the proto and in NumPy (1-byte tables; x itemsize)."""


def prepare(model: onnx.ModelProto, key_for, *, max_bytes: int | None = None) -> tuple[onnx.ModelProto,
                                                                                        list[PreparedNode]]:
    """Validate and rewrite ``model`` in place (pass a private copy); ``key_for(out_dim)`` makes keys.

    Returns the rewritten model and its LUTKanEdge nodes in graph order. Raises OnnxModelError for any input,
    name, function body or size (``lutkan.budget``, ``max_bytes``) that would let the plugin compute something
    plain onnxruntime would not, or exhaust memory.
    """
    others = [f for f in model.functions if not (f.domain == DOMAIN and f.name == OP_TYPE)]
    if any(_contains_edge(f.node) for f in others):
        # A wrapper function calls LUTKanEdge with formal parameters: inline the wrappers so the
        # nodes see the initializers; the LUTKanEdge function itself is kept (and dropped below).
        cap = budget.max_bytes(max_bytes)
        n = inlined_nodes(model, (cap or 1 << 62) // NODE_BYTES + 1)
        budget.check(n * NODE_BYTES, f"inlining the model-local functions ({n} nodes or more)", limit=max_bytes,
                     error=OnnxModelError)
        try:
            model = onnx.inliner.inline_selected_functions(model, [(DOMAIN, OP_TYPE)], exclude=True)
        except Exception as e:  # noqa: BLE001
            raise OnnxModelError(f"cannot inline the model-local functions that call LUTKanEdge: {e}") from None
    if not _contains_edge(model.graph.node):
        return model, []
    version = next((o.version for o in model.opset_import if o.domain == DOMAIN), None)
    if version not in READABLE_OP_VERSIONS:
        raise OnnxModelError(f"the model uses lutkan ops but imports domain {DOMAIN!r} at version {version}; "
                             f"this lutkan supports versions {', '.join(map(str, READABLE_OP_VERSIONS))}")

    budget.check(declared_bytes(model.graph, PLUGIN_BYTES_PER_CELL), "the plugin's tables (dense I*K*L*O per "
                 "LUTKanEdge node, declared by the Table initializers)", limit=max_bytes, error=OnnxModelError)
    computed = dict.fromkeys(graph_names(model.graph), "computed by a node of the graph (or a subgraph input)")
    prepared: list[PreparedNode] = []
    consumed: list[tuple[onnx.GraphProto, str]] = []
    top_inputs = {i.name: "a graph input, so it could be fed at run time" for i in model.graph.input}

    def walk(graph: onnx.GraphProto, outer: ChainMap, outer_owner: ChainMap) -> None:
        # inner scopes chain to the outer ones (no copies: linear in the model for any number of subgraphs)
        scope = outer.new_child({t.name: t for t in graph.initializer})
        owner = outer_owner.new_child({t.name: graph for t in graph.initializer})
        overridable = ChainMap(top_inputs if graph is model.graph else
                               {i.name: "a subgraph input, so it could vary at run time" for i in graph.input},
                               computed)
        expanded = []
        for node in graph.node:
            if node.domain == DOMAIN and node.op_type == SYMBOLIC_OP:
                where = f"KanSymbolic node {node.name!r}"
                expanded += _symbolic_expansion(node, where, scope, overridable)
                consumed.extend((owner.get(name), name) for name in (node.input[2],))  # Dst: not read any more
                continue
            if node.domain == DOMAIN and not is_lutkan_edge(node):
                raise OnnxModelError(f"node {node.name!r}: unknown op {DOMAIN}::{node.op_type} (this lutkan knows "
                                     f"{OP_TYPE} and {SYMBOLIC_OP})")
            expanded.append(node)
            if is_lutkan_edge(node):
                idx = len(prepared)
                where = f"LUTKanEdge node {node.name!r} (#{idx})" if node.name else f"LUTKanEdge node #{idx}"
                tensors, attrs, I, O = _prepare_node(node, where, scope, overridable)
                for name in node.input[1:]:
                    if name:
                        consumed.append((owner.get(name), name))
                key = key_for(O)
                del node.input[1:]
                del node.attribute[:]
                node.overload = ""
                node.attribute.append(onnx.helper.make_attribute("kernel_key", key))
                prepared.append(PreparedNode(where=where, tables=tensors, attrs=attrs, in_dim=I, out_dim=O,
                                             node=node))
            for g in subgraphs(node):
                walk(g, scope, owner)
        del graph.node[:]
        graph.node.extend(expanded)

    walk(model.graph, ChainMap(), ChainMap())
    check_functions(model, prepared)

    # Drop the LUTKanEdge function (the plugin replaces it) and the tables nothing else reads.
    keep = [f for f in model.functions if not (f.domain == DOMAIN and f.name == OP_TYPE)]
    del model.functions[:]
    model.functions.extend(keep)
    used: set = set()
    _used_names(model.graph, used)
    for f in model.functions:
        for n in f.node:
            used.update(n.input)
    drop: dict[int, set] = {}
    graphs = {}
    for g, name in consumed:
        if g is not None and name not in used:
            drop.setdefault(id(g), set()).add(name)
            graphs[id(g)] = g
    for gid, names in drop.items():
        g = graphs[gid]
        kept = [t for t in g.initializer if t.name not in names]
        del g.initializer[:]
        g.initializer.extend(kept)
    return model, prepared

