"""``.npy`` input (memory-mapped, pages dropped once read) and output (streamed, header fixed at the end).

Input: a 2-D array of real numbers (float or integer; NaN/±inf are values, not bad rows), read through
one read-only ``mmap`` of the file. After each batch is copied out, its pages are released from this
process (``madvise(MADV_DONTNEED)``), so the resident memory stays one batch whatever the file size (the
kernel's page cache may still keep the file, which is shared and reclaimable). Columns are selected by
0-based index (a ``.npy`` has no names). Output: float32 ``(rows, n_outputs)``, written as the rows
arrive; the header reserves room and gets the final row count when the file is closed.
"""

from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np

from lutkan.errors import InputError
from lutkan.score.chunks import Batch, Part

_HEADER_BYTES = 128  # magic(6) + version(2) + length(2) + padded dict; room for any row count


def _read_header(path: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            return shape, fortran, dtype, f.tell()
    except FileNotFoundError:
        raise InputError(f"input file not found: {path}") from None
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read {path} as a .npy array: {e}") from None


class NpySource:
    """A ``.npy`` file of shape (rows, columns); picklable (path and selection only)."""

    format = "npy"

    def __init__(self, path: str):
        self.path = str(path)
        shape, fortran, dtype, offset = _read_header(self.path)
        if dtype.names is not None or dtype.kind not in "fiu":
            raise InputError(f"{self.path}: dtype {dtype} is not a real numeric type (float or integer)")
        if len(shape) != 2:
            raise InputError(f"{self.path}: shape {shape}; expected a 2-D array (rows, columns)")
        need = offset + int(np.prod(shape)) * dtype.itemsize
        if Path(self.path).stat().st_size < need:
            raise InputError(f"{self.path}: truncated: the header says {shape} {dtype}, the file is too short")
        self.shape, self.fortran, self.dtype, self.offset = shape, fortran, dtype, offset
        self.names: list[str] | None = None
        self.n_columns = shape[1]
        self.n_rows: int | None = shape[0]
        self.columns = list(range(self.n_columns))
        self.keep: list[int] = []

    def select(self, columns: list[int]) -> None:
        """Set the selection (0-based column indices, already resolved)."""
        self.columns = list(columns)

    def line_of(self, row: int) -> int | None:
        return None

    def plan(self, part_rows: int) -> list[Part]:
        n = self.shape[0]
        return [Part(i, a, min(a + part_rows, n), min(a + part_rows, n) - a)
                for i, a in enumerate(range(0, n, part_rows))]

    def batches(self, part: Part, batch_rows: int):
        """Copies of rows ``[part.start, part.stop)`` as float32, ``batch_rows`` at a time."""
        if part.stop <= part.start:
            return
        with open(self.path, "rb") as f:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            arr = np.ndarray(self.shape, self.dtype, buffer=mm, offset=self.offset,
                             order="F" if self.fortran else "C")
            if hasattr(mm, "madvise"):
                mm.madvise(mmap.MADV_SEQUENTIAL)
            all_cols = self.columns == list(range(self.n_columns))
            for a in range(part.start, part.stop, batch_rows):
                b = min(a + batch_rows, part.stop)
                block = arr[a:b] if all_cols else arr[a:b, self.columns]
                x = np.array(block, dtype=np.float32, order="C", copy=True)
                del block
                self._release(mm, a, b)
                yield Batch(x, b - a)
            del arr
        finally:
            try:
                mm.close()
            except BufferError:  # a view is still alive somewhere: leave it to the garbage collector
                pass

    def _release(self, mm: mmap.mmap, a: int, b: int) -> None:
        """Drop the pages of rows [a, b) from this process: one byte range in C order, one per column in
        Fortran order (a page shared with row b is kept)."""
        if not hasattr(mm, "madvise"):
            return
        n, w = self.shape
        size = self.dtype.itemsize
        if self.fortran:
            ranges = [(j * n + a, j * n + b) for j in range(w)]
        else:
            ranges = [(a * w, b * w)]
        for lo_item, hi_item in ranges:
            lo = (self.offset + lo_item * size) // mmap.PAGESIZE * mmap.PAGESIZE
            hi = (self.offset + hi_item * size) // mmap.PAGESIZE * mmap.PAGESIZE
            if hi > lo:
                mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)


def _header(rows: int, n_outputs: int) -> bytes:
    d = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {n_outputs}), }}"
    body = d.ljust(_HEADER_BYTES - 10 - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body.encode("latin1")


class NpyWriter:
    """Streams float32 rows to a ``.npy``; ``close`` writes the final shape into the reserved header."""

    def __init__(self, path: str, n_outputs: int):
        self.path = str(path)
        self.n_outputs = n_outputs
        self.row_column = False
        self.rows = 0
        self._f = open(self.path, "wb")
        self._f.write(_header(0, n_outputs))

    def write(self, y: np.ndarray, rows: np.ndarray | None = None, extra=None) -> None:
        self._f.write(np.ascontiguousarray(y, dtype="<f4").data)
        self.rows += y.shape[0]

    def close(self) -> None:
        if self._f is None:
            return
        self._f.seek(0)
        self._f.write(_header(self.rows, self.n_outputs))
        self._f.close()
        self._f = None

    def abort(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


__all__ = ["NpySource", "NpyWriter"]
