"""The ``lutkan.LUTKanEdge`` PyOp (onnxruntime-extensions), its kernel registry and a fast hook.

Importing this module, once per process:

* installs a replacement invocation hook (``PyCustomOpDef.install_hooker``) that hands results
  back to C++ as contiguous numpy arrays instead of ``.flatten().tolist()`` (the stock hook costs
  ~40 ns per output element); other PyOps in the process keep the stock protocol and behaviour;
* defines the PyOp ``lutkan::LUTKanEdge`` with the *rewritten* signature ``Y = LUTKanEdge(X)``,
  attribute ``kernel_key`` (string). The tables never travel through ORT (ORT-extensions copies
  every input on every call): ``lutkan.runtime_ext.session.make_session`` reads them from the
  model's initializers once, builds an ``EdgeSumKernel`` and stores it in ``lutkan.runtime_ext.registry``
  under a unique key.

Every ``@onnx_op`` must exist before ``SessionOptions.register_custom_ops_library`` is called,
so ``lutkan.runtime_ext`` imports this module before it creates any SessionOptions.

Nothing may raise inside the op body: a Python exception escaping a PyOp aborts the process
(``pybind11::error_already_set`` -> SIGABRT). The body validates its input and catches
``BaseException``; on any failure it returns a NaN-filled ``(N, O)`` output and records the error
(``kernel_errors()``; ``lutkan.runtime_ext.run`` turns a recorded error into an exception).
"""

from __future__ import annotations

import importlib
import os
import sys

import numpy as np


def _import_ortx():
    """Import onnxruntime-extensions without importing torch.

    Its package ``__init__`` imports ``onnxruntime_extensions.cvt``, which imports torch when it is
    installed (only for its Whisper pre-processing converter): +1 s and ~250 MiB for a process that
    only runs LUT models. ``cvt`` treats torch as optional (``except ImportError``), so while the
    package is first imported, and only if torch is not already loaded, ``import torch`` is made to
    fail (``sys.modules['torch'] = None``). The one effect: in this process that converter reports
    torch as unavailable. Set ``LUTKAN_ORTX_WITH_TORCH=1`` to import it normally."""
    if "onnxruntime_extensions" in sys.modules or "torch" in sys.modules or os.environ.get("LUTKAN_ORTX_WITH_TORCH"):
        return importlib.import_module("onnxruntime_extensions")
    sys.modules["torch"] = None  # type: ignore[assignment]
    try:
        return importlib.import_module("onnxruntime_extensions")
    finally:
        if sys.modules.get("torch", 0) is None:
            del sys.modules["torch"]


_ortx = _import_ortx()
PyCustomOpDef, get_library_path, onnx_op = _ortx.PyCustomOpDef, _ortx.get_library_path, _ortx.onnx_op
Opdef = _ortx.Opdef

from lutkan.custom_ops.schema import DOMAIN, OP_TYPE  # noqa: E402 - after the torch-free ortx import above
from lutkan.runtime_ext import registry  # noqa: E402
from lutkan.runtime_ext.registry import (  # noqa: E402
    KernelEntry,
    add_kernel,
    error_total,
    get_kernel,
    kernel_errors,
    live_kernels,
    new_key,
    release_kernels,
)

__all__ = ["KernelEntry", "add_kernel", "get_kernel", "kernel_errors", "library_path", "live_kernels",
           "new_key", "release_kernels", "error_total"]

_F32 = np.dtype(np.float32)
_KERNELS = registry._KERNELS  # the shared registry (lutkan.runtime_ext.registry), under its old names
_LOCK = registry._LOCK
_record = registry.record_error


def _out_dim_from_key(key) -> int:
    try:
        return max(int(str(key).rsplit(":", 1)[1]), 1)
    except BaseException:  # noqa: BLE001
        return 1


def _nan_output(x, out_dim: int) -> np.ndarray:
    try:
        n = int(x.shape[0]) if getattr(x, "ndim", 0) >= 1 else 1
    except BaseException:  # noqa: BLE001
        n = 1
    return np.full((n, out_dim), np.nan, dtype=np.float32)


def lutkan_edge(x, kernel_key):
    """The PyOp body: ``Y = kernel(X)``; never raises (NaN output + recorded error instead)."""
    try:
        e = _KERNELS.get(kernel_key)
        if e is None:
            _record(kernel_key, f"no LUTKanEdge kernel is registered under kernel_key={kernel_key!r} (the "
                                f"graph was not prepared by lutkan.runtime_ext.make_session, or its session "
                                f"was already released)")
            return _nan_output(x, _out_dim_from_key(kernel_key))
        if type(x) is not np.ndarray or x.ndim != 2 or x.dtype != _F32 or x.shape[1] != e.in_dim:
            _record(kernel_key, f"{e.where}: input X has shape {getattr(x, 'shape', None)} and dtype "
                                f"{getattr(x, 'dtype', type(x).__name__)}; expected float32 (batch, {e.in_dim})")
            return _nan_output(x, e.out_dim)
        if x.shape[0] == 0:
            return np.empty((0, e.out_dim), dtype=np.float32)
        if not x.flags.c_contiguous:
            x = np.ascontiguousarray(x)
        if e.threads > 1 and x.shape[0] >= SPLIT_MIN_ROWS:
            return _split_call(e, x)
        return e.kernel(x)
    except (KeyboardInterrupt, SystemExit) as ex:
        _record(kernel_key, f"interrupted inside the LUTKanEdge kernel: {type(ex).__name__}", interrupt=True)
    except BaseException as ex:  # noqa: BLE001 - an exception escaping a PyOp aborts the process
        _record(kernel_key, f"LUTKanEdge kernel failed: {type(ex).__name__}: {ex}")
    try:
        e = _KERNELS.get(kernel_key)
        return _nan_output(x, e.out_dim if e is not None else _out_dim_from_key(kernel_key))
    except BaseException:  # noqa: BLE001
        return np.full((1, 1), np.nan, dtype=np.float32)


SPLIT_MIN_ROWS = 256
"""Smallest batch that ``threads > 1`` splits (below it, thread hand-off costs more than it saves)."""

_POOL: list = [None, 0]  # ThreadPoolExecutor, its size


def _pool(workers: int):
    with _LOCK:
        if _POOL[1] < workers:
            from concurrent.futures import ThreadPoolExecutor

            # The old pool is not shut down (a concurrent call may still submit to it); its idle
            # workers exit once it is garbage-collected.
            _POOL[0], _POOL[1] = ThreadPoolExecutor(workers, thread_name_prefix="lutkan-kernel"), workers
        return _POOL[0]


def _split_call(e: KernelEntry, x: np.ndarray) -> np.ndarray:
    """Row blocks of ``x`` evaluated concurrently into one output (rows are independent). The
    Numba kernel releases the GIL, so the blocks really run in parallel; waiting releases it too."""
    n = x.shape[0]
    out = np.empty((n, e.out_dim), dtype=np.float32)
    parts = min(e.threads, n // (SPLIT_MIN_ROWS // 2))
    bounds = [n * i // parts for i in range(parts + 1)]
    futs = [_pool(e.threads - 1).submit(e.kernel, x[a:b], out[a:b]) for a, b in zip(bounds[1:-1], bounds[2:], strict=True)]
    try:
        e.kernel(x[: bounds[1]], out[: bounds[1]])
    finally:
        for f in futs:
            f.result()  # re-raises a worker's exception (caught by the body)
    return out


# ---------------------------------------------------------------------------------------------
# The PyOp definition (must precede every register_custom_ops_library call) and the fast hook.

_OPDEF = onnx_op(op_type=f"{DOMAIN}::{OP_TYPE}", inputs=[PyCustomOpDef.dt_float],
                 outputs=[PyCustomOpDef.dt_float], attrs={"kernel_key": PyCustomOpDef.dt_string})(lutkan_edge)
_OP_ID = _OPDEF._nativedef.obj_id
_LAST_RESORT = np.full(1, np.nan, dtype=np.float32)


def _invoke(k_id, feed, attributes):
    """Replacement for ``onnxruntime_extensions._ocos._on_pyop_invocation``.

    Protocol: return ``(k_id, shape_0, flat_0, shape_1, flat_1, ...)``; C++ accepts a numpy array
    for each flat buffer (and converts its dtype), so no ``.tolist()``. Our op never raises; other
    PyOps get the stock behaviour (an exception there aborts, exactly as with the stock hook).
    """
    if k_id == _OP_ID:
        try:
            r = lutkan_edge(feed[0], attributes["kernel_key"])
            return (k_id, r.shape, r.reshape(-1))
        except BaseException:  # noqa: BLE001 - a malformed return aborts the process: always return
            return (k_id, (1, 1), _LAST_RESORT)
    if k_id not in Opdef._odlist:
        raise RuntimeError(f"Unable to find function id={k_id}. Did you decorate the operator with @onnx_op?.")
    op_ = Opdef._odlist[k_id]
    rv = op_.body(*feed, **op_.cast_attributes(attributes))
    out = [k_id]
    for r in (rv if isinstance(rv, tuple) else (rv,)):
        r = np.asarray(r)
        out.append(r.shape)
        if r.dtype.kind in "iuf":
            out.append(np.ascontiguousarray(r).reshape(-1))
        else:  # strings/objects: the stock list protocol
            out.append(r.flatten().tolist())
    return tuple(out)


PyCustomOpDef.install_hooker(_invoke)


def library_path() -> str:
    """Path of the onnxruntime-extensions library to pass to ``register_custom_ops_library``."""
    return get_library_path()
