"""Process-wide registry of the kernels ``make_session`` prepared, keyed by the ``kernel_key`` of rewritten nodes.

Shared by both plugin backends: the onnxruntime-extensions PyOp (``pyop``: calls ``entry.kernel``) and the
native op (``native``: builds its kernel block from ``entry.tables`` when onnxruntime creates the kernel).
Kernel failures the PyOp absorbed (NaN output instead of an abort) are recorded here too. Light: no
onnxruntime-extensions, no Numba.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from dataclasses import dataclass

__all__ = ["KernelEntry", "KernelErrorRecord", "add_kernel", "get_kernel", "release_kernels", "live_kernels",
           "kernel_errors", "record_error", "error_total", "new_key"]


@dataclass(frozen=True, eq=False)
class KernelEntry:
    """One prepared LUTKanEdge node: its kernel or tables, and its widths (for checks/NaN fallback)."""

    kernel: object  # PyOp: EdgeSumKernel, kernel(x (N, in_dim) float32 C-contiguous) -> (N, out_dim); native: None
    in_dim: int
    out_dim: int
    where: str  # "LUTKanEdge node 'kan0' (#0)" for error messages
    threads: int = 1  # PyOp: >1 splits large batches into row blocks run concurrently (the kernel is nogil)
    tables: object = None  # native: the validated LayerTables, dropped once onnxruntime built its kernel


@dataclass
class KernelErrorRecord:
    count: int = 0
    last: str = ""
    last_time: float = 0.0
    interrupt: bool = False


_KERNELS: dict[str, KernelEntry] = {}
_ERRORS: dict[str, KernelErrorRecord] = {}
_ERROR_TOTAL = [0]  # failures ever recorded in this process (cheap "did anything fail?" check)
_KEY_COUNTER = itertools.count()
_SALT = secrets.token_hex(6)  # a file cannot name another session's kernel by guessing its key
_LOCK = threading.Lock()


def new_key(out_dim: int) -> str:
    """A process-unique kernel key; the output width is kept at its end for the PyOp's NaN fallback."""
    return f"lutkan.{_SALT}.{next(_KEY_COUNTER)}:{int(out_dim)}"


def add_kernel(key: str, entry: KernelEntry) -> None:
    with _LOCK:
        if key in _KERNELS:
            raise KeyError(f"kernel key {key!r} is already registered")
        _KERNELS[key] = entry


def replace_kernel(key: str, entry: KernelEntry) -> None:
    """Swap the entry of a registered key (no-op if it was released meanwhile)."""
    with _LOCK:
        if key in _KERNELS:
            _KERNELS[key] = entry


def get_kernel(key: str) -> KernelEntry | None:
    return _KERNELS.get(key)


def release_kernels(keys) -> None:
    """Drop registry entries (called by ``weakref.finalize`` when a session is collected)."""
    with _LOCK:
        for k in keys:
            _KERNELS.pop(k, None)
            _ERRORS.pop(k, None)


def live_kernels() -> int:
    """Number of registered kernels (sessions alive x LUTKanEdge nodes); for leak checks."""
    return len(_KERNELS)


def error_total() -> int:
    return _ERROR_TOTAL[0]


def kernel_errors(keys=None) -> dict[str, KernelErrorRecord]:
    """Recorded kernel failures (count, last message) per key, optionally restricted to ``keys``."""
    items = list(_ERRORS.items())
    if keys is not None:
        keys = set(keys)
        items = [(k, v) for k, v in items if k in keys]
    return {k: KernelErrorRecord(v.count, v.last, v.last_time, v.interrupt) for k, v in items}


def record_error(key: str, msg: str, interrupt: bool = False) -> None:
    """Record a kernel failure under ``key``; never raises."""
    try:
        _ERROR_TOTAL[0] += 1
        rec = _ERRORS.get(key)
        if rec is None:
            rec = _ERRORS[key] = KernelErrorRecord()
        rec.count += 1
        rec.last = msg
        rec.last_time = time.time()
        rec.interrupt = rec.interrupt or interrupt
    except BaseException:  # noqa: BLE001 - recording must never raise either
        pass
