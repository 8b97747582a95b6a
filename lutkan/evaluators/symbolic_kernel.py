"""Exact symbolic edges (``lutkan.KanSymbolic``) as a Numba kernel: ``out[:, dst] += c*f(a*x[:, src] + b) + d``.

``symbolic_value(code, x)`` is pykan's ``SYMBOLIC_LIB`` function with code ``code`` (``lutkan.symbolic``'s
order) in float64, with IEEE results at singularities (``error_model="numpy"``: ``1/0 = inf``,
``sqrt(-1) = NaN``, ``log(0) = -inf``); arcsin/arccos/arctan in float32 on the rounded argument
(``lutkan.symbolic.FLOAT32_FUNCTIONS``). Per output, the edges' terms are summed in float64 in edge order
and rounded once to float32 before being added to ``out``, as ``numpy_eval.symbolic_sum`` does.
"""

from __future__ import annotations

import numba
import numpy as np

from lutkan.symbolic import SYMBOLIC_CODES, SYMBOLIC_NAMES

_JIT = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")
_C = SYMBOLIC_CODES
assert SYMBOLIC_NAMES[:29] == (
    "x", "x^2", "x^3", "x^4", "x^5", "1/x", "1/x^2", "1/x^3", "1/x^4", "1/x^5", "sqrt", "x^0.5", "x^1.5",
    "1/sqrt(x)", "1/x^0.5", "exp", "log", "abs", "sin", "cos", "tan", "tanh", "sgn", "arcsin", "arccos",
    "arctan", "arctanh", "0", "gaussian"), "the codes below follow lutkan.symbolic.SYMBOLIC_NAMES"

_ONE = 1.0


@numba.njit(**_JIT)
def symbolic_value(code, x):
    """pykan's symbolic function number ``code`` at float64 ``x`` (see ``lutkan.symbolic.SYMBOLIC_NAMES``)."""
    if code == 0:
        return x
    if code == 1:
        return x * x
    if code == 2:
        return x * x * x
    if code == 3:
        x2 = x * x
        return x2 * x2
    if code == 4:
        x2 = x * x
        return x2 * x2 * x
    if code == 5:
        return _ONE / x
    if code == 6:
        return _ONE / (x * x)
    if code == 7:
        return _ONE / (x * x * x)
    if code == 8:
        x2 = x * x
        return _ONE / (x2 * x2)
    if code == 9:
        x2 = x * x
        return _ONE / (x2 * x2 * x)
    if code == 10 or code == 11:
        return np.sqrt(x)
    if code == 12:
        r = np.sqrt(x)
        return r * r * r
    if code == 13 or code == 14:
        return _ONE / np.sqrt(x)
    if code == 15:
        return np.exp(x)
    if code == 16:
        return np.log(x)
    if code == 17:
        return np.abs(x)
    if code == 18:
        return np.sin(x)
    if code == 19:
        return np.cos(x)
    if code == 20:
        return np.tan(x)
    if code == 21:
        return np.tanh(x)
    if code == 22:
        return np.sign(x)
    if code == 23:
        return np.float64(np.arcsin(np.float32(x)))
    if code == 24:
        return np.float64(np.arccos(np.float32(x)))
    if code == 25:
        return np.float64(np.arctan(np.float32(x)))
    if code == 26:
        return np.arctanh(x)
    if code == 27:
        return x * 0.0
    return np.exp(-(x * x))


@numba.njit(**_JIT)
def symbolic_kernel(x, src, dst, codes, affine, out, acc):
    """``out[n, j] += float32(sum over edges e with dst[e] == j of affine[e,2]*f_e(affine[e,0]*x[n, src[e]] +
    affine[e,1]) + affine[e,3])`` computed in float64 (``affine`` float64 (S, 4)); ``acc`` (O,) float64 scratch."""
    N = x.shape[0]
    O = out.shape[1]
    S = src.shape[0]
    for n in range(N):
        for j in range(O):
            acc[j] = 0.0
        for e in range(S):
            a = affine[e, 0]
            b = affine[e, 1]
            c = affine[e, 2]
            d = affine[e, 3]
            acc[dst[e]] += c * symbolic_value(codes[e], a * np.float64(x[n, src[e]]) + b) + d
        for j in range(O):
            out[n, j] += np.float32(acc[j])


class SymbolicKernel:
    """The ``lutkan.KanSymbolic`` op over a ``lutkan.tables.SymbolicEdges``: ``kernel.add_to(x, out)`` adds the
    layer's symbolic sums to ``out`` (N, O) in place; ``kernel(x)`` returns them alone."""

    def __init__(self, sym):
        self.src = np.ascontiguousarray(sym.src, np.int64)
        self.dst = np.ascontiguousarray(sym.dst, np.int64)
        self.codes = np.ascontiguousarray(sym.codes, np.int64)
        self.affine = np.ascontiguousarray(sym.affine, np.float64)
        self.out_dim = int(sym.out_dim)

    def add_to(self, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        symbolic_kernel(x, self.src, self.dst, self.codes, self.affine, out, np.empty(self.out_dim, np.float64))
        return out

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.add_to(x, np.zeros((x.shape[0], self.out_dim), np.float32))
