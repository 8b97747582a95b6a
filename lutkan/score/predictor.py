"""``lutkan.Predictor``: the one picklable object that scores rows anywhere (this process, Dask, Spark, Ray).

    from lutkan import Predictor
    pred = Predictor("ids78.lutkan", batch_size=65536, threads=1)
    y = pred(x)                       # x (N, n_inputs) float32/float64/int -> y (N, n_outputs) float32

Pickling keeps only the path and the options; the evaluator (tables, JIT-compiled kernel or onnxruntime
session) is built on first use in the process that calls it, once per process (``backends.get_evaluator``),
so shipping a Predictor to a thousand tasks costs a few hundred bytes each.
"""

from __future__ import annotations

import os

import numpy as np

from lutkan.errors import InputError
from lutkan.score.backends import AUTO, BACKENDS, get_evaluator

DEFAULT_BATCH_SIZE = 65536


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise TypeError(f"{name}={value!r} must be an integer >= 1")
    return int(value)


class Predictor:
    """Score rows with a compiled model: ``Predictor(path)(x) -> y``, numpy in, numpy out.

    Args:
        path: a ``.lutkan`` artifact or a lutkan ``.onnx`` export (made absolute here, so workers whose
            working directory differs find the same file; it must be readable where the Predictor runs).
        batch_size: rows per evaluator call; bounds the working memory of a call (inputs of any length
            are scored in slices of this many rows; results are identical for every batch size).
        threads: compute threads: ``.lutkan``: row blocks run concurrently on the nogil Numba kernel
            (``NumbaEvaluator(threads=)``); ``.onnx`` with lutkan nodes: the native op's intra-op pool (the
            PyOp's ``kernel_threads``); plain ``.onnx``: onnxruntime's ``intra_op_num_threads``.
        backend: ``"auto"`` (the fastest available here: ``backends.choose_backend``) or one of
            ``numba``, ``ort-native``, ``ort-pyop``, ``ort``.

    Raises (on the first call, where the model is built): ``LutKanError`` for a missing or invalid model
    file, ``InputError`` for inputs of the wrong shape or dtype (see ``check_input``).
    """

    def __init__(self, path, batch_size: int = DEFAULT_BATCH_SIZE, threads: int = 1, backend: str = AUTO):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
        if backend not in (AUTO,) + BACKENDS:
            raise ValueError(f"backend={backend!r}; choose one of {', '.join((AUTO,) + BACKENDS)}")
        self.path = os.path.abspath(os.fspath(path))
        self.batch_size = _positive_int("batch_size", batch_size)
        self.threads = _positive_int("threads", threads)
        self.requested_backend = backend
        self._backend: str | None = None
        self._evaluator = None

    # -- pickling: the path and options only -----------------------------------------------------
    def __getstate__(self) -> dict:
        return {"path": self.path, "batch_size": self.batch_size, "threads": self.threads,
                "requested_backend": self.requested_backend}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._backend = None
        self._evaluator = None

    def __repr__(self) -> str:
        return (f"Predictor({self.path!r}, batch_size={self.batch_size}, threads={self.threads}, "
                f"backend={self._backend or self.requested_backend!r})")

    # -- the evaluator, built lazily -------------------------------------------------------------
    @property
    def is_built(self) -> bool:
        """True once this object holds an evaluator (never true right after construction or unpickling)."""
        return self._evaluator is not None

    def build(self) -> Predictor:
        """Load the model and compile/load its kernel now (otherwise done by the first call)."""
        if self._evaluator is None:
            self._backend, self._evaluator = get_evaluator(self.path, self.requested_backend, self.threads)
        return self

    @property
    def backend(self) -> str:
        """The backend in use (builds the evaluator)."""
        return self.build()._backend

    @property
    def n_inputs(self) -> int:
        """Columns the model expects (builds the evaluator)."""
        return self.build()._evaluator.n_inputs

    @property
    def n_outputs(self) -> int:
        """Columns of the result (builds the evaluator)."""
        return self.build()._evaluator.n_outputs

    def __call__(self, x) -> np.ndarray:
        """``y`` (N, n_outputs) float32 for ``x`` (N, n_inputs); N = 0 gives an empty (0, n_outputs) array."""
        from lutkan.evaluators.inputs import check_input

        ev = self.build()._evaluator
        if isinstance(x, np.ndarray) and x.ndim == 2 and x.shape[0] == 0 and x.shape[1] == ev.n_inputs:
            if x.dtype.kind not in "fiu":
                raise InputError(f"input 'x' has dtype {x.dtype}; expected a real numeric array")
            return np.empty((0, ev.n_outputs), np.float32)
        x = check_input(x, ev.n_inputs)
        n, b = x.shape[0], self.batch_size
        if n <= b:
            return ev(x)
        out = np.empty((n, ev.n_outputs), np.float32)
        for a in range(0, n, b):
            out[a:a + b] = ev(x[a:a + b])
        return out


__all__ = ["DEFAULT_BATCH_SIZE", "Predictor"]
