"""Numba kernels of the B-spline baselines (``lutkan.evaluators.bspline``): per-sample forms of pykan's math.

``naive_layer_kernel`` is the LUT-KAN paper's matched baseline (full Cox-de Boor per edge over every
interval, ``nan_to_num`` per level, as ``lutkan.source.bspline_basis``); ``strong_layer_kernel`` a local de
Boor kernel (k+1 basis values per (sample, input), shared by all outputs). Both are generic over float32 /
float64 (every scalar keeps the arrays' dtype), ``error_model="numpy"`` (IEEE inf/NaN on x/0 like pykan),
single-threaded and allocation-free per sample. The base branch uses the stable SiLU of
``lutkan.source.silu`` (pykan's forward), not the contract's formula of the LUT kernel.
"""

from __future__ import annotations

import math

import numba
import numpy as np

_JIT = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")


@numba.njit(**_JIT)
def _base_value(xv, base, zero, one):
    """silu (stable, like ``lutkan.source.silu``), identity or zero, in xv's dtype."""
    if base == 0:
        e = math.exp(-abs(xv))
        if xv >= zero:
            return xv * (one / (one + e))
        return xv * (e / (one + e))
    if base == 1:
        return xv
    return zero


@numba.njit(**_JIT)
def naive_layer_kernel(x, knots, coef, wb, active, k, base, out):
    """Edge sums of one layer, full Cox-de Boor per edge (the paper's naive baseline).

    x (N, I); knots (I, K+1); coef (I, O, K-k) with mask*scale_sp folded in; wb (I, O) =
    mask*scale_base; active (I, O) uint8 (spline computed only where mask != 0); out (N, O).
    """
    N, I = x.shape
    K = knots.shape[1] - 1
    O = out.shape[1]
    nb = K - k
    consts = np.zeros(2, dtype=out.dtype)
    consts[1] = 1
    zero = consts[0]
    one = consts[1]
    B = np.empty(K, dtype=out.dtype)  # scratch, reused for every edge
    for n in range(N):
        o = out[n]
        for j in range(O):
            o[j] = zero
        for i in range(I):
            xv = x[n, i]
            bv = _base_value(xv, base, zero, one)
            t = knots[i]
            w = wb[i]
            act = active[i]
            for j in range(O):
                acc = w[j] * bv
                if act[j] != 0:
                    # order 0: half-open indicator over every interval of the extended grid
                    for m in range(K):
                        B[m] = one if (t[m] <= xv and xv < t[m + 1]) else zero
                    for p in range(1, k + 1):
                        for m in range(K - p):
                            v = ((xv - t[m]) / (t[m + p] - t[m]) * B[m]
                                 + (t[m + p + 1] - xv) / (t[m + p + 1] - t[m + 1]) * B[m + 1])
                            if v != v:  # torch.nan_to_num after every level
                                v = zero
                            B[m] = v
                    c = coef[i, j]
                    spl = zero
                    for m in range(nb):
                        spl += B[m] * c[m]
                    acc += spl
                o[j] += acc


@numba.njit(**_JIT)
def strong_layer_kernel(x, knotsp, coefp, wb, k, base, out):
    """Edge sums of one layer with local de Boor (k+1 basis values per (sample, input), shared).

    x (N, I); knotsp (I, K+1+2k) = row i's knots with the end knots repeated k times on each side
    (keeps every index in range; the padded functions hit only zero coef rows); coefp (I, K+k, O)
    where row mu_real + r holds basis mu_real - k + r (zero rows for the non-existent ones);
    wb (I, O); out (N, O).
    """
    N, I = x.shape
    K = knotsp.shape[1] - 1 - 2 * k
    O = out.shape[1]
    consts = np.zeros(2, dtype=out.dtype)
    consts[1] = 1
    zero = consts[0]
    one = consts[1]
    Nv = np.empty(k + 1, dtype=out.dtype)
    left = np.empty(k + 1, dtype=out.dtype)
    right = np.empty(k + 1, dtype=out.dtype)
    for n in range(N):
        o = out[n]
        for j in range(O):
            o[j] = zero
        for i in range(I):
            xv = x[n, i]
            bv = _base_value(xv, base, zero, one)
            w = wb[i]
            for j in range(O):
                o[j] += w[j] * bv
            t = knotsp[i]
            if not (xv >= t[k] and xv < t[k + K]):  # outside [t_0, t_K), NaN, degenerate row
                continue
            a = k + 1
            b = k + K
            while a < b:  # first padded index in (k, k+K] with t > xv
                mid = (a + b) >> 1
                if t[mid] <= xv:
                    a = mid + 1
                else:
                    b = mid
            mu = a - 1  # t[mu] <= xv < t[mu+1], t[mu] < t[mu+1]
            Nv[0] = one
            for p in range(1, k + 1):
                left[p] = xv - t[mu + 1 - p]
                right[p] = t[mu + p] - xv
                saved = zero
                for r in range(p):
                    temp = Nv[r] / (t[mu + r + 1] - t[mu + 1 - p + r])  # > 0 inside the window
                    Nv[r] = saved + right[r + 1] * temp
                    saved = left[p - r] * temp
                Nv[p] = saved
                # pykan's nan_to_num wipes the window-edge functions on a zero-width side
                if t[mu] == t[mu - p]:
                    Nv[0] = zero
                if t[mu + p + 1] == t[mu + 1]:
                    Nv[p] = zero
            c = coefp[i]
            row0 = mu - k
            for r in range(k + 1):
                nr = Nv[r]
                row = c[row0 + r]
                for j in range(O):
                    o[j] += nr * row[j]
