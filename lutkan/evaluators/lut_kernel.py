"""The Numba kernel of one layer's edge sums (``LUTKanEdge``, ``docs/contract.md`` §3 steps 1-7).

``lut_layer_kernel(x, knots, bounds, seg_scale, dense, base_w, edge_mask, L, interp, closed, oob, base, out)``
computes ``out[n, j] = sum_i LUT_ij(x[n, i]) + base_w[i, j] * base(x[n, i])`` with NaN poisoning, in the same
float32 operations as ``lutkan.evaluators.numpy_eval`` (the definition of correct). The dequantized table of
a layer is dense ``(I*K*L, O)``, row ``(i*K + k)*L + r``, so the update over outputs is contiguous.

Work is done per tile of ``TILE_ROWS`` samples, per input, in passes over the tile that LLVM vectorizes
(each pass is a small function, so that its alias checks stay few):

1. ``_segments``: clamp into ``[lo, hi_idx]`` (NaN -> lo) and find the segment (right-continuous): a
   compare-and-select sweep per knot for K <= 32 that also picks ``t_k`` and the segment scale (no gathers),
   a binary search above;
2. ``_params``: branch-free row, step to the right sample (0/1), weight, table multiplier (1, or 0 for NaN
   and ``zero`` out of domain) and the float32-clipped input;
3. ``_base``: the base branch; SiLU ``x * (1 / (1 + exp(-x)))`` with a polynomial ``exp`` (Cephes ``expf``,
   within ``EXP_MAX_ULP`` ulp of the correctly rounded value, checked exhaustively) so that the pass vectorizes;
4. ``_accumulate4``: per sample, the terms of 4 inputs added to the output row in input order (the row is
   read and written once per 4 inputs; the same additions in the same order as one input at a time), in
   blocks of 16 outputs computed into a stack buffer (no runtime alias checks).

A batch (or last tile) of fewer than ``SMALL_ROWS`` rows runs one sample at a time (``_small_rows``) with the
same operations in the same order: a row's result never depends on the batch it came in. Helpers take whole
arrays and indices (a view made per input costs two atomic reference-count updates).

Single-threaded and ``nogil``: callers run disjoint row blocks from several threads
(``NumbaEvaluator(threads=...)``). The 0.1 kernel is kept as ``lut_kernel_v1`` (a bench baseline).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from lutkan.contract import FLT_MAX, U_EXT

__all__ = ["TILE_ROWS", "EXP_MAX_ULP", "EXP_HI", "EXP_LO", "exp32", "lut_layer_kernel", "max_exp_ulp", "silu"]

JIT = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy"}
"""No fast-math (the contract's float32 operations, in order); ``error_model="numpy"``: float division
without a zero check, so loops with a division vectorize (x/0 is IEEE inf/NaN, as in NumPy)."""

TILE_ROWS = 512
"""Samples per tile: the tile's scratch and output rows stay in cache while every input is processed."""
GROUP = 4
"""Inputs whose terms are added to a sample's output row in one pass (``_accumulate4``)."""
SMALL_ROWS = 16
"""Batches (and last tiles) below this many rows run one sample at a time (``_small_rows``): no per-input passes,
whose fixed costs dominate a few rows."""
BLOCK = 16
"""Outputs per block of the accumulation (one 512-bit vector of float32)."""
EXP_MAX_ULP = 1
"""Largest distance, in float32 ulps, of the polynomial exp from the correctly rounded exp, over every float32
in [EXP_LO, EXP_HI] (exhaustive check: ``python -m lutkan.evaluators.lut_kernel``; the tests check a sample)."""

_F0 = np.float32(0.0)
_F1 = np.float32(1.0)
_FHALF = np.float32(0.5)
_FMAX = np.float32(FLT_MAX)
_UEXT = np.float32(U_EXT)
EXP_HI = np.float32(88.72283)
"""Largest float32 whose exp is finite in float32 (ln FLT_MAX = 88.7228391...)."""
EXP_LO = np.float32(-80.0)
"""Below it the polynomial exp is held at exp(EXP_LO) ~ 1.8e-35: 1 + exp(z) == 1 in float32 from z < -17 on."""
_EXP_HI = EXP_HI
_EXP_LO = EXP_LO
_LOG2E = np.float32(1.4426950408889634)
_LN2_HI = np.float32(0.693359375)
_LN2_LO = np.float32(-2.12194440e-4)
_P0 = np.float32(1.9875691500e-4)
_P1 = np.float32(1.3981999507e-3)
_P2 = np.float32(8.3334519073e-3)
_P3 = np.float32(4.1665795894e-2)
_P4 = np.float32(1.6666665459e-1)
_P5 = np.float32(5.0000001201e-1)


# The helpers below take whole arrays and indices, never views: a view made in the per-input loop costs two
# atomic reference-count updates, which dominated the batch-1 latency.

@numba.njit(**JIT)
def _exp_parts(z, pp, bits, nt):
    """exp(z[n]) = pp[n] * 2 * (bits[n] as a float32): Cephes expf on z clipped to [EXP_LO, EXP_HI]; the power
    of two is split (2**(k-1) * 2) so that k = 128 (z near ln(FLT_MAX)) stays representable."""
    for n in range(nt):
        zc = min(max(z[n], _EXP_LO), _EXP_HI)
        kf = np.floor(zc * _LOG2E + _FHALF)
        r = zc - kf * _LN2_HI - kf * _LN2_LO
        p = ((((_P0 * r + _P1) * r + _P2) * r + _P3) * r + _P4) * r + _P5
        pp[n] = p * (r * r) + r + _F1
        bits[n] = (np.int32(kf) + np.int32(126)) << np.int32(23)


@numba.njit(**JIT)
def _exp_finish(z, pp, scale, e, nt):
    """e = exp(z) from ``_exp_parts`` (``scale``: its ``bits`` viewed as float32): +inf above EXP_HI."""
    for n in range(nt):
        v = (pp[n] * scale[n]) * np.float32(2.0)
        e[n] = np.float32(np.inf) if z[n] > _EXP_HI else v


@numba.njit(**JIT)
def exp32(z):
    """The kernel's exp of a float32 vector (tests and docs): within ``EXP_MAX_ULP`` of the correctly rounded
    value on [EXP_LO, EXP_HI], +inf above, exp(EXP_LO) below (where 1 + exp(z) == 1 in float32)."""
    n = z.shape[0]
    pp = np.empty(n, np.float32)
    bits = np.empty(n, np.int32)
    e = np.empty(n, np.float32)
    _exp_parts(z, pp, bits, n)
    _exp_finish(z, pp, bits.view(np.float32), e, n)
    return e


@numba.njit(**JIT)
def _base(nt, xf, base, gf, q, z, pp, bits, scale):
    """gf[2, q] = base(xf): 0 silu = xf * (1 / (1 + exp(-xf))), 1 identity, 2 zero (``z``, ``pp``, ``bits``
    and its float32 view ``scale``: scratch)."""
    if base == 0:
        for n in range(nt):
            z[n] = -xf[n]
        _exp_parts(z, pp, bits, nt)
        _exp_finish(z, pp, scale, pp, nt)
        for n in range(nt):
            gf[2, q, n] = xf[n] * (_F1 / (_F1 + pp[n]))
    elif base == 1:
        for n in range(nt):
            gf[2, q, n] = xf[n]
    else:
        for n in range(nt):
            gf[2, q, n] = _F0


@numba.njit(**JIT)
def silu(x):
    """The kernel's SiLU of a float32 vector (tests and the bench)."""
    n = x.shape[0]
    gf = np.empty((3, 1, n), np.float32)
    bits = np.empty(n, np.int32)
    _base(n, x, 0, gf, 0, np.empty(n, np.float32), np.empty(n, np.float32), bits, bits.view(np.float32))
    return gf[2, 0].copy()


@numba.njit(**JIT)
def _transpose(x, n0, nt, xt):
    """xt[:, :nt] = x[n0:n0+nt].T, in 16 x 16 blocks."""
    I = x.shape[1]
    for a in range(0, nt, 16):
        for b in range(0, I, 16):
            for n in range(a, min(a + 16, nt)):
                for i in range(b, min(b + 16, I)):
                    xt[i, n] = x[n0 + n, i]


@numba.njit(**JIT)
def _segments(xt, i, nt, knots, seg_scale, lo, hix, xc, seg, tk, sk):
    """For input i's samples xt[i, :nt]: xc = clamp into [lo, hix] (NaN -> lo); seg = #{m in 1..K-1: t_m <= xc};
    tk = t_seg, sk = seg_scale[i, seg]."""
    K = knots.shape[1] - 1
    t0 = knots[i, 0]
    s0 = seg_scale[i, 0]
    for n in range(nt):
        v = xt[i, n]
        c = min(max(v, lo), hix)
        xc[n] = c if v == v else lo
        seg[n] = 0
        tk[n] = t0
        sk[n] = s0
    if K <= 32:  # a compare-and-select sweep per knot, vectorized over the tile (knots are nondecreasing:
        for m in range(1, K):  # the last knot <= x is t_k)
            km = knots[i, m]
            sm = seg_scale[i, m]
            for n in range(nt):
                le = km <= xc[n]
                seg[n] += np.int64(le)
                tk[n] = km if le else tk[n]
                sk[n] = sm if le else sk[n]
    else:
        for n in range(nt):
            a = 1
            b = K
            c = xc[n]
            while a < b:
                mid = (a + b) >> 1
                if knots[i, mid] <= c:
                    a = mid + 1
                else:
                    b = mid
            k = a - 1
            seg[n] = k
            tk[n] = knots[i, k]
            sk[n] = seg_scale[i, k]


@numba.njit(**JIT)
def _params(nt, xt, i, xc, seg, tk, sk, lo, hd, lm1, lm2f, ulim, ext_on, keep_out, weighted, rbase, L,
            gf, gi, q, xf):
    """Per sample of input i, into group member q: gi[0] the row of the left sample (poly: the first control
    point), gi[1] the step to the right one (0/1), gf[0] the weight (linear/extrapolate: w; poly: u; nearest:
    0), gf[1] the multiplier; and ``xf`` = clip(x, +-FLT_MAX) (0 for NaN). ``hd`` is the last x in the domain
    (hi, or the float below it for half_open)."""
    for n in range(nt):
        xv = xt[i, n]
        ok = xv == xv
        xfv = min(max(xv, -_FMAX), _FMAX)
        t = tk[n]
        s = sk[n]
        pos = min(max((xc[n] - t) * s, _F0), lm1)
        r0f = min(np.floor(pos), lm2f)
        w = pos - r0f
        in_dom = (xv >= lo) & (xv <= hd)
        ext = (not in_dom) & ext_on & ok
        wext = min(max((xfv - t) * s - r0f, -ulim), ulim)
        lin = weighted | ext
        up = (not lin) & (w >= _FHALF)
        gf[0, q, n] = wext if ext else (w if weighted else _F0)
        gi[0, q, n] = rbase + seg[n] * L + np.int64(r0f) + np.int64(up)
        gi[1, q, n] = np.int64(lin)
        gf[1, q, n] = _F1 if (in_dom | keep_out) & ok else _F0
        xf[n] = xfv if ok else _F0


@intrinsic
def _stack_block(typingctx, dummy):
    """A pointer to ``BLOCK`` float32 on the stack. Stores into it provably alias no array, so the loops that fill
    it need no runtime alias checks (which cost more than the work at O = 16 or 32)."""
    def codegen(context, builder, signature, args):
        return cgutils.alloca_once(builder, context.get_value_type(types.float32),
                                   size=context.get_constant(types.intp, BLOCK))
    return types.CPointer(types.float32)(dummy), codegen


@numba.njit(**JIT)
def _accumulate4(out, n0, nt, dense, bw, i, gi, gf):
    """out[n0+n, :] += the terms of inputs i..i+3 (group members 0..3), in order, for every sample of the tile:
    outputs in blocks of ``BLOCK`` (one vector: a fixed trip count, no remainder loop), computed into a stack
    block and copied to ``out``; the last O % BLOCK outputs one by one."""
    O = dense.shape[1]
    OB = O - O % BLOCK
    buf = numba.carray(_stack_block(0), (BLOCK,))
    for n in range(nt):
        ra = gi[0, 0, n]
        rb = gi[0, 1, n]
        rc = gi[0, 2, n]
        rd = gi[0, 3, n]
        ra1 = ra + gi[1, 0, n]
        rb1 = rb + gi[1, 1, n]
        rc1 = rc + gi[1, 2, n]
        rd1 = rd + gi[1, 3, n]
        aa = gf[0, 0, n]
        ab = gf[0, 1, n]
        ac = gf[0, 2, n]
        ad = gf[0, 3, n]
        ta = gf[1, 0, n]
        tb = gf[1, 1, n]
        tc = gf[1, 2, n]
        td = gf[1, 3, n]
        ba = gf[2, 0, n]
        bb = gf[2, 1, n]
        bc = gf[2, 2, n]
        bd = gf[2, 3, n]
        o = n0 + n
        for j0 in range(0, OB, BLOCK):
            for jj in range(BLOCK):
                j = j0 + jj
                acc = out[o, j]
                d = dense[ra, j]
                acc += ta * (d + aa * (dense[ra1, j] - d)) + bw[i, j] * ba
                d = dense[rb, j]
                acc += tb * (d + ab * (dense[rb1, j] - d)) + bw[i + 1, j] * bb
                d = dense[rc, j]
                acc += tc * (d + ac * (dense[rc1, j] - d)) + bw[i + 2, j] * bc
                d = dense[rd, j]
                acc += td * (d + ad * (dense[rd1, j] - d)) + bw[i + 3, j] * bd
                buf[jj] = acc
            for jj in range(BLOCK):
                out[o, j0 + jj] = buf[jj]
        for j in range(OB, O):
            acc = out[o, j]
            d = dense[ra, j]
            acc += ta * (d + aa * (dense[ra1, j] - d)) + bw[i, j] * ba
            d = dense[rb, j]
            acc += tb * (d + ab * (dense[rb1, j] - d)) + bw[i + 1, j] * bb
            d = dense[rc, j]
            acc += tc * (d + ac * (dense[rc1, j] - d)) + bw[i + 2, j] * bc
            d = dense[rd, j]
            acc += td * (d + ad * (dense[rd1, j] - d)) + bw[i + 3, j] * bd
            out[o, j] = acc


@numba.njit(**JIT)
def _accumulate1(out, n0, nt, dense, bw, i, gi, gf, q):
    """out[n0+n, :] += the terms of input i (group member q) for every sample of the tile (blocks as
    ``_accumulate4``)."""
    O = dense.shape[1]
    OB = O - O % BLOCK
    buf = numba.carray(_stack_block(0), (BLOCK,))
    for n in range(nt):
        r = gi[0, q, n]
        r1 = r + gi[1, q, n]
        a = gf[0, q, n]
        t = gf[1, q, n]
        b = gf[2, q, n]
        o = n0 + n
        for j0 in range(0, OB, BLOCK):
            for jj in range(BLOCK):
                j = j0 + jj
                d = dense[r, j]
                buf[jj] = out[o, j] + (t * (d + a * (dense[r1, j] - d)) + bw[i, j] * b)
            for jj in range(BLOCK):
                out[o, j0 + jj] = buf[jj]
        for j in range(OB, O):
            d = dense[r, j]
            out[o, j] += t * (d + a * (dense[r1, j] - d)) + bw[i, j] * b


@numba.njit(**JIT)
def _accumulate_poly(out, n0, nt, dense, bw, i, gi, gf, binom, bas):
    """out[n0+n, :] += t * sum_m B_m(u) * C[row + m] + bw * b (group member 0): the L control-point rows weighted
    by the Bernstein basis of u (``lutkan.tables.bernstein_basis``'s order: powers by repeated multiplication)."""
    O = dense.shape[1]
    L = binom.shape[0]
    deg = L - 1
    for n in range(nt):
        u = gf[0, 0, n]
        v = _F1 - u
        for m in range(L):
            a = _F1
            for _ in range(m):
                a = a * u
            b = _F1
            for _ in range(deg - m):
                b = b * v
            bas[m] = binom[m] * (a * b)
        r = gi[0, 0, n]
        t = gf[1, 0, n]
        b0 = gf[2, 0, n]
        o = n0 + n
        c0 = t * bas[0]
        for j in range(O):
            out[o, j] += c0 * dense[r, j] + bw[i, j] * b0
        for m in range(1, L):
            cm = t * bas[m]
            for j in range(O):
                out[o, j] += cm * dense[r + m, j]


@numba.njit(**JIT)
def _exp_scalar(z):
    """``_exp_parts`` + ``_exp_finish`` for one value, bit for bit (2**(k-1) is exact in float32: ldexp)."""
    zc = min(max(z, _EXP_LO), _EXP_HI)
    kf = np.floor(zc * _LOG2E + _FHALF)
    r = zc - kf * _LN2_HI - kf * _LN2_LO
    p = ((((_P0 * r + _P1) * r + _P2) * r + _P3) * r + _P4) * r + _P5
    pp = p * (r * r) + r + _F1
    v = (pp * np.float32(math.ldexp(1.0, int(kf) - 1))) * np.float32(2.0)
    return np.float32(np.inf) if z > _EXP_HI else v


@numba.njit(**JIT)
def _small_rows(x, n0, nt, knots, bounds, seg_scale, dense, bw, L, interp, closed, oob, base, out, binom, bas):
    """Rows n0..n0+nt-1, one sample at a time with no scratch and no helper calls (a batch below
    ``SMALL_ROWS``): the passes' operations, in their order, so results are bit for bit those of the tiles."""
    I = x.shape[1]
    K = knots.shape[1] - 1
    O = dense.shape[1]
    poly = interp == 2
    weighted = interp != 1
    lm1 = _F1 if poly else np.float32(L - 1)
    lm2f = _F0 if poly else np.float32(L - 2)
    ulim = _UEXT if poly else _FMAX
    ext_on = oob == 2
    keep_out = oob != 1
    for n in range(n0, n0 + nt):
        for j in range(O):
            out[n, j] = _F0
        for i in range(I):
            lo = bounds[0, i]
            hi = bounds[1, i]
            hd = hi if closed else np.nextafter(hi, np.float32(-np.inf))
            xv = x[n, i]
            ok = xv == xv
            c = min(max(xv, lo), bounds[2, i])
            c = c if ok else lo
            if K <= 32:
                k = 0
                for m in range(1, K):
                    k += knots[i, m] <= c
            else:
                a = 1
                b = K
                while a < b:
                    mid = (a + b) >> 1
                    if knots[i, mid] <= c:
                        a = mid + 1
                    else:
                        b = mid
                k = a - 1
            t = knots[i, k]
            sc = seg_scale[i, k]
            xfv = min(max(xv, -_FMAX), _FMAX)
            pos = min(max((c - t) * sc, _F0), lm1)
            r0f = min(np.floor(pos), lm2f)
            w = pos - r0f
            in_dom = (xv >= lo) & (xv <= hd)
            ext = (not in_dom) & ext_on & ok
            wext = min(max((xfv - t) * sc - r0f, -ulim), ulim)
            lin = weighted | ext
            up = (not lin) & (w >= _FHALF)
            wl = wext if ext else (w if weighted else _F0)
            row = i * K * L + k * L + np.int64(r0f) + np.int64(up)
            tm = _F1 if (in_dom | keep_out) & ok else _F0
            xf = xfv if ok else _F0
            if base == 0:
                bv = xf * (_F1 / (_F1 + _exp_scalar(-xf)))
            elif base == 1:
                bv = xf
            else:
                bv = _F0
            if poly:
                deg = L - 1
                v = _F1 - wl
                for m in range(L):
                    pa = _F1
                    for _ in range(m):
                        pa = pa * wl
                    pb = _F1
                    for _ in range(deg - m):
                        pb = pb * v
                    bas[m] = binom[m] * (pa * pb)
                c0 = tm * bas[0]
                for j in range(O):
                    out[n, j] += c0 * dense[row, j] + bw[i, j] * bv
                for m in range(1, L):
                    cm = tm * bas[m]
                    for j in range(O):
                        out[n, j] += cm * dense[row + m, j]
            else:
                r1 = row + np.int64(lin)
                for j in range(O):
                    d = dense[row, j]
                    out[n, j] += tm * (d + wl * (dense[r1, j] - d)) + bw[i, j] * bv


@numba.njit(**JIT)
def _binomials(L):
    out = np.empty(L, np.float32)
    c = 1
    for m in range(L):
        out[m] = np.float32(c)
        c = c * (L - 1 - m) // (m + 1)
    return out


@numba.njit(**JIT)
def _poison(x, n0, nt, edge_mask, out):
    """Step 7: out[n, j] = NaN where some x[n, i] is NaN on an active edge (i, j)."""
    I = x.shape[1]
    O = out.shape[1]
    for n in range(n0, n0 + nt):
        for i in range(I):
            if x[n, i] != x[n, i]:
                for j in range(O):
                    if edge_mask[i, j] != _F0:
                        out[n, j] = np.float32(np.nan)


@numba.njit(**JIT)
def lut_layer_kernel(x, knots, bounds, seg_scale, dense, base_w, edge_mask, L, interp, closed, oob, base, out):
    """out[n, j] = sum_i LUT_ij(x[n, i]) + base_w[i, j]*base(x[n, i]), NaN-poisoned per edge.

    x (N, I) f32 C-contiguous; knots (I, K+1); bounds (3, I) = lo, hi, hi_idx; seg_scale (I, K); dense
    (I*K*L, O); base_w, edge_mask (I, O); out (N, O) f32. ``interp``: 0 linear, 1 nearest, 2 poly (``dense``
    rows hold L Bernstein control points per segment); ``oob``: 0 clip, 1 zero, 2 extrapolate; ``base``: 0
    silu, 1 identity, 2 zero. Never raises for float32 input of the right shapes.
    """
    N, I = x.shape
    K = knots.shape[1] - 1
    O = dense.shape[1]
    poly = interp == 2
    weighted = interp != 1  # linear and poly carry a weight; nearest picks a sample
    lm1 = _F1 if poly else np.float32(L - 1)
    lm2f = _F0 if poly else np.float32(L - 2)
    ulim = _UEXT if poly else _FMAX
    ext_on = oob == 2
    keep_out = oob != 1
    binom = _binomials(L if poly else 1)
    bas = np.empty(binom.shape[0], np.float32)
    if N < SMALL_ROWS:
        _small_rows(x, 0, N, knots, bounds, seg_scale, dense, base_w, L, interp, closed, oob, base, out, binom, bas)
        _poison(x, 0, N, edge_mask, out)
        return
    T = min(TILE_ROWS, N)
    G = 1 if poly else GROUP
    xt = np.empty((I, T), np.float32)
    xc = np.empty(T, np.float32)
    tk = np.empty(T, np.float32)
    sk = np.empty(T, np.float32)
    xf = np.empty(T, np.float32)
    z = np.empty(T, np.float32)
    pp = np.empty(T, np.float32)
    seg = np.empty(T, np.int64)
    bits = np.empty(T, np.int32)
    scale = bits.view(np.float32)
    gf = np.empty((3, G, T), np.float32)  # per group member: weight, multiplier, base value
    gi = np.empty((2, G, T), np.int64)  # row, step
    for n0 in range(0, N, T):
        nt = min(T, N - n0)
        if nt < SMALL_ROWS:  # the last tile of a few rows
            _small_rows(x, n0, nt, knots, bounds, seg_scale, dense, base_w, L, interp, closed, oob, base, out, binom,
                        bas)
            _poison(x, n0, nt, edge_mask, out)
            continue
        for n in range(n0, n0 + nt):
            for j in range(O):
                out[n, j] = _F0
        _transpose(x, n0, nt, xt)
        any_nan = False
        for i0 in range(0, I, G):
            g = min(G, I - i0)
            for q in range(g):
                i = i0 + q
                lo = bounds[0, i]
                hi = bounds[1, i]
                hd = hi if closed else np.nextafter(hi, np.float32(-np.inf))
                _segments(xt, i, nt, knots, seg_scale, lo, bounds[2, i], xc, seg, tk, sk)
                _params(nt, xt, i, xc, seg, tk, sk, lo, hd, lm1, lm2f, ulim, ext_on, keep_out, weighted, i * K * L, L,
                        gf, gi, q, xf)
                _base(nt, xf, base, gf, q, z, pp, bits, scale)
                c = 0
                for n in range(nt):
                    c += xt[i, n] != xt[i, n]
                any_nan |= c > 0
            if poly:
                _accumulate_poly(out, n0, nt, dense, base_w, i0, gi, gf, binom, bas)
            elif g == GROUP:
                _accumulate4(out, n0, nt, dense, base_w, i0, gi, gf)
            else:
                for q in range(g):
                    _accumulate1(out, n0, nt, dense, base_w, i0 + q, gi, gf, q)
        if any_nan:
            _poison(x, n0, nt, edge_mask, out)


def max_exp_ulp(z: np.ndarray) -> float:
    """Largest distance of ``exp32(z)`` from the correctly rounded float32 exp, in ulps of the latter."""
    z = np.ascontiguousarray(z, dtype=np.float32)
    ref = np.exp(z.astype(np.float64)).astype(np.float32)
    err = np.abs(exp32(z).astype(np.float64) - ref.astype(np.float64)) / np.spacing(ref).astype(np.float64)
    return float(err.max()) if err.size else 0.0


def _check_exp_exhaustively() -> None:
    """Every float32 in [EXP_LO, EXP_HI] (about 2.1e9 values; a couple of minutes)."""
    worst = 0.0
    for sign, lim in ((1, EXP_HI), (-1, -EXP_LO)):
        top = int(np.float32(lim).view(np.int32))
        for start in range(0, top + 1, 1 << 24):
            bits = np.arange(start, min(start + (1 << 24), top + 1), dtype=np.int32)
            worst = max(worst, max_exp_ulp(bits.view(np.float32) * np.float32(sign)))
    print(f"exp32: max {worst:.3f} ulp from the correctly rounded exp over every float32 in [{EXP_LO}, {EXP_HI}]")


if __name__ == "__main__":
    _check_exp_exhaustively()
