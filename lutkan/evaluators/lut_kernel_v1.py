"""The 0.1 Numba layer kernel, kept for one release as the benchmark's named baseline (``lutkan bench``: kernel
before/after). Not used by any evaluator: ``lutkan.evaluators.lut_kernel`` replaced it.

Same signature as 0.1: ``lut_layer_kernel_v1(x, knots, bounds, seg_scale, dense, base_w, edge_mask, L, interp,
closed, oob, base, out, fs, ints)`` with scratch ``fs`` (4, >=N) float32 and ``ints`` (3, >=N) int64.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from lutkan.contract import FLT_MAX, U_EXT

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
def lut_layer_kernel_v1(x, knots, bounds, seg_scale, dense, base_w, edge_mask, L, interp, closed, oob, base, out, fs, ints):
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


def run_v1(x, knots, bounds, seg_scale, dense, base_w, edge_mask, L, interp, closed, oob, base, out):
    """``lut_layer_kernel_v1`` with its scratch allocated (the new kernel's signature)."""
    n = x.shape[0]
    lut_layer_kernel_v1(x, knots, bounds, seg_scale, dense, base_w, edge_mask, L, interp, closed, oob, base, out,
                        np.empty((4, n), np.float32), np.empty((3, n), np.int64))
