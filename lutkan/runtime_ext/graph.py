"""Read, validate and rewrite a model's ``lutkan.LUTKanEdge`` nodes for the plugin (pure onnx, no ORT).

``prepare(model)`` works on a private in-memory copy (the file on disk is never touched and stays
self-contained):

1. Every LUTKanEdge node (top-level graph and control-flow subgraphs; wrapper functions that call
   LUTKanEdge are inlined first) is validated against ``lutkan.custom_ops.schema``: attribute
   names, types and legal values; table inputs present, initializers (not computed tensors, not
   overridable graph inputs), of the right dtype and mutually consistent shapes
   ``(I, K, L, O)``; and the values the kernel indexes with (knots, bounds, seg_scale) finite and
   consistent, so that no file can make the kernel read out of bounds. Any defect raises
   ``OnnxModelError`` naming the node and the problem.
2. Each node is rewritten to ``Y = LUTKanEdge(X)`` with the single attribute ``kernel_key``;
   the tables it consumed (if nothing else uses them) and the model-local LUTKanEdge function
   are dropped from the copy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import onnx
import onnx.inliner
from onnx import AttributeProto, numpy_helper

from lutkan.contract import BASE_FUNS, BOUNDARIES, INTERPS, MAX_L, MIN_L, OOB_POLICIES, POLY_MAX_L
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
from lutkan.errors import OnnxModelError
from lutkan.symbolic import SYMBOLIC_CODES
from lutkan.tables import LayerTables

__all__ = ["PreparedNode", "read_model", "prepare", "is_lutkan_edge"]

_LEGAL = {"interp": INTERPS, "boundary": BOUNDARIES, "oob": OOB_POLICIES, "base_fun": BASE_FUNS}
_TABLE_DTYPES = (np.int8, np.uint8, np.float16, np.float32)
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


def _table_array(where: str, role: str, name: str, scope: dict, overridable: set) -> np.ndarray:
    if name in overridable:
        raise OnnxModelError(f"{where}: input {role} ({name!r}) is also a graph input, so it could be fed at "
                             f"run time; the plugin needs it to be a constant initializer")
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


def _check_tensors(where: str, arrs: dict, L: int) -> tuple[int, int]:
    """Dtypes/shapes (I, K, L, O) and the values the kernel indexes with; returns (I, O)."""
    def need(role, dtype, shape):
        a = arrs[role]
        if a.dtype != np.dtype(dtype):
            raise OnnxModelError(f"{where}: {role} must be {np.dtype(dtype).name}, got {a.dtype}")
        if tuple(a.shape) != tuple(shape):
            raise OnnxModelError(f"{where}: {role} has shape {tuple(a.shape)}, expected {tuple(shape)} "
                                 f"(I={I} inputs, K={K} segments, L={L} samples, O={O} outputs)")

    kn, bw, tb = arrs["Knots"], arrs["BaseWeight"], arrs["Table"]
    if kn.ndim != 2 or kn.shape[0] < 1 or kn.shape[1] < 2:
        raise OnnxModelError(f"{where}: Knots must be a float32 (I, K+1) array with I >= 1, K >= 1, got shape "
                             f"{tuple(kn.shape)}")
    if bw.ndim != 2 or bw.shape[1] < 1:
        raise OnnxModelError(f"{where}: BaseWeight must be a float32 (I, O) array with O >= 1, got shape "
                             f"{tuple(bw.shape)}")
    I, K, O = int(kn.shape[0]), int(kn.shape[1]) - 1, int(bw.shape[1])
    need("Knots", np.float32, (I, K + 1))
    need("Bounds", np.float32, (3, I))
    need("SegScale", np.float32, (I, K))
    need("BaseWeight", np.float32, (I, O))
    need("EdgeMask", np.float32, (I, O))
    if tb.dtype not in [np.dtype(d) for d in _TABLE_DTYPES]:
        raise OnnxModelError(f"{where}: Table must be int8, uint8, float16 or float32, got {tb.dtype}")
    need("Table", tb.dtype, (I, K, L, O))
    for role in ("TableScale", "TableOffset"):
        if arrs.get(role) is not None:
            need(role, np.float32, (I, K, O))
    # Values the kernel computes indices from: non-finite ones could index out of bounds.
    if not np.all(np.isfinite(kn)):
        i = int(np.nonzero(~np.all(np.isfinite(kn), axis=1))[0][0])
        raise OnnxModelError(f"{where}: Knots row {i} contains NaN/inf")
    if np.any(np.diff(kn, axis=1) < 0):
        i = int(np.nonzero(np.any(np.diff(kn, axis=1) < 0, axis=1))[0][0])
        raise OnnxModelError(f"{where}: Knots row {i} is not nondecreasing")
    with np.errstate(over="ignore"):
        span = kn[:, -1] - kn[:, 0]
    if not np.all(np.isfinite(span)):
        i = int(np.nonzero(~np.isfinite(span))[0][0])
        raise OnnxModelError(f"{where}: Knots row {i} spans more than float32 can represent")
    b = arrs["Bounds"]
    if not np.all(np.isfinite(b)):
        raise OnnxModelError(f"{where}: Bounds contains NaN/inf")
    if not (np.array_equal(b[0], kn[:, 0]) and np.array_equal(b[1], kn[:, -1])):
        raise OnnxModelError(f"{where}: Bounds rows 0/1 must equal the first/last knot of each input")
    if np.any(b[2] < b[0]) or np.any(b[2] > b[1]):
        raise OnnxModelError(f"{where}: Bounds row 2 (hi_idx) must lie within [lo, hi] for every input")
    ss = arrs["SegScale"]
    if not np.all(np.isfinite(ss)) or np.any(ss < 0):
        raise OnnxModelError(f"{where}: SegScale must be finite and >= 0")
    return I, O


def _prepare_node(node: onnx.NodeProto, where: str, scope: dict, overridable: set) -> tuple[LayerTables, dict, int, int]:
    if len(node.output) != 1 or not node.output[0]:
        raise OnnxModelError(f"{where}: LUTKanEdge has exactly one output Y, got {list(node.output)}")
    n_in = len(node.input)
    if not _N_REQUIRED <= n_in <= len(INPUTS):
        raise OnnxModelError(f"{where}: LUTKanEdge takes {_N_REQUIRED}-{len(INPUTS)} inputs "
                             f"({', '.join(INPUTS)}), got {n_in}")
    for role, name in zip(INPUTS[:_N_REQUIRED], node.input, strict=False):  # the optional ones are checked below
        if not name:
            raise OnnxModelError(f"{where}: required input {role} is empty")
    attrs = _node_attrs(where, node)
    arrs: dict = {}
    for role, name in zip(INPUTS[1:], list(node.input[1:]) + [""] * (len(INPUTS) - n_in), strict=True):
        arrs[role] = _table_array(where, role, name, scope, overridable) if name else None
    I, O = _check_tensors(where, arrs, attrs["L"])
    if attrs["interp"] == "poly" and (arrs["Table"].dtype.kind != "f" or attrs["L"] > POLY_MAX_L):
        raise OnnxModelError(f"{where}: interp='poly' needs a float16/float32 Table with L <= {POLY_MAX_L} "
                             f"coefficients, got {arrs['Table'].dtype} L={attrs['L']}")
    return tables_from_op(arrs, attrs), attrs, I, O


def _subgraphs(node: onnx.NodeProto):
    for a in node.attribute:
        if a.type == AttributeProto.GRAPH:
            yield a.g
        elif a.type == AttributeProto.GRAPHS:
            yield from a.graphs


def _used_names(graph: onnx.GraphProto, used: set) -> None:
    for n in graph.node:
        used.update(n.input)
        for g in _subgraphs(n):
            _used_names(g, used)
    used.update(o.name for o in graph.output)


def _contains_edge(nodes) -> bool:
    """Whether ``nodes`` (or their subgraphs) hold any lutkan-domain node."""
    for n in nodes:
        if n.domain == DOMAIN or any(_contains_edge(g.node) for g in _subgraphs(n)):
            return True
    return False


def _symbolic_expansion(node: onnx.NodeProto, where: str, scope: dict, overridable: set) -> list[onnx.NodeProto]:
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
    S = len(funs)
    for role, dtype, shape in (("Src", np.int64, (S,)), ("Dst", np.int64, (S,)), ("Affine", np.float64, (S, 4))):
        a = arrs[role]
        if a.dtype != np.dtype(dtype) or tuple(a.shape) != shape:
            raise OnnxModelError(f"{where}: {role} must be {np.dtype(dtype).name} {shape} ({S} functions), got "
                                 f"{a.dtype} {tuple(a.shape)}")
    unknown = sorted({f for f in funs if f not in SYMBOLIC_CODES})
    if unknown or O < 1 or S < 1:
        raise OnnxModelError(f"{where}: unknown symbolic function(s) {unknown}, or n_outputs={O} / {S} edges < 1")
    if np.any(arrs["Src"] < 0) or np.any(arrs["Dst"] < 0) or np.any(arrs["Dst"] >= O):
        raise OnnxModelError(f"{where}: Src must be >= 0 and Dst in [0, {O})")
    if not np.all(np.isfinite(arrs["Affine"])):
        raise OnnxModelError(f"{where}: Affine contains NaN or inf")
    sym = symbolic_from_op(arrs, {"functions": funs, "n_outputs": O})
    body = build_symbolic_function(sym)
    prefix = (node.name or node.output[0]) + "/"
    return inline_body(body, {"X": node.input[0], "Src": node.input[1], "Affine": node.input[3]}, node.output[0],
                       prefix)


def prepare(model: onnx.ModelProto, key_for) -> tuple[onnx.ModelProto, list[PreparedNode]]:
    """Validate and rewrite ``model`` in place (pass a private copy); ``key_for(out_dim)`` makes keys.

    Returns the rewritten model and its LUTKanEdge nodes in graph order.
    """
    others = [f for f in model.functions if not (f.domain == DOMAIN and f.name == OP_TYPE)]
    if any(_contains_edge(f.node) for f in others):
        # A wrapper function calls LUTKanEdge with formal parameters: inline the wrappers so the
        # nodes see the initializers; the LUTKanEdge function itself is kept (and dropped below).
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

    prepared: list[PreparedNode] = []
    consumed: list[tuple[onnx.GraphProto, str]] = []
    top_inputs = {i.name for i in model.graph.input}

    def walk(graph: onnx.GraphProto, outer: dict, outer_owner: dict) -> None:
        scope = dict(outer)
        scope.update({t.name: t for t in graph.initializer})
        owner = dict(outer_owner)
        owner.update({t.name: graph for t in graph.initializer})
        overridable = top_inputs if graph is model.graph else {i.name for i in graph.input}
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
            for g in _subgraphs(node):
                walk(g, scope, owner)
        del graph.node[:]
        graph.node.extend(expanded)

    walk(model.graph, {}, {})

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

