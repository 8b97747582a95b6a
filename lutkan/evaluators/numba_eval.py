"""Numba kernel of the LUT contract (the fast path; the onnxruntime plugin runs it too).

Same float32 arithmetic, in the same order, as ``lutkan.evaluators.numpy_eval`` (the definition
of correct), so results agree to float32 rounding (summation order and the exp of the SiLU
are the only differences). Layout: the dequantized table of a layer is dense ``(I*K*L, O)``,
row ``(i*K + k)*L + r``, so the inner loop over outputs is contiguous. Per (sample, input)
the segment is found on that input's own knots (right-continuous; a branch-free count for K <= 32,
binary search above), once, and shared by all outputs. ``network_kernel`` runs a whole model in one
call (no Python between layers: the batch-1 latency is mostly per-call overhead). Single-threaded by
design (``nogil``: callers may run it from several threads on separate outputs).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from lutkan import budget
from lutkan.artifact import LUTModel
from lutkan.contract import FLT_MAX, U_EXT
from lutkan.evaluators.inputs import check_input
from lutkan.evaluators.node_kernel import apply_nodes, combine_kernel
from lutkan.evaluators.symbolic_kernel import SymbolicKernel, symbolic_kernel
from lutkan.tables import LayerTables, model_tables

INTERP_CODES = {"linear": 0, "nearest": 1, "poly": 2}
OOB_CODES = {"clip": 0, "zero": 1, "extrapolate": 2}
BASE_CODES = {"silu": 0, "identity": 1, "zero": 2}

_F0 = np.float32(0.0)
_F1 = np.float32(1.0)
_FHALF = np.float32(0.5)
_FMAX = np.float32(FLT_MAX)
_UEXT = np.float32(U_EXT)


@numba.njit(cache=True, nogil=True)
def _binomial(n, m):
    c = 1
    for q in range(m):
        c = c * (n - q) // (q + 1)
    return c


@numba.njit(cache=True, nogil=True, fastmath=False)
def _bernstein(u, binom, out):
    """out[m] = binom[m] * (u^m * (1-u)^(n-m)), n = len(out) - 1: ``lutkan.tables.bernstein_basis``'s order."""
    n = out.shape[0] - 1
    v = _F1 - u
    for m in range(n + 1):
        a = _F1
        for _ in range(m):
            a = a * u
        b = _F1
        for _ in range(n - m):
            b = b * v
        out[m] = binom[m] * (a * b)


@numba.njit(cache=True, nogil=True, fastmath=False)
def lut_layer_kernel(x, knots, bounds, seg_scale, dense, base_w, edge_mask, L, interp, closed, oob, base, out, fs, ints):
    """out[n, j] = sum_i LUT_ij(x[n, i]) + base_w[i, j]*base(x[n, i]) with NaN poisoning.

    ``interp``: 0 linear, 1 nearest, 2 poly (``dense`` rows hold L Bernstein control points per segment;
    the local coordinate u is kept in ``wl`` and the basis is computed per sample in pass 3).

    x (N, I) f32; knots (I, K+1); bounds (3, I) = lo, hi, hi_idx; seg_scale (I, K); dense
    (I*K*L, O); base_w (I, O); edge_mask (I, O) f32; scratch fs (4, >=N) f32 and ints (3, >=N) int64. Loops input-major (i outer, samples inner) so the
    rows of one input's table slab stay in cache while the whole batch is processed. Per input, three
    passes over the batch: (1) clamp and segment count (a compare-and-add sweep per knot, vectorized
    over samples; a short loop per row below 16 rows); (2) branch-free per-sample row, step, weight, table multiplier (1, or 0 for NaN /
    ``zero`` OOB) and base value; (3) the row gathers and the contiguous update over outputs. Every
    output gets the same float32 operations in the same order as the single-pass form (a multiplier of
    1 is exact; ``nearest`` reads one row with weight 0), so results are bitwise those of that form.
    (A variant gathering int8 codes and dequantizing per row was measured bit-identical but not faster.)
    """
    N, I = x.shape
    K = knots.shape[1] - 1
    O = dense.shape[1]
    poly = interp == 2
    lm1 = _F1 if poly else np.float32(L - 1)
    lm2 = L - 2
    ulim = _UEXT if poly else _FMAX
    nb = L if poly else 1
    bas = np.empty(nb, np.float32)  # poly: Bernstein basis of one sample
    binom = np.empty(nb, np.float32)
    for m in range(nb):
        binom[m] = np.float32(_binomial(L - 1, m))
    for n in range(N):
        for j in range(O):
            out[n, j] = _F0
    any_nan = False
    xc, wl, tm, bvs = fs[0], fs[1], fs[2], fs[3]
    seg, row, step = ints[0], ints[1], ints[2]
    line = interp == 0
    for i in range(I):
        lo = bounds[0, i]
        hi = bounds[1, i]
        hix = bounds[2, i]
        bw = base_w[i]
        kn = knots[i]
        ss = seg_scale[i]
        xr = x[:, i]
        # (1) clamp into [lo, hi_idx] (NaN -> lo; its outputs are poisoned below) and find the segment.
        for n in range(N):
            v = min(max(xr[n], lo), hix)
            xc[n] = v if v == v else lo
            seg[n] = 0
        if K <= 32 and N < 16:  # branch-free count; few rows: one short loop per row
            for n in range(N):
                c = xc[n]
                k = 0
                for m in range(1, K):
                    k += kn[m] <= c
                seg[n] = k
        elif K <= 32:  # branch-free count, vectorized over samples
            for m in range(1, K):
                km = kn[m]
                for n in range(N):
                    seg[n] += km <= xc[n]
        else:
            for n in range(N):
                a = 1
                b = K
                c = xc[n]
                while a < b:
                    mid = (a + b) >> 1
                    if kn[mid] <= c:
                        a = mid + 1
                    else:
                        b = mid
                seg[n] = a - 1
        # (2) per-sample interpolation parameters, as selects.
        rbase = i * K * L
        for n in range(N):
            xv = xr[n]
            xf = min(max(xv, -_FMAX), _FMAX)
            k = seg[n]
            tk = kn[k]
            sk = ss[k]
            pos = min(max((xc[n] - tk) * sk, _F0), lm1)
            r0 = 0 if poly else min(int(pos), lm2)  # pos >= 0: truncation is floor
            r0f = np.float32(r0)
            w = pos - r0f
            if closed:
                in_dom = (xv >= lo) & (xv <= hi)
            else:
                in_dom = (xv >= lo) & (xv < hi)
            ext = (not in_dom) & (oob == 2) & (xv == xv)  # NaN: weight stays finite, multiplier 0
            wext = min(max((xf - tk) * sk - r0f, -ulim), ulim)
            lin = line | ext | poly
            up = (not lin) & (w >= _FHALF)
            wl[n] = wext if ext else (w if (line | poly) else _F0)
            row[n] = rbase + k * L + r0 + up
            step[n] = lin
            tm[n] = _F1 if (in_dom | (oob != 1)) & (xv == xv) else _F0
        for n in range(N):
            xv = xr[n]
            if xv != xv:
                any_nan = True
                bvs[n] = _F0
            else:
                xf = min(max(xv, -_FMAX), _FMAX)
                if base == 0:
                    bvs[n] = xf * (_F1 / (_F1 + np.float32(math.exp(-xf))))
                elif base == 1:
                    bvs[n] = xf
                else:
                    bvs[n] = _F0
        # (3) gather two rows (one for nearest; L for poly) and update all outputs.
        if poly:  # L control-point rows per sample, each weighted by its basis value (contiguous over outputs)
            for n in range(N):
                _bernstein(wl[n], binom, bas)
                r = row[n]
                t = tm[n]
                bv = bvs[n]
                o = out[n]
                c0 = t * bas[0]
                d0 = dense[r]
                for j in range(O):
                    o[j] += c0 * d0[j] + bw[j] * bv
                for m in range(1, L):
                    cm = t * bas[m]
                    dm = dense[r + m]
                    for j in range(O):
                        o[j] += cm * dm[j]
            continue
        for n in range(N):
            r = row[n]
            t0 = dense[r]
            t1 = dense[r + step[n]]
            a = wl[n]
            t = tm[n]
            bv = bvs[n]
            o = out[n]
            for j in range(O):
                o[j] += t * (t0[j] + a * (t1[j] - t0[j])) + bw[j] * bv
    if any_nan:
        for n in range(N):
            for i in range(I):
                if x[n, i] != x[n, i]:
                    for j in range(O):
                        if edge_mask[i, j] != _F0:
                            out[n, j] = np.float32(np.nan)


class EdgeSumKernel:
    """The LUTKanEdge op itself (edge sums of one layer, no node step) over a ``LayerTables``:
    ``EdgeSumKernel(tables)(x) -> (N, O)`` float32. Used by ``NumbaEvaluator``, the onnxruntime plugin and
    benchmarks; never raises on float32 input of the right width (callers validate shapes/dtypes first)."""

    def __init__(self, tables: LayerTables, arrays: dict[str, np.ndarray] | None = None):
        """``arrays``: views of the edge arrays to use instead of ``tables``' own (``pack_network``)."""
        o = tables.options
        a = arrays if arrays is not None else {name: getattr(tables, name) for name in _EDGE_ARRAYS}
        self.knots, self.bounds, self.seg_scale = a["knots"], a["bounds"], a["seg_scale"]
        self.dense, self.base_weight, self.edge_mask = a["dense"], a["base_weight"], a["edge_mask"]
        self.in_dim, self.out_dim = tables.in_dim, tables.out_dim
        self.flags = (o.L, INTERP_CODES[o.interp], o.boundary == "closed", OOB_CODES[o.oob], BASE_CODES[tables.base_fun])

    def __call__(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        if out is None:
            out = np.empty((x.shape[0], self.out_dim), dtype=np.float32)
        n = x.shape[0]
        lut_layer_kernel(x, self.knots, self.bounds, self.seg_scale, self.dense, self.base_weight, self.edge_mask,
                         *self.flags, out, np.empty((4, n), np.float32), np.empty((3, n), np.int64))
        return out


# ``network_kernel``'s ``meta`` array: a 2-entry header (n_layers, permute_input), then one record of
# ``_R`` int64 per layer, field f of layer l at ``2 + l*_R + f``: shapes, contract flags, offsets into
# ``params`` (edge arrays at M_OFF_EDGE, node vectors at M_OFF_NODES), ``dparams`` (float64 symbolic affines at
# M_OFF_SYM) and
# into ``ints`` (multiplication groups at M_OFF_GROUPS; symbolic src, dst, codes at M_OFF_SYM_INTS).
_META = ("I", "O", "K", "L", "interp", "closed", "oob", "base", "off_edge", "has_nodes", "n_sum", "n_nodes",
         "n_groups", "off_groups", "off_nodes", "n_sym", "off_sym", "off_sym_ints")
_R = len(_META)
(M_I, M_O, M_K, M_L, M_INTERP, M_CLOSED, M_OOB, M_BASE, M_OFF_EDGE, M_HAS_NODES, M_N_SUM, M_N_NODES, M_N_GROUPS,
 M_OFF_GROUPS, M_OFF_NODES, M_N_SYM, M_OFF_SYM, M_OFF_SYM_INTS) = range(_R)
_EDGE_ARRAYS = ("knots", "bounds", "seg_scale", "dense", "base_weight", "edge_mask")  # order in ``params``


@numba.njit(cache=True, nogil=True, fastmath=False)
def _layer(h, params, meta, ints, dparams, l, fs, scratch):
    """One layer of ``network_kernel``: edge sums (``lut_layer_kernel``), then the node step if any."""
    m = meta[2 + l * _R: 2 + (l + 1) * _R]
    I, O, K, L = m[M_I], m[M_O], m[M_K], m[M_L]
    N = h.shape[0]
    o = m[M_OFF_EDGE]
    knots = params[o:o + I * (K + 1)].reshape((I, K + 1))
    o += I * (K + 1)
    bounds = params[o:o + 3 * I].reshape((3, I))
    o += 3 * I
    seg_scale = params[o:o + I * K].reshape((I, K))
    o += I * K
    dense = params[o:o + I * K * L * O].reshape((I * K * L, O))
    o += I * K * L * O
    base_w = params[o:o + I * O].reshape((I, O))
    o += I * O
    edge_mask = params[o:o + I * O].reshape((I, O))
    s = np.empty((N, O), np.float32)
    lut_layer_kernel(h, knots, bounds, seg_scale, dense, base_w, edge_mask, L, m[M_INTERP], m[M_CLOSED] != 0,
                     m[M_OOB], m[M_BASE], s, fs, scratch)
    S = m[M_N_SYM]
    if S > 0:
        q, f = m[M_OFF_SYM_INTS], m[M_OFF_SYM]
        symbolic_kernel(h, ints[q:q + S], ints[q + S:q + 2 * S], ints[q + 2 * S:q + 3 * S],
                        dparams[f:f + 4 * S].reshape((S, 4)), s, np.empty(O, np.float64))
    if m[M_HAS_NODES] == 0:
        return s
    n_sum, n_nodes, og, on = m[M_N_SUM], m[M_N_NODES], m[M_OFF_GROUPS], m[M_OFF_NODES]
    out = np.empty((N, n_nodes), np.float32)
    combine_kernel(s, params[on:on + O], params[on + O:on + 2 * O], n_sum, ints[og:og + m[M_N_GROUPS]],
                   params[on + 2 * O:on + 2 * O + n_nodes], params[on + 2 * O + n_nodes:on + 2 * O + 2 * n_nodes], out)
    return out


@numba.njit(cache=True, nogil=True, fastmath=False)
def network_kernel(x, input_id, params, meta, ints, dparams):
    """The whole network in one call: exactly the per-layer kernels of ``NumbaEvaluator`` in the same
    order (bit-identical), without a Python round trip per layer. ``x`` (N, n_inputs) float32 C-contiguous;
    ``params``/``meta``/``ints``/``dparams`` are built by ``pack_network`` (see ``_META``)."""
    N = x.shape[0]
    fs = np.empty((4, N), np.float32)  # per-sample scratch shared by all layers
    scratch = np.empty((3, N), np.int64)
    if meta[1] != 0:
        I0 = input_id.shape[0]
        x0 = np.empty((N, I0), np.float32)
        for n in range(N):
            for i in range(I0):
                x0[n, i] = x[n, input_id[i]]
        h = _layer(x0, params, meta, ints, dparams, 0, fs, scratch)
    else:
        h = _layer(x, params, meta, ints, dparams, 0, fs, scratch)
    for l in range(1, meta[0]):
        h = _layer(h, params, meta, ints, dparams, l, fs, scratch)
    return h


def pack_network(tables: tuple[LayerTables, ...], permute_input: bool):
    """``network_kernel``'s flat buffers ``(params float32, meta int64, ints int64, dparams float64)`` and, per
    layer, the
    views of ``params`` holding its edge arrays (so the dequantized tables exist once)."""
    chunks: list[np.ndarray] = []
    placed: list[list[tuple[str, int, tuple]]] = []
    meta = [len(tables), int(permute_input)]
    ints: list[int] = []
    dchunks: list[np.ndarray] = []
    doff = 0
    off = 0
    for t in tables:
        o = t.options
        rec = dict(I=t.in_dim, O=t.out_dim, K=t.n_segments, L=o.L, interp=INTERP_CODES[o.interp],
                   closed=int(o.boundary == "closed"), oob=OOB_CODES[o.oob], base=BASE_CODES[t.base_fun], off_edge=off,
                   has_nodes=0, n_sum=0, n_nodes=0, n_groups=0, off_groups=0, off_nodes=0, n_sym=0, off_sym=0,
                   off_sym_ints=0)
        placed.append([])
        for name in _EDGE_ARRAYS:
            a = t.dequantized() if name == "dense" else getattr(t, name)  # not cached on t: one copy
            placed[-1].append((name, off, a.shape))
            chunks.append(a.ravel())
            off += a.size
        if t.nodes is not None:
            st = t.nodes
            rec.update(has_nodes=1, n_sum=st.n_sum, n_nodes=st.n_nodes, n_groups=len(st.mult_groups),
                       off_groups=len(ints), off_nodes=off)
            ints += list(st.mult_groups)
            for a in (st.subnode_scale, st.subnode_bias, st.node_scale, st.node_bias):
                chunks.append(np.ravel(a))
                off += a.size
        if t.symbolic is not None:
            sy = t.symbolic
            rec.update(n_sym=sy.n_edges, off_sym=doff, off_sym_ints=len(ints))
            ints += sy.src.tolist() + sy.dst.tolist() + sy.codes.tolist()
            dchunks.append(np.ravel(sy.affine))
            doff += sy.affine.size
        meta += [int(rec[k]) for k in _META]
    params = np.ascontiguousarray(np.concatenate(chunks), dtype=np.float32)
    views = [{name: params[o:o + int(np.prod(shape))].reshape(shape) for name, o, shape in layer} for layer in placed]
    dparams = np.ascontiguousarray(np.concatenate(dchunks) if dchunks else np.zeros(1), dtype=np.float64)
    return params, np.asarray(meta, dtype=np.int64), np.asarray(ints if ints else [0], dtype=np.int64), dparams, views


class NumbaEvaluator:
    """Evaluate a ``LUTModel`` with the Numba kernel (``__call__(x) -> (N, outputs)``); thread-safe.

    A full forward is one call of ``network_kernel`` over one flat float32 buffer holding every layer's
    arrays (``pack_network``); ``upto`` (the first layers only) and ``forward_layers`` run the same kernels
    layer by layer from Python (``EdgeSumKernel`` + the node kernel), bitwise equal.
    """

    def __init__(self, model: LUTModel, *, max_bytes: int | None = None):
        """The stored tables, their dequantized copy in the packed buffer and its transient per-layer chunks are
        checked against the resource budget first (``lutkan.budget``; ``max_bytes``)."""
        self.model = model
        self.max_bytes = max_bytes
        self.tables = model_tables(model, max_bytes=max_bytes, extra_per_cell=4,
                                   what="the Numba evaluator's tables (stored, packed and transient copies)")
        self._width = max(layer.out_dim + layer.n_nodes for layer in model.layers)
        self._input_id = np.asarray(model.input_id, dtype=np.int64)
        self._identity_input = bool(np.array_equal(self._input_id, np.arange(model.n_inputs)))
        self._params, self._meta, self._ints, self._dparams, views = pack_network(self.tables,
                                                                                  not self._identity_input)
        self.kernels = [EdgeSumKernel(t, v) for t, v in zip(self.tables, views, strict=True)]
        self.symbolic = [None if t.symbolic is None else SymbolicKernel(t.symbolic) for t in self.tables]

    def __call__(self, x: np.ndarray, *, upto: int | None = None) -> np.ndarray:
        """Outputs of the whole model (or of its first ``upto`` layers) for ``x`` (N, n_inputs)."""
        h = check_input(x, self.model.n_inputs)
        N = h.shape[0]
        budget.check(N * (4 * (self._width + self.model.n_inputs) + 56), f"evaluating a batch of {N} rows (hidden "
                     f"values of width up to {self._width})", limit=self.max_bytes)
        if upto is None or upto >= len(self.kernels):
            return network_kernel(h, self._input_id, self._params, self._meta, self._ints, self._dparams)
        return self.forward_layers(x, upto)

    def forward_layers(self, x: np.ndarray, upto: int | None = None) -> np.ndarray:
        """The same kernels called one layer at a time from Python (bitwise equal to ``__call__``)."""
        h = check_input(x, self.model.n_inputs)
        if not self._identity_input:
            h = np.ascontiguousarray(h[:, self._input_id])
        for kern, sym, t in zip(self.kernels[:upto], self.symbolic[:upto], self.tables[:upto], strict=True):
            s = kern(h)
            if sym is not None:
                sym.add_to(h, s)
            h = s if t.nodes is None else apply_nodes(t.nodes, s)
        return h
