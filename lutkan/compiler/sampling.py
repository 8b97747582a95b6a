"""Endpoint-inclusive sampling of every edge function on its input's knot segments.

For input row i with float32 knots t[0..K] (pykan's extended grid, cast to float32), segment k
and sample l = 0..L-1 (``docs/contract.md`` §2)::

    x[k, l] = t_k + (t_{k+1} - t_k) * l / (L - 1)        (float64 arithmetic)

Each knot value is sampled twice: as the last sample of segment k-1 (the left limit, evaluated
inside span k-1) and the first of segment k. The tabulated function of edge (i, j) is

    f_ij(x) = mask_ij * scale_sp_ij * spline_ij(x) + [symbolic] symmask_ji * (c f(a x + b) + d)

evaluated in float64 with the source's own knots and coefficients. The base branch is not
tabulated: it is computed exactly at run time on the raw input.
"""

from __future__ import annotations

import numpy as np

from lutkan.source import SourceLayer, bspline_basis


def sample_points(knots32: np.ndarray, L: int) -> np.ndarray:
    """(K, L) float64 sample positions of one knot row (endpoints included)."""
    t = knots32.astype(np.float64)
    frac = np.arange(L, dtype=np.float64) / (L - 1)
    return t[:-1, None] + (t[1:] - t[:-1])[:, None] * frac[None, :]


def _basis_in_span(x: np.ndarray, grid: np.ndarray, k: int, span: np.ndarray) -> np.ndarray:
    """pykan's Cox-de Boor recursion, but with the order-0 indicator set on ``span`` explicitly.

    pykan's half-open indicator gives the right limit at a knot; sampling a segment's right end
    needs the segment's own polynomial (the left limit). Where the span has zero width, pykan's
    value at x (right-continuous) is used instead.
    """
    t = np.asarray(grid, dtype=np.float64)
    B0 = np.zeros((x.shape[0], t.shape[0] - 1))
    B0[np.arange(x.shape[0]), span] = 1.0
    zero_width = t[span + 1] <= t[span]
    if np.any(zero_width):
        xz = x[zero_width][:, None]
        B0[zero_width] = ((xz >= t[:-1]) & (xz < t[1:])).astype(np.float64)
    return bspline_basis(x, t, k, order0=B0)


def tabulate_row(layer: SourceLayer, i: int, xs: np.ndarray, symbolic_enabled: bool) -> np.ndarray:
    """Edge functions of input i at positions ``xs`` (K, M) lying in segment k of row i.

    Returns (K, M, O) float64 values of f_ij for all outputs j (inactive edges give 0).
    """
    K, M = xs.shape
    span = np.repeat(np.arange(K), M)
    x = xs.reshape(-1)
    B = _basis_in_span(x, layer.grid[i], layer.k, span)  # (K*M, G+k)
    f = B @ (layer.coef[i] * (layer.mask[i] * layer.scale_sp[i])[:, None]).T  # (K*M, O)
    if symbolic_enabled:
        for j in np.nonzero(layer.sym_mask[:, i])[0]:
            f[:, j] += layer.symbolic_term(i, int(j), x)
    return f.reshape(K, M, -1)
