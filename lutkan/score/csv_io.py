"""CSV input and output (pyarrow's CSV parser and writer).

Input rules (one line = one row; this is what lets any process read any part and name bad rows by line):

* UTF-8 text, ``--delimiter`` (default ``,``), the first line is the header unless ``--no-header``;
  row numbers count data lines from 0, line numbers count the file's lines from 1.
* A line with a number of fields other than the header's is a bad row, and so is a blank line.
* A selected value must be a number as written by any CSV tool: ``1``, ``-2.5``, ``1e-3``, ``.5``; ``nan``,
  ``inf``, ``-inf`` are numbers (the contract defines their results). An empty value or anything else
  (``N/A``, ``1,5``, ``0x10``) makes the row bad; spaces around a number are allowed. Unselected columns
  are not checked.
* Quoted fields are unquoted; a quoted field containing a line break is not supported (the line break
  ends the row, which then has the wrong number of fields and is reported).

Parts are byte ranges ending at line ends, so a file is split without reading it first.
"""

from __future__ import annotations

import csv
import io
import os

import numpy as np

from lutkan.errors import InputError
from lutkan.score.badrows import BadRow
from lutkan.score.chunks import Batch, Part

_NUMBER = (r"^[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[iI][nN][fF]([iI][nN][iI][tT][yY])?|[nN][aA][nN])$")
_SAMPLE_BYTES = 1 << 16
_BLOCK = 1 << 20  # pyarrow parse block: 1 MiB is ~2.5x faster than one block per batch (cache)


def _pa():
    import pyarrow
    import pyarrow.compute
    import pyarrow.csv

    return pyarrow


class CsvSource:
    """A CSV file; picklable (path, options and selection; files are opened per part)."""

    format = "csv"

    def __init__(self, path: str, *, header: bool = True, delimiter: str = ","):
        if len(delimiter) != 1 or delimiter in "\r\n\"":
            raise InputError(f"--delimiter must be one character other than a quote or line break, got {delimiter!r}")
        self.path, self.header, self.delimiter = str(path), header, delimiter
        try:
            with open(self.path, "rb") as f:
                first = f.readline()
                self.data_start = f.tell() if header else 0
                self.size = os.fstat(f.fileno()).st_size
        except FileNotFoundError:
            raise InputError(f"input file not found: {self.path}") from None
        except OSError as e:
            raise InputError(f"cannot read {self.path}: {e}") from None
        if not first:
            raise InputError(f"{self.path}: the file is empty{' (no header line)' if header else ''}")
        try:
            fields = next(csv.reader([first.decode("utf-8").rstrip("\r\n")], delimiter=delimiter))
        except UnicodeDecodeError as e:
            raise InputError(f"{self.path}: line 1 is not UTF-8 text ({e}); is this a CSV file?") from None
        self.n_columns = len(fields)
        self.names: list[str] | None = [fields[0].lstrip("\ufeff")] + fields[1:] if header else None
        self.n_rows: int | None = None
        self.columns = list(range(self.n_columns))
        self.keep: list[int] = []

    def keep_fields(self) -> list:
        """The ``--keep`` columns as pyarrow string fields (copied as written, quotes removed)."""
        pa = _pa()
        return [pa.field(self.names[i] if self.names is not None else str(i), pa.string()) for i in self.keep]

    def select(self, columns: list[int]) -> None:
        """Set the selection (0-based column indices, already resolved)."""
        self.columns = list(columns)

    @property
    def estimated_rows(self) -> int:
        """Data rows estimated from the file size and the first 64 KiB (for the progress bar only)."""
        return int((self.size - self.data_start) / self._bytes_per_row())

    def line_of(self, row: int) -> int:
        return row + (2 if self.header else 1)

    def _label(self, i: int) -> str:
        return repr(self.names[i]) if self.names is not None else str(i)

    # -- planning ---------------------------------------------------------------------------------
    def _bytes_per_row(self) -> float:
        with open(self.path, "rb") as f:
            f.seek(self.data_start)
            sample = f.read(_SAMPLE_BYTES)
        return max(1.0, len(sample) / max(1, sample.count(b"\n")))

    def plan(self, part_rows: int) -> list[Part]:
        """Byte ranges of about ``part_rows`` lines each, every one ending at a line end."""
        step = max(1 << 16, int(part_rows * self._bytes_per_row()))
        bounds = [self.data_start]
        with open(self.path, "rb") as f:
            while bounds[-1] + step < self.size:
                f.seek(bounds[-1] + step - 1)
                f.readline()  # to the end of the line that contains the target byte
                if f.tell() >= self.size:
                    break
                bounds.append(f.tell())
        bounds.append(self.size)
        return [Part(i, a, b) for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)) if b > a]

    # -- reading ----------------------------------------------------------------------------------
    def batches(self, part: Part, batch_rows: int):
        """Parse the part's lines, about ``batch_rows`` at a time."""
        step = max(1 << 16, int(batch_rows * self._bytes_per_row()))
        with open(self.path, "rb") as f:
            f.seek(part.start)
            pos = part.start
            while pos < part.stop:
                buf = f.read(min(step, part.stop - pos))
                if pos + len(buf) < part.stop and not buf.endswith(b"\n"):
                    buf += f.readline()
                    if pos + len(buf) > part.stop:  # cannot happen for a planned part; keep to the part
                        buf = buf[: part.stop - pos]
                        f.seek(part.stop)
                yield self._parse(buf, pos)
                pos += len(buf)

    def _parse(self, buf: bytes, start: int) -> Batch:
        pa = _pa()
        names = [f"c{i}" for i in range(self.n_columns)]
        wanted = [names[i] for i in self.columns]
        kept = [names[i] for i in self.keep]
        wrong: list[tuple[int, int]] = []  # (1-based record in buf, fields)

        def on_invalid(row) -> str:
            wrong.append((row.number, row.actual_columns))
            return "skip"

        def read(types):
            return pa.csv.read_csv(
                io.BytesIO(buf),
                read_options=pa.csv.ReadOptions(column_names=names, use_threads=False, block_size=_BLOCK),
                parse_options=pa.csv.ParseOptions(delimiter=self.delimiter, invalid_row_handler=on_invalid,
                                                  ignore_empty_lines=False, newlines_in_values=False),
                convert_options=pa.csv.ConvertOptions(
                    include_columns=wanted + kept, column_types={**{c: types for c in wanted},
                                                                 **{c: pa.string() for c in kept}},
                    null_values=[""], strings_can_be_null=True))

        try:
            table = read(pa.float32())
            cols = [table.column(c) for c in wanted]
            invalid = [None] * len(cols)
        except pa.ArrowInvalid:  # a value is not a number: find which, column by column
            wrong.clear()
            try:
                table = read(pa.string())
            except pa.ArrowInvalid as e:
                raise InputError(f"{self.path}: cannot parse the CSV lines at byte {start}: {e}") from None
            cols, invalid = zip(*(self._to_float(table.column(c).combine_chunks()) for c in wanted), strict=True)
        batch = self._assemble(table.num_rows, wanted, cols, invalid, wrong)
        if kept:
            batch.extra = self._extra(table, kept, wrong, batch.n_rows)
        return batch

    def _extra(self, table, kept: list[str], wrong, n_rows: int):
        """The kept columns for every line of the batch (null on lines with the wrong number of fields)."""
        pa = _pa()
        extra = table.select(kept).rename_columns([f.name for f in self.keep_fields()])
        if not wrong:
            return extra
        idx = np.full(n_rows, -1, np.int64)
        idx[np.delete(np.arange(n_rows), [n - 1 for n, _ in wrong])] = np.arange(table.num_rows)
        return extra.take(pa.array(idx, mask=idx < 0))

    @staticmethod
    def _to_float(col):
        """(float32 column, null where a value is empty or not a number; mask of the not-a-number values).

        Decides exactly as pyarrow's CSV float conversion does (the fast path): surrounding whitespace is
        trimmed, then the text must be what arrow parses as a float32.
        """
        pa = _pa()
        pc = pa.compute
        text = pc.utf8_trim_whitespace(col)
        text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
        try:
            return pc.cast(text, pa.float32()), None
        except pa.ArrowInvalid:
            pass
        ok = pc.fill_null(pc.match_substring_regex(text, _NUMBER), True).to_numpy(zero_copy_only=False).copy()
        values = text.to_pylist()
        for r in np.flatnonzero(~ok):  # what the pattern rejects, arrow may still parse (e.g. "nan(1)")
            try:
                pc.cast(pa.array([values[r]]), pa.float32())
                ok[r] = True
            except pa.ArrowInvalid:
                pass
        try:
            vals = pc.cast(pc.if_else(pa.array(ok), text, pa.scalar(None, pa.string())), pa.float32())
        except pa.ArrowInvalid:  # the pattern let through something arrow rejects: decide value by value
            for r in np.flatnonzero(ok):
                try:
                    pc.cast(pa.array([values[r]]), pa.float32())
                except pa.ArrowInvalid:
                    ok[r] = False
            vals = pc.cast(pc.if_else(pa.array(ok), text, pa.scalar(None, pa.string())), pa.float32())
        return vals, ~ok

    def _assemble(self, n_ok: int, wanted, cols, invalid, wrong) -> Batch:
        n_rows = n_ok + len(wrong)
        xt = np.empty((len(cols), n_ok), np.float32)  # filled row by row (contiguous), transposed once
        bad_mask = np.zeros(n_ok, bool)
        n_empty = np.zeros(n_ok, np.int64)
        reasons: dict[int, str] = {}
        for j, (col, inv) in enumerate(zip(cols, invalid, strict=True)):
            xt[j] = col.to_numpy(zero_copy_only=False)
            nulls = col.is_null().to_numpy(zero_copy_only=False) if col.null_count else None
            if nulls is None and inv is None:
                continue
            miss = nulls if nulls is not None else np.zeros(n_ok, bool)
            for r in np.flatnonzero(miss):
                if r not in reasons:
                    what = "not a number" if inv is not None and inv[r] else "empty value"
                    reasons[int(r)] = f"{what} in column {self._label(self.columns[j])}"
            bad_mask |= miss
            n_empty += miss if inv is None else miss & ~inv
        if len(cols) > 1:
            for r in np.flatnonzero(n_empty == len(cols)):
                reasons[int(r)] = "blank line (no values)"
        # local record numbers of the table's rows: every record except the wrong-width ones
        skipped = np.array(sorted(n - 1 for n, _ in wrong), dtype=np.int64)
        rec = np.delete(np.arange(n_rows), skipped) if len(skipped) else np.arange(n_rows)
        x = np.ascontiguousarray(xt.T)
        bad = [BadRow(int(rec[r]), reasons[r]) for r in np.flatnonzero(bad_mask)]
        bad += [BadRow(n - 1, f"{k} field{'s' if k != 1 else ''}, expected {self.n_columns}") for n, k in wrong]
        if not bad:
            return Batch(x, n_rows)
        bad.sort(key=lambda b: b.row)
        keep = ~bad_mask
        return Batch(np.ascontiguousarray(x[keep]), n_rows, rec[keep], bad)


class CsvWriter:
    """Streams outputs to a CSV of ``schema`` (``formats.output_schema``; floats as their shortest text)."""

    def __init__(self, path: str, schema, *, row_column: bool = False, delimiter: str = ","):
        pa = _pa()
        self.schema = schema
        self.row_column = row_column
        self.rows = 0
        head = io.StringIO()
        csv.writer(head, delimiter=delimiter, lineterminator="\n").writerow(self.schema.names)
        self._file = pa.OSFile(str(path), "wb")
        self._file.write(head.getvalue().encode("utf-8"))  # the header quoted only where needed
        self._w = pa.csv.CSVWriter(self._file, self.schema,
                                   write_options=pa.csv.WriteOptions(include_header=False, delimiter=delimiter))

    def write(self, y: np.ndarray, rows: np.ndarray | None = None, extra=None) -> None:
        from lutkan.score.formats import output_batch

        self._w.write_batch(output_batch(self.schema, y, rows if self.row_column else None, extra))
        self.rows += y.shape[0]

    def close(self) -> None:
        if self._w is not None:
            self._w.close()
            self._file.close()
            self._w = None

    abort = close


__all__ = ["CsvSource", "CsvWriter"]
