"""Parquet input and output (pyarrow).

Input: a file, or a folder of files with one schema (e.g. what Spark or Dask wrote), read in sorted path
order as one table. Selected columns must be integer or floating point (others are refused by name and type before any
row is read); a null in a selected column makes its row bad. Parts are runs of whole row groups of about
``part_rows`` rows, read ``batch_rows`` at a time: a row group of up to 4 batches is read whole (faster),
a larger one is streamed, so memory stays a few batches plus one row group's compressed column chunks.
Output: the optional ``row`` column, then one float32 column per output, in row groups of >= 64 Ki rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lutkan.errors import InputError
from lutkan.score.badrows import BadRow
from lutkan.score.chunks import Batch, Part

_MIN_ROW_GROUP = 65536
_WHOLE_GROUP = 4  # a row group of at most this many batches is read whole, larger ones are streamed


def _pa():
    import pyarrow
    import pyarrow.parquet

    return pyarrow


def dataset_files(path: str) -> list[str]:
    """The Parquet files of ``path``: itself, or a folder's ``*.parquet`` files (recursively, in sorted path order,
    skipping names that start with ``.`` or ``_`` such as Spark's ``_SUCCESS``)."""
    p = Path(path)
    if not p.is_dir():
        return [str(p)]
    files = sorted(str(f) for f in p.rglob("*.parquet")
                   if f.is_file() and not any(part[:1] in "._" for part in f.relative_to(p).parts))
    if not files:
        raise InputError(f"{path}: a folder without .parquet files")
    return files


class ParquetSource:
    """A Parquet file, or a folder of Parquet files with one schema read as one table in sorted path order.

    Picklable (paths and selection; files are opened per part).
    """

    format = "parquet"

    def __init__(self, path: str):
        pa = _pa()
        self.path = str(path)
        self.files = dataset_files(self.path)
        self.groups: list[tuple[int, int]] = []  # (file, row group) in input order
        self.group_rows: list[int] = []
        schema = None
        for k, f in enumerate(self.files):
            try:
                pf = pa.parquet.ParquetFile(f)
            except FileNotFoundError:
                raise InputError(f"input file not found: {f}") from None
            except (OSError, pa.ArrowException) as e:
                raise InputError(f"cannot read {f} as Parquet: {e}") from None
            if schema is None:
                schema = pf.schema_arrow
            elif not pf.schema_arrow.equals(schema):
                raise InputError(f"{f}: its columns differ from {self.files[0]}'s; every file of a folder needs "
                                 f"the same schema")
            md = pf.metadata
            self.groups += [(k, g) for g in range(md.num_row_groups)]
            self.group_rows += [md.row_group(g).num_rows for g in range(md.num_row_groups)]
            pf.close()
        self.schema = schema
        self.names: list[str] | None = list(schema.names)
        self.types = [str(t) for t in schema.types]
        self._numeric = [pa.types.is_integer(t) or pa.types.is_floating(t) for t in schema.types]
        self.n_columns = len(self.names)
        self.n_rows: int | None = sum(self.group_rows)
        self.columns = list(range(self.n_columns))
        self.keep: list[int] = []

    def keep_fields(self) -> list:
        """The ``--keep`` columns as pyarrow fields (their own types)."""
        return [self.schema.field(i) for i in self.keep]

    def select(self, columns: list[int]) -> None:
        """Set the selection; InputError for a selected column that is not numeric."""
        for i in columns:
            if not self._numeric[i]:
                raise InputError(f"{self.path}: column {self.names[i]!r} has type {self.types[i]}; only integer and "
                                 "floating point columns can be scored (choose the model's inputs with --columns)")
        self.columns = list(columns)

    def line_of(self, row: int) -> None:
        return None

    def plan(self, part_rows: int) -> list[Part]:
        parts: list[Part] = []
        start, rows = 0, 0
        for g, n in enumerate(self.group_rows):
            rows += n
            if rows >= part_rows or g == len(self.group_rows) - 1:
                parts.append(Part(len(parts), start, g + 1, rows))
                start, rows = g + 1, 0
        return parts

    def batches(self, part: Part, batch_rows: int):
        pa = _pa()
        if part.stop <= part.start:
            return
        names = [self.names[i] for i in self.columns]
        kept = [self.names[i] for i in self.keep]
        files: dict[int, object] = {}
        try:
            for g in range(part.start, part.stop):
                k, rg = self.groups[g]
                if k not in files:
                    for f in files.values():
                        f.close()
                    files = {k: pa.parquet.ParquetFile(self.files[k])}
                pf = files[k]
                if self.group_rows[g] <= _WHOLE_GROUP * batch_rows:  # ~2x faster than streaming it
                    table = pf.read_row_group(rg, columns=names + kept, use_threads=False)
                    batches = table.to_batches(max_chunksize=batch_rows)
                else:  # a huge row group: stream it, memory stays a few batches
                    batches = pf.iter_batches(batch_size=batch_rows, row_groups=[rg], columns=names + kept,
                                              use_threads=False)
                for rb in batches:
                    batch = self._batch(rb, names)
                    if kept:
                        batch.extra = pa.Table.from_arrays(rb.columns[len(names):], names=kept)
                    yield batch
        finally:
            for f in files.values():
                f.close()

    def _batch(self, rb, names) -> Batch:
        pa = _pa()
        n = rb.num_rows
        xt = np.empty((len(names), n), np.float32)  # filled row by row (contiguous), transposed once
        bad_mask = np.zeros(n, bool)
        reasons: dict[int, str] = {}
        for j, name in enumerate(names):
            col = rb.column(j)
            xt[j] = (col if col.type == pa.float32() else col.cast(pa.float32(), safe=False)).to_numpy(
                zero_copy_only=False)
            if col.null_count:
                nulls = col.is_null().to_numpy(zero_copy_only=False)
                for r in np.flatnonzero(nulls & ~bad_mask):
                    reasons[int(r)] = f"missing value (null) in column {name!r}"
                bad_mask |= nulls
        x = np.ascontiguousarray(xt.T)
        if not reasons:
            return Batch(x, n)
        keep = np.flatnonzero(~bad_mask)
        bad = [BadRow(r, reasons[r]) for r in sorted(reasons)]
        return Batch(np.ascontiguousarray(x[keep]), n, keep, bad)


class ParquetWriter:
    """Streams outputs to one Parquet file of ``schema`` (``formats.output_schema``)."""

    def __init__(self, path: str, schema, *, row_column: bool = False):
        pa = _pa()
        self.schema = schema
        self.row_column = row_column
        self.rows = 0
        self._pending: list = []
        self._pending_rows = 0
        self._w = pa.parquet.ParquetWriter(str(path), self.schema)

    def write(self, y: np.ndarray, rows: np.ndarray | None = None, extra=None) -> None:
        from lutkan.score.formats import output_batch

        self._pending.append(output_batch(self.schema, y, rows if self.row_column else None, extra))
        self._pending_rows += y.shape[0]
        self.rows += y.shape[0]
        if self._pending_rows >= _MIN_ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            pa = _pa()
            self._w.write_table(pa.Table.from_batches(self._pending, schema=self.schema))
            self._pending, self._pending_rows = [], 0

    def close(self) -> None:
        if self._w is not None:
            self._flush()
            self._w.close()
            self._w = None

    def abort(self) -> None:
        if self._w is not None:
            self._w.close()
            self._w = None


__all__ = ["ParquetSource", "ParquetWriter"]
