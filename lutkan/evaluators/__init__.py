"""Evaluators of compiled models: the NumPy reference (definition of correct) and the Numba fast path.

B-spline baselines of the *source* model live in ``bspline`` (for honest benchmarks).
"""

from __future__ import annotations

from lutkan.errors import LutKanError

BACKENDS = ("numpy", "numba")


def evaluator(model, backend: str = "numba"):
    """Return a callable ``f(x) -> y`` evaluating ``model`` with the chosen backend."""
    if backend == "numpy":
        from lutkan.evaluators.numpy_eval import NumpyEvaluator

        return NumpyEvaluator(model)
    if backend == "numba":
        from lutkan.evaluators.numba_eval import NumbaEvaluator

        return NumbaEvaluator(model)
    raise LutKanError(f"backend {backend!r} is not supported; choose one of {', '.join(BACKENDS)}")
