"""The ``lutkan.LUTKanEdge`` operator, defined once (domain, version, inputs, attributes).

Every view of the op is derived from this module: the model-local FunctionProto body
(``function_body``), the bare custom-op node, the ``onnx.reference`` OpRun (``reference_op``)
and the onnxruntime plugin kernel (``lutkan.runtime_ext``). The arrays are the fields of
``lutkan.tables.LayerTables`` (``op_inputs`` / ``tables_from_op`` map one to the other).

``Y = LUTKanEdge(X, Knots, Bounds, SegScale, BaseWeight, EdgeMask, Table[, TableScale[, TableOffset]])``
evaluates every edge of one KAN layer and sums them per output (steps 1-7 of
``docs/contract.md`` §3; node/subnode affines and multiplication nodes are separate standard ops):

    Y[n, j] = sum_i  LUT_ij(X[n, i]) + BaseWeight[i, j] * base(X[n, i])      (NaN-poisoned per edge)

Inputs (I inputs, O outputs, K segments, L samples):
    X           float32 [N, I]
    Knots       float32 [I, K+1]   per-input knots, nondecreasing
    Bounds      float32 [3, I]     rows: lo = t_0, hi = t_K, hi_idx (indexing clip bound)
    SegScale    float32 [I, K]     (L-1)/(t_{k+1}-t_k), 0 for zero-width segments
    BaseWeight  float32 [I, O]     mask*scale_base (0 on inactive edges)
    EdgeMask    float32 [I, O]     1 on active edges (NaN poisoning), 0 elsewhere
    Table       T [I, K, L, O]     T in {int8, uint8, float16, float32}; zero on inactive edges
    TableScale  float32 [I, K, O]  optional (int8/uint8): per-(edge, segment) scale
    TableOffset float32 [I, K, O]  optional (uint8): per-(edge, segment) offset
Attributes:
    L int; interp "linear"|"nearest"; boundary "closed"|"half_open";
    oob "clip"|"zero"|"extrapolate"; base_fun "silu"|"identity"|"zero".
Output:
    Y float32 [N, O]
"""

from __future__ import annotations

import numpy as np

from lutkan.contract import ContractOptions
from lutkan.tables import LayerTables

DOMAIN = "lutkan"
OP_TYPE = "LUTKanEdge"
OP_VERSION = 1
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
