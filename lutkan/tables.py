"""The runtime layout of one compiled layer: what every backend reads, built once.

``LayerTables`` holds the arrays of one ``LUTKanEdge`` op (``lutkan.custom_ops.schema`` names them) plus
the layer's node step. The NumPy reference, the Numba kernel, the ONNX graphs, the ``onnx.reference``
OpRun and the onnxruntime plugin all read this one layout, so they share one set of rounding decisions
(``docs/contract.md`` §2-3):

* tables are dense per input, ``table`` (I, K, L, O) in the stored dtype, zero on inactive edges, with
  ``table_scale``/``table_offset`` (I, K, O) for int8/uint8 (scale 1 / offset 0 on inactive edges);
* ``dequantize``: ``offset + scale * float32(q)`` (uint8), ``scale * float32(q)`` (int8),
  ``float32(t)`` (float tables): dequantize first, then interpolate;
* ``seg_scale[i, k] = float32(L-1) / float32(t[i,k+1] - t[i,k])`` (numerator 1 for ``poly``; 0 for
  zero-width or non-finite), so ``pos = (x_c - t_k) * seg_scale`` is one float32 multiply everywhere;
* ``poly`` keeps the same layout with L = k+1 coefficients per segment instead of samples;
* symbolic edges evaluated exactly are a separate list (``SymbolicEdges``), the op ``lutkan.KanSymbolic``;
* ``bounds`` rows ``lo = t_0``, ``hi = t_K`` and the indexing clip bound ``hi_idx`` (``t_K`` closed,
  ``max(t_0, nextafter(t_K, -inf))`` half_open);
* ``dense``: the dequantized tables as (I*K*L, O) float32 rows, row ``(i*K + k)*L + r``, so one gathered
  row serves every output of an input.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from math import comb

import numpy as np

from lutkan import budget
from lutkan.artifact import KnotShape, LUTLayer, LUTModel
from lutkan.contract import ContractOptions
from lutkan.nodes import NodeStep
from lutkan.symbolic import SYMBOLIC_CODES

__all__ = ["LayerTables", "SymbolicEdges", "bernstein_basis", "dequantize", "index_hi", "layout_bytes", "model_tables",
           "segment_scales"]


def dequantize(q: np.ndarray, scale: np.ndarray | None, offset: np.ndarray | None, *, axis: int = -1) -> np.ndarray:
    """float32 samples of a stored table: ``offset + scale * float32(q)``.

    ``scale``/``offset`` (when given) have ``q``'s shape without the sample axis ``axis``; this is the one
    dequantizer of the project (compile-time error estimates and every backend use it).
    """
    v = q.astype(np.float32)
    if scale is not None:
        v = np.expand_dims(scale, axis) * v
    if offset is not None:
        v = np.expand_dims(offset, axis) + v
    return v


def bernstein_basis(u: np.ndarray, n: int) -> np.ndarray:
    """(..., n+1) Bernstein basis values ``binom(n, m) u^m (1-u)^(n-m)`` in u's dtype (the contract's order:
    powers by repeated multiplication, then the binomial factor)."""
    u = np.asarray(u)
    v = u.dtype.type(1) - u
    up = [np.ones_like(u)]
    vp = [np.ones_like(u)]
    for _ in range(n):
        up.append(up[-1] * u)
        vp.append(vp[-1] * v)
    return np.stack([u.dtype.type(comb(n, m)) * (up[m] * vp[n - m]) for m in range(n + 1)], axis=-1)


def segment_scales(knots: np.ndarray, numerator: int) -> np.ndarray:
    """(I, K) float32 ``numerator/width`` per segment (``L-1`` for tables, 1 for ``poly``); 0 where the width
    is 0 or the ratio overflows."""
    width = (knots[:, 1:] - knots[:, :-1]).astype(np.float32)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        s = np.float32(numerator) / width
    s[~np.isfinite(s) | (width <= 0)] = 0
    return s.astype(np.float32)


def index_hi(knots: np.ndarray, boundary: str) -> np.ndarray:
    """(I,) float32 upper clip bound used for indexing."""
    lo, hi = knots[:, 0], knots[:, -1]
    if boundary == "closed":
        return hi.astype(np.float32).copy()
    return np.maximum(lo, np.nextafter(hi, np.float32(-np.inf))).astype(np.float32)


def _c(a: np.ndarray | None, dtype=None) -> np.ndarray | None:
    return None if a is None else np.ascontiguousarray(a, dtype=dtype)


@dataclass(frozen=True, eq=False)
class SymbolicEdges:
    """The exactly evaluated symbolic edges of one layer: ``Y[:, dst[e]] += c_e*f_e(a_e*X[:, src[e]] + b_e) + d_e``.

    Attributes: src, dst int64 (S,); affine float64 (S, 4) rows (a, b, c, d) with the symbolic mask folded
    into c and d; funs, S names of ``lutkan.symbolic``; out_dim, the layer's O.
    """

    src: np.ndarray
    dst: np.ndarray
    affine: np.ndarray
    funs: tuple[str, ...]
    out_dim: int

    @property
    def n_edges(self) -> int:
        return len(self.funs)

    @cached_property
    def codes(self) -> np.ndarray:
        """int64 (S,) ``lutkan.symbolic.SYMBOLIC_CODES`` of ``funs``."""
        return np.asarray([SYMBOLIC_CODES[f] for f in self.funs], dtype=np.int64)

    @classmethod
    def from_layer(cls, layer: LUTLayer) -> SymbolicEdges | None:
        if not layer.n_symbolic:
            return None
        return cls(src=np.asarray(layer.sym_src, np.int64), dst=np.asarray(layer.sym_dst, np.int64),
                   affine=np.ascontiguousarray(layer.sym_affine, np.float64), funs=tuple(layer.sym_funs),
                   out_dim=layer.out_dim)


@dataclass(frozen=True, eq=False)
class LayerTables(KnotShape):
    """One layer as the backends see it (I inputs, O outputs, K segments, L samples).

    Attributes:
        knots: float32 (I, K+1), nondecreasing per row.
        bounds: float32 (3, I): ``lo``, ``hi``, ``hi_idx``.
        seg_scale: float32 (I, K).
        base_weight: float32 (I, O) ``mask * scale_base`` (0 off the edge list).
        edge_mask: float32 (I, O), 1 on active edges (NaN poisoning).
        table: (I, K, L, O) int8/uint8/float16/float32, zero on inactive edges.
        table_scale, table_offset: float32 (I, K, O) or None.
        options: the contract (``L``, ``scheme`` = the table dtype, ``interp``, ``boundary``, ``oob``).
        base_fun: ``silu``, ``identity`` or ``zero``.
        nodes: the layer's node step, or None when the op alone is the layer (an ONNX node).
        symbolic: the layer's exactly evaluated symbolic edges, or None.
    Validation of untrusted values is the loader's job (``lutkan.artifact``, ``lutkan.runtime_ext.graph``).
    """

    knots: np.ndarray
    bounds: np.ndarray
    seg_scale: np.ndarray
    base_weight: np.ndarray
    edge_mask: np.ndarray
    table: np.ndarray
    table_scale: np.ndarray | None
    table_offset: np.ndarray | None
    options: ContractOptions
    base_fun: str
    nodes: NodeStep | None = None
    symbolic: SymbolicEdges | None = None

    @classmethod
    def from_layer(cls, layer: LUTLayer, options: ContractOptions, base_fun: str) -> LayerTables:
        """Scatter a compiled layer (edge list layout) into the dense per-input layout (stored dtype kept)."""
        I, O, K, L = layer.in_dim, layer.out_dim, layer.n_segments, options.L
        knots = np.ascontiguousarray(layer.knots, dtype=np.float32)
        table = np.zeros((I, K, L, O), dtype=layer.table.dtype)
        table[layer.edge_src, :, :, layer.edge_dst] = layer.table
        scale = offset = None
        if layer.scale is not None:
            scale = np.ones((I, K, O), dtype=np.float32)
            scale[layer.edge_src, :, layer.edge_dst] = layer.scale
        if layer.offset is not None:
            offset = np.zeros((I, K, O), dtype=np.float32)
            offset[layer.edge_src, :, layer.edge_dst] = layer.offset
        step = layer.node_step
        return cls.build(knots=knots, base_weight=layer.base_weight, edge_mask=layer.active.astype(np.float32),
                         table=table, table_scale=scale, table_offset=offset, options=options, base_fun=base_fun,
                         nodes=None if step.is_identity else step.astype(np.float32),
                         symbolic=SymbolicEdges.from_layer(layer))

    @classmethod
    def build(cls, *, knots, base_weight, edge_mask, table, table_scale, table_offset, options: ContractOptions,
              base_fun: str, nodes: NodeStep | None = None, symbolic: SymbolicEdges | None = None, bounds=None,
              seg_scale=None) -> LayerTables:
        """Construct, deriving ``bounds`` and ``seg_scale`` from the knots unless given (an op's inputs)."""
        knots = _c(knots, np.float32)
        if bounds is None:
            bounds = np.stack([knots[:, 0], knots[:, -1], index_hi(knots, options.boundary)])
        if seg_scale is None:
            seg_scale = segment_scales(knots, options.seg_numerator)
        return cls(knots=knots, bounds=_c(bounds, np.float32), seg_scale=_c(seg_scale, np.float32),
                   base_weight=_c(base_weight, np.float32), edge_mask=_c(edge_mask, np.float32),
                   table=_c(table), table_scale=_c(table_scale, np.float32),
                   table_offset=_c(table_offset, np.float32), options=options, base_fun=base_fun, nodes=nodes,
                   symbolic=symbolic)

    @property
    def L(self) -> int:
        return self.options.L

    @property
    def lo(self) -> np.ndarray:
        return self.bounds[0]

    @property
    def hi(self) -> np.ndarray:
        return self.bounds[1]

    @property
    def hi_idx(self) -> np.ndarray:
        return self.bounds[2]

    @property
    def n_outputs(self) -> int:
        """Width of the layer's result: its nodes, or the op's O outputs."""
        return self.out_dim if self.nodes is None else self.nodes.n_nodes

    def dequantized(self) -> np.ndarray:
        """(I*K*L, O) float32 dequantized samples, row ``(i*K + k)*L + r`` (a new array on every call)."""
        I, K, L, O = self.table.shape
        v = dequantize(self.table, self.table_scale, self.table_offset, axis=2)
        return np.ascontiguousarray(v.reshape(I * K * L, O))

    @cached_property
    def dense(self) -> np.ndarray:
        """``dequantized()``, computed once and read-only."""
        d = self.dequantized()
        d.setflags(write=False)
        return d

    def input_slice(self, i: int) -> LayerTables:
        """Input ``i`` alone (one input, the same O outputs, no node step): the sum of its edges."""
        s = slice(i, i + 1)

        def opt(a):
            return None if a is None else a[s]

        sym = None
        if self.symbolic is not None and np.any(self.symbolic.src == i):
            e = np.nonzero(self.symbolic.src == i)[0]
            sym = SymbolicEdges(src=np.zeros(e.size, np.int64), dst=self.symbolic.dst[e], affine=self.symbolic.affine[e],
                                funs=tuple(self.symbolic.funs[q] for q in e), out_dim=self.symbolic.out_dim)
        return LayerTables(knots=self.knots[s], bounds=self.bounds[:, s], seg_scale=self.seg_scale[s],
                           base_weight=self.base_weight[s], edge_mask=self.edge_mask[s], table=self.table[s],
                           table_scale=opt(self.table_scale), table_offset=opt(self.table_offset),
                           options=self.options, base_fun=self.base_fun, symbolic=sym)

    @cached_property
    def active(self) -> np.ndarray:
        """(I, O) bool: active edges."""
        return self.edge_mask != 0


def layout_bytes(model: LUTModel, extra_per_cell: int = 0) -> int:
    """Bytes of ``model_tables(model)`` with every dense table dequantized (``budget.dense_table_bytes``), plus
    ``extra_per_cell`` bytes per table cell (I*K*L*O) for a backend's own copies."""
    o = model.contract
    itemsize = np.dtype(model.layers[0].table.dtype).itemsize
    n_scale = {"int8": 1, "uint8": 2}.get(o.scheme, 0)
    total = 0
    for layer in model.layers:
        I, K, O = layer.in_dim, layer.n_segments, layer.out_dim
        total += budget.dense_table_bytes(I, K, o.L, O, itemsize, n_scale) + extra_per_cell * I * K * o.L * O
    return total


def model_tables(model: LUTModel, *, max_bytes: int | None = None, extra_per_cell: int = 0,
                 what: str = "the runtime tables") -> tuple[LayerTables, ...]:
    """Every layer of a compiled model in the runtime layout; the dense expansion (``layout_bytes``, plus the
    caller's ``extra_per_cell`` copies) is checked against the resource budget first (``ResourceLimitError``)."""
    budget.check(layout_bytes(model, extra_per_cell), f"{what} of the model {model.width} (dense I*K*L*O per "
                 f"layer, L={model.contract.L})", limit=max_bytes)
    return tuple(LayerTables.from_layer(layer, model.contract, model.base_fun) for layer in model.layers)
