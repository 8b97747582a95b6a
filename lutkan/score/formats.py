"""File formats: which one a path is, opening its reader or writer, and the default output name.

=========  ==================================  ================================================
format     input / output names                 needs
=========  ==================================  ================================================
npy        ``.npy``                            numpy (input memory-mapped)
csv        ``.csv``, ``.txt``                  pyarrow (``pip install 'lutkan[scale]'``)
parquet    ``.parquet``, ``.pq``; input folder  pyarrow (a folder: its ``*.parquet`` files, one table)
=========  ==================================  ================================================

Another extension needs ``--input-format`` / ``--output-format``.
"""

from __future__ import annotations

import os
from pathlib import Path

from lutkan.errors import LutKanError

FORMATS = ("npy", "csv", "parquet")
EXTENSIONS = {".npy": "npy", ".csv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}
_DEFAULT_EXT = {"npy": ".npy", "csv": ".csv", "parquet": ".parquet"}


class UsageError(LutKanError):
    """The command line is inconsistent (``lutkan score`` exits with code 2)."""


def detect(path: str, override: str | None, what: str) -> str:
    """The format of ``path``: ``override`` if given, else from its extension (UsageError if unknown)."""
    if override is not None:
        if override not in FORMATS:
            raise UsageError(f"unknown {what} format {override!r}; choose one of {', '.join(FORMATS)}")
        return override
    if what == "input" and Path(path).is_dir():
        return "parquet"  # a folder of Parquet files
    fmt = EXTENSIONS.get(Path(path).suffix.lower())
    if fmt is None:
        raise UsageError(f"cannot tell the format of {what} {path!r} from its extension; use a "
                         f"{'/'.join(sorted(EXTENSIONS))} name or pass --{what}-format {'|'.join(FORMATS)}")
    return fmt


def _need_pyarrow(fmt: str) -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise LutKanError(f"{fmt} files need pyarrow: pip install 'lutkan[scale]' (or pip install pyarrow)") from None


def open_source(path: str, fmt: str, *, header: bool = True, delimiter: str = ","):
    """The reader of an input file (absolute path, so other processes can open it)."""
    path = os.path.abspath(path)
    if fmt == "npy":
        from lutkan.score.npy_io import NpySource

        return NpySource(path)
    _need_pyarrow(fmt)
    if fmt == "csv":
        from lutkan.score.csv_io import CsvSource

        return CsvSource(path, header=header, delimiter=delimiter)
    from lutkan.score.parquet_io import ParquetSource

    return ParquetSource(path)


def open_writer(path: str, fmt: str, names: list[str], *, row_column: bool, delimiter: str = ",", extra_fields=()):
    """A streaming writer of ``len(names)`` float32 outputs (``write(y, rows, extra)``, ``close``, ``abort``)."""
    if fmt == "npy":
        from lutkan.score.npy_io import NpyWriter

        if row_column or extra_fields:
            raise UsageError("a .npy output holds the scores only (no row or --keep columns)")
        return NpyWriter(path, len(names))
    _need_pyarrow(fmt)
    schema = output_schema(names, row_column=row_column, extra_fields=extra_fields)
    if fmt == "csv":
        from lutkan.score.csv_io import CsvWriter

        return CsvWriter(path, schema, row_column=row_column, delimiter=delimiter)
    from lutkan.score.parquet_io import ParquetWriter

    return ParquetWriter(path, schema, row_column=row_column)


def output_schema(names: list[str], *, row_column: bool, extra_fields=()):
    """The columns of a CSV/Parquet output: ``row`` (int64, if asked), the ``--keep`` columns, the scores."""
    import pyarrow as pa

    return pa.schema(([pa.field("row", pa.int64())] if row_column else []) + list(extra_fields)
                     + [pa.field(n, pa.float32()) for n in names])


def output_batch(schema, y, rows, extra):
    """One pyarrow RecordBatch of ``schema`` from the scores, row numbers and kept columns."""
    import pyarrow as pa

    arrays = [] if rows is None else [pa.array(rows, pa.int64())]
    if extra is not None:
        arrays += [c.combine_chunks() for c in extra.columns]
    arrays += [pa.array(y[:, j]) for j in range(y.shape[1])]
    return pa.record_batch(arrays, schema=schema)


def default_output(input_path: str, fmt: str) -> Path:
    """``DIR/NAME.scores.EXT`` beside the input (EXT: the output format's), flows.parquet -> flows.scores.parquet."""
    p = Path(input_path)
    stem = p.name if p.is_dir() else p.stem
    return p.with_name(f"{stem}.scores{_DEFAULT_EXT[fmt]}")


def default_report(output_path: str) -> Path:
    """``DIR/NAME.bad-rows.csv`` beside the output, e.g. flows.scores.parquet -> flows.scores.bad-rows.csv."""
    p = Path(output_path)
    return p.with_name(f"{p.stem}.bad-rows.csv")


__all__ = ["EXTENSIONS", "FORMATS", "UsageError", "default_output", "default_report", "detect", "open_source",
           "open_writer", "output_batch", "output_schema"]
