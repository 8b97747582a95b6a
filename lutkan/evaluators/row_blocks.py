"""A batch split into contiguous row blocks evaluated concurrently (rows are independent in the contract).

The Numba kernels release the GIL (``nogil``), so blocks submitted to a thread pool really run in parallel and
the result is bitwise that of one call. Used by ``NumbaEvaluator(threads=...)`` and the onnxruntime plugin's
``kernel_threads``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["SPLIT_MIN_ROWS", "run_in_blocks"]

SPLIT_MIN_ROWS = 256
"""Smallest batch that is split, and about the fewest rows per block (below it, the thread hand-off costs more
than it saves)."""

_LOCK = threading.Lock()
_POOL: list = [None, 0]  # the shared ThreadPoolExecutor and its size


def _pool(workers: int) -> ThreadPoolExecutor:
    with _LOCK:
        if _POOL[1] < workers:
            # The old pool is not shut down (a concurrent call may still submit to it); its idle workers exit
            # once it is garbage-collected.
            _POOL[0], _POOL[1] = ThreadPoolExecutor(workers, thread_name_prefix="lutkan-kernel"), workers
        return _POOL[0]


def run_in_blocks(fn: Callable[[np.ndarray, np.ndarray], None], x: np.ndarray, out: np.ndarray, threads: int) -> None:
    """``fn(x[a:b], out[a:b])`` over up to ``threads`` row blocks of at least ``SPLIT_MIN_ROWS // 2`` rows, the
    first on the calling thread, the others on the shared pool; waits for all and re-raises the first error."""
    n = x.shape[0]
    parts = max(1, min(int(threads), n // (SPLIT_MIN_ROWS // 2))) if n >= SPLIT_MIN_ROWS else 1
    if parts == 1:
        fn(x, out)
        return
    bounds = [n * i // parts for i in range(parts + 1)]
    pool = _pool(parts - 1)
    futs = [pool.submit(fn, x[a:b], out[a:b]) for a, b in zip(bounds[1:-1], bounds[2:], strict=True)]
    try:
        fn(x[: bounds[1]], out[: bounds[1]])
    finally:
        errors = []
        for f in futs:
            try:
                f.result()
            except BaseException as e:  # noqa: BLE001 - collected, the first re-raised below
                errors.append(e)
    if errors:
        raise errors[0]
