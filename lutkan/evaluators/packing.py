"""Derived, read-only views of a compiled layer that every backend evaluates.

All backends (NumPy reference, Numba kernel, ONNX graphs, the onnxruntime plugin) read the same
float32 arrays produced here, so they share one set of rounding decisions:

* ``dequantize``: ``offset + scale * float32(q)`` for uint8, ``scale * float32(q)`` for int8,
  ``float32(t)`` for float16/float32 tables (dequantize first, then interpolate).
* ``seg_scale[i, k] = float32(L-1) / float32(t[i,k+1] - t[i,k])`` (0 for zero-width or
  non-finite), so ``pos = (x_c - t_k) * seg_scale`` is one float32 multiply everywhere.
* ``hi_idx``: the indexing clip bound, ``t_K`` (closed) or ``max(t_0, nextafter(t_K, -inf))``
  (half_open).
* ``dense``: the tables scattered into ``(I*K*L, O)`` rows (row = (i*K + k)*L + r), zeros where
  an edge is inactive, so one gathered row serves every output of an input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lutkan.artifact import LUTLayer, LUTModel
from lutkan.contract import ContractOptions


def dequantize(layer: LUTLayer, opts: ContractOptions) -> np.ndarray:
    """(E, K, L) float32 sample values exactly as every backend sees them."""
    if opts.scheme == "int8":
        return layer.scale[:, :, None] * layer.table.astype(np.float32)
    if opts.scheme == "uint8":
        return layer.offset[:, :, None] + layer.scale[:, :, None] * layer.table.astype(np.float32)
    return layer.table.astype(np.float32)


def segment_scales(knots: np.ndarray, L: int) -> np.ndarray:
    """(I, K) float32 (L-1)/width per segment; 0 where the width is 0 or the ratio overflows."""
    width = (knots[:, 1:] - knots[:, :-1]).astype(np.float32)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        s = np.float32(L - 1) / width
    s[~np.isfinite(s) | (width <= 0)] = 0
    return s.astype(np.float32)


def index_hi(knots: np.ndarray, boundary: str) -> np.ndarray:
    """(I,) float32 upper clip bound used for indexing."""
    lo, hi = knots[:, 0], knots[:, -1]
    if boundary == "closed":
        return hi.astype(np.float32).copy()
    return np.maximum(lo, np.nextafter(hi, np.float32(-np.inf))).astype(np.float32)


@dataclass(frozen=True, eq=False)
class PackedLayer:
    """Float32 arrays of one layer in the layout the kernels read (see module docstring)."""

    knots: np.ndarray  # (I, K+1)
    lo: np.ndarray  # (I,)
    hi: np.ndarray  # (I,) true upper domain end t_K
    hi_idx: np.ndarray  # (I,) indexing clip bound
    seg_scale: np.ndarray  # (I, K)
    dense: np.ndarray  # (I*K*L, O)
    active: np.ndarray  # (I, O) bool
    base_weight: np.ndarray  # (I, O)
    subnode_scale: np.ndarray
    subnode_bias: np.ndarray
    node_scale: np.ndarray
    node_bias: np.ndarray
    n_sum: int
    mult_groups: tuple[int, ...]
    K: int
    L: int

    @property
    def in_dim(self) -> int:
        return int(self.knots.shape[0])

    @property
    def out_dim(self) -> int:
        return int(self.dense.shape[1])


def pack_layer(layer: LUTLayer, opts: ContractOptions) -> PackedLayer:
    I, O, K, L = layer.in_dim, layer.out_dim, layer.n_segments, opts.L
    deq = dequantize(layer, opts)  # (E, K, L)
    dense = np.zeros((I, K, L, O), dtype=np.float32)
    dense[layer.edge_src, :, :, layer.edge_dst] = deq
    knots = np.ascontiguousarray(layer.knots, dtype=np.float32)
    return PackedLayer(
        knots=knots, lo=knots[:, 0].copy(), hi=knots[:, -1].copy(), hi_idx=index_hi(knots, opts.boundary),
        seg_scale=segment_scales(knots, L), dense=dense.reshape(I * K * L, O),
        active=layer.active.copy(), base_weight=np.ascontiguousarray(layer.base_weight),
        subnode_scale=layer.subnode_scale, subnode_bias=layer.subnode_bias,
        node_scale=layer.node_scale, node_bias=layer.node_bias,
        n_sum=layer.n_sum, mult_groups=tuple(layer.mult_groups), K=K, L=L,
    )


def pack_model(model: LUTModel) -> tuple[PackedLayer, ...]:
    return tuple(pack_layer(layer, model.contract) for layer in model.layers)


def combine_nodes(p: PackedLayer, s: np.ndarray) -> np.ndarray:
    """Subnode affine -> products of multiplication groups -> node affine (float32)."""
    s = p.subnode_scale * s + p.subnode_bias
    if p.mult_groups:
        parts = [s[:, : p.n_sum]]
        start = p.n_sum
        for size in p.mult_groups:
            parts.append(np.prod(s[:, start : start + size], axis=1, keepdims=True))
            start += size
        s = np.concatenate(parts, axis=1)
    return p.node_scale * s + p.node_bias
