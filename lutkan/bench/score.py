"""``python -m lutkan.bench.score``: throughput and memory of ``lutkan score`` against issue 16's targets.

    python -m lutkan.bench.score --out score-bench            # ~3 min on 2 cores, ~5 GB of temporary data
    python -m lutkan.bench.score --out /tmp/sb --quick        # the same measurements on 10x smaller files

Model: ``models/ids78/0.0`` compiled with default options. Data: rows drawn from its ``test_data.npz``
with a little noise, generated into a temporary folder (``--tmp``; removed at the end), never the repo.
Every measurement runs in a fresh subprocess (``--child``), in this order:

1. **bare kernel vs single process** on the big ``.npy`` (``--rows``, default 10 M): the kernel is
   ``NumbaEvaluator`` called on ``--batch-size`` row slices of the array already in memory; ``single`` is
   ``score_file`` .npy -> .npy. Runs alternate kernel, single, single, kernel (``--repeats`` pairs), so
   drifting machine load falls on both alike; the figure is the median of each.
2. **peak RSS** of ``score_file`` at ``--rss-rows`` (default 1 M and 10 M): VmHWM after resetting it once
   the model is loaded (``/proc/self/clear_refs``), and the resident size before the loop.
3. **formats x engines** at ``--format-rows`` (1 M): npy / CSV / Parquet, single and dask (2 workers).
4. **backends** at ``--format-rows`` (1 M, ``.npy``): the ``.lutkan`` (``numba``) against its custom-form
   ``.onnx`` export (``auto``: ``ort-native``, the native onnxruntime op), alternating: the backend choice.
5. **dask scaling** on one Parquet file of ``--dask-rows`` (4 M): LocalCluster with 1 and with 2 workers
   (alternating), then the single-process peak RSS on that file (vs the ``--format-rows`` Parquet file's).

``--sections kernel,rss,formats,backends,dask`` runs a subset (e.g. the dask pair again on a quieter machine).

Each row records the CPU model, the 1-minute load average before and after it, and ``others_cpu``: how many
CPUs processes outside the measurement used on average while it ran (the machine's busy time from
``/proc/stat`` minus the measurement's own process tree's CPU time), the honest measure of a shared
machine's interference. ``rows_per_s`` is the engine's loop time (``ScoreStats.seconds``: for dask, from the
connected cluster on). Writes ``results.csv``, ``results.json`` and ``report.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = REPO / "models" / "ids78" / "0.0"
FIELDS = ("name", "format", "engine", "backend", "workers", "rows", "seconds", "total_seconds", "rows_per_s",
          "rss_before_mib", "rss_peak_mib", "load1_before", "load1_after", "others_cpu", "repeat", "attempt", "discarded",
          "cpu_model", "note")


# -- the child: one measurement in a fresh process ------------------------------------------------
def _vm(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _child(spec: dict) -> dict:
    if spec["kind"] == "kernel":
        import lutkan
        from lutkan.evaluators.numba_eval import NumbaEvaluator

        x = np.load(spec["input"])  # in memory: no I/O in the timed loop
        ev = NumbaEvaluator(lutkan.load(spec["model"]))
        ev(x[:16])
        b = spec["batch_size"]
        t = time.perf_counter()
        for a in range(0, len(x), b):
            ev(x[a:a + b])
        sec = time.perf_counter() - t
        return {"rows": len(x), "seconds": sec, "total_seconds": sec, "rows_per_s": len(x) / sec, "backend": "numba"}
    from lutkan.score import Predictor, score_file

    Predictor(spec["model"], batch_size=spec["batch_size"]).build()  # model + JIT cache: not part of the loop
    before = _vm("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark
    except OSError:
        pass
    st = score_file(spec["model"], spec["input"], spec["output"], columns=spec.get("columns"),
                    batch_size=spec["batch_size"], engine=spec["engine"], workers=spec.get("workers"),
                    partition_rows=spec.get("partition_rows"), overwrite=True, progress=False)
    return {"rows": st.rows, "seconds": st.seconds, "total_seconds": st.total_seconds, "rows_per_s": st.rows_per_s,
            "rss_before_mib": before, "rss_peak_mib": _vm("VmHWM"), "backend": st.backend}


def _busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (all cores; /proc/stat)."""
    v = [int(t) for t in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait


def _own_seconds() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)  # the measurement's process tree, once it has exited
    return r.ru_utime + r.ru_stime


def _measure(spec: dict, name: str, ctx: dict, **extra) -> dict:
    """One measurement; repeated (up to ``--retries`` more times) while processes outside it used more than
    ``--max-others`` CPUs on average. Every discarded attempt is kept in ``ctx["discarded"]``."""
    a = ctx["a"]
    for attempt in range(a.retries + 1):
        row = _measure_once(spec, name, ctx["cpu"], attempt=attempt, **extra)
        if row["others_cpu"] <= a.max_others or attempt == a.retries:
            return row
        ctx["discarded"].append(row)
        print(f"  (others used {row['others_cpu']:.2f} CPUs > {a.max_others}: measuring again)", flush=True)
    raise AssertionError("unreachable")


def _measure_once(spec: dict, name: str, cpu: str, **extra) -> dict:
    load0 = os.getloadavg()[0]
    busy0, own0, t0 = _busy_seconds(), _own_seconds(), time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "lutkan.bench.score", "--child", json.dumps(spec)], check=False,
                       capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    if r.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{r.stderr[-4000:]}")
    wall = time.perf_counter() - t0
    others = max(0.0, (_busy_seconds() - busy0) - (_own_seconds() - own0)) / wall
    res = json.loads(r.stdout.strip().splitlines()[-1])
    row = {"name": name, "format": Path(spec["input"]).suffix.lstrip("."), "engine": spec.get("engine", "kernel"),
           "workers": spec.get("workers", ""), "load1_before": round(load0, 2),
           "load1_after": round(os.getloadavg()[0], 2), "others_cpu": round(others, 2), "cpu_model": cpu,
           **extra, **res}
    print(f"  {name:<24} {row['format']:<8} {row['engine']:<7} {row['rows']:>10,} rows "
          f"{row['rows_per_s']:>12,.0f} rows/s  load {row['load1_before']}->{row['load1_after']}  "
          f"others {others:.2f} CPUs", flush=True)
    return row


# -- data ---------------------------------------------------------------------------------------------
def _generate(path: Path, rows: int, seed: int = 0) -> None:
    """``rows`` x 78 float32 drawn from ids78's test rows plus 5% noise, written in 1 M-row chunks."""
    X = np.load(DEFAULT_MODEL.parent / "test_data.npz")["X_test"].astype(np.float32)
    std = X.std(axis=0) * np.float32(0.05)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, X.shape[1]))
    rng = np.random.default_rng(seed)
    for a in range(0, rows, 1_000_000):
        n = min(1_000_000, rows - a)
        out[a:a + n] = X[rng.integers(0, len(X), n)] + rng.standard_normal((n, X.shape[1]), np.float32) * std
    out.flush()
    del out


def _tables(src: Path, rows: int, folder: Path, row_group: int, formats=("parquet", "csv")) -> dict[str, Path]:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    x = np.load(src, mmap_mode="r")[:rows]
    names = [f"f{i}" for i in range(x.shape[1])]
    schema = pa.schema([(n, pa.float32()) for n in names])
    paths = {f: folder / f"x{rows}.{f}" for f in formats}
    writers = [pq.ParquetWriter(paths["parquet"], schema)] if "parquet" in paths else []
    writers += [pacsv.CSVWriter(paths["csv"], schema)] if "csv" in paths else []
    for a in range(0, rows, row_group):
        t = pa.table({n: np.ascontiguousarray(x[a:a + row_group, i]) for i, n in enumerate(names)}, schema=schema)
        for w in writers:
            w.write_table(t)
    for w in writers:
        w.close()
    return paths


# -- the study -------------------------------------------------------------------------------------------
SECTIONS = ("kernel", "rss", "formats", "backends", "dask")


def run(a: argparse.Namespace) -> dict:
    import lutkan
    from lutkan.bench.env import environment

    env = environment({"note": "kernel and single process: 1 thread; dask: 1 thread per worker"})
    tmp = Path(tempfile.mkdtemp(prefix="lutkan-score-bench-", dir=a.tmp))
    ctx = {"rows": [], "discarded": [], "same": {}, "cpu": env["cpu_model"], "tmp": tmp, "a": a}
    try:
        model = tmp / "ids78.lutkan"
        lutkan.save(lutkan.compile_model(str(a.model), progress=False), model)
        ctx["big"] = tmp / f"x{a.rows}.npy"
        print(f"generating {a.rows:,} rows into {tmp} ...", flush=True)
        _generate(ctx["big"], a.rows)
        ctx["base"] = dict(model=str(model), batch_size=a.batch_size)
        ctx["single"] = {**ctx["base"], "kind": "score", "engine": "single", "input": str(ctx["big"]),
                         "output": str(tmp / "y.npy")}
        for i, name in enumerate(a.sections, 1):
            print(f"{i}. {name}", flush=True)
            globals()[f"_section_{name}"](ctx)
    finally:
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    env["load_avg_end"] = list(os.getloadavg())
    return {"env": env, "rows": ctx["rows"], "discarded": ctx["discarded"], "command": _command(a),
            "targets": _targets(ctx["rows"], a, ctx["same"]), "max_others": a.max_others, "retries": a.retries}


def _section_kernel(ctx) -> None:
    """Bare kernel vs single process on the big .npy, alternating (kernel, single, single, kernel, ...)."""
    a = ctx["a"]
    for r in range(a.repeats):
        for which in (("kernel", "single") if r % 2 == 0 else ("single", "kernel")):
            spec = dict(ctx["base"], kind="kernel", input=str(ctx["big"])) if which == "kernel" else ctx["single"]
            ctx["rows"].append(_measure(spec, f"{which}_{a.rows}", ctx, repeat=r))


def _section_rss(ctx) -> None:
    """Peak RSS of the single-process loop at each of --rss-rows (.npy)."""
    a = ctx["a"]
    for n in a.rss_rows:
        ctx["rows"].append(_measure(dict(ctx["single"], input=str(_head(ctx, n))), f"rss_{n}", ctx))


def _head(ctx, n: int) -> Path:
    """A .npy of the big file's first ``n`` rows (the big file itself for all of them), written once."""
    path = ctx["big"] if n == ctx["a"].rows else ctx["tmp"] / f"x{n}.npy"
    if not path.exists():
        np.save(path, np.load(ctx["big"], mmap_mode="r")[:n])
    return path


def _section_formats(ctx) -> None:
    """npy / CSV / Parquet x single / dask (2 workers) at --format-rows; all outputs must be identical."""
    a, tmp = ctx["a"], ctx["tmp"]
    files = {"npy": _head(ctx, a.format_rows), **_tables(ctx["big"], a.format_rows, tmp, _row_group(a))}
    for fmt, path in files.items():
        for engine in ("single", "dask"):
            dask = dict(workers=2, partition_rows=_parts(a.format_rows)) if engine == "dask" else {}
            spec = dict(ctx["single"], input=str(path), engine=engine, output=str(tmp / f"y_{fmt}_{engine}.npy"),
                        **dask)
            ctx["rows"].append(_measure(spec, f"format_{fmt}", ctx))
    outs = [np.load(tmp / f"y_{fmt}_{e}.npy") for fmt in files for e in ("single", "dask")]
    ctx["same"]["formats_engines"] = all(np.array_equal(outs[0], y, equal_nan=True) for y in outs[1:])


def _section_backends(ctx) -> None:
    """The backend choice: the .lutkan (``numba``) against its custom-form .onnx export (``auto``: ``ort-native``,
    the native onnxruntime op, where it is built) on the --format-rows .npy, single process, alternating;
    the outputs must be identical."""
    import lutkan
    from lutkan.exporter import save_onnx

    a, tmp = ctx["a"], ctx["tmp"]
    onnx_path = tmp / "ids78_custom.onnx"
    save_onnx(lutkan.export(lutkan.load(ctx["base"]["model"]), form="custom"), onnx_path)
    models = {"lutkan": ctx["base"]["model"], "onnx": str(onnx_path)}
    for r in range(a.repeats):
        for kind in (("lutkan", "onnx") if r % 2 == 0 else ("onnx", "lutkan")):
            spec = dict(ctx["single"], model=models[kind], input=str(_head(ctx, a.format_rows)),
                        output=str(tmp / f"y_backend_{kind}.npy"))
            ctx["rows"].append(_measure(spec, f"backend_{kind}", ctx, repeat=r))
    ctx["same"]["backends"] = bool(np.array_equal(np.load(tmp / "y_backend_lutkan.npy"),
                                                  np.load(tmp / "y_backend_onnx.npy"), equal_nan=True))


def _section_dask(ctx) -> None:
    """LocalCluster with 1 and 2 workers on one Parquet file of --dask-rows (alternating), then its single-process
    peak RSS (to compare with the --format-rows Parquet file's)."""
    a, tmp = ctx["a"], ctx["tmp"]
    pq_path = _tables(ctx["big"], a.dask_rows, tmp, _row_group(a), formats=("parquet",))["parquet"]
    for r in range(a.repeats):
        for w in ((1, 2) if r % 2 == 0 else (2, 1)):
            spec = dict(ctx["single"], input=str(pq_path), engine="dask", workers=w, partition_rows=_parts(a.dask_rows),
                        output=str(tmp / f"y_dask{w}.npy"))
            ctx["rows"].append(_measure(spec, f"dask_{w}_workers", ctx, repeat=r))
    ctx["same"]["dask_1_2"] = bool(np.array_equal(np.load(tmp / "y_dask1.npy"), np.load(tmp / "y_dask2.npy"),
                                                  equal_nan=True))
    ctx["rows"].append(_measure(dict(ctx["single"], input=str(pq_path)), f"rss_parquet_{a.dask_rows}", ctx))


def _parts(rows: int) -> int:
    """Rows per dask task: 16 parts (the 2 workers share them evenly)."""
    return max(rows // 16, 10_000)


def _row_group(a) -> int:
    """One Parquet row group size for every file, so peak RSS compares like with like."""
    return max(a.format_rows // 16, 10_000)


def _median(rows: list[dict], name: str, key: str = "rows_per_s") -> float:
    vals = [r[key] for r in rows if r["name"] == name]
    return statistics.median(vals) if vals else float("nan")


def _targets(rows: list[dict], a, same: dict) -> list[dict]:
    def get(name):
        return next((r for r in rows if r["name"] == name), None)

    out = []
    k, s = _median(rows, f"kernel_{a.rows}"), _median(rows, f"single_{a.rows}")
    if not (np.isnan(k) or np.isnan(s)):
        out.append({"target": f"single process >= 80% of the bare kernel's rows/s ({a.rows:,}-row .npy, medians)",
                    "value": f"{s:,.0f} / {k:,.0f} rows/s = {s / k:.0%}", "met": bool(s >= 0.8 * k)})
    lo, hi = get(f"rss_{min(a.rss_rows)}"), get(f"rss_{max(a.rss_rows)}")
    if lo and hi:
        growth = hi["rss_peak_mib"] - lo["rss_peak_mib"]
        out.append({"target": f"peak RSS independent of the file size (.npy, {lo['rows']:,} vs {hi['rows']:,} rows)",
                    "value": f"{lo['rss_peak_mib']:.0f} MiB vs {hi['rss_peak_mib']:.0f} MiB ({growth:+.0f} MiB; "
                             f"{hi['rss_before_mib']:.0f} MiB before the loop)",
                    "met": bool(growth <= 0.1 * lo["rss_peak_mib"])})
    lo = next((r for r in rows if r["name"] == "format_parquet" and r["engine"] == "single"), None)
    hi = get(f"rss_parquet_{a.dask_rows}")
    if lo and hi:
        growth = hi["rss_peak_mib"] - lo["rss_peak_mib"]
        out.append({"target": f"peak RSS independent of the file size (Parquet, {lo['rows']:,} vs {hi['rows']:,} rows)",
                    "value": f"{lo['rss_peak_mib']:.0f} MiB vs {hi['rss_peak_mib']:.0f} MiB ({growth:+.0f} MiB)",
                    "met": bool(growth <= 0.1 * lo["rss_peak_mib"])})
    d1, d2 = _median(rows, "dask_1_workers"), _median(rows, "dask_2_workers")
    if "dask_1_2" in same:
        out.append({"target": "dask LocalCluster 2 workers >= 1.5x 1 worker (same Parquet), identical outputs",
                    "value": f"{d2:,.0f} / {d1:,.0f} rows/s = {d2 / d1:.2f}x; outputs identical: {same['dask_1_2']}",
                    "met": bool(d2 >= 1.5 * d1 and same["dask_1_2"])})
    if "formats_engines" in same:
        out.append({"target": "npy / CSV / Parquet x single / dask: identical outputs",
                    "value": str(same["formats_engines"]), "met": bool(same["formats_engines"])})
    if "backends" in same:
        lk, ox = _median(rows, "backend_lutkan"), _median(rows, "backend_onnx")
        onnx_backend = next(r["backend"] for r in rows if r["name"] == "backend_onnx")
        out.append({"target": f"backend choice: a .lutkan on numba >= its custom .onnx on {onnx_backend} (medians), "
                              "identical outputs",
                    "value": f"{lk:,.0f} vs {ox:,.0f} rows/s = {lk / ox:.2f}x; outputs identical: {same['backends']}",
                    "met": bool(lk >= ox and same["backends"])})
    return out


def _command(a) -> str:
    return " ".join(["python -m lutkan.bench.score"] + sys.argv[1:]) if a.argv is None else a.argv


def _report(res: dict) -> str:
    env = res["env"]

    def loads(key: str) -> str:
        return ", ".join(f"{v:.2f}" for v in env[key])

    lines = ["# `lutkan score` throughput (generated by `python -m lutkan.bench.score`)", "",
             f"Command: `{res['command']}`  ",
             f"Machine: {env['cpu_model']}, {env['cpus_usable']} usable CPUs, {env['mem_total']}; load average "
             f"(1, 5, 15 min) at start {loads('load_avg_start')}, at end {loads('load_avg_end')} (a shared machine: "
             "other sessions' work shows as load)  ",
             f"Model: ids78 (78-32-16-1), default compile options; git {str(env['git_commit'])[:10]}"
             f"{'+dirty' if env.get('git_dirty') else ''}; {env['date']}", "", "## Targets", "",
             "| target | measured | met |", "|---|---|---|"]
    lines += [f"| {t['target']} | {t['value']} | {'yes' if t['met'] else '**no**'} |" for t in res["targets"]]
    lines += ["", "## Every measurement", "",
              ("`rows/s`: rows over the engine's loop time. RSS: the scoring process (for dask, the client; "
               "workers are separate processes). Load: 1-minute load average before -> after (it counts this "
               "benchmark's own processes too). Others: CPUs used by processes outside the measurement, on "
               "average over it (the machine's busy time from /proc/stat minus the measurement's own CPU time). "
               f"A measurement during which others used more than {res['max_others']} CPUs was measured again, "
               f"up to {res['retries']} more times, keeping the last attempt whatever its figure "
               f"({len(res['discarded'])} attempts discarded in all; they are in results.csv/json, marked)."),
              "", "| measurement | format | engine | backend | workers | rows | rows/s | peak RSS MiB | load | others (CPUs) |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        rss = f"{r['rss_peak_mib']:.0f}" if r.get("rss_peak_mib") else ""
        lines.append(f"| {r['name']} | {r['format']} | {r['engine']} | {r.get('backend', '')} | {r['workers']} | "
                     f"{r['rows']:,} | "
                     f"{r['rows_per_s']:,.0f} | {rss} | {r['load1_before']} -> {r['load1_after']} | "
                     f"{r.get('others_cpu', '')} |")
    return "\n".join(lines) + "\n"


def _write(res: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(res, indent=1, default=str))
    with open(out / "results.csv", "w", newline="") as f:
        from lutkan.bench.env import one_line

        f.write(f"# {one_line(res['env'])}\n")
        w = csv.DictWriter(f, FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(res["rows"])
        w.writerows({**r, "discarded": True} for r in res["discarded"])
    (out / "report.md").write_text(_report(res))


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lutkan.bench.score", description=__doc__.split("\n")[0])
    p.add_argument("--out", default="score-bench", help="results folder (default %(default)s)")
    p.add_argument("--tmp", default=None, help="folder for the generated data (default: the system temp folder)")
    p.add_argument("--model", default=str(DEFAULT_MODEL), help="pykan checkpoint (default models/ids78/0.0)")
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--rss-rows", type=_ints, default=[1_000_000, 10_000_000])
    p.add_argument("--format-rows", type=int, default=1_000_000)
    p.add_argument("--dask-rows", type=int, default=4_000_000)
    p.add_argument("--batch-size", type=int, default=65536)
    p.add_argument("--repeats", type=int, default=2, help="alternating repeats of the paired runs (default 2)")
    p.add_argument("--max-others", type=float, default=0.25, help="measure again when processes outside the "
                   "measurement used more CPUs than this on average (default %(default)s; a shared machine)")
    p.add_argument("--retries", type=int, default=3, help="at most this many more attempts (default %(default)s)")
    p.add_argument("--sections", type=lambda t: t.split(","), default=list(SECTIONS),
                   help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)")
    p.add_argument("--quick", action="store_true", help="every file / 10, batch size / 8")
    p.add_argument("--keep", action="store_true", help="keep the generated data")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        print(json.dumps(_child(json.loads(a.child))))
        return 0
    a.argv = None if argv is None else " ".join(["python -m lutkan.bench.score", *argv])
    if a.quick:
        a.rows, a.format_rows, a.dask_rows = a.rows // 10, a.format_rows // 10, a.dask_rows // 10
        a.rss_rows = [n // 10 for n in a.rss_rows]
        a.batch_size = max(a.batch_size // 8, 1024)  # as many batches per file as a full run
    if max(a.rss_rows) > a.rows or a.format_rows > a.rows or a.dask_rows > a.rows:
        p.error("--rss-rows, --format-rows and --dask-rows must not exceed --rows")
    if set(a.sections) - set(SECTIONS):
        p.error(f"--sections: choose among {', '.join(SECTIONS)}")
    res = run(a)
    _write(res, Path(a.out))
    print((Path(a.out) / "report.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
