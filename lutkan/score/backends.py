"""Evaluators behind ``Predictor``: which backend runs a model file, and a per-process cache of them.

Backends (``BACKENDS``), in the order ``choose_backend`` prefers them:

* ``numba``       a ``.lutkan`` artifact: ``lutkan.evaluators.numba_eval.NumbaEvaluator``, the whole network in
                  one fused Numba call; ``threads > 1`` runs a batch as that many concurrent row blocks
                  (``NumbaEvaluator(threads=)``, bitwise equal).
* ``ort-native``  an ``.onnx`` file with lutkan nodes (``LUTKanEdge``/``KanSymbolic``; custom or function form):
                  onnxruntime with lutkan's native op library (``make_session(plugin="native")``: the Numba
                  kernel called from C, no Python per call); ``threads`` sets onnxruntime's intra-op pool,
                  over which the op splits large batches.
* ``ort-pyop``    the same file when the native library is not available here
                  (``lutkan.runtime_ext.native_unavailable_reason()`` says why): the onnxruntime-extensions
                  PyOp running the same kernel (``make_session(plugin="pyop", kernel_threads=threads)``).
* ``ort``         any other ``.onnx`` file (e.g. the ``standard`` form): plain onnxruntime
                  (``intra_op_num_threads=threads``).

A ``.lutkan`` file always runs on ``numba``: the native op is the same kernel with onnxruntime around it, one
node per layer, so the fused call is the faster of the two. ``choose_backend`` is the one place that ranks
them; ``describe`` is the sentence ``lutkan score`` prints once. ``get_evaluator`` builds at most once per
process for a given (file, backend, threads): every unpickled ``Predictor`` in a worker process shares it.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from lutkan.errors import LutKanError

BACKENDS = ("numba", "ort-native", "ort-pyop", "ort")
AUTO = "auto"
_PLUGIN = {"ort-native": "native", "ort-pyop": "pyop"}


def model_kind(path: str) -> str:
    """``"lutkan"`` (the artifact's magic bytes) or ``"onnx"`` (anything else); LutKanError if missing."""
    from lutkan.artifact import MAGIC

    p = Path(path)
    if not p.is_file():
        raise LutKanError(f"model file not found: {path}")
    with p.open("rb") as f:
        return "lutkan" if f.read(len(MAGIC)) == MAGIC else "onnx"


def _has_lutkan_nodes(path: str) -> bool:
    """Whether the ONNX file has nodes of the lutkan domain (in its graph or its model-local functions)."""
    import onnx

    from lutkan.custom_ops.schema import DOMAIN

    try:
        m = onnx.load(path, load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf decode errors have many types
        raise LutKanError(f"{path}: not a .lutkan artifact and not a readable ONNX model: {e}") from None
    nodes = list(m.graph.node) + [n for f in m.functions for n in f.node]
    return any(n.domain == DOMAIN for n in nodes)


def choose_backend(path: str) -> str:
    """The fastest backend available here for the model file at ``path`` (see the module doc)."""
    if model_kind(path) == "lutkan":
        return "numba"
    if not _has_lutkan_nodes(path):
        return "ort"
    from lutkan.runtime_ext import native_available

    return "ort-native" if native_available() else "ort-pyop"


def describe(backend: str) -> str:
    """One line saying what ``backend`` is (and, for ``ort-pyop``, why the native op is not used)."""
    if backend == "numba":
        return "numba (the fused Numba network kernel)"
    if backend == "ort-native":
        return "ort-native (onnxruntime with lutkan's native op)"
    if backend == "ort-pyop":
        from lutkan.runtime_ext import native_unavailable_reason

        why = native_unavailable_reason()
        return ("ort-pyop (onnxruntime with the onnxruntime-extensions PyOp running the Numba kernel"
                f"{'; ' + why if why else ''})")
    return f"{backend} (plain onnxruntime)"


class NumbaBackend:
    """A ``.lutkan`` model on the Numba kernel; ``threads > 1``: concurrent row blocks (bitwise equal)."""

    def __init__(self, path: str, threads: int):
        from lutkan.artifact import load
        from lutkan.evaluators.numba_eval import NumbaEvaluator

        self.evaluator = NumbaEvaluator(load(path), threads=threads)
        self.n_inputs = self.evaluator.model.n_inputs
        self.n_outputs = int(self(np.zeros((1, self.n_inputs), np.float32)).shape[1])  # JIT/cache load

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.evaluator(x)


class OrtBackend:
    """An ``.onnx`` model in onnxruntime: ``plugin`` ``"native"``, ``"pyop"`` or None (a plain session)."""

    def __init__(self, path: str, threads: int, plugin: str | None):
        from lutkan.runtime_ext import make_session, run

        if plugin == "native":  # the op splits large batches over the intra-op pool
            self.session = make_session(path, plugin="native", kernel_threads=threads, intra_op_num_threads=threads)
        elif plugin == "pyop":  # the PyOp has its own pool; onnxruntime's stays at one thread
            self.session = make_session(path, plugin="pyop", kernel_threads=threads, intra_op_num_threads=1)
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
    if backend not in BACKENDS:
        raise LutKanError(f"unknown backend {backend!r}; choose one of {', '.join((AUTO,) + BACKENDS)}")
    kind = model_kind(path)
    if backend == "numba":
        if kind != "lutkan":
            raise LutKanError(f"{path}: backend 'numba' needs a .lutkan artifact; this is an ONNX file")
        return NumbaBackend(path, threads)
    if kind != "onnx":
        raise LutKanError(f"{path}: backend {backend!r} needs an .onnx file; this is a .lutkan artifact "
                          "(use backend 'numba')")
    return OrtBackend(path, threads, plugin=_PLUGIN.get(backend))


_CACHE: dict[tuple, object] = {}
_CHOSEN: dict[tuple, str] = {}
_CACHE_MAX = 4
_LOCK = threading.Lock()


def _remember(cache: dict, key: tuple, make):
    hit = cache.get(key)
    if hit is None:
        hit = make()
        if len(cache) >= _CACHE_MAX:
            cache.pop(next(iter(cache)))
        cache[key] = hit
    return hit


def get_evaluator(path: str, backend: str, threads: int):
    """``(backend_name, evaluator)`` for the file, built once per process per (file version, backend, threads).

    ``backend`` may be ``"auto"`` (``choose_backend``, also once per file version): an ``auto`` Predictor and
    one naming the backend it chose share the evaluator. A file rewritten in place (new mtime or size) gets a
    new evaluator.
    """
    try:
        st = os.stat(path)
    except OSError:
        raise LutKanError(f"model file not found: {path}") from None
    file_key = (os.path.realpath(path), st.st_mtime_ns, st.st_size)
    with _LOCK:
        name = _remember(_CHOSEN, file_key, lambda: choose_backend(path)) if backend == AUTO else backend
        return name, _remember(_CACHE, (*file_key, name, threads), lambda: build(path, name, threads))


__all__ = ["AUTO", "BACKENDS", "NumbaBackend", "OrtBackend", "build", "choose_backend", "describe", "get_evaluator",
           "model_kind"]
