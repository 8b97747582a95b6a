"""``lutkan score`` end to end: formats, column selection, bad rows, output naming, errors and exit codes."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from _score_data import features, make_model, read_output, read_rows, write_table

import lutkan
from lutkan.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE, main

pytest.importorskip("pyarrow", reason="CSV/Parquet scoring needs the [scale] extra (pyarrow)")

N = 3000


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("score")
    paths = make_model(d)
    x = features(N, 6, seed=1)
    np.save(d / "x.npy", x)
    tables = write_table(x, d, "flows", row_group_size=700)
    ref = lutkan.evaluate(lutkan.load(paths["lutkan"]), x)
    return {"dir": d, "model": paths, "x": x, "ref": ref, **tables, "npy": d / "x.npy"}


def score(*args) -> int:
    return main(["score", *map(str, args), "--quiet"])


def same(a, b) -> bool:
    return np.array_equal(a, b, equal_nan=True)


def test_help_lists_score(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "score" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["score", "--help"])
    text = capsys.readouterr().out
    for flag in ("--columns", "--on-bad-rows", "--engine", "--scheduler", "--workers", "--threads", "exit codes",
                 "ort-native", "ort-pyop"):
        assert flag in text


@pytest.mark.parametrize("fmt_in", ["npy", "csv", "parquet"])
@pytest.mark.parametrize("fmt_out", ["npy", "csv", "parquet"])
def test_every_format_pair_gives_the_evaluator_bits(data, tmp_path, fmt_in, fmt_out):
    cols = [] if fmt_in == "npy" else ["--columns", "f0:f5"]
    out = tmp_path / f"y.{fmt_out}"
    assert score(data["model"]["lutkan"], data[fmt_in], "-o", out, "--batch-size", 1000, *cols) == EXIT_OK
    assert same(read_output(out), data["ref"])


def test_small_batches_threads_and_progress(data, tmp_path, capsys):
    out = tmp_path / "y.npy"
    assert main(["score", str(data["model"]["lutkan"]), str(data["parquet"]), "-o", str(out), "--columns", "1:7",
                 "--batch-size", "97", "--threads", "2"]) == EXIT_OK
    assert same(np.load(out), data["ref"])
    err = capsys.readouterr().err
    assert "rows/s" in err and f"{N:,} rows" in err


@pytest.mark.parametrize("form", ["function", "custom", "standard"])
def test_onnx_models(data, tmp_path, form):
    from lutkan.runtime_ext import make_session, run

    out = tmp_path / "y.parquet"
    assert score(data["model"][form], data["npy"], "-o", out) == EXIT_OK
    sess = make_session(str(data["model"][form]), plugin=form != "standard")
    assert same(read_output(out), run(sess, data["x"]))


@pytest.mark.parametrize("form, backend", [("lutkan", "numba"), ("function", "ort-native"), ("custom", "ort-native"),
                                           ("standard", "ort")])
def test_backend_choice_is_printed_once(data, tmp_path, capsys, form, backend):
    assert main(["score", str(data["model"][form]), str(data["npy"]), "-o", str(tmp_path / "y.npy")]) == EXIT_OK
    err = capsys.readouterr().err
    assert err.count("backend: ") == 1 and f"backend: {backend} (" in err, err


def test_column_selection_by_name_index_and_range(data, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    x = data["x"]
    order = [3, 0, 5, 1, 4, 2]  # the file holds the model's columns shuffled, among others
    t = pa.table({"id": pa.array([f"r{i}" for i in range(N)]), **{f"c{j}": pa.array(x[:, j]) for j in order},
                  "extra": pa.array(np.ones(N))})
    pq.write_table(t, tmp_path / "mixed.parquet")
    names = ",".join(f"c{j}" for j in range(6))
    assert score(data["model"]["lutkan"], tmp_path / "mixed.parquet", "-o", tmp_path / "a.npy", "--columns", names) == 0
    assert same(np.load(tmp_path / "a.npy"), data["ref"])
    by_index = ",".join(str(1 + order.index(j)) for j in range(6))
    assert score(data["model"]["lutkan"], tmp_path / "mixed.parquet", "-o", tmp_path / "b.npy",
                 "--columns", by_index) == 0
    assert same(np.load(tmp_path / "b.npy"), data["ref"])
    # ranges: 0-based stop excluded; a name as the stop is included; negative indices count from the end
    np.save(tmp_path / "wide.npy", np.concatenate([np.zeros((N, 2), np.float32), x, np.ones((N, 1), np.float32)], 1))
    for spec in ("2:8", "2:-1", "2,3,4:8"):
        out = tmp_path / f"r{spec.replace(':', '_').replace(',', '_')}.npy"
        assert score(data["model"]["lutkan"], tmp_path / "wide.npy", "-o", out, "--columns", spec) == 0
        assert same(np.load(out), data["ref"])
    assert score(data["model"]["lutkan"], data["csv"], "-o", tmp_path / "c.npy", "--columns", "f0:f5") == 0
    assert same(np.load(tmp_path / "c.npy"), data["ref"])


def test_csv_without_header_and_other_delimiter(data, tmp_path):
    lines = ["\t".join(repr(float(v)) if np.isfinite(v) else str(v) for v in row) for row in data["x"]]
    (tmp_path / "x.tsv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "y.csv"
    assert score(data["model"]["lutkan"], tmp_path / "x.tsv", "--input-format", "csv", "--no-header",
                 "--delimiter", "\t", "-o", out) == 0
    assert (out.read_text().splitlines()[0]) == "y0\ty1"
    assert same(_read_tsv(out), data["ref"])


def _read_tsv(path: Path) -> np.ndarray:
    rows = list(csv.reader(path.read_text().splitlines()[1:], delimiter="\t"))
    return np.array(rows, dtype=np.float64).astype(np.float32)


def test_column_errors_name_the_problem(data, tmp_path, capsys):
    m = data["model"]["lutkan"]
    cases = [
        ((data["parquet"], "--columns", "f0,f1,nope,f3,f4,f5"), "no column named 'nope'"),
        ((data["parquet"], "--columns", "0:99"), "out of range"),
        ((data["parquet"], "--columns", "f1,f1,f2,f3,f4,f5"), "twice"),
        ((data["npy"], "--columns", "a,b"), "no column names"),
        ((data["parquet"],), "the model expects 6; select the model's 6 input columns with --columns"),
        ((data["parquet"], "--columns", "flow_id,f0,f1,f2,f3"), "5 columns"),
    ]
    for args, needle in cases:
        assert score(m, *args, "-o", tmp_path / "y.npy") == EXIT_ERROR, args
        assert needle in capsys.readouterr().err, args
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"a": [1.0], "b": ["x"]}), tmp_path / "s.parquet")
    assert score(m, tmp_path / "s.parquet", "-o", tmp_path / "y.npy", "--columns", "a,b,a") == EXIT_ERROR
    capsys.readouterr()
    pq.write_table(pa.table({f"a{i}": [1.0] for i in range(5)} | {"b": ["x"]}), tmp_path / "s2.parquet")
    assert score(m, tmp_path / "s2.parquet", "-o", tmp_path / "y.npy") == EXIT_ERROR
    assert "column 'b' has type string" in capsys.readouterr().err
    assert not (tmp_path / "y.npy").exists()


# -- bad rows -----------------------------------------------------------------------------------------
@pytest.fixture
def bad_csv(data, tmp_path):
    """flows.csv (flow_id + f0..f5) with bad rows at known places; returns (path, {row: reason words})."""
    lines = data["csv"].read_text().splitlines()
    bad = {}

    def put(row, text, why):
        lines[row + 1] = text
        bad[row] = why

    put(2, "1,2,3", "3 fields, expected 7")
    f = lines[10].split(",")
    put(9, ",".join(f[:3] + ["abc"] + f[4:]), "not a number in column 'f2'")
    f = lines[31].split(",")
    put(30, ",".join(f[:1] + [""] + f[2:]), "empty value in column 'f0'")
    f = lines[1001].split(",")
    put(1000, ",".join(f[:6] + ["N/A"]), "not a number in column 'f5'")
    put(2500, "", "blank line")
    f = lines[41].split(",")  # numbers as any CSV tool writes them: not bad
    lines[41] = ",".join(f[:1] + ["nan", "-inf", "inf", "1e-3", ".5", "+2"])
    f = lines[1011].split(",")  # spaces around numbers are allowed, in a chunk with bad rows or not
    lines[1011] = ",".join(f[:1] + [f" {v} " for v in f[1:]])
    f = lines[2011].split(",")
    lines[2011] = ",".join(f[:1] + [f" {v} " for v in f[1:]])
    f = lines[51].split(",")  # an unselected column may hold anything
    lines[51] = ",".join(["not-an-id"] + f[1:])
    p = tmp_path / "bad.csv"
    p.write_text("\n".join(lines) + "\n")
    return p, bad


def _expected_x(data) -> np.ndarray:
    x = data["x"].copy()
    x[40] = np.array([np.nan, -np.inf, np.inf, 1e-3, 0.5, 2.0], np.float32)
    return x


def test_bad_rows_fail_lists_rows_and_leaves_no_output(data, bad_csv, tmp_path, capsys):
    path, _ = bad_csv
    out = tmp_path / "y.parquet"
    assert score(data["model"]["lutkan"], path, "-o", out, "--columns", "f0:f5", "--batch-size", 512) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "row 2 (line 4): 3 fields, expected 7" in err
    assert "row 9 (line 11): not a number in column 'f2'" in err
    assert "row 30 (line 32): empty value in column 'f0'" in err
    assert "row 1000" not in err  # it stopped at the first chunk (rows 0..511)
    assert "--on-bad-rows skip" in err
    assert list(tmp_path.iterdir()) == [path]  # no output, no partial file


@pytest.mark.parametrize("policy", ["skip", "nan"])
@pytest.mark.parametrize("fmt_out", ["parquet", "npy"])
def test_bad_rows_skip_and_nan(data, bad_csv, tmp_path, policy, fmt_out, capsys):
    path, bad = bad_csv
    out = tmp_path / f"y.{fmt_out}"
    assert main(["score", str(data["model"]["lutkan"]), str(path), "-o", str(out), "--columns", "f0:f5",
                 "--batch-size", "512", "--on-bad-rows", policy]) == EXIT_OK
    err = capsys.readouterr().err
    assert f"{len(bad)} bad rows" in err
    with open(tmp_path / "y.bad-rows.csv") as f:
        report = list(csv.DictReader(f))
    assert [int(r["row"]) for r in report] == sorted(bad)
    for r in report:
        assert bad[int(r["row"])] in r["reason"]
        assert int(r["line"]) == int(r["row"]) + 2
    ref = lutkan.evaluate(lutkan.load(data["model"]["lutkan"]), _expected_x(data))
    keep = np.setdiff1d(np.arange(N), sorted(bad))
    y = read_output(out)
    if policy == "skip":
        assert same(y, ref[keep])
        if fmt_out != "npy":
            assert np.array_equal(read_rows(out), keep)
    else:
        assert y.shape == ref.shape and np.isnan(y[sorted(bad)]).all()
        assert same(y[keep], ref[keep])


def test_parquet_nulls_are_bad_rows(data, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    x = data["x"][:50]
    cols = {f"f{i}": pa.array(x[:, i]) for i in range(6)}
    mask = np.zeros(50, bool)
    mask[[3, 17]] = True
    cols["f4"] = pa.array(x[:, 4], mask=mask)
    pq.write_table(pa.table(cols), tmp_path / "n.parquet", row_group_size=10)
    assert score(data["model"]["lutkan"], tmp_path / "n.parquet", "-o", tmp_path / "y.parquet") == EXIT_ERROR
    assert score(data["model"]["lutkan"], tmp_path / "n.parquet", "-o", tmp_path / "y.parquet",
                 "--on-bad-rows", "skip", "--bad-rows-report", tmp_path / "r.csv") == EXIT_OK
    assert "3,,missing value (null) in column 'f4'" in (tmp_path / "r.csv").read_text()
    assert np.array_equal(read_rows(tmp_path / "y.parquet"), np.setdiff1d(np.arange(50), [3, 17]))


# -- output naming and usage errors ----------------------------------------------------------------------
def test_default_output_name_overwrite_and_formats(data, tmp_path, capsys):
    import shutil

    src = tmp_path / "flows.parquet"
    shutil.copy(data["parquet"], src)
    m = data["model"]["lutkan"]
    assert score(m, src, "--columns", "f0:f5") == EXIT_OK
    assert same(read_output(tmp_path / "flows.scores.parquet"), data["ref"])
    assert score(m, src, "--columns", "f0:f5", "--output-format", "csv") == EXIT_OK
    assert (tmp_path / "flows.scores.csv").is_file()
    # an existing output is kept unless --overwrite
    before = (tmp_path / "flows.scores.parquet").stat().st_mtime_ns
    assert score(m, src, "--columns", "f0:f5") == EXIT_ERROR
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "flows.scores.parquet").stat().st_mtime_ns == before
    assert score(m, src, "--columns", "f0:f5", "--overwrite", "--output-names", "score,other") == EXIT_OK
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "flows.scores.parquet").column_names == ["score", "other"]
    assert score(m, data["npy"], "-o", tmp_path / "y.data", "--output-format", "npy") == EXIT_OK
    assert same(np.load(tmp_path / "y.data", allow_pickle=False), data["ref"])


@pytest.mark.parametrize("args, needle", [
    (("{npy}", "-o", "y.unknown"), "cannot tell the format of output"),
    (("{npy}", "-o", "{npy}"), "is the input file"),
    (("{npy}", "-o", "y.npy", "--workers", "2"), "apply to --engine dask"),
    (("{npy}", "-o", "y.npy", "--engine", "dask", "--workers", "2", "--scheduler", "tcp://h:1"), "--workers sizes"),
    (("{npy}", "-o", "y.csv", "--output-names", "a"), "give 2 distinct"),
    (("{npy}", "-o", "y.csv", "--output-names", "row,b"), "reserved"),
    (("{npy}", "-o", "y.npy", "--no-header"), "apply to CSV input"),
])
def test_usage_errors_exit_2(data, tmp_path, capsys, args, needle):
    args = [str(a).format(npy=data["npy"]) for a in args]
    assert score(data["model"]["lutkan"], *args) == EXIT_USAGE
    err = capsys.readouterr().err
    assert needle in err and "usage: lutkan score" in err


@pytest.mark.parametrize("args", [("--batch-size", "0"), ("--threads", "x"), ("--engine", "spark"),
                                  ("--on-bad-rows", "ignore")])
def test_bad_flag_values_exit_2(data, args):
    with pytest.raises(SystemExit) as e:
        main(["score", str(data["model"]["lutkan"]), str(data["npy"]), *args])
    assert e.value.code == EXIT_USAGE


def test_lutkan_errors_exit_3(data, tmp_path, capsys):
    m = data["model"]["lutkan"]
    np.save(tmp_path / "flat.npy", np.zeros(6, np.float32))
    np.save(tmp_path / "text.npy", np.array([["a"] * 6]))
    (tmp_path / "trunc.npy").write_bytes(data["npy"].read_bytes()[:300])
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "bad.lutkan").write_bytes(b"LUTKAN\x00\x01garbage")
    cases = [
        ((tmp_path / "nope.lutkan", data["npy"]), "model file not found"),
        ((tmp_path / "bad.lutkan", data["npy"]), "truncated"),
        ((m, tmp_path / "nope.npy"), "input file not found"),
        ((m, tmp_path / "flat.npy"), "expected a 2-D array"),
        ((m, tmp_path / "text.npy"), "not a real numeric type"),
        ((m, tmp_path / "trunc.npy"), "truncated"),
        ((m, tmp_path / "junk.parquet"), "cannot read"),
        ((m, tmp_path / "empty.csv"), "the file is empty"),
        ((m, data["npy"], "-o", tmp_path / "no" / "dir" / "y.npy"), "does not exist"),
    ]
    for args, needle in cases:
        rc = main(["score", *map(str, args), *([] if "-o" in args else ["-o", str(tmp_path / "y.npy")]), "--quiet"])
        assert rc == EXIT_ERROR, args
        assert needle in capsys.readouterr().err, args


def test_csv_row_numbers_across_parse_blocks(data, tmp_path):
    """Rows far into a chunk of several 1 MiB parse blocks keep their numbers (header or not)."""
    x = features(30_000, 6, seed=9)
    paths = write_table(x, tmp_path, "big", ids=False)
    assert paths["csv"].stat().st_size > 1 << 20
    lines = paths["csv"].read_text().splitlines()
    lines[17_001] = "1,2,3,4,5"
    f = lines[25_001].split(",")
    lines[25_001] = ",".join(f[:4] + ["x1"] + f[5:])
    ref = lutkan.evaluate(lutkan.load(data["model"]["lutkan"]), x)
    keep = np.setdiff1d(np.arange(30_000), [17_000, 25_000])
    for header in (True, False):
        p = tmp_path / f"b{header}.csv"
        p.write_text("\n".join(lines if header else lines[1:]) + "\n")
        out = tmp_path / f"y{header}.parquet"
        assert score(data["model"]["lutkan"], p, "-o", out, "--batch-size", 100_000, "--on-bad-rows", "skip",
                     *([] if header else ["--no-header"])) == EXIT_OK
        report = (tmp_path / f"y{header}.bad-rows.csv").read_text().splitlines()[1:]
        first = 2 if header else 1
        assert report == [f"17000,{17_000 + first},\"5 fields, expected 6\"",
                          f"25000,{25_000 + first},not a number in column {repr('f4') if header else 4}"]
        assert np.array_equal(read_rows(out), keep)
        assert same(read_output(out), ref[keep])


def test_keep_copies_id_columns_aligned_with_the_scores(data, bad_csv, tmp_path):
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    m = data["model"]["lutkan"]
    assert score(m, data["parquet"], "-o", tmp_path / "k.parquet", "--columns", "f0:f5", "--keep", "flow_id") == 0
    t = pq.read_table(tmp_path / "k.parquet")
    assert t.column_names == ["flow_id", "y0", "y1"] and str(t.schema.field("flow_id").type) == "int64"
    assert np.array_equal(t.column("flow_id").to_numpy(), np.arange(N) + 1000)
    assert same(read_output(tmp_path / "k.parquet"), data["ref"])
    path, bad = bad_csv
    keep = np.setdiff1d(np.arange(N), sorted(bad))
    assert score(m, path, "-o", tmp_path / "s.csv", "--columns", "f0:f5", "--keep", "flow_id",
                 "--on-bad-rows", "skip", "--batch-size", 700) == 0
    t = pacsv.read_csv(tmp_path / "s.csv", convert_options=pacsv.ConvertOptions(column_types={"flow_id": "string"}))
    assert t.column_names == ["row", "flow_id", "y0", "y1"]
    ids = t.column("flow_id").to_pylist()
    assert np.array_equal(t.column("row").to_numpy(), keep)
    by_row = dict(zip(keep.tolist(), ids, strict=True))
    assert by_row[50] == "not-an-id"  # an unselected column is copied as written
    assert all(by_row[r] == str(r + 1000) for r in keep if r != 50)
    assert score(m, path, "-o", tmp_path / "n.parquet", "--columns", "f0:f5", "--keep", "flow_id",
                 "--on-bad-rows", "nan", "--batch-size", 700) == 0
    ids = pq.read_table(tmp_path / "n.parquet").column("flow_id").to_pylist()
    assert len(ids) == N and ids[2] is None and ids[9] == "1009" and ids[2500] is None and ids[2499] == "3499"


@pytest.mark.parametrize("args, needle", [
    (("{parquet}", "-o", "y.npy", "--columns", "f0:f5", "--keep", "flow_id"), "--keep copies CSV/Parquet"),
    (("{npy}", "-o", "y.csv", "--keep", "0"), "--keep copies CSV/Parquet"),
    (("{parquet}", "-o", "y.csv", "--columns", "f0:f5", "--keep", "flow_id,f3"), "both select"),
    (("{parquet}", "-o", "y.csv", "--columns", "f0:f5", "--keep", "flow_id", "--output-names", "flow_id,b"), "clash"),
])
def test_keep_usage_errors(data, tmp_path, capsys, args, needle):
    args = [str(a).format(npy=data["npy"], parquet=data["parquet"]) for a in args]
    assert score(data["model"]["lutkan"], *args) == EXIT_USAGE
    assert needle in capsys.readouterr().err


def test_parquet_folder_is_one_table(data, tmp_path, capsys):
    import pyarrow.parquet as pq

    t = pq.read_table(data["parquet"])
    folder = tmp_path / "flows"
    (folder / "sub").mkdir(parents=True)
    pq.write_table(t.slice(0, 1000), folder / "part-0.parquet", row_group_size=300)
    pq.write_table(t.slice(1000, 1500), folder / "part-1.parquet", row_group_size=5000)
    pq.write_table(t.slice(2500), folder / "sub" / "part-2.parquet")  # sorted path order: after part-1
    (folder / "_SUCCESS").write_text("")
    pq.write_table(t.slice(0, 5), folder / ".hidden.parquet")
    assert score(data["model"]["lutkan"], folder, "--columns", "f0:f5", "--keep", "flow_id", "--batch-size", 400) == 0
    out = tmp_path / "flows.scores.parquet"
    assert same(read_output(out), data["ref"])
    assert np.array_equal(pq.read_table(out).column("flow_id").to_numpy(), np.arange(N) + 1000)
    pq.write_table(t.slice(0, 5).drop_columns(["f5"]), folder / "part-3.parquet")
    assert score(data["model"]["lutkan"], folder, "-o", tmp_path / "y.npy", "--columns", "f0:f5") == EXIT_ERROR
    assert "columns differ" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert score(data["model"]["lutkan"], tmp_path / "empty", "-o", tmp_path / "y.npy") == EXIT_ERROR
    assert "without .parquet files" in capsys.readouterr().err


def _rss_file_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1]) / 1024
    pytest.skip("no /proc/self/status RssFile (not Linux)")


@pytest.mark.parametrize("order", ["C", "F"])
def test_npy_pages_are_released_as_read(tmp_path, order):
    """Reading a 122 MiB .npy keeps at most a few batches of it resident (C and Fortran order)."""
    from lutkan.score.npy_io import NpySource

    x = np.lib.format.open_memmap(tmp_path / "big.npy", mode="w+", dtype=np.float32, shape=(500_000, 64),
                                  fortran_order=order == "F")
    x[:] = 1.0
    del x
    src = NpySource(str(tmp_path / "big.npy"))
    before, peak, n = _rss_file_mib(), 0.0, 0
    for part in src.plan(200_000):
        for b in src.batches(part, 20_000):
            n += b.n_rows
            assert b.x.flags.c_contiguous and b.x.dtype == np.float32 and float(b.x.min()) == 1.0
            peak = max(peak, _rss_file_mib() - before)
    assert n == 500_000
    assert peak < 32, f"{peak:.0f} MiB of a 122 MiB file stayed resident"
