"""lutkan bench: the study runs end to end (hidden ``smoke`` profile) and its files are consistent:
results.csv has the documented columns, results.json records the environment, and report.md is
generated from results.json (re-rendering the JSON reproduces it; its numbers are the JSON's)."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from lutkan.bench import add_cli
from lutkan.bench.report import render_report
from lutkan.bench.report.accuracy import fmt_ci
from lutkan.bench.report.files import CSV_COLUMNS, json_safe
from lutkan.bench.rows import COLUMNS
from lutkan.bench.stats import T975, mean_ci, quartiles, t_quantile_975
from lutkan.bench.summary import summarize
from lutkan.bench.timing import THREAD_ENV, measure_interleaved
from lutkan.reporting import fmt


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    from lutkan.bench.suite import run_bench

    out = tmp_path_factory.mktemp("bench")
    import numba

    cwd = os.getcwd()
    env_before = {k: os.environ.get(k) for k in THREAD_ENV}
    numba_before = numba.get_num_threads()
    os.chdir(out)  # nothing may land in the caller's cwd
    try:
        t0 = time.perf_counter()
        results = run_bench("smoke", out / "run", progress=False, quiet=True)
        wall = time.perf_counter() - t0
    finally:
        os.chdir(cwd)
    print(f"\n[bench smoke] {wall:.1f} s, {len(results['rows'])} rows")
    assert not (out / "model").exists()
    # thread pinning is scoped to the run: the process is left as it was (a changed NUMBA_NUM_THREADS
    # would make numba's next JIT compile raise in whatever runs after the bench)
    assert {k: os.environ.get(k) for k in THREAD_ENV} == env_before
    assert numba.get_num_threads() == numba_before
    return out / "run", results, wall


def _csv_rows(path: Path) -> tuple[list[str], list[dict]]:
    lines = path.read_text().splitlines()
    comments = [ln for ln in lines if ln.startswith("#")]
    body = [ln for ln in lines if not ln.startswith("#")]
    return comments, list(csv.DictReader(body))


def test_files_exist(smoke):
    out, _, _ = smoke
    for name in ("results.csv", "results.json", "report.md"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    pngs = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert pngs == ["bytes_per_form.png", "error_vs_L.png", "latency_vs_batch.png"]
    for p in (out / "plots").glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_csv_columns_and_rows(smoke):
    out, results, _ = smoke
    comments, rows = _csv_rows(out / "results.csv")
    with (out / "results.csv").open() as f:
        header = next(ln for ln in f if not ln.startswith("#")).strip().split(",")
    assert tuple(header) == CSV_COLUMNS == ("run_id",) + COLUMNS
    assert len(rows) == len(results["rows"])
    assert {r["run_id"] for r in rows} == {results["run_id"]}
    assert {r["status"] for r in rows} <= {"ok", "skipped", "failed"}
    studies = {r["study"] for r in rows}
    assert {"accuracy_controlled", "accuracy_init", "accuracy_trained", "robustness", "speed", "memory"} <= studies
    lat = [r for r in rows if r["metric"] == "latency_ms" and r["status"] == "ok"]
    assert lat and all(float(r["value"]) > 0 and float(r["q1"]) <= float(r["value"]) <= float(r["q3"]) for r in lat)
    assert all(int(r["n"]) >= 20 for r in lat), "at least 20 timed repeats per cell"
    # nothing is dropped silently: every non-ok row carries its reason
    assert all(r["note"] for r in rows if r["status"] != "ok")


def test_environment_recorded(smoke):
    out, results, _ = smoke
    env = json.loads((out / "results.json").read_text())["env"]
    for key in ("date", "cpu_model", "logical_cpus", "python", "versions", "threads", "git_commit"):
        assert env.get(key) not in (None, ""), key
    for pkg in ("numpy", "numba", "onnx", "onnxruntime", "torch", "pykan"):
        assert pkg in env["versions"]
    assert env["threads"]["numba.get_num_threads"] == 1 and env["threads"]["OMP_NUM_THREADS"] == "1"
    assert env["threads"]["onnxruntime.intra_op_num_threads"] == 1
    comments, _ = _csv_rows(out / "results.csv")
    csv_env = json.loads(next(c for c in comments if c.startswith("# environment-json: ")).split(": ", 1)[1])
    assert csv_env == env
    report = (out / "report.md").read_text()
    assert "## Environment" in report and str(env["cpu_model"]) in report and env["git_commit"] in report
    Image = pytest.importorskip("PIL.Image")  # matplotlib's dependency
    with Image.open(out / "plots" / "latency_vs_batch.png") as im:
        assert env["cpu_model"] in im.info.get("Description", "")


def test_report_is_rendered_from_json(smoke):
    out, _, _ = smoke
    saved = json.loads((out / "results.json").read_text())
    report = (out / "report.md").read_text()
    assert render_report(saved) == report
    # a reduced profile says so, with every reduction listed
    assert "reduced from `full`" in report
    assert all(r in report for r in saved["profile"]["reductions"])


def test_report_numbers_match_json(smoke):
    out, _, _ = smoke
    res = json.loads((out / "results.json").read_text())
    report = (out / "report.md").read_text()
    lines = report.splitlines()
    for t in res["summary"]["targets"]:
        line = next(ln for ln in lines if ln.startswith(f"| {t['id']} |"))
        assert f"| {fmt(t['achieved'])} |" in line, (t, line)
    for t in res["summary"]["speed"]["table"]:
        assert f"{fmt(t['median_ms'])} [{fmt(t['q1_ms'], 3)}–{fmt(t['q3_ms'], 3)}] (n={t['n']})" in report, t
    ctl = [t for t in res["summary"]["controlled"]["table"] if t["input_set"] == "in_domain"
           and t["reference"] == "float64" and t["metric"] == "max_abs_err"]
    assert ctl
    for t in ctl:
        assert fmt_ci(t) in report
    for d in res["summary"]["deployment_bars"]:
        line = next(ln for ln in lines if ln.startswith(f"| {d['id']} |"))
        assert f"| {fmt(d['achieved'])} |" in line, (d, line)
    # the summary is a function of the rows alone
    assert json_safe(summarize(res)) == res["summary"]


def test_smoke_studies_produced_results(smoke):
    _, res, _ = smoke
    s = res["summary"]
    assert s["controlled"]["table"] and s["controlled"]["floors"]
    assert s["speed"]["table"] and s["speed"]["gates"]
    assert all(g["status"] == "ok" for g in s["speed"]["gates"]), s["speed"]["gates"]
    names = {t["contender"] for t in s["speed"]["table"]}
    assert {"lut-numpy", "lut-numba"} <= names
    assert s["memory"]["layers"] and s["memory"]["files"]
    assert len(s["targets"]) == 5
    bars = {d["id"]: d for d in s["deployment_bars"]}
    assert sorted(bars) == [f"D{i}" for i in range(1, 8)]
    # the smoke profile times batches 1 and 64 without pykan: the plugin bars there are measured, the
    # others say what was not measured
    timed = {(t["batch"], t["contender"]) for t in s["speed"]["table"]}
    for d in bars.values():
        if (d["batch"], d["numerator"]) in timed and (d["batch"], d["denominator"]) in timed:
            assert d["achieved"] is not None and d["met"] in (True, False), d
        else:
            assert d["achieved"] is None and d["detail"].startswith(f"not measured at batch {d['batch']}"), d
    assert {bid for bid, d in bars.items() if d["achieved"] is not None} == {"D4", "D6", "D7"}


def test_t_quantiles():
    assert t_quantile_975(4) == pytest.approx(2.7764, abs=1e-4)
    assert t_quantile_975(1) == pytest.approx(12.7062, abs=1e-4)
    with pytest.raises(ValueError):
        t_quantile_975(0)
    stats = pytest.importorskip("scipy.stats")
    for df in list(range(1, 31)) + [31, 35, 40, 60, 100, 1000]:
        assert t_quantile_975(df) == pytest.approx(float(stats.t.ppf(0.975, df)), abs=6e-5), df
    assert len(T975) == 30


def test_mean_ci_and_quartiles():
    d = mean_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    assert d["mean"] == 3.0 and d["n"] == 5
    assert d["std"] == pytest.approx(np.std([1, 2, 3, 4, 5], ddof=1))
    assert d["ci95"] == pytest.approx(2.7764 * d["std"] / np.sqrt(5), rel=1e-4)
    assert np.isnan(mean_ci([1.0])["ci95"])
    q = quartiles([4.0, 1.0, 3.0, 2.0])
    assert (q["q1"], q["median"], q["q3"], q["n"]) == (1.75, 2.5, 3.25, 4)


def test_interleaved_timing_and_budget():
    calls = {"a": 0, "b": 0}

    def fa():
        calls["a"] += 1

    def fslow():
        time.sleep(0.02)

    res = measure_interleaved({"a": fa, "slow": fslow}, min_repeats=20, min_time=0.0, max_repeats=200, warmup=2,
                              budget_s={"a": 1.0, "slow": 0.1})
    assert res["a"]["n"] >= 20 and res["a"]["median"] > 0
    assert "skipped" in res["slow"] and "budget" in res["slow"]["skipped"]


def test_time_calls_front_door():
    """The simple front door: pinned, interleaved, never skipped, stopped by the call count."""
    from lutkan.bench.timing import time_calls

    calls = {"a": 0}
    env = {k: os.environ.get(k) for k in THREAD_ENV}

    def fa():
        calls["a"] += 1

    res = time_calls({"a": fa, "b": lambda: None}, max_calls=50, warmup=1)
    assert set(res) == {"a", "b"} and all(r["n"] >= 50 and r["median"] >= 0 for r in res.values())
    assert calls["a"] >= 51
    assert {k: os.environ.get(k) for k in THREAD_ENV} == env  # thread settings restored


def test_plugin_bench_prints_its_table(capsys):
    """``python -m lutkan.bench.plugin`` (here with few calls): one markdown row per batch size."""
    from lutkan.bench import plugin

    res = plugin.main(["--scale", "0.002", "--model", "random"])
    out = capsys.readouterr().out
    assert set(res) == set(plugin.BATCHES)
    assert all(set(r) == set(plugin.SINGLE + plugin.THREADED) for r in res.values())
    assert all(v > 0 for r in res.values() for v in r.values())
    assert out.startswith("model random; ") and "load average" in out.splitlines()[0]
    lines = [line for line in out.splitlines() if line.startswith("| ")]
    assert lines[0].startswith("| batch | numba (µs) | native (µs) | native run() (µs) | pyop (µs)")
    assert len(lines) == 1 + len(plugin.BATCHES)


def test_missing_optional_package_is_recorded(monkeypatch):
    """An optional package that is absent (torch here) becomes skipped contenders with the reason, never a gap."""
    from lutkan.bench import speed, zoo
    from lutkan.bench.suite import SMOKE
    from lutkan.compiler import compile_model
    from lutkan.contract import ContractOptions

    real = zoo.optional

    def fake(module, *names):
        if module == "torch":
            return None, "torch is not available (test)"
        return real(module, *names)

    monkeypatch.setattr(zoo, "optional", fake)
    bm = zoo.random_model([4, 3], 5, 3, 0)
    lut = compile_model(bm.src, ContractOptions(L=8))
    prof = dataclasses.replace(SMOKE, deployment=True, pykan_torch=True, lut_forms_plain=(), lut_forms_plugin=())
    cs, _ = speed.contenders(prof, bm, lut, Path("."))
    missing = [c for c in cs if c.name.startswith("pykan-torch")]
    assert len(missing) == 2 and all(c.fn is None and "torch is not available" in c.reason for c in missing)


def test_cli_registration():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command")
    add_cli(sub)
    a = p.parse_args(["bench", "--profile", "full", "--quiet"])
    assert (a.profile, a.out, a.quiet, a.threads) == ("full", "bench-out", True, 1) and callable(a.func)
    with pytest.raises(SystemExit):
        p.parse_args(["bench", "--profile", "smoke"])  # hidden: not offered on the command line


def test_unknown_profile(tmp_path):
    from lutkan.bench import run_bench

    with pytest.raises(ValueError, match="unknown profile"):
        run_bench("huge", tmp_path)
