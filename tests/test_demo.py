"""``lutkan demo``: the whole pipeline on the bundled model and on a real checkpoint."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from conftest import REPO, realmodel_dir

from lutkan.cli import EXIT_ERROR, EXIT_OK, main

pytest.importorskip("kan", reason="the demo compares with pykan: needs the [pykan] extra")


def test_demo_default_model_quick(tmp_path, capsys):
    out = tmp_path / "demo"
    t0 = time.perf_counter()
    assert main(["demo", "--quick", "--out", str(out)]) == EXIT_OK
    wall = time.perf_counter() - t0
    text = capsys.readouterr().out
    assert "breast_cancer" in text and "FAIL" not in text
    res = json.loads((out / "results.json").read_text())
    assert res["ok"] and res["labelled"] and res["rows"] == 114
    assert {(c["L"], c["scheme"]) for c in res["configs"]} == {(L, s) for L in (16, 64)
                                                               for s in ("int8", "uint8", "float16")}
    for c in res["configs"]:
        assert set(c["checks"]) == {"ort-function", "plugin-function", "ort-standard", "plugin-custom"}
        assert all(v["ok"] for v in c["checks"].values())
        assert 0.9 < c["metrics"]["accuracy"] <= 1.0
        assert c["metrics"]["changed"] <= 3
        assert c["latency_us"]["ort-function@1"] > 0 and c["latency_us"]["plugin-function@N"] > 0
        assert c["sizes"]["lutkan"] > 0 and c["sizes"]["function"] > 0
    for suffix in (".lutkan", ".function.onnx", ".standard.onnx", ".custom.onnx"):
        assert (out / f"breast_cancer_L64_int8{suffix}").is_file()
    report = (out / "report.md").read_text()
    for want in ("Accuracy vs pykan", "Latency", "Sizes", "error_per_layer.png", "latency.png", "| 64 | int8 |"):
        assert want in report, want
    for png in ("error_per_layer.png", "latency.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    print(f"\n[demo] --quick on breast_cancer: {wall:.1f} s")


def test_demo_onnx_file_runs_and_inspects(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--L", "64", "--schemes", "int8", "--out", str(out), "--quiet"]) == EXIT_OK
    onnx_path = out / "breast_cancer_L64_int8.function.onnx"
    capsys.readouterr()
    assert main(["inspect", str(onnx_path), "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["lutkan_edge_nodes"] == 2
    x = np.load(REPO / "models" / "breast_cancer" / "test_data.npz")["X_test"][:5]
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(onnx_path), "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy"),
                 "--quiet"]) == EXIT_OK
    assert np.load(tmp_path / "y.npy").shape == (5, 1)


def test_demo_user_checkpoint_without_labels(realmodels, tmp_path, capsys):
    """A real regression checkpoint prefix (no labels): inputs are its cache_data, the outputs are compared as
    numbers (RMSE / R² vs pykan), never read as logits."""
    out = tmp_path / "user"
    src = realmodel_dir("torward_vlbi_deep") / "0.2"
    assert main(["demo", "--model", str(src), "--L", "16,64", "--schemes", "int8,float16", "--out", str(out),
                 "--quiet"]) == EXIT_OK
    res = json.loads((out / "results.json").read_text())
    assert res["ok"] and not res["labelled"] and res["task"] == "regression"
    for c in res["configs"]:
        assert "accuracy" not in c["metrics"] and "agreement" not in c["metrics"]
        assert c["metrics"]["r2_vs_pykan"] <= 1.0 and np.isfinite(c["max_abs_err"])
    report = (out / "report.md").read_text()
    assert "R² vs pykan" in report and "logit" not in report
    assert list(out.glob("*.function.onnx"))


def test_demo_regression_with_targets(tmp_path, capsys):
    """The bundled regression model (float targets in test_data.npz): task regression chosen automatically,
    RMSE / R² against pykan and the targets; no class metrics, no "logit > 0"."""
    out = tmp_path / "featured"
    assert main(["demo", "--model", str(REPO / "models" / "featured"), "--L", "64", "--schemes", "int8,float16",
                 "--out", str(out)]) == EXIT_OK
    text = capsys.readouterr().out
    assert "regression" in text and "R² vs pykan" in text and "acc" not in text.split()
    res = json.loads((out / "results.json").read_text())
    assert res["task"] == "regression" and res["labelled"] and res["pykan"]["r2"] > 0.98
    for c in res["configs"]:
        m = c["metrics"]
        assert {"rmse_vs_pykan", "r2_vs_pykan", "rmse", "r2"} <= set(m) and "accuracy" not in m
        assert m["r2"] > 0.95 and m["r2_vs_pykan"] > 0.99
    report = (out / "report.md").read_text()
    assert "RMSE vs targets" in report and "logit" not in report
    # --task classification on float targets: refused with what to do
    assert main(["demo", "--model", str(REPO / "models" / "featured"), "--task", "classification", "--L", "16",
                 "--schemes", "int8", "--out", str(tmp_path / "o"), "--quiet"]) == EXIT_ERROR
    assert "--task regression" in capsys.readouterr().err


def test_demo_lutkan_error_exits_3_once(tmp_path, capsys, monkeypatch):
    """A lutkan error in a configuration (here: compiling) stops the demo with exit 3 and one message, not a FAIL
    row per configuration."""
    import lutkan.compiler as comp
    from lutkan.errors import UnsupportedModelError

    def refuse(*a, **k):
        raise UnsupportedModelError("layer 0: planted refusal")

    monkeypatch.setattr(comp, "compile_model", refuse)
    assert main(["demo", "--L", "16,64", "--schemes", "int8,float16", "--out", str(tmp_path / "o"),
                 "--quiet"]) == EXIT_ERROR
    cap = capsys.readouterr()
    assert (cap.err + cap.out).count("planted refusal") == 1


def test_demo_folder_with_data_npz(tmp_path):
    """--model FOLDER plus --data: the labelled path for a multi-output model (argmax)."""
    out = tmp_path / "digits"
    assert main(["demo", "--model", str(REPO / "models" / "digits"), "--data",
                 str(REPO / "models" / "digits" / "test_data.npz"), "--L", "32", "--schemes", "int8",
                 "--out", str(out), "--quiet"]) == EXIT_OK
    res = json.loads((out / "results.json").read_text())
    assert res["labelled"] and res["width"][-1] == 10
    assert res["configs"][0]["metrics"]["accuracy"] > 0.9


def test_demo_bad_inputs_exit_3(tmp_path, capsys):
    assert main(["demo", "--model", str(tmp_path / "missing" / "0.1"), "--out", str(tmp_path / "o"),
                 "--quiet"]) == EXIT_ERROR
    assert "error" in capsys.readouterr().err
    np.savez(tmp_path / "wide.npz", X_test=np.zeros((3, 7), np.float32))
    assert main(["demo", "--data", str(tmp_path / "wide.npz"), "--L", "16", "--schemes", "int8",
                 "--out", str(tmp_path / "o"), "--quiet"]) == EXIT_ERROR
    assert "expects (batch, 30)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # an L out of range is a usage error
        main(["demo", "--L", "1", "--out", str(tmp_path / "o"), "--quiet"])
    assert e.value.code == 2 and "L=1" in capsys.readouterr().err


def test_demo_rejects_unknown_scheme():
    with pytest.raises(SystemExit) as e:
        main(["demo", "--schemes", "int4"])
    assert e.value.code == 2


def test_demo_reports_fail_rows_and_exits_1(tmp_path, monkeypatch, capsys):
    """A backend that disagrees with the NumPy reference is a FAIL row, not a crash; exit code 1."""
    import lutkan.runtime_ext as rt

    real_run = rt.run

    def bad_run(sess, x):
        return real_run(sess, x) + 1.0

    monkeypatch.setattr(rt, "run", bad_run)
    out = tmp_path / "fail"
    assert main(["demo", "--L", "16", "--schemes", "int8,float16", "--out", str(out)]) == 1
    text = capsys.readouterr().out
    assert "FAIL" in text and "configuration(s) FAILED" in text
    res = json.loads((out / "results.json").read_text())
    assert not res["ok"] and len(res["configs"]) == 2
    assert all(not c["ok"] for c in res["configs"])
    assert "### FAIL" in (out / "report.md").read_text()


def test_demo_in_a_fresh_process_with_a_cold_numba_cache(tmp_path):
    """The README's first command as a fresh clone runs it: a new process, no numba cache yet. The demo's first
    timing used to set NUMBA_NUM_THREADS around numba's import, and every plugin kernel then failed to build."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    env.pop("NUMBA_NUM_THREADS", None)
    r = subprocess.run([sys.executable, "-m", "lutkan.cli", "demo", "--L", "16", "--schemes", "int8", "--out",
                        str(tmp_path / "out"), "--quiet"], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "all ONNX outputs equal the NumPy reference" in r.stdout
