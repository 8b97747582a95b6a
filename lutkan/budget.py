"""The resource budget: how many bytes one lutkan operation may allocate, checked before it allocates.

Every reader of untrusted input (``.lutkan`` artifacts, pykan checkpoints, ONNX files) and every stage that
expands a compiled model (the evaluators' dense tables, the exporter's initializers, the compiler's samples)
computes the bytes it is about to allocate from the *declared* shapes and calls :func:`check` first, so a small
file that declares a huge expansion is refused with a message instead of exhausting memory.

The limit, in bytes: the ``max_bytes=`` keyword of the entry point if given, else the environment variable
``LUTKAN_MAX_BYTES`` (an integer, optionally with a ``K``/``M``/``G``/``T`` binary suffix: ``8G``), else
``DEFAULT_MAX_BYTES`` (4 GiB). ``0`` or ``none`` disables the check. The figures are estimates of the large
arrays of one operation (not of the whole process): the small bookkeeping around them is not counted.
"""

from __future__ import annotations

import math
import os
import re

from lutkan.errors import LutKanError, ResourceLimitError

__all__ = ["DEFAULT_MAX_BYTES", "ENV_VAR", "check", "dense_table_bytes", "fmt_bytes", "max_bytes"]

ENV_VAR = "LUTKAN_MAX_BYTES"
DEFAULT_MAX_BYTES = 4 << 30
"""4 GiB: well below a workstation's memory and far above the real checkpoints' needs (their runtime tables take
at most 0.15 GB even at L=4096, the largest L)."""

_SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SPEC = re.compile(r"^\s*(\d{1,19})\s*([KMGT]?)(i?B)?\s*$", re.IGNORECASE)


def _parse(value: str) -> int | None:
    if value.strip().lower() in ("0", "none", "off", "unlimited"):
        return None
    m = _SPEC.match(value)
    if not m:
        raise LutKanError(f"{ENV_VAR}={value!r} is not a byte count; use e.g. {ENV_VAR}=8G or {ENV_VAR}=8589934592 "
                          f"(0 or 'none' disables the limit)")
    return int(m.group(1)) * _SUFFIX[m.group(2).upper()]


def max_bytes(override: int | None = None) -> int | None:
    """The limit in bytes (None: unlimited): ``override`` if given (0 = unlimited), else ``LUTKAN_MAX_BYTES``,
    else ``DEFAULT_MAX_BYTES``."""
    if override is not None:
        if isinstance(override, bool) or not isinstance(override, int) or override < 0:
            raise LutKanError(f"max_bytes={override!r} must be a non-negative integer (0 disables the limit)")
        return override or None
    env = os.environ.get(ENV_VAR)
    return DEFAULT_MAX_BYTES if env is None or not env.strip() else _parse(env)


def fmt_bytes(n: int | float) -> str:
    """``1536`` -> ``'1.5 KiB'`` (binary units, 3 significant digits)."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} EiB"  # pragma: no cover


def check(nbytes: int, what: str, *, limit: int | None = None, error: type[LutKanError] = ResourceLimitError,
          where: str = "") -> int:
    """Raise ``error`` if ``nbytes`` (Python int, exact) exceeds the limit (``max_bytes(limit)``); return it.

    The message names ``where`` (file, layer, node), ``what`` is being allocated, the figure and the limit, and
    how to raise it.
    """
    cap = max_bytes(limit)
    if cap is not None and nbytes > cap:
        prefix = f"{where}: " if where else ""
        raise error(f"{prefix}{what} would allocate {fmt_bytes(nbytes)} ({nbytes} bytes), over the resource limit "
                    f"of {fmt_bytes(cap)}; if this is expected, raise the limit with the environment variable "
                    f"{ENV_VAR} (e.g. {ENV_VAR}=64G) or the max_bytes= argument")
    return nbytes


def dense_table_bytes(I: int, K: int, L: int, O: int, table_itemsize: int, n_scale_arrays: int) -> int:
    """Bytes of one layer in the runtime layout (``lutkan.tables.LayerTables``): the dense table (I, K, L, O) in
    its stored dtype, its float32 dequantized copy, and ``n_scale_arrays`` float32 (I, K, O) scale/offset arrays.
    Exact Python integers (no overflow for any declared shape)."""
    cells = math.prod((int(I), int(K), int(L), int(O)))
    return cells * (int(table_itemsize) + 4) + int(n_scale_arrays) * 4 * math.prod((int(I), int(K), int(O)))
