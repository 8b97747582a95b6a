"""``lutkan score``: the subcommand's flags and its small driver (the work is ``loop.score_file``)."""

from __future__ import annotations

import argparse
import sys

EXIT_OK, EXIT_USAGE = 0, 2

EPILOG = """\
formats (by extension, or --input-format/--output-format): .npy (memory-mapped), .csv/.txt, .parquet/.pq,
  an input folder of .parquet files (one table)
columns: --columns f0,f1,f2 | 0,1,2 | 0:78 | dur:bytes (names, 0-based indices, ranges; default: all)
bad rows (wrong number of CSV fields, an empty, null or non-numeric value; nan/inf are numbers):
  fail  stop, list the first ones (row, CSV line, reason), leave no output (exit 3)   [default]
  skip  leave them out; CSV/Parquet outputs get a 'row' column; every one goes to the report
  nan   NaN output rows in their place; every one goes to the report
output: -o PATH, default INPUT_STEM.scores.EXT beside the input. CSV/Parquet columns: [row] [--keep columns]
  y0 y1 ...; .npy: the scores only. Written to a temporary file and renamed at the end; an existing file is
  kept unless --overwrite.
backend (--backend auto, the default, picks the fastest available here and prints it once):
  .lutkan                              numba       the fused Numba network kernel
  .onnx with lutkan nodes (custom or   ort-native  onnxruntime with lutkan's native op (same kernel, from C)
    function form)                     ort-pyop    the onnxruntime-extensions PyOp, when the native op library
                                                   is not available (the line printed says why)
  other .onnx (standard form)          ort         plain onnxruntime
  --engine dask: every worker runs the backend chosen here (by name).
exit codes: 0 ok, 2 usage error, 3 lutkan error (bad model or input, bad rows under 'fail').
examples:
  lutkan score ids78.lutkan flows.parquet -o scores.parquet --columns f0:f77 --keep flow_id
  lutkan score ids78.onnx flows.csv --on-bad-rows skip --threads 2
  lutkan score ids78.lutkan flows.parquet --engine dask --workers 2
"""


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _cmd_score(a: argparse.Namespace) -> int:
    from lutkan.score.formats import UsageError
    from lutkan.score.loop import score_file

    def say(msg: str) -> None:
        if not a.quiet:
            print(msg, file=sys.stderr)

    try:
        st = score_file(a.model, a.input, a.output, columns=a.columns, keep=a.keep, input_format=a.input_format,
                        output_format=a.output_format, header=not a.no_header, delimiter=a.delimiter,
                        output_names=a.output_names, on_bad_rows=a.on_bad_rows, report=a.bad_rows_report,
                        batch_size=a.batch_size, threads=a.threads, backend=a.backend, engine=a.engine,
                        scheduler=a.scheduler, workers=a.workers, partition_rows=a.partition_rows,
                        overwrite=a.overwrite, progress=not a.quiet, say=say)
    except UsageError as e:
        print(a.score_parser.format_usage().rstrip(), file=sys.stderr)
        print(f"lutkan score: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    bad = f", {st.bad_rows:,} bad ({'left out' if a.on_bad_rows == 'skip' else 'NaN'})" if st.bad_rows else ""
    say(f"wrote {st.output}: {st.rows:,} rows{bad} in {st.seconds:.2f} s ({st.rows_per_s:,.0f} rows/s, {st.engine})")
    return EXIT_OK


def add_cli(subparsers) -> argparse.ArgumentParser:
    """Register ``lutkan score`` on the CLI's subparsers."""
    from lutkan.score.backends import AUTO, BACKENDS
    from lutkan.score.badrows import POLICIES
    from lutkan.score.engines import ENGINES
    from lutkan.score.formats import FORMATS
    from lutkan.score.predictor import DEFAULT_BATCH_SIZE

    s = subparsers.add_parser(
        "score", help="score a .npy/CSV/Parquet file of any size with a .lutkan or .onnx model",
        description="Score every row of INPUT with MODEL, in chunks with constant memory, in this process or on "
                    "a Dask cluster; bad rows are reported with their row numbers and never scored.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("model", help="MODEL.lutkan (Numba kernel) or MODEL.onnx (onnxruntime; lutkan's native op for "
                                 "LUTKanEdge nodes)")
    s.add_argument("input", help="INPUT.npy, INPUT.csv, INPUT.parquet or a folder of .parquet files")
    s.add_argument("-o", "--output", default=None, help="output .npy/.csv/.parquet (default INPUT_STEM.scores.EXT)")
    g = s.add_argument_group("input")
    g.add_argument("--columns", default=None, metavar="SPEC",
                   help="the model's input columns, in order: names, 0-based indices, START:STOP ranges, "
                        "comma-separated (default: every column)")
    g.add_argument("--keep", default=None, metavar="SPEC", help="CSV/Parquet: input columns copied to the output "
                   "before the scores, e.g. an id (same syntax as --columns)")
    g.add_argument("--input-format", choices=FORMATS, default=None, help="override the extension")
    g.add_argument("--no-header", action="store_true", help="CSV: the first line is data (columns by index only)")
    g.add_argument("--delimiter", default=",", help="CSV field delimiter, input and output (default ',')")
    g.add_argument("--on-bad-rows", choices=POLICIES, default="fail",
                   help="what to do with bad rows (default %(default)s)")
    g.add_argument("--bad-rows-report", default=None, metavar="PATH",
                   help="skip/nan: CSV of every bad row (row, line, reason); default OUTPUT_STEM.bad-rows.csv")
    o = s.add_argument_group("output")
    o.add_argument("--output-format", choices=FORMATS, default=None, help="override the extension")
    o.add_argument("--output-names", default=None, metavar="N1,N2,..", help="CSV/Parquet output column names "
                   "(default y0, y1, ...)")
    o.add_argument("--overwrite", action="store_true", help="replace an existing output / report")
    c = s.add_argument_group("compute")
    c.add_argument("--batch-size", type=_positive, default=DEFAULT_BATCH_SIZE,
                   help="rows per chunk (default %(default)s)")
    c.add_argument("--threads", type=_positive, default=1, help="compute threads per process (default %(default)s)")
    c.add_argument("--backend", choices=(AUTO,) + BACKENDS, default=AUTO,
                   help="auto (default): the fastest available for the model file: numba for .lutkan; for .onnx "
                   "ort-native, else ort-pyop, or ort without lutkan nodes (see below)")
    c.add_argument("--engine", choices=ENGINES, default="single", help="single: this process (default); dask: a "
                   "Dask cluster (an embedded LocalCluster unless --scheduler)")
    c.add_argument("--scheduler", default=None, metavar="ADDR", help="dask: scheduler address, e.g. tcp://host:8786")
    c.add_argument("--workers", type=_positive, default=None, help="dask: LocalCluster worker processes (default: "
                   "one per usable CPU)")
    c.add_argument("--partition-rows", type=_positive, default=None, help="dask: rows per task (default 1000000; "
                   "Parquet: whole row groups)")
    s.add_argument("--quiet", action="store_true", help="no progress bar or messages")
    s.set_defaults(func=_cmd_score, score_parser=s)
    return s


__all__ = ["add_cli"]
