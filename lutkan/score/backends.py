"""Evaluators behind ``Predictor``: which backend runs a model file, and a per-process cache of them.

Backends (``BACKENDS``):

* ``numba``       a ``.lutkan`` artifact, ``lutkan.evaluators.numba_eval.NumbaEvaluator``; ``threads > 1``
                  splits the rows of a call into that many blocks run concurrently (the kernel is ``nogil``).
* ``ort-plugin``  an ``.onnx`` file with ``lutkan.LUTKanEdge`` nodes: onnxruntime with the lutkan plugin
                  (``make_session(plugin=True, kernel_threads=threads)``), which runs the same Numba kernel.
* ``ort``         any other ``.onnx`` file (e.g. the ``standard`` form): plain onnxruntime
                  (``intra_op_num_threads=threads``).

``choose_backend`` is the one place that ranks them: when the native onnxruntime op (issue 13) lands, it
becomes the first choice for ``.onnx`` files there. ``get_evaluator`` builds at most once per process for
a given (file, backend, threads): every unpickled ``Predictor`` in a worker process shares it.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from lutkan.errors import LutKanError

BACKENDS = ("numba", "ort-plugin", "ort")
AUTO = "auto"
_MIN_ROWS_PER_THREAD = 1024


def model_kind(path: str) -> str:
    """``"lutkan"`` (the artifact's magic bytes) or ``"onnx"`` (anything else); LutKanError if missing."""
    from lutkan.artifact import MAGIC

    p = Path(path)
    if not p.is_file():
        raise LutKanError(f"model file not found: {path}")
    with p.open("rb") as f:
        return "lutkan" if f.read(len(MAGIC)) == MAGIC else "onnx"


def _has_lutkan_edge(path: str) -> bool:
    import onnx

    from lutkan.custom_ops.schema import DOMAIN, OP_TYPE

    try:
        m = onnx.load(path, load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf decode errors have many types
        raise LutKanError(f"{path}: not a .lutkan artifact and not a readable ONNX model: {e}") from None
    nodes = list(m.graph.node) + [n for f in m.functions for n in f.node]
    return any(n.domain == DOMAIN and n.op_type == OP_TYPE for n in nodes)


def choose_backend(path: str) -> str:
    """The fastest backend available here for the model file at ``path`` (see the module doc)."""
    if model_kind(path) == "lutkan":
        return "numba"
    # issue 13: the native LUTKanEdge op (runtime_ext.library_path()) goes first here once it exists.
    return "ort-plugin" if _has_lutkan_edge(path) else "ort"


class NumbaBackend:
    """A ``.lutkan`` model on the Numba kernel; ``threads > 1`` runs row blocks on a thread pool."""

    def __init__(self, path: str, threads: int):
        from lutkan.artifact import load
        from lutkan.evaluators.numba_eval import NumbaEvaluator

        self.evaluator = NumbaEvaluator(load(path))
        self.n_inputs = self.evaluator.model.n_inputs
        self.n_outputs = int(self.evaluator(np.zeros((1, self.n_inputs), np.float32)).shape[1])  # JIT/cache load
        self.threads = threads
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="lutkan-score") if threads > 1 else None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        blocks = min(self.threads, n // _MIN_ROWS_PER_THREAD)
        if self._pool is None or blocks < 2:
            return self.evaluator(x)
        edges = np.linspace(0, n, blocks + 1).astype(int)
        out = np.empty((n, self.n_outputs), np.float32)

        def one(b: int) -> None:
            out[edges[b]:edges[b + 1]] = self.evaluator(x[edges[b]:edges[b + 1]])

        for f in [self._pool.submit(one, b) for b in range(blocks)]:
            f.result()
        return out


class OrtBackend:
    """An ``.onnx`` model in onnxruntime, with (``plugin=True``) or without the lutkan plugin."""

    def __init__(self, path: str, threads: int, plugin: bool):
        from lutkan.runtime_ext import make_session, run

        if plugin:
            self.session = make_session(path, plugin=True, kernel_threads=threads, intra_op_num_threads=1)
        else:
            self.session = make_session(path, plugin=False, intra_op_num_threads=threads)
        self._run = run
        ins = self.session.get_inputs()
        if len(ins) != 1:
            raise LutKanError(f"{path}: expected a model with one input (a lutkan export), found "
                              f"{[i.name for i in ins]}")
        width = ins[0].shape[1] if len(ins[0].shape) == 2 else None
        if not isinstance(width, int):
            raise LutKanError(f"{path}: the input {ins[0].name!r} has shape {ins[0].shape}; expected (batch, width) "
                              "with a fixed width")
        self.n_inputs = width
        self.n_outputs = int(self(np.zeros((1, width), np.float32)).shape[1])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self._run(self.session, x), dtype=np.float32)


def build(path: str, backend: str, threads: int):
    """A new evaluator (``__call__(x) -> y``, ``n_inputs``, ``n_outputs``) for the model file."""
    kind = model_kind(path)
    if backend == "numba":
        if kind != "lutkan":
            raise LutKanError(f"{path}: backend 'numba' needs a .lutkan artifact; this is an ONNX file")
        return NumbaBackend(path, threads)
    if backend in ("ort", "ort-plugin"):
        if kind != "onnx":
            raise LutKanError(f"{path}: backend {backend!r} needs an .onnx file; this is a .lutkan artifact "
                              "(use backend 'numba')")
        return OrtBackend(path, threads, plugin=backend == "ort-plugin")
    raise LutKanError(f"unknown backend {backend!r}; choose one of {', '.join((AUTO,) + BACKENDS)}")


_CACHE: dict[tuple, object] = {}
_CACHE_MAX = 4
_LOCK = threading.Lock()


def get_evaluator(path: str, backend: str, threads: int):
    """``(backend_name, evaluator)`` for the file, built once per process per (file version, backend, threads).

    ``backend`` may be ``"auto"`` (``choose_backend``). A file rewritten in place (new mtime or size)
    gets a new evaluator.
    """
    try:
        st = os.stat(path)
    except OSError:
        raise LutKanError(f"model file not found: {path}") from None
    key = (os.path.realpath(path), st.st_mtime_ns, st.st_size, backend, threads)
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is None:
            name = choose_backend(path) if backend == AUTO else backend
            hit = (name, build(path, name, threads))
            if len(_CACHE) >= _CACHE_MAX:
                _CACHE.pop(next(iter(_CACHE)))
            _CACHE[key] = hit
    return hit


__all__ = ["AUTO", "BACKENDS", "NumbaBackend", "OrtBackend", "build", "choose_backend", "get_evaluator", "model_kind"]
