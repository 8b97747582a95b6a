"""Numba's on-disk cache of functions that call Numba functions in other files.

Numba keys a cached function by its own source file only, so a cached caller keeps the old code of a callee that
lives in another (changed) file. ``flush_stale(funcs)`` drops the cache entries of ``funcs`` whenever the
sources of ``lutkan/evaluators`` (and the callers' own files) differ from when they were cached. Developers
editing a kernel are the ones affected; an installed package changes all its files at once.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

__all__ = ["flush_stale"]


def _stamp(extra: tuple[Path, ...]) -> str:
    files = sorted(Path(__file__).resolve().parent.glob("*.py")) + sorted(extra)
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def flush_stale(py_funcs) -> bool:
    """Flush the cache entries of ``py_funcs`` (plain Python functions of ``@njit``/``@cfunc`` definitions) if
    their dependencies changed since they were cached. False if Numba's cache cannot be inspected (the caller
    should then compile without caching); failures only ever cost compile time."""
    try:
        from numba.core.caching import FunctionCache

        stamp = _stamp(tuple({Path(sys.modules[f.__module__].__file__).resolve() for f in py_funcs}))
        for f in py_funcs:
            cache = FunctionCache(f)
            marker = Path(cache.cache_path) / f"{f.__module__}.{f.__qualname__}.lutkan-deps"
            try:
                old = marker.read_text()
            except OSError:
                old = None
            if old != stamp:
                cache.flush()
                marker.write_text(stamp)
        return True
    except Exception:  # noqa: BLE001 - any failure here only costs compile time
        return False
