"""Exact piecewise-polynomial tables (``interp="poly"``): each spline segment's own polynomial.

A pykan B-spline edge of order k is one polynomial of degree <= k on each knot interval. For input row i,
segment k with width w = t_{k+1} - t_k > 0 and the local coordinate u = (x - t_k) / w in [0, 1], the
tabulated part of edge (i, j), ``mask*scale_sp*spline_ij``, equals ``sum_m C[m] * B_m(u)`` there, with
the Bernstein basis ``B_m(u) = binom(n, m) u^m (1-u)^(n-m)`` of the model's degree n = L - 1 = max k
(a lower-order layer is represented exactly by degree elevation). The control points C are recovered in
float64 by interpolating the segment's own polynomial (``tabulate_row``, span-local Cox-de Boor) at the
n+1 Chebyshev-Lobatto points of [0, 1], then stored in the model's scheme (float32 or float16).

Why Bernstein and not the power basis: evaluated as ``sum_m C[m] B_m(u)`` with ``B_m >= 0`` on [0, 1] it is
a convex combination, so its float32 rounding error is ~eps x the control points near u, while Horner in
powers of u loses ~eps x sum|power coefficients|, which for a steep piece is hundreds of times the value
(measured: torward_vlbi_deep's last layer, 2.8e-5 relative with Horner, see docs/contract.md).

A zero-width segment stores its value at the knot (the value the table forms sample there) in every
control point; evaluation gives it u = 0.
"""

from __future__ import annotations

import numpy as np

from lutkan.compiler.sampling import tabulate_row
from lutkan.contract import POLY_MAX_L
from lutkan.errors import UnsupportedModelError
from lutkan.source import SourceLayer
from lutkan.tables import bernstein_basis

__all__ = ["MAX_POLY_DEGREE", "bernstein_basis", "lobatto_points", "poly_coefficients", "poly_values"]

MAX_POLY_DEGREE = POLY_MAX_L - 1
"""Largest spline order ``interp="poly"`` stores: with u clipped to +-2^16 under ``extrapolate`` every basis
value stays finite in float32 (docs/contract.md)."""


def lobatto_points(n: int) -> np.ndarray:
    """The n+1 Chebyshev-Lobatto points of [0, 1] (both ends included)."""
    return 0.5 * (1.0 - np.cos(np.pi * np.arange(n + 1) / n))


def poly_coefficients(layer: SourceLayer, i: int, knots32: np.ndarray, L: int) -> np.ndarray:
    """(K, L, O) float64 Bernstein control points (degree L-1) of every edge leaving input ``i``.

    ``knots32`` (K+1,) are the row's stored float32 knots; the spline part only (symbolic edges are exact).
    """
    n = L - 1
    if int(layer.k) > n:
        raise UnsupportedModelError(f"spline order k={layer.k} needs L >= {int(layer.k) + 1} coefficients")
    if n > MAX_POLY_DEGREE:
        raise UnsupportedModelError(f"interp='poly' supports spline orders up to {MAX_POLY_DEGREE}, the model has "
                                    f"k={n}; use interp='linear'")
    t = knots32.astype(np.float64)
    width = t[1:] - t[:-1]
    u = lobatto_points(n)
    xs = t[:-1, None] + width[:, None] * u[None, :]  # (K, n+1), inside each segment
    vals = tabulate_row(layer, i, xs, False)  # (K, n+1, O)
    A = bernstein_basis(u, n)  # A[q, m] = B_m(u_q)
    coef = np.einsum("mq,kqo->kmo", np.linalg.inv(A), vals)
    flat = width <= 0
    if np.any(flat):  # zero-width segment: its value at the knot (every control point; u = 0 there)
        coef[flat] = vals[flat, :1, :]
    return coef


def poly_values(coef: np.ndarray, u: np.ndarray) -> np.ndarray:
    """float64 values of control points coef (..., L, O) at u (M,) -> (..., M, O)."""
    B = bernstein_basis(np.asarray(u, dtype=np.float64), coef.shape[-2] - 1)  # (M, L)
    return np.einsum("ml,...lo->...mo", B, coef)
