"""NumPy versions of pykan's ``SYMBOLIC_LIB`` (the plain functions pykan's forward uses).

pykan evaluates a symbolic edge as ``c * f(a*x + b) + d`` with the torch function of
``SYMBOLIC_LIB[name][0]`` (``singularity_avoiding=False``, the default forward). These are the
same functions in float64 NumPy, used to tabulate symbolic edges and by the float64 reference.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lutkan.errors import UnsupportedModelError


def _safe(f: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    def g(x: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return f(np.asarray(x, dtype=np.float64))

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


def symbolic_function(name: str, where: str = "") -> Callable[[np.ndarray], np.ndarray]:
    """Return the NumPy function for a pykan symbolic name, or raise naming the edge."""
    try:
        return SYMBOLIC_FUNS[name]
    except KeyError:
        raise UnsupportedModelError(
            f"{where}symbolic function {name!r} is not in pykan's SYMBOLIC_LIB as lutkan knows it; "
            f"known names: {', '.join(sorted(SYMBOLIC_FUNS))}"
        ) from None
