"""The Dask engine on a real LocalCluster of 2 worker processes: outputs identical to the single-process run."""

from __future__ import annotations

import numpy as np
import pytest
from _score_data import features, make_model, read_output, write_table

import lutkan
from lutkan.cli import EXIT_ERROR, EXIT_OK, main
from lutkan.score import score_file
from lutkan.score.badrows import BadRowsError

distributed = pytest.importorskip("distributed", reason="the Dask engine needs the [scale] extra")
pytest.importorskip("pyarrow", reason="the Dask engine tests read Parquet/CSV (the [scale] extra)")

N = 12_000


@pytest.fixture(scope="module")
def cluster():
    import logging

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=logging.ERROR) as c:
        yield c


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("dask")
    model = make_model(d, width=(6, 4, 2), seed=5)
    x = features(N, 6, seed=7)
    np.save(d / "x.npy", x)
    tables = write_table(x, d, "flows", row_group_size=1000)  # 12 row groups
    import pyarrow.parquet as pq

    t = pq.read_table(tables["parquet"])
    (d / "folder").mkdir()
    for k, (a, b) in enumerate(((0, 5000), (5000, 5500), (5500, N))):  # a folder of 3 files is one table
        pq.write_table(t.slice(a, b - a), d / "folder" / f"part-{k}.parquet", row_group_size=2000)
    return {"dir": d, "model": model, "x": x, **tables, "npy": d / "x.npy", "folder": d / "folder",
            "ref": lutkan.evaluate(lutkan.load(model["lutkan"]), x)}


def test_cli_embedded_local_cluster_two_workers(data, tmp_path, capsys):
    single, dask = tmp_path / "single.parquet", tmp_path / "dask.parquet"
    args = ["score", str(data["model"]["lutkan"]), str(data["parquet"]), "--columns", "f0:f5"]
    assert main([*args, "-o", str(single), "--quiet"]) == EXIT_OK
    assert main([*args, "-o", str(dask), "--engine", "dask", "--workers", "2", "--partition-rows", "2500"]) == EXIT_OK
    err = capsys.readouterr().err
    assert "dask: 2 workers" in err and "dask)" in err
    assert err.count("backend: ") == 1 and "backend: numba (" in err and "1 thread per worker" in err
    import pyarrow.parquet as pq

    assert pq.read_table(dask).schema.equals(pq.read_table(single).schema)
    assert np.array_equal(read_output(dask), read_output(single), equal_nan=True)
    assert np.array_equal(read_output(dask), data["ref"], equal_nan=True)


@pytest.mark.parametrize("fmt", ["parquet", "csv", "npy", "folder"])
def test_scheduler_address_every_format(data, tmp_path, cluster, fmt):
    cols = None if fmt == "npy" else "f0:f5"
    single = score_file(data["model"]["lutkan"], data[fmt], tmp_path / "s.npy", columns=cols, progress=False)
    st = score_file(data["model"]["lutkan"], data[fmt], tmp_path / "d.npy", columns=cols, engine="dask",
                    scheduler=cluster.scheduler_address, partition_rows=1500, batch_size=400, progress=False)
    assert (st.rows, st.engine, single.rows) == (N, "dask", N)
    assert np.array_equal(np.load(tmp_path / "d.npy"), np.load(tmp_path / "s.npy"), equal_nan=True)
    assert np.array_equal(np.load(tmp_path / "d.npy"), data["ref"], equal_nan=True)


def _bad_csv(data, tmp_path):
    lines = data["csv"].read_text().splitlines()
    for row in (5, 4100, 9999):
        lines[row + 1] = "1,2"
    f = lines[7002].split(",")
    lines[7002] = ",".join(f[:2] + ["x"] + f[3:])
    p = tmp_path / "bad.csv"
    p.write_text("\n".join(lines) + "\n")
    return p, [5, 4100, 7001, 9999]


def test_bad_rows_same_numbers_on_dask(data, tmp_path, cluster):
    path, bad = _bad_csv(data, tmp_path)
    kw = {"columns": "f0:f5", "on_bad_rows": "skip", "progress": False, "keep": "flow_id"}
    score_file(data["model"]["lutkan"], path, tmp_path / "s.csv", **kw)
    score_file(data["model"]["lutkan"], path, tmp_path / "d.csv", engine="dask", scheduler=cluster.scheduler_address,
               partition_rows=2000, **kw)
    assert (tmp_path / "d.csv").read_bytes() == (tmp_path / "s.csv").read_bytes()
    report = (tmp_path / "d.bad-rows.csv").read_text()
    assert report == (tmp_path / "s.bad-rows.csv").read_text()
    assert [int(line.split(",")[0]) for line in report.splitlines()[1:]] == bad
    with pytest.raises(BadRowsError, match=r"row 5 \(line 7\): 2 fields, expected 7"):
        score_file(data["model"]["lutkan"], path, tmp_path / "f.csv", columns="f0:f5", engine="dask",
                   scheduler=cluster.scheduler_address, partition_rows=2000, progress=False)
    assert not (tmp_path / "f.csv").exists()
    assert cluster.scheduler_address  # the cluster is still usable after a failed run
    with distributed.Client(cluster.scheduler_address) as c:
        assert c.submit(sum, [1, 2]).result() == 3


def test_unreachable_scheduler_is_a_lutkan_error(data, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("lutkan.score.dask_engine.CONNECT_TIMEOUT", "2s")
    rc = main(["score", str(data["model"]["lutkan"]), str(data["npy"]), "-o", str(tmp_path / "y.npy"), "--quiet",
               "--engine", "dask", "--scheduler", "tcp://127.0.0.1:9"])
    assert rc == EXIT_ERROR
    assert "cannot connect to the Dask scheduler" in capsys.readouterr().err


def test_cluster_without_workers_is_a_lutkan_error(data, tmp_path, monkeypatch):
    import logging

    from lutkan.errors import LutKanError

    monkeypatch.setattr("lutkan.score.dask_engine.CONNECT_TIMEOUT", "2s")
    with distributed.LocalCluster(n_workers=0, dashboard_address=":0", silence_logs=logging.ERROR) as empty:
        with pytest.raises(LutKanError, match="has no workers"):
            score_file(data["model"]["lutkan"], data["npy"], tmp_path / "y.npy", engine="dask",
                       scheduler=empty.scheduler_address, progress=False)
    assert not (tmp_path / "y.npy").exists()
