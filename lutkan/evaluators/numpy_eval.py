"""NumPy reference evaluator of a compiled model: the definition of correct.

Per layer, for a float32 input column ``x_i`` with knots ``t_i[0..K]`` (``docs/contract.md`` §3):

1. ``nan = isnan(x)``; ``x_s = x`` with NaN replaced by ``t_0`` (indexing must never see NaN;
   NaN is re-injected in step 7). ``x_f = clip(x_s, -FLT_MAX, FLT_MAX)``.
2. ``x_c = min(max(x_s, t_0), hi_idx)`` (``hi_idx`` = ``t_K`` closed, ``nextafter(t_K, -inf)``
   half_open); ``k = #{m in 1..K-1 : t_m <= x_c}`` (right-continuous at interior knots).
3. Tables: ``pos = clip((x_c - t_k) * seg_scale[k], 0, L-1)``; ``r0 = min(floor(pos), L-2)``;
   ``w = pos - r0``. ``poly``: ``u = clip((x_c - t_k) * seg_scale[k], 0, 1)`` (seg_scale = 1/width).
4. ``linear``: ``v = T[r0] + w*(T[r0+1] - T[r0])``; ``nearest``: ``v = T[r0 + (w >= 0.5)]``;
   ``poly``: ``v = sum_m C[m] * B_m(u)``, Bernstein basis of degree L-1 (``bernstein_basis``).
5. Outside the domain (``closed``: ``t_0 <= x <= t_K``, ``half_open``: ``t_0 <= x < t_K``):
   ``clip`` keeps ``v``; ``zero`` sets ``v = 0``; ``extrapolate`` uses the linear formula with
   ``w = clip((x_f - t_k)*seg_scale[k] - r0, -FLT_MAX, FLT_MAX)`` (``poly``: the basis at
   ``u = clip((x_f - t_k)*seg_scale[k], -U_EXT, U_EXT)``, ``U_EXT = 2^16`` segment widths).
6. ``s_j = sum_i v_ij + sum_i base_weight_ij * base(x_f_i)``.
7. ``s_j = NaN`` if some ``x_i`` is NaN and table edge ``(i, j)`` is active.
8. Symbolic edges (exact): ``s_j += float32(sum_e c*f(a*x_i + b) + d)``, each output's terms computed and
   summed in float64 from the raw ``x_i`` (NaN/inf propagate as IEEE), rounded once to float32.
9. Subnode affine, multiplication groups, node affine.
All arithmetic is float32.
"""

from __future__ import annotations

import numpy as np

from lutkan import budget
from lutkan.artifact import LUTModel
from lutkan.contract import FLT_MAX, U_EXT
from lutkan.evaluators.inputs import check_input
from lutkan.symbolic import symbolic_terms
from lutkan.tables import LayerTables, SymbolicEdges, bernstein_basis, model_tables


def base_branch(base_fun: str, x_f: np.ndarray) -> np.ndarray:
    """float32 base function on finite inputs: silu = x*sigmoid(x), identity, or zero."""
    if base_fun == "silu":
        with np.errstate(over="ignore"):
            return x_f * (np.float32(1) / (np.float32(1) + np.exp(-x_f)))
    if base_fun == "identity":
        return x_f
    return np.zeros_like(x_f)


def symbolic_sum(sym: SymbolicEdges, x: np.ndarray, *, absolute: bool = False) -> np.ndarray:
    """(N, O) float32: each output's sum of its symbolic edges ``c*f(a*x_src + b) + d``, in edge order (of
    their absolute values with ``absolute``)."""
    terms = symbolic_terms(sym.funs, sym.affine, x[:, sym.src])  # float64
    if absolute:
        terms = np.abs(terms)
    out = np.zeros((x.shape[0], sym.out_dim), dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        for e in range(sym.n_edges):
            out[:, sym.dst[e]] += terms[:, e]
        return out.astype(np.float32)


def _bernstein(p: LayerTables, row: np.ndarray, u: np.ndarray) -> np.ndarray:
    """(N, I, O) polynomial values: control points at rows ``row + m``, local coordinate ``u`` (N, I)."""
    B = bernstein_basis(u, p.L - 1)  # (N, I, L)
    v = B[:, :, 0, None] * p.dense[row]
    for m in range(1, p.L):
        v = v + B[:, :, m, None] * p.dense[row + m]
    return v


def eval_layer(p: LayerTables, x: np.ndarray, *, magnitude: bool = False):
    """One layer (float32 (N, I) -> (N, n_outputs)) of the contract, vectorized over the batch.

    With ``magnitude``, also returns the outputs' rounding scale (float64 (N, n_outputs)): the sum of the
    absolute values of the terms summed for each edge sum, carried through the node step
    (``NodeStep.magnitude``). Another summation order moves an output by a few float32 epsilons of it.
    """
    N, I = x.shape
    K, L = p.n_segments, p.L
    interp, boundary, oob = p.options.interp, p.options.boundary, p.options.oob
    with np.errstate(invalid="ignore", over="ignore"):
        nan = np.isnan(x)
        x_s = np.where(nan, p.lo, x)
        x_f = np.clip(x_s, -FLT_MAX, FLT_MAX)
        x_c = np.minimum(np.maximum(x_s, p.lo), p.hi_idx)
        k = (p.knots[None, :, 1:K] <= x_c[:, :, None]).sum(axis=2)  # (N, I) in [0, K-1]
        cols = np.arange(I)[None, :]
        t_k = p.knots[cols, k]
        s_k = p.seg_scale[cols, k]
        if boundary == "closed":
            in_dom = (x_s >= p.lo) & (x_s <= p.hi)
        else:
            in_dom = (x_s >= p.lo) & (x_s < p.hi)
        if interp == "poly":
            row = ((cols * K + k) * L).astype(np.int64)
            u = np.clip((x_c - t_k) * s_k, np.float32(0), np.float32(1))
            if oob == "extrapolate":
                u = np.where(in_dom, u, np.clip((x_f - t_k) * s_k, -U_EXT, U_EXT))
            v = _bernstein(p, row, u)
        else:
            pos = np.clip((x_c - t_k) * s_k, np.float32(0), np.float32(L - 1))
            r0 = np.minimum(np.floor(pos), np.float32(L - 2))
            w = pos - r0
            row = ((cols * K + k) * L + r0.astype(np.int64)).astype(np.int64)
            a = p.dense[row]  # (N, I, O)
            if interp == "linear" or oob == "extrapolate":
                b = p.dense[row + 1]
            if oob == "extrapolate":
                w_ext = np.clip((x_f - t_k) * s_k - r0, -FLT_MAX, FLT_MAX)
                w_lin = np.where(in_dom, w, w_ext)
            else:
                w_lin = w
            if interp == "linear":
                v = a + w_lin[:, :, None] * (b - a)
            else:
                v = np.where((w >= 0.5)[:, :, None], p.dense[row + 1], a)
                if oob == "extrapolate":
                    v = np.where(in_dom[:, :, None], v, a + w_lin[:, :, None] * (b - a))
        if oob == "zero":
            v = np.where(in_dom[:, :, None], v, np.float32(0))
        s = v.sum(axis=1, dtype=np.float32)
        base = base_branch(p.base_fun, x_f)
        s += base @ p.base_weight
        if nan.any():
            poisoned = (nan.astype(np.float32) @ p.active.astype(np.float32)) > 0
            s[poisoned] = np.nan
        if p.symbolic is not None:
            s += symbolic_sum(p.symbolic, x)
        y = s if p.nodes is None else p.nodes.apply(s).astype(np.float32, copy=False)
        if not magnitude:
            return y
        mag = np.abs(v.astype(np.float64)).sum(axis=1) + np.abs(base.astype(np.float64)) @ np.abs(p.base_weight)
        if p.symbolic is not None:
            mag += np.abs(symbolic_sum(p.symbolic, x, absolute=True).astype(np.float64))
        return y, (mag if p.nodes is None else p.nodes.magnitude(s.astype(np.float64), mag))


WORK_BYTES = 256 << 20
"""The batch is evaluated in row blocks whose temporaries (a few (rows, I, O) float32 arrays per layer) stay
below this; rows are independent, so the blocks' results are the rows' results."""


def _row_bytes(p: LayerTables) -> int:
    """Temporaries of ``eval_layer`` per batch row: gathered rows and values (N, I, O), the segment count
    (N, I, K) bools, the Bernstein basis (N, I, L) and per-(row, input) vectors."""
    I, O, K, L = p.in_dim, p.out_dim, p.n_segments, p.L
    return 24 * I * O + I * K + 4 * I * L + 64 * I


class NumpyEvaluator:
    """Evaluate a ``LUTModel`` with the reference semantics (``__call__(x) -> (N, outputs)``).

    The dense tables are checked against the resource budget (``lutkan.budget``; ``max_bytes``) when the
    evaluator is built, the batch's hidden values when it is called; large batches run in row blocks of at most
    ``WORK_BYTES`` of temporaries.
    """

    def __init__(self, model: LUTModel, *, max_bytes: int | None = None):
        self.model = model
        self.max_bytes = max_bytes
        self.tables = model_tables(model, max_bytes=max_bytes, what="the NumPy evaluator's tables")
        self._row = max(_row_bytes(p) for p in self.tables)
        self._width = max(model.width)

    def __call__(self, x: np.ndarray, *, upto: int | None = None) -> np.ndarray:
        m = self.model
        h = check_input(x, m.n_inputs)
        N = h.shape[0]
        budget.check(N * 4 * (3 * self._width + m.n_inputs), f"evaluating a batch of {N} rows (hidden values of "
                     f"width up to {self._width})", limit=self.max_bytes)
        rows = max(1, WORK_BYTES // self._row)
        if N <= rows:
            return self._run(h[:, m.input_id], upto)
        return np.concatenate([self._run(h[a:a + rows, m.input_id], upto) for a in range(0, N, rows)])

    def _run(self, h: np.ndarray, upto: int | None) -> np.ndarray:
        for p in self.tables[:upto]:
            h = eval_layer(p, h)
        return h
