"""``score_file``: score a whole file, in chunks, with constant memory, on an engine; what ``lutkan score`` runs.

The engine yields ``Scored`` results in input order; this module numbers their rows, applies the bad-row
policy, writes the output (to a hidden temporary file renamed into place at the end, so a failed or
interrupted run leaves no partial output) and the bad-row report, and drives the progress bar.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from lutkan.errors import InputError, LutKanError
from lutkan.score import backends, formats
from lutkan.score.badrows import POLICIES, BadRowReport, BadRowsError
from lutkan.score.columns import describe, resolve_columns
from lutkan.score.engines import ENGINES, engine_results
from lutkan.score.formats import UsageError
from lutkan.score.predictor import DEFAULT_BATCH_SIZE, Predictor


@dataclass
class ScoreStats:
    """What a run did: row counts, times and where things went.

    ``seconds`` runs from the moment the engine is ready (at once for ``single``; once the Dask cluster is
    connected) to the closed output; ``total_seconds`` adds the engine's start (a LocalCluster's workers).
    Loading the model in this process is in neither. ``rows_per_s`` is ``rows / seconds``.
    """

    input: str
    output: str
    rows: int
    scored: int
    bad_rows: int
    seconds: float
    total_seconds: float
    rows_per_s: float
    backend: str
    engine: str
    report: str | None

    def to_dict(self) -> dict:
        return asdict(self)


def _output_names(names: str | None, n_outputs: int) -> list[str]:
    if names is None:
        return [f"y{j}" for j in range(n_outputs)]
    out = [s.strip() for s in names.split(",")]
    if len(out) != n_outputs or not all(out) or len(set(out)) != len(out):
        raise UsageError(f"--output-names {names!r}: give {n_outputs} distinct non-empty names (the model has "
                         f"{n_outputs} output{'s' if n_outputs != 1 else ''})")
    if "row" in out:
        raise UsageError("--output-names: 'row' is reserved for the input row number column")
    return out


def _check_paths(inp: Path, out: Path, report: Path | None, overwrite: bool) -> None:
    if out.resolve() == inp.resolve():
        raise UsageError(f"the output {out} is the input file")
    for p in (out, report):
        if p is not None and p.exists() and not overwrite:
            raise LutKanError(f"{p} exists; pass --overwrite to replace it")
        if p is not None and not p.parent.is_dir():
            raise LutKanError(f"cannot write {p}: folder {p.parent} does not exist")


def _select_keep(source, keep: str | None, fmt_in: str, fmt_out: str) -> None:
    if keep is None:
        return
    if fmt_in == "npy" or fmt_out == "npy":
        raise UsageError("--keep copies CSV/Parquet input columns into a CSV/Parquet output")
    idx = resolve_columns(keep, source.names, source.n_columns)
    both = [i for i in idx if i in source.columns]
    if both:
        raise UsageError(f"--keep and --columns both select {describe(both, source.names)}; a model input is "
                         "not copied (keep another column, e.g. an id)")
    source.keep = idx


def _width_check(source, predictor: Predictor, columns: str | None) -> None:
    w, n = len(source.columns), predictor.n_inputs
    if w == n:
        return
    hint = (f"; select the model's {n} input columns with --columns (names, 0-based indices or ranges such as 0:{n})"
            if columns is None else "")
    raise InputError(f"{source.path}: {describe(source.columns, source.names)} selected, the model expects {n}{hint}")


def _check_options(on_bad_rows: str, engine: str, scheduler, workers, partition_rows) -> None:
    if on_bad_rows not in POLICIES:
        raise UsageError(f"--on-bad-rows {on_bad_rows!r}; choose one of {', '.join(POLICIES)}")
    if engine not in ENGINES:
        raise UsageError(f"--engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine != "dask" and (scheduler or workers or partition_rows):
        raise UsageError("--scheduler, --workers and --partition-rows apply to --engine dask")
    if scheduler and workers:
        raise UsageError("--workers sizes the embedded LocalCluster; with --scheduler the cluster has its own workers")


def _extra_fields(source, names: list[str], row_column: bool) -> list:
    extra = source.keep_fields() if source.keep else []
    clash = {f.name for f in extra} & (set(names) | ({"row"} if row_column else set()))
    if clash:
        raise UsageError(f"--keep column(s) {', '.join(sorted(clash))} would clash with an output column; "
                         "rename the outputs with --output-names")
    return extra


@dataclass
class _Job:
    """Everything ``_run`` needs, checked."""

    source: object
    predictor: Predictor
    out: Path
    fmt_out: str
    names: list[str]
    row_column: bool
    extra_fields: list
    report: Path | None
    policy: str
    delimiter: str


def score_file(model, input, output=None, *, columns: str | None = None, keep: str | None = None,
               input_format: str | None = None, output_format: str | None = None, header: bool = True,
               delimiter: str = ",", output_names: str | None = None, on_bad_rows: str = "fail", report=None,
               batch_size: int = DEFAULT_BATCH_SIZE, threads: int = 1, backend: str = "auto", engine: str = "single",
               scheduler: str | None = None, workers: int | None = None, partition_rows: int | None = None,
               overwrite: bool = False, progress: bool = True, say=None) -> ScoreStats:
    """Score every row of ``input`` with ``model`` into ``output`` (see ``lutkan score --help``).

    With ``engine="dask"`` and no ``scheduler``, a LocalCluster starts worker processes, which import the
    calling script: call it under ``if __name__ == "__main__":`` there.

    Raises ``UsageError`` for inconsistent options, ``BadRowsError`` for bad rows under ``fail``,
    ``InputError``/``LutKanError`` for unreadable files and width mismatches.
    """
    say = say or (lambda msg: None)
    _check_options(on_bad_rows, engine, scheduler, workers, partition_rows)
    fmt_in = formats.detect(str(input), input_format, "input")
    out = Path(output) if output is not None else formats.default_output(str(input), output_format or fmt_in)
    fmt_out = formats.detect(str(out), output_format, "output")
    if fmt_in == "npy" and (not header or delimiter != ","):
        raise UsageError("--no-header and --delimiter apply to CSV input")
    source = formats.open_source(str(input), fmt_in, header=header, delimiter=delimiter)
    source.select(resolve_columns(columns, source.names, source.n_columns))
    _select_keep(source, keep, fmt_in, fmt_out)
    chosen = Predictor(model, batch_size=batch_size, threads=threads, backend=backend).build().backend
    # the backend chosen here, by name: every Dask worker runs the same one (and this process shares the evaluator)
    predictor = Predictor(model, batch_size=batch_size, threads=threads, backend=chosen).build()
    _width_check(source, predictor, columns)
    names = _output_names(output_names, predictor.n_outputs)
    row_column = on_bad_rows == "skip" and fmt_out != "npy"
    report_path = None if on_bad_rows == "fail" else Path(report) if report else formats.default_report(str(out))
    job = _Job(source, predictor, out, fmt_out, names, row_column, _extra_fields(source, names, row_column),
               report_path, on_bad_rows, delimiter)
    _check_paths(Path(input), out, report_path, overwrite)
    say(f"scoring {source.path} ({describe(source.columns, source.names)}) [{engine}] -> {out}")
    say(f"backend: {backends.describe(chosen)}, {threads} thread{'s' if threads != 1 else ''}"
        f"{' per worker' if engine == 'dask' else ''}")
    stats, summary = _run(job, str(input), engine, progress, say, scheduler=scheduler, workers=workers,
                          part_rows=partition_rows)
    if summary:
        say(summary)
    return stats


def _run(job: _Job, input: str, engine: str, progress: bool, say, **engine_opts) -> tuple[ScoreStats, str]:
    """Write the output to a hidden temporary file, renamed into place only when every row is done."""
    tmp = job.out.with_name(f".{job.out.name}.partial-{os.getpid()}")
    writer = formats.open_writer(str(tmp), job.fmt_out, job.names, row_column=job.row_column,
                                 delimiter=job.delimiter, extra_fields=job.extra_fields)
    bad = BadRowReport(job.report, job.source.line_of) if job.report is not None else None
    ok = False
    t0 = time.perf_counter()
    ready = [t0]

    def on_ready(msg: str) -> None:
        ready[0] = time.perf_counter()
        say(msg)

    try:
        with engine_results(engine, job.source, job.predictor, job.predictor.batch_size,
                            stop_on_bad=job.policy == "fail", on_ready=on_ready, **engine_opts) as results:
            rows, scored = _consume(results, job.source, writer, bad, job.policy, job.predictor.n_outputs, progress)
            writer.close()
            t1 = time.perf_counter()  # before a LocalCluster's shutdown
        os.replace(tmp, job.out)
        ok = True
    finally:
        if bad is not None:
            bad.close()
        if not ok:
            writer.abort()
            tmp.unlink(missing_ok=True)
            if bad is not None and bad.count:
                job.report.unlink(missing_ok=True)
    n_bad = bad.count if bad is not None else 0
    if job.report is not None and job.report.exists() and not n_bad:
        job.report.unlink()  # an old report (--overwrite) must not outlive a clean run
    seconds, total = t1 - ready[0], t1 - t0
    stats = ScoreStats(input, str(job.out), rows, scored, n_bad, seconds, total,
                       rows / seconds if seconds > 0 else float("nan"), job.predictor.backend, engine,
                       str(job.report) if n_bad else None)
    return stats, bad.summary(job.policy) if n_bad else ""


def _consume(results, source, writer, bad, policy: str, n_outputs: int, progress: bool) -> tuple[int, int]:
    from tqdm import tqdm

    rows = scored = 0
    total = source.n_rows if source.n_rows is not None else getattr(source, "estimated_rows", None)
    bar = tqdm(total=total, unit="rows", unit_scale=True, disable=not progress, dynamic_ncols=True,
               desc=Path(source.path).name, mininterval=0.5)
    try:
        for r in results:
            if r.bad:
                shifted = [b.shifted(rows) for b in r.bad]
                if policy == "fail":
                    raise BadRowsError(source.path, shifted, source.line_of)
                bad.add(shifted)
                bar.set_postfix(bad=bad.count, refresh=False)
            if policy == "nan" and r.good is not None:
                y = np.full((r.n_rows, n_outputs), np.nan, np.float32)
                y[r.good] = r.y
                writer.write(y, None, r.extra)
            else:
                local = np.arange(r.n_rows) if r.good is None else r.good
                extra = r.extra if r.extra is None or r.good is None else r.extra.take(r.good)
                writer.write(r.y, local + rows if writer.row_column else None, extra)
            rows += r.n_rows
            scored += r.y.shape[0]
            bar.update(r.n_rows)
        bar.total = rows  # a CSV's total was an estimate
    finally:
        bar.close()
    return rows, scored


__all__ = ["ScoreStats", "score_file"]
