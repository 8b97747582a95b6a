"""``python -m lutkan.bench.score`` runs end to end on tiny files (a smoke test: no figure is asserted)."""

from __future__ import annotations

import csv
import json

import pytest

pytest.importorskip("kan", reason="the benchmark compiles models/ids78 from its pykan checkpoint ([pykan] extra)")
pytest.importorskip("distributed", reason="the benchmark's dask rows need the [scale] extra")


def test_score_bench_writes_every_file(tmp_path, capsys):
    from lutkan.bench.score import main

    out = tmp_path / "out"
    assert main(["--out", str(out), "--tmp", str(tmp_path), "--rows", "30000", "--rss-rows", "15000,30000",
                 "--format-rows", "15000", "--dask-rows", "30000", "--repeats", "1", "--batch-size", "4096",
                 "--retries", "0"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["env"]["cpu_model"] and res["env"]["load_avg_start"] and res["env"]["load_avg_end"]
    names = {r["name"] for r in res["rows"]}
    assert {"kernel_30000", "single_30000", "rss_15000", "rss_30000", "format_npy", "format_csv", "format_parquet",
            "backend_lutkan", "backend_onnx", "dask_1_workers", "dask_2_workers", "rss_parquet_30000"} <= names
    for r in res["rows"]:
        assert r["rows"] > 0 and r["rows_per_s"] > 0 and r["cpu_model"] and "load1_before" in r
        assert r["others_cpu"] >= 0
    assert all(t["value"] for t in res["targets"]) and len(res["targets"]) == 6
    assert {r["backend"] for r in res["rows"] if r["name"] == "backend_onnx"} <= {"ort-native", "ort-pyop"}
    assert "identical outputs | True | yes" in (out / "report.md").read_text()
    with open(out / "results.csv") as f:
        assert f.readline().startswith("# ")  # the environment line
        assert len(list(csv.DictReader(f))) == len(res["rows"]) + len(res["discarded"])
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # the generated data is gone
