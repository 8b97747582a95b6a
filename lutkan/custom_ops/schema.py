"""The ops of the ``lutkan`` domain (version 2), defined once: ``LUTKanEdge`` and ``KanSymbolic``.

Every view of an op is derived from this module: the standard-op bodies (``function_body``,
``symbolic_body``), the bare custom-op nodes, the ``onnx.reference`` OpRuns (``reference_op``) and the
onnxruntime plugin (``lutkan.runtime_ext``). The arrays are the fields of ``lutkan.tables.LayerTables``
(``op_inputs`` / ``tables_from_op`` map one to the other). Domain version 1 (lutkan 0.1) had
``LUTKanEdge`` without ``interp="poly"`` and no ``KanSymbolic``; readers accept both versions.

``Y = LUTKanEdge(X, Knots, Bounds, SegScale, BaseWeight, EdgeMask, Table[, TableScale[, TableOffset]])``
evaluates every edge of one KAN layer and sums them per output (steps 1-7 of
``docs/contract.md`` §3; node/subnode affines and multiplication nodes are separate standard ops):

    Y[n, j] = sum_i  LUT_ij(X[n, i]) + BaseWeight[i, j] * base(X[n, i])      (NaN-poisoned per edge)

Inputs (I inputs, O outputs, K segments, L samples):
    X           float32 [N, I]
    Knots       float32 [I, K+1]   per-input knots, nondecreasing
    Bounds      float32 [3, I]     rows: lo = t_0, hi = t_K, hi_idx (indexing clip bound)
    SegScale    float32 [I, K]     (L-1)/(t_{k+1}-t_k) (poly: 1/(t_{k+1}-t_k)), 0 for zero-width segments
    BaseWeight  float32 [I, O]     mask*scale_base (0 on inactive edges)
    EdgeMask    float32 [I, O]     1 on active edges (NaN poisoning), 0 elsewhere
    Table       T [I, K, L, O]     T in {int8, uint8, float16, float32}; zero on inactive edges
                                   (poly: L Bernstein control points per segment, float16/float32)
    TableScale  float32 [I, K, O]  optional (int8/uint8): per-(edge, segment) scale
    TableOffset float32 [I, K, O]  optional (uint8): per-(edge, segment) offset
Attributes:
    L int; interp "linear"|"nearest"|"poly"; boundary "closed"|"half_open";
    oob "clip"|"zero"|"extrapolate"; base_fun "silu"|"identity"|"zero".
Output:
    Y float32 [N, O]

``Y = KanSymbolic(X, Src, Dst, Affine)`` sums the layer's exactly evaluated symbolic edges per output:

    Y[n, j] = sum over edges e with Dst[e] = j of  c_e * f_e(a_e * X[n, Src[e]] + b_e) + d_e

Inputs (S symbolic edges, grouped by function): X float32 [N, I]; Src int64 [S] in [0, I); Dst int64 [S]
in [0, O); Affine float64 [S, 4] rows (a, b, c, d), the symbolic mask folded into c and d. Each output's
terms are computed and summed in float64 from the float32 X and rounded once to float32 (``Asin``, ``Acos``,
``Atan`` in float32 on the rounded argument).
Attributes: functions, S strings (pykan ``SYMBOLIC_LIB`` names, ``lutkan.symbolic``); n_outputs int O.
Output: Y float32 [N, O]. NaN and +-inf propagate as IEEE arithmetic does (no clipping).
"""

from __future__ import annotations

import numpy as np

from lutkan.contract import ContractOptions
from lutkan.tables import LayerTables, SymbolicEdges

DOMAIN = "lutkan"
OP_TYPE = "LUTKanEdge"
OP_VERSION = 2
READABLE_OP_VERSIONS = (1, 2)
SYMBOLIC_OP = "KanSymbolic"
SYMBOLIC_INPUTS = ("X", "Src", "Dst", "Affine")
SYMBOLIC_ATTRIBUTES = {"functions": list, "n_outputs": int}
TARGET_OPSET = 21
"""Default-domain (``ai.onnx``) opset of the function body and of every graph lutkan writes."""

INPUTS = ("X", "Knots", "Bounds", "SegScale", "BaseWeight", "EdgeMask", "Table", "TableScale", "TableOffset")
OUTPUTS = ("Y",)
ATTRIBUTES = {"L": int, "interp": str, "boundary": str, "oob": str, "base_fun": str}

_FIELDS = {"Knots": "knots", "Bounds": "bounds", "SegScale": "seg_scale", "BaseWeight": "base_weight",
           "EdgeMask": "edge_mask", "Table": "table", "TableScale": "table_scale", "TableOffset": "table_offset"}
"""Formal input (all but X) -> ``LayerTables`` field, in schema order."""


def op_inputs(t: LayerTables) -> dict[str, np.ndarray | None]:
    """Formal input name -> array (None for an absent optional input), in schema order (X excluded)."""
    return {name: getattr(t, field) for name, field in _FIELDS.items()}


def op_attributes(options: ContractOptions, base_fun: str) -> dict[str, int | str]:
    """The node attributes of a LUTKanEdge evaluating ``options`` with base function ``base_fun``."""
    o = options
    return {"L": o.L, "interp": o.interp, "boundary": o.boundary, "oob": o.oob, "base_fun": base_fun}


def tables_from_op(arrays: dict[str, np.ndarray | None], attrs: dict) -> LayerTables:
    """The ``LayerTables`` an op node computes (no node step), from its inputs by formal name and its
    attributes. Values are taken as given: validate untrusted files first (``lutkan.runtime_ext.graph``)."""
    table = arrays["Table"]
    opts = ContractOptions(L=int(attrs["L"]), scheme=np.dtype(table.dtype).name, interp=attrs["interp"],
                           boundary=attrs["boundary"], oob=attrs["oob"])
    return LayerTables.build(knots=arrays["Knots"], bounds=arrays["Bounds"], seg_scale=arrays["SegScale"],
                             base_weight=arrays["BaseWeight"], edge_mask=arrays["EdgeMask"], table=table,
                             table_scale=arrays.get("TableScale"), table_offset=arrays.get("TableOffset"),
                             options=opts, base_fun=attrs["base_fun"])


def symbolic_op_edges(sym: SymbolicEdges) -> SymbolicEdges:
    """``sym`` in the ``KanSymbolic`` order: grouped by function (stable: in-major within a function), so that
    the standard-op expansion evaluates each function once on a contiguous slice."""
    order = np.argsort(sym.codes, kind="stable")
    return SymbolicEdges(src=sym.src[order], dst=sym.dst[order], affine=sym.affine[order],
                         funs=tuple(sym.funs[q] for q in order), out_dim=sym.out_dim)


def symbolic_attributes(sym: SymbolicEdges) -> dict[str, object]:
    """The node attributes of a ``KanSymbolic`` over ``sym`` (in op order)."""
    return {"functions": list(sym.funs), "n_outputs": int(sym.out_dim)}


def symbolic_from_op(arrays: dict[str, np.ndarray], attrs: dict) -> SymbolicEdges:
    """The ``SymbolicEdges`` a ``KanSymbolic`` node computes (values taken as given: validate first)."""
    return SymbolicEdges(src=np.asarray(arrays["Src"], np.int64), dst=np.asarray(arrays["Dst"], np.int64),
                         affine=np.ascontiguousarray(arrays["Affine"], np.float64),
                         funs=tuple(str(f) for f in attrs["functions"]), out_dim=int(attrs["n_outputs"]))
