"""Parquet input and output (pyarrow).

Input: selected columns must be integer or floating point (others are refused by name and type before any
row is read); a null in a selected column makes its row bad. Parts are runs of whole row groups of about
``part_rows`` rows, read ``batch_rows`` at a time: a row group of up to 4 batches is read whole (faster),
a larger one is streamed, so memory stays a few batches plus one row group's compressed column chunks.
Output: the optional ``row`` column, then one float32 column per output, in row groups of >= 64 Ki rows.
"""

from __future__ import annotations

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


class ParquetSource:
    """A Parquet file; picklable (path and selection; the file is opened per part)."""

    format = "parquet"

    def __init__(self, path: str):
        pa = _pa()
        self.path = str(path)
        try:
            pf = pa.parquet.ParquetFile(self.path)
        except FileNotFoundError:
            raise InputError(f"input file not found: {self.path}") from None
        except (OSError, pa.ArrowException) as e:
            raise InputError(f"cannot read {self.path} as Parquet: {e}") from None
        schema = pf.schema_arrow
        self.names: list[str] | None = list(schema.names)
        self.types = [str(t) for t in schema.types]
        self._numeric = [pa.types.is_integer(t) or pa.types.is_floating(t) for t in schema.types]
        self.n_columns = len(self.names)
        md = pf.metadata
        self.group_rows = [md.row_group(i).num_rows for i in range(md.num_row_groups)]
        self.n_rows: int | None = md.num_rows
        self.columns = list(range(self.n_columns))
        self.keep: list[int] = []

    def keep_fields(self) -> list:
        """The ``--keep`` columns as pyarrow fields (their own types)."""
        pa = _pa()
        schema = pa.parquet.read_schema(self.path)
        return [schema.field(i) for i in self.keep]

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
        pf = pa.parquet.ParquetFile(self.path)
        try:
            for g in range(part.start, part.stop):
                if self.group_rows[g] <= _WHOLE_GROUP * batch_rows:  # ~2x faster than streaming it
                    table = pf.read_row_group(g, columns=names + kept, use_threads=False)
                    batches = table.to_batches(max_chunksize=batch_rows)
                else:  # a huge row group: stream it, memory stays a few batches
                    batches = pf.iter_batches(batch_size=batch_rows, row_groups=[g], columns=names + kept,
                                              use_threads=False)
                for rb in batches:
                    batch = self._batch(rb, names)
                    if kept:
                        batch.extra = pa.Table.from_arrays(rb.columns[len(names):], names=kept)
                    yield batch
        finally:
            pf.close()

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
