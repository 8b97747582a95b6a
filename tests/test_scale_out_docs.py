"""Every code block of docs/scale-out.md, extracted and run as written, with its outputs checked.

The blocks run in one folder holding what the page says: ``ids78.lutkan`` (a random 78-input model
here), ``flows.parquet`` / ``flows.csv`` (``flow_id`` + ``f0`` .. ``f77``) and ``x.npy``. Bash blocks call
``lutkan`` (this interpreter's ``-m lutkan.cli``); the one substitution is the scheduler address
``tcp://scheduler:8786``, replaced by a test LocalCluster's. Spark needs pyspark and a Java runtime, Ray
needs ray: each test skips saying which is missing.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _score_data import make_model, read_output, write_table

import lutkan

pytest.importorskip("pyarrow", reason="the scale-out recipes need the [scale] extra (pyarrow)")
pytest.importorskip("distributed", reason="the scale-out recipes need the [scale] extra (dask.distributed)")

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "scale-out.md"
BLOCKS = re.findall(r"^```(bash|python)\n(.*?)^```", DOC.read_text(), flags=re.S | re.M)
N = 20_000
SCHEDULER = "tcp://scheduler:8786"


def _kind(code: str) -> str:
    for key, kind in (("pyspark", "spark"), ("import ray", "ray"), ("map_partitions", "map_partitions"),
                      ("map_blocks", "map_blocks"), ("--engine dask", "cli_dask"), ("lutkan score", "cli")):
        if key in code:
            return kind
    raise AssertionError(f"a code block of {DOC.name} has no check in this test:\n{code}")


def test_every_block_has_a_check():
    kinds = [_kind(code) for _, code in BLOCKS]
    assert sorted(kinds) == sorted(["cli", "cli_dask", "map_partitions", "map_blocks", "spark", "ray"])


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("scaleout")
    paths = make_model(d, width=(78, 8, 1), seed=4, name="ids78")
    for p in d.iterdir():
        if p.suffix == ".onnx":
            p.unlink()
    rng = np.random.default_rng(0)
    x = rng.normal(scale=1.2, size=(N, 78)).astype(np.float32)
    np.save(d / "x.npy", x)
    write_table(x, d, "flows", row_group_size=5000)
    return {"dir": d, "ref": lutkan.evaluate(lutkan.load(paths["lutkan"]), x)}


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _run(lang: str, code: str, cwd: Path, timeout: int = 300) -> None:
    if lang == "bash":
        script = f'set -euo pipefail\nlutkan() {{ "{sys.executable}" -m lutkan.cli "$@"; }}\n{code}'
        cmd = ["bash", "-c", script]
    else:
        (cwd / "snippet.py").write_text(code)
        cmd = [sys.executable, "snippet.py"]
    r = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout, check=False)
    assert r.returncode == 0, (f"exit {r.returncode}\n--- code\n{code}\n--- stdout\n{r.stdout[-3000:]}\n"
                               f"--- stderr\n{r.stderr[-6000:]}")


def _by_flow_id(table_path: Path) -> np.ndarray:
    import pyarrow.parquet as pq

    t = pq.read_table(table_path)
    ids = t.column("flow_id").to_numpy() - 1000
    y = np.full(N, np.nan, np.float32)
    y[ids] = t.column("score").to_numpy()
    assert len(ids) == N and len(np.unique(ids)) == N
    return y


def _block(kind: str) -> tuple[str, str]:
    return next((lang, code) for lang, code in BLOCKS if _kind(code) == kind)


def test_cli_block(folder):
    d, ref = folder["dir"], folder["ref"]
    _run(*_block("cli"), d)
    assert np.array_equal(read_output(d / "scores.parquet"), ref)
    assert np.array_equal(read_output(d / "scores.csv"), ref)
    assert np.array_equal(np.load(d / "x.scores.npy"), ref)


def test_cli_dask_block(folder):
    import logging

    import distributed

    d, ref = folder["dir"], folder["ref"]
    lang, code = _block("cli_dask")
    assert SCHEDULER in code
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0",
                                  silence_logs=logging.ERROR) as cluster:
        _run(lang, code.replace(SCHEDULER, cluster.scheduler_address), d)
    assert np.array_equal(read_output(d / "scores_dask.parquet"), ref)
    assert np.array_equal(read_output(d / "scores_remote.parquet"), ref)


def test_dask_map_partitions_block(folder):
    _run(*_block("map_partitions"), folder["dir"])
    assert np.array_equal(_by_flow_id(folder["dir"] / "scores_map_partitions"), folder["ref"][:, 0])


def test_dask_map_blocks_block(folder):
    _run(*_block("map_blocks"), folder["dir"])
    assert np.array_equal(np.load(folder["dir"] / "y_map_blocks.npy"), folder["ref"])


def test_spark_block(folder):
    if importlib.util.find_spec("pyspark") is None:
        pytest.skip("pyspark is not installed (pip install 'lutkan[spark]')")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no Java runtime: pyspark needs one (Debian: apt-get install openjdk-17-jre-headless)")
    _run(*_block("spark"), folder["dir"], timeout=400)
    assert np.array_equal(_by_flow_id(folder["dir"] / "scores_spark"), folder["ref"][:, 0])


def test_ray_block(folder):
    if importlib.util.find_spec("ray") is None:
        pytest.skip("ray is not installed (pip install 'lutkan[ray]')")
    _run(*_block("ray"), folder["dir"], timeout=400)
    assert np.array_equal(_by_flow_id(folder["dir"] / "scores_ray"), folder["ref"][:, 0])
