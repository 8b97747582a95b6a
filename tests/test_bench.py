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
from lutkan.bench.frontier import CSV_FIELDS
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
    assert pngs == ["bytes_per_form.png", "error_vs_L.png", "frontier.png", "latency_vs_batch.png"]
    assert (out / "frontier.csv").is_file()
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


def _frontier_csv(out: Path) -> list[dict]:
    with (out / "frontier.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows and tuple(rows[0]) == CSV_FIELDS
    for r in rows:
        r["L"], r["stored_bytes"] = int(r["L"]), int(r["stored_bytes"])
        r["error_over_std"], r["on_frontier"] = float(r["error_over_std"]), r["on_frontier"] == "1"
    return rows


def test_frontier_csv_has_every_candidate(smoke):
    """Every (interp, L, scheme) the selector would try for the smoke model is in frontier.csv once, with
    the selector's exact bytes; one error re-computed independently matches."""
    from lutkan.bench.suite import SMOKE
    from lutkan.bench.zoo import bundled_dir
    from lutkan.compiler import as_source, compile_model
    from lutkan.compiler.select import candidates
    from lutkan.contract import ContractOptions
    from lutkan.evaluators.numpy_eval import NumpyEvaluator
    from lutkan.metrics import error_over_std

    out, res, _ = smoke
    rows = _frontier_csv(out)
    assert {r["model"] for r in rows} == set(SMOKE.frontier_models) == {"breast_cancer"}
    src = as_source(str(bundled_dir() / "breast_cancer" / "0.0"))
    want = candidates(src, Ls=SMOKE.frontier_Ls, schemes=SMOKE.frontier_schemes, interps=SMOKE.frontier_interps)
    assert len(want) >= 5 and {c.interp for c in want} == {"linear", "nearest", "poly"}
    got = [(r["interp"], r["L"], r["scheme"], r["stored_bytes"]) for r in rows]
    assert sorted(got) == sorted((c.interp, c.L, c.scheme, c.stored_bytes) for c in want)
    assert all(np.isfinite(r["error_over_std"]) and r["error_over_std"] > 0 for r in rows)
    poly = next(r for r in rows if r["interp"] == "poly")
    x = np.asarray(src.cache_data, dtype=np.float32)
    m = compile_model(src, ContractOptions(interp="poly", scheme=poly["scheme"]))
    assert sum(m.table_bytes()) == poly["stored_bytes"]
    assert poly["error_over_std"] == error_over_std(NumpyEvaluator(m)(x), src.forward(x.astype(np.float64)))
    # the CSV is the summary's view (one line per summarised point, same order)
    pts = res["summary"]["frontier"]["points"]
    assert [(d["interp"], d["L"], d["scheme"], d["on_frontier"]) for d in pts] == \
        [(r["interp"], r["L"], r["scheme"], r["on_frontier"]) for r in rows]


def _dominates(a: dict, b: dict) -> bool:
    return (a["stored_bytes"] <= b["stored_bytes"] and a["error_over_std"] <= b["error_over_std"]
            and (a["stored_bytes"] < b["stored_bytes"] or a["error_over_std"] < b["error_over_std"]))


def test_frontier_points_are_non_dominated(smoke):
    """on_frontier is exact both ways: frontier points are dominated by nothing, every other point by something."""
    out, _, _ = smoke
    rows = _frontier_csv(out)
    for model in {r["model"] for r in rows}:
        mine = [r for r in rows if r["model"] == model]
        front = [r for r in mine if r["on_frontier"]]
        assert len(front) >= 2, (model, front)  # poly float16 and float32 at least: a real trade-off to check
        for r in mine:
            dominated = any(_dominates(o, r) for o in mine if o is not r)
            assert r["on_frontier"] == (not dominated), r
        # the smallest candidate is always on it unless a same-size one is better
        smallest = min(mine, key=lambda r: (r["stored_bytes"], r["error_over_std"]))
        assert smallest["on_frontier"]


def test_pareto_ties_and_non_finite():
    from lutkan.bench.frontier import pareto

    inf = float("inf")
    pts = [(10, 1.0), (10, 1.0), (20, 0.5), (20, 0.7), (5, inf), (30, 0.5), (40, 0.1), (3, float("nan"))]
    assert pareto(pts) == [True, True, True, False, False, False, True, False]
    assert pareto([]) == []


def test_frontier_plot_and_report_section(smoke):
    """frontier.png exists (a PNG linked from the report) and the report's frontier cells are the summary's."""
    from lutkan.bench.report.frontier import cand

    out, res, _ = smoke
    png = out / "plots" / "frontier.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    report = (out / "report.md").read_text()
    assert "![frontier](plots/frontier.png)" in report and "## 7. Size vs error" in report
    fr = json.loads((out / "results.json").read_text())["summary"]["frontier"]
    for m in fr["models"]:
        line = next(ln for ln in report.splitlines() if ln.startswith(f"| {m['model']} | {m['n_candidates']} |"))
        for bar in fr["bars"]:
            assert f"| {cand(m[f'best|{bar:g}'])} |" in line, (bar, line)
            assert m[f"best|{bar:g}"] is None or m[f"best|{bar:g}"]["error_over_std"] <= bar
    assert res["summary"]["frontier"]["failed"] == []


def test_lut_vs_poly_speed(smoke):
    """LUT (linear int8 L=64) and poly float32 are timed side by side in both backends at every batch of the
    profile, gated first; the report shows the ratios with the CPU model and load average."""
    from lutkan.bench.suite import SMOKE

    out, res, _ = smoke
    lp = res["summary"]["lutpoly"]
    assert [g["status"] for g in lp["gates"]] == ["ok"] * 4
    assert {(d["model"], d["batch"]) for d in lp["table"]} == {(m, b) for m in SMOKE.kernel_models
                                                               for b in SMOKE.kernel_batches}
    for d in lp["table"]:
        assert (d["lut_contract"], d["poly_contract"]) == ("linear L=64 int8", "poly L=4 float32")
        for cell in ("numba", "ort"):
            assert d[f"lut_{cell}_ms"] > 0 and d[f"poly_{cell}_ms"] > 0 and d[f"lut_{cell}_n"] >= SMOKE.min_repeats
            assert d[f"poly_over_lut_{cell}"] == pytest.approx(d[f"poly_{cell}_ms"] / d[f"lut_{cell}_ms"])
            assert d[f"paired_{cell}"]["n"] >= SMOKE.min_repeats
    assert len(lp["load_avg"]["start"]) == len(lp["load_avg"]["end"]) == 3
    report = (out / "report.md").read_text()
    sec = report.split("## 8. Speed: LUT vs poly", 1)[1].split("\n## ", 1)[0]
    assert res["env"]["cpu_model"] in sec and fmt(lp["load_avg"]["start"][0], 3) in sec
    for d in lp["table"]:
        assert f"| {d['model']} | {d['batch']} | {fmt(d['lut_numba_ms'])} (n={d['lut_numba_n']}) |" in sec
        pr = d["paired_ort"]
        assert f"| {fmt(d['poly_over_lut_ort'], 3)} ({fmt(pr['median'], 3)}; {fmt(pr['q1'], 3)}–{fmt(pr['q3'], 3)}) |" in sec


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
