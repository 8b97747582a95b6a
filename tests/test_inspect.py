"""``lutkan inspect`` on .lutkan and .onnx files: fields, JSON, per-edge error report, exit codes."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from lutkan.artifact import save
from lutkan.cli import EXIT_ERROR, EXIT_OK, main
from lutkan.compiler import compile_model
from lutkan.contract import ContractOptions

pytest.importorskip("kan", reason="compiling pykan checkpoints needs the [pykan] extra")
from conftest import REPO

from lutkan.compiler.pykan import load_source
from lutkan.exporter import export, save_onnx

BC = REPO / "models" / "breast_cancer" / "0.0"  # width [30, 8, 1]


@pytest.fixture(scope="module")
def bc_source():
    return load_source(str(BC))


@pytest.fixture(scope="module")
def files(bc_source, tmp_path_factory):
    d = tmp_path_factory.mktemp("inspect")
    model = compile_model(bc_source, ContractOptions(L=16, scheme="int8"))
    lk = save(model, d / "bc.lutkan")
    paths = {"lutkan": lk, "model": model}
    for form in ("function", "standard", "custom"):
        p = d / f"bc.{form}.onnx"
        save_onnx(export(model, form=form), p)
        paths[form] = p
    return paths


def test_inspect_lutkan_text(files, capsys):
    assert main(["inspect", str(files["lutkan"])]) == EXIT_OK
    out = capsys.readouterr().out
    for want in ("lutkan artifact", "width: [30, 8, 1]", "L=16", "scheme=int8", "interp=linear",
                 "oob=zero", "table_bytes", "max_tab_error", "total table bytes", "provenance:"):
        assert want in out, (want, out)
    model = files["model"]
    assert str(sum(model.table_bytes())) in out
    for b in model.table_bytes():
        assert str(b) in out


def test_inspect_lutkan_json(files, capsys):
    assert main(["inspect", str(files["lutkan"]), "--json"]) == EXIT_OK
    d = json.loads(capsys.readouterr().out)
    assert d["kind"] == "lutkan"
    assert d["width"] == [30, 8, 1]
    assert d["contract"]["L"] == 16 and d["contract"]["scheme"] == "int8"
    assert [layer["table_bytes"] for layer in d["layers"]] == files["model"].table_bytes()
    assert [layer["edges"] for layer in d["layers"]] == [240, 8]
    assert all(layer["max_tab_error"] > 0 for layer in d["layers"])
    assert isinstance(d["provenance"], dict) and d["provenance"]


@pytest.mark.parametrize("form,n_edge_nodes", [("function", 2), ("standard", 0), ("custom", 2)])
def test_inspect_onnx(files, form, n_edge_nodes, capsys):
    assert main(["inspect", str(files[form]), "--json"]) == EXIT_OK
    d = json.loads(capsys.readouterr().out)
    assert d["kind"] == "onnx"
    assert d["lutkan_edge_nodes"] == n_edge_nodes
    assert d["opset_imports"].get("ai.onnx")
    if n_edge_nodes:
        assert "lutkan" in d["domains"] and d["opset_imports"]["lutkan"] == 2
        assert [n["attributes"]["L"] for n in d["lutkan_nodes"]] == [16, 16]
    assert (form == "function") == bool(d["functions"])
    assert d["metadata"], "no lutkan.* metadata_props"
    assert d["initializer_bytes"] > 0
    layers = [k for k in d["initializers_per_layer"] if k.isdigit()]
    assert len(layers) == 2, d["initializers_per_layer"].keys()
    # the int8 tables are stored as int8 in the file: layer 0 holds at least its 30*11*16*8 table bytes
    assert d["initializers_per_layer"]["0"]["initializer_bytes"] >= 30 * 11 * 16 * 8
    capsys.readouterr()
    assert main(["inspect", str(files[form])]) == EXIT_OK
    text = capsys.readouterr().out
    for want in ("ONNX model", "opsets", "nodes:", "initializer bytes", "layer 0", "layer 1"):
        assert want in text, (want, text)


def test_edges_report_lutkan(files, tmp_path, capsys):
    out = tmp_path / "edges"
    assert main(["inspect", str(files["lutkan"]), "--edges", "--source", str(BC), "--out", str(out)]) == EXIT_OK
    text = capsys.readouterr().out
    assert "edge report" in text
    rows = list(csv.DictReader((out / "edges.csv").open()))
    assert len(rows) == 240 + 8
    assert set(rows[0]) >= {"layer", "i", "j", "tab_error", "grid_max_abs_error"}
    for l in (0, 1):
        png = out / f"layer{l}_edge_error.png"
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    tab = np.array([float(r["tab_error"]) for r in rows])
    grid = np.array([float(r["grid_max_abs_error"]) for r in rows])
    scale = np.array([float(r["edge_max_abs"]) for r in rows])
    assert np.all(np.isfinite(grid)) and np.all(grid >= 0)
    # The dense grid contains the table's samples and midpoints, so it sees at least (about) the
    # recorded table error, and on int8 tables it stays within a small multiple of it.
    assert np.all(grid >= 0.5 * tab - 1e-6 * scale - 1e-7)
    assert np.all(grid <= 4 * tab + 1e-5 * scale + 1e-6)


def test_edges_report_onnx_uses_metadata_contract(files, tmp_path, capsys):
    out = tmp_path / "edges_onnx"
    assert main(["inspect", str(files["function"]), "--edges", "--source", str(BC), "--out", str(out),
                 "--quiet"]) == EXIT_OK
    rows = list(csv.DictReader((out / "edges.csv").open()))
    assert len(rows) == 248
    tab = [float(r["tab_error"]) for r in rows]
    np.testing.assert_allclose(tab, np.concatenate([layer.tab_error for layer in files["model"].layers]), rtol=1e-6)


def test_bad_paths_exit_3(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "nope.onnx")]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "no such file" in err and "nope.onnx" in err
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a protobuf \xff\xfe")
    assert main(["inspect", str(bad)]) == EXIT_ERROR
    assert "bad.onnx" in capsys.readouterr().err
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    assert main(["inspect", str(empty)]) == EXIT_ERROR
    assert "not an ONNX model" in capsys.readouterr().err
    trunc = tmp_path / "trunc.lutkan"
    trunc.write_bytes(b"LUTKAN\x00\x01garbage")
    assert main(["inspect", str(trunc)]) == EXIT_ERROR
    assert "truncated" in capsys.readouterr().err
    assert main(["inspect", str(tmp_path)]) == EXIT_ERROR
    assert "not a file" in capsys.readouterr().err


def test_edges_with_wrong_source_exit_3(files, tmp_path, capsys):
    assert main(["inspect", str(files["lutkan"]), "--edges", "--source", str(tmp_path / "nothing" / "0.0"),
                 "--out", str(tmp_path / "o")]) == EXIT_ERROR
    assert "error" in capsys.readouterr().err
    digits = REPO / "models" / "digits" / "0.0"
    assert main(["inspect", str(files["lutkan"]), "--edges", "--source", str(digits),
                 "--out", str(tmp_path / "o")]) == EXIT_ERROR
    assert "does not match" in capsys.readouterr().err
