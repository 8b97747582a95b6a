"""The ``lutkan.LUTKanEdge`` operator, defined once (domain, version, inputs, attributes).

Every view of the op is derived from this module: the model-local FunctionProto body
(``function_body``), the bare custom-op node, the ``onnx.reference`` OpRun (``reference_op``)
and the onnxruntime plugin kernel (``lutkan.runtime_ext``).

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

from dataclasses import dataclass

import numpy as np

from lutkan.artifact import LUTLayer
from lutkan.contract import ContractOptions
from lutkan.evaluators.packing import index_hi, segment_scales

DOMAIN = "lutkan"
OP_TYPE = "LUTKanEdge"
OP_VERSION = 1

INPUTS = ("X", "Knots", "Bounds", "SegScale", "BaseWeight", "EdgeMask", "Table", "TableScale", "TableOffset")
OPTIONAL_INPUTS = ("TableScale", "TableOffset")
OUTPUTS = ("Y",)
ATTRIBUTES = {"L": int, "interp": str, "boundary": str, "oob": str, "base_fun": str}


@dataclass(frozen=True, eq=False)
class OpTensors:
    """The initializer values of one layer's LUTKanEdge node (everything but X)."""

    knots: np.ndarray
    bounds: np.ndarray
    seg_scale: np.ndarray
    base_weight: np.ndarray
    edge_mask: np.ndarray
    table: np.ndarray
    table_scale: np.ndarray | None
    table_offset: np.ndarray | None

    def named(self) -> dict[str, np.ndarray | None]:
        """Input name -> array (None for an absent optional input), in schema order (X excluded)."""
        return dict(zip(INPUTS[1:], (self.knots, self.bounds, self.seg_scale, self.base_weight, self.edge_mask,
                                     self.table, self.table_scale, self.table_offset)))


def op_tensors(layer: LUTLayer, opts: ContractOptions) -> OpTensors:
    """Scatter a compiled layer into the op's dense per-input layout (stored dtype kept)."""
    I, O, K, L = layer.in_dim, layer.out_dim, layer.n_segments, opts.L
    knots = np.ascontiguousarray(layer.knots, dtype=np.float32)
    bounds = np.stack([knots[:, 0], knots[:, -1], index_hi(knots, opts.boundary)]).astype(np.float32)
    table = np.zeros((I, K, L, O), dtype=layer.table.dtype)
    table[layer.edge_src, :, :, layer.edge_dst] = layer.table
    scale = offset = None
    if layer.scale is not None:
        scale = np.ones((I, K, O), dtype=np.float32)
        scale[layer.edge_src, :, layer.edge_dst] = layer.scale
    if layer.offset is not None:
        offset = np.zeros((I, K, O), dtype=np.float32)
        offset[layer.edge_src, :, layer.edge_dst] = layer.offset
    return OpTensors(knots=knots, bounds=bounds, seg_scale=segment_scales(knots, L),
                     base_weight=np.ascontiguousarray(layer.base_weight, dtype=np.float32),
                     edge_mask=layer.active.astype(np.float32), table=table, table_scale=scale, table_offset=offset)


def op_attributes(opts: ContractOptions, base_fun: str) -> dict[str, int | str]:
    return {"L": opts.L, "interp": opts.interp, "boundary": opts.boundary, "oob": opts.oob, "base_fun": base_fun}


def dequantized_dense(t: OpTensors) -> np.ndarray:
    """(I*K*L, O) float32 table exactly as ``lutkan.evaluators.packing.dequantize`` computes it."""
    q = t.table.astype(np.float32)
    if t.table_scale is not None:
        q = t.table_scale[:, :, None, :] * q
    if t.table_offset is not None:
        q = t.table_offset[:, :, None, :] + q
    I, K, L, O = t.table.shape
    return np.ascontiguousarray(q.reshape(I * K * L, O))
