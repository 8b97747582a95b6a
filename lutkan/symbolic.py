"""pykan's symbolic library (``SYMBOLIC_LIB``) as lutkan knows it: names, stable codes, NumPy functions.

pykan evaluates a symbolic edge as ``c * f(a*x + b) + d`` (times the symbolic mask) with the plain torch
function ``SYMBOLIC_LIB[name][0]`` (``singularity_avoiding=False``, the default forward). ``SYMBOLIC_FUNS``
are the same functions in NumPy, in the input's float dtype (float64 for the source reference and the
compiler, float32 for the compiled evaluators); IEEE results where the formula is singular (``1/0 = inf``,
``sqrt(-1) = NaN``, ``log(0) = -inf``, ``arctanh(1) = inf``), as torch gives. ``SYMBOLIC_NAMES`` fixes
the order that gives every function its integer code (Numba kernels); the ONNX expansion of each name is
in ``lutkan.custom_ops.symbolic_body``, the Numba one in ``lutkan.evaluators.symbolic_kernel``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lutkan.errors import UnsupportedModelError


def _safe(f: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    def g(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.dtype.kind != "f":
            x = x.astype(np.float64)
        with np.errstate(all="ignore"):
            return f(x)

    return g


SYMBOLIC_FUNS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    name: _safe(f)
    for name, f in {
        "x": lambda x: x,
        "x^2": lambda x: x**2,
        "x^3": lambda x: x**3,
        "x^4": lambda x: x**4,
        "x^5": lambda x: x**5,
        "1/x": lambda x: 1 / x,
        "1/x^2": lambda x: 1 / x**2,
        "1/x^3": lambda x: 1 / x**3,
        "1/x^4": lambda x: 1 / x**4,
        "1/x^5": lambda x: 1 / x**5,
        "sqrt": np.sqrt,
        "x^0.5": np.sqrt,
        "x^1.5": lambda x: np.sqrt(x) ** 3,
        "1/sqrt(x)": lambda x: 1 / np.sqrt(x),
        "1/x^0.5": lambda x: 1 / np.sqrt(x),
        "exp": np.exp,
        "log": np.log,
        "abs": np.abs,
        "sin": np.sin,
        "cos": np.cos,
        "tan": np.tan,
        "tanh": np.tanh,
        "sgn": np.sign,
        "arcsin": np.arcsin,
        "arccos": np.arccos,
        "arctan": np.arctan,
        "arctanh": np.arctanh,
        "0": lambda x: x * 0,
        "gaussian": lambda x: np.exp(-(x**2)),
    }.items()
}

SYMBOLIC_NAMES: tuple[str, ...] = tuple(SYMBOLIC_FUNS)
FLOAT32_FUNCTIONS = frozenset({"arcsin", "arccos", "arctan"})
"""Evaluated in float32 (on the float64 argument rounded to float32, then widened back): onnxruntime has no
float64 kernels for Asin/Acos/Atan, and every backend must compute the same thing."""
"""Every supported name; a name's index is its code (stable: append new names at the end)."""
SYMBOLIC_CODES: dict[str, int] = {name: i for i, name in enumerate(SYMBOLIC_NAMES)}


def symbolic_function(name: str, where: str = "") -> Callable[[np.ndarray], np.ndarray]:
    """Return the NumPy function for a pykan symbolic name, or raise naming the edge."""
    try:
        return SYMBOLIC_FUNS[name]
    except (KeyError, TypeError):
        raise UnsupportedModelError(
            f"{where}symbolic function {name!r} is not in pykan's SYMBOLIC_LIB as lutkan knows it; "
            f"known names: {', '.join(sorted(SYMBOLIC_FUNS))}"
        ) from None


def symbolic_terms(names, affine: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``c*f(a*x + b) + d`` per edge in float64 (the contract's symbolic terms): names (S,), affine (S, 4)
    float64 rows (a, b, c, d), x (N, S) (float32 inputs are widened exactly); ``FLOAT32_FUNCTIONS`` are
    evaluated in float32 on the rounded argument."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    a, b, c, d = (np.asarray(affine[:, q], dtype=np.float64) for q in range(4))
    with np.errstate(all="ignore"):
        arg = a * x + b
        for e, name in enumerate(names):
            z = arg[:, e]
            f = SYMBOLIC_FUNS[name](z.astype(np.float32)).astype(np.float64) if name in FLOAT32_FUNCTIONS \
                else SYMBOLIC_FUNS[name](z)
            out[:, e] = c[e] * f + d[e]
    return out
