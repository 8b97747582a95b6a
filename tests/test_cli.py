"""The CLI end to end on the bundled checkpoints: compile -> run -> verify -> export -> run .onnx, exit codes,
and what a user meets when something is off: missing or wrong-kind files named as such, output paths that must
not be written (a missing folder, a device, the command's own input), flag values out of range (usage errors),
warnings as ``note:`` lines and hints in CLI flags."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from conftest import REPO

from lutkan.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE, EXIT_VERIFY_FAILED, main

pytest.importorskip("kan", reason="compiling pykan checkpoints needs the [pykan] extra")

BC = str(REPO / "models" / "breast_cancer" / "0.0")
FEATURED = str(REPO / "models" / "featured" / "0.0")


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    """breast_cancer compiled with the defaults (int8, L=64), and 7 rows of its inputs."""
    d = tmp_path_factory.mktemp("cli")
    assert main(["compile", BC, "-o", str(d / "bc.lutkan"), "--quiet"]) == EXIT_OK
    np.save(d / "x.npy", np.load(REPO / "models" / "breast_cancer" / "test_data.npz")["X_test"][:7])
    return d


def usage_error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == EXIT_USAGE, argv
    return capsys.readouterr().err


def test_help_documents_every_command(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("compile", "run", "verify", "export", "inspect", "bench", "demo"):
        assert cmd in out


def test_compile_run_verify(tmp_path, capsys):
    out = tmp_path / "m.lutkan"
    assert main(["compile", FEATURED, "-o", str(out), "--L", "128", "--scheme", "float32", "--quiet"]) == EXIT_OK
    x = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    for backend in ("numpy", "numba"):
        y_path = tmp_path / f"y_{backend}.npy"
        assert main(["run", str(out), "--input", str(tmp_path / "x.npy"), "-o", str(y_path),
                     "--backend", backend, "--quiet"]) == EXIT_OK
        assert np.load(y_path).shape == (7, 1)
    np.testing.assert_allclose(np.load(tmp_path / "y_numpy.npy"), np.load(tmp_path / "y_numba.npy"), rtol=1e-5, atol=1e-7)
    capsys.readouterr()
    assert main(["verify", FEATURED, str(out), "--tol", "0.01"]) == EXIT_OK
    text = capsys.readouterr().out
    assert "max_abs_err" in text and "overall" in text and "OK" in text
    assert main(["verify", FEATURED, str(out), "--tol", "1e-12"]) == EXIT_VERIFY_FAILED


def _verify_table(text: str) -> tuple[list[float], float]:
    lines = text.splitlines()
    start = next(i for i, s in enumerate(lines) if s.split()[:1] == ["output"]) + 1
    per = [float(s.split()[3]) for s in lines[start:] if s.split() and s.split()[0].isdigit()]
    overall = float(next(s for s in lines if s.startswith("overall")).split("= ")[1].split(";")[0])
    return per, overall


def test_verify_default_tolerance_and_overall_figure(tmp_path, capsys, monkeypatch):
    """Without --tol, verify fails (exit 1) above the contract's default tolerance; per-output figures are
    printed and the overall figure is the worst output's (digits: 10 outputs of different scales)."""
    from lutkan import contract as C
    from lutkan.evaluators import numpy_eval

    digits = str(REPO / "models" / "digits" / "0.0")
    out = tmp_path / "d.lutkan"
    assert main(["compile", digits, "-o", str(out), "--quiet"]) == EXIT_OK
    capsys.readouterr()
    assert main(["verify", digits, str(out)]) == EXIT_OK
    text = capsys.readouterr().out
    per, overall = _verify_table(text)
    assert len(per) == 10 and overall == pytest.approx(max(per), rel=1e-3) and overall >= max(per) * (1 - 1e-3)
    assert f"tolerance {C.verify_tolerance(C.ContractOptions()):g}" in text
    # a model 100 % off on one output: the default tolerance catches it
    real_call = numpy_eval.NumpyEvaluator.__call__

    def off(self, x, *a, **k):
        y = real_call(self, x, *a, **k)
        y[:, 3] *= 2.0
        return y

    monkeypatch.setattr(numpy_eval.NumpyEvaluator, "__call__", off)
    assert main(["verify", digits, str(out)]) == EXIT_VERIFY_FAILED
    text = capsys.readouterr().out
    per, overall = _verify_table(text)
    assert "FAILED" in text and overall == pytest.approx(max(per), rel=1e-3) and per[3] > 0.5


def test_verify_default_tolerance_depends_on_the_contract():
    from lutkan import contract as C

    tol = [C.verify_tolerance(C.ContractOptions(**o)) for o in
           ({"interp": "poly", "scheme": "float32"}, {"interp": "poly", "scheme": "float16"}, {}, {"interp": "nearest"})]
    assert tol == [1e-4, 1e-2, 2e-2, 5e-2]


def test_missing_and_wrong_kind_files_are_named(artifact, tmp_path, capsys):
    assert main(["verify", BC, str(tmp_path / "missing.lutkan")]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "missing.lutkan: no such file" in err and "_state" not in err
    onnx_in = tmp_path / "X.onnx"
    assert main(["export", str(artifact / "bc.lutkan"), "-o", str(onnx_in), "--quiet"]) == EXIT_OK
    assert main(["export", str(onnx_in), "-o", str(tmp_path / "y.onnx")]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "X.onnx is an ONNX file" in err and "_state" not in err
    for cmd in (["compile", str(onnx_in), "-o", str(tmp_path / "c.lutkan")], ["verify", str(onnx_in), str(onnx_in)],
                ["verify", str(artifact / "bc.lutkan"), str(artifact / "bc.lutkan")]):
        assert main(cmd) == EXIT_ERROR
        err = capsys.readouterr().err
        assert "the SOURCE of" in err and "_state" not in err, err
    assert main(["run", str(tmp_path / "nope.onnx"), "--input", str(artifact / "x.npy"), "-o", str(tmp_path / "y.npy")]) == EXIT_ERROR
    assert "nope.onnx: no such file" in capsys.readouterr().err
    assert main(["run", str(artifact / "bc.lutkan"), "--input", str(tmp_path / "nox.npy"), "-o", str(tmp_path / "y.npy")]) == EXIT_ERROR
    assert "nox.npy: no such file" in capsys.readouterr().err
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["run", str(tmp_path / "notes.txt"), "--input", str(artifact / "x.npy"), "-o", str(tmp_path / "y.npy")]) == EXIT_ERROR
    assert "neither a .lutkan artifact" in capsys.readouterr().err


def test_file_kinds_are_case_insensitive(artifact, tmp_path, capsys):
    upper = tmp_path / "BC.ONNX"
    assert main(["export", str(artifact / "bc.lutkan"), "-o", str(upper), "--quiet"]) == EXIT_OK
    y = tmp_path / "y.npy"
    assert main(["run", str(upper), "--input", str(artifact / "x.npy"), "-o", str(y), "--quiet"]) == EXIT_OK
    y_lut = tmp_path / "y_lut.npy"
    assert main(["run", str(artifact / "bc.lutkan"), "--input", str(artifact / "x.npy"), "-o", str(y_lut), "--quiet"]) == EXIT_OK
    np.testing.assert_allclose(np.load(y), np.load(y_lut), rtol=1e-5, atol=1e-6)
    assert main(["export", str(upper), "-o", str(tmp_path / "z.onnx")]) == EXIT_ERROR
    assert "is an ONNX file" in capsys.readouterr().err
    assert main(["inspect", str(upper), "--json"]) == EXIT_OK


def test_output_paths(artifact, tmp_path, capsys):
    """-o into a missing folder, onto a device or folder, or onto the command's own input: exit 3, named,
    nothing replaced; `run -o out` writes exactly `out`."""
    lut, x = str(artifact / "bc.lutkan"), str(artifact / "x.npy")
    assert main(["export", lut, "-o", str(tmp_path / "no" / "dir" / "m.onnx")]) == EXIT_ERROR
    assert "the folder" in capsys.readouterr().err and not (tmp_path / "no").exists()
    assert main(["run", lut, "--input", x, "-o", "/dev/null"]) == EXIT_ERROR
    assert "character device" in capsys.readouterr().err
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert main(["compile", BC, "-o", str(tmp_path), "--quiet"]) == EXIT_ERROR
    assert "is a folder" in capsys.readouterr().err
    before = (artifact / "bc.lutkan").read_bytes()
    assert main(["export", lut, "-o", lut]) == EXIT_ERROR
    assert "this command's input" in capsys.readouterr().err and (artifact / "bc.lutkan").read_bytes() == before
    xb = (artifact / "x.npy").read_bytes()
    assert main(["run", lut, "--input", x, "-o", x]) == EXIT_ERROR
    assert "this command's input" in capsys.readouterr().err and (artifact / "x.npy").read_bytes() == xb
    out = tmp_path / "out"
    assert main(["run", lut, "--input", x, "-o", str(out)]) == EXIT_OK
    assert f"wrote {out}:" in capsys.readouterr().out and out.is_file() and not (tmp_path / "out.npy").exists()
    assert np.load(out).shape == (7, 1)


@pytest.mark.parametrize("argv, match", [
    (["run", "m.lutkan", "--input", "x.npy", "-o", "y.npy", "--threads", "100000"], "--threads: 100000 is out of range"),
    (["run", "m.lutkan", "--input", "x.npy", "-o", "y.npy", "--threads", "-3"], "--threads: -3 is out of range"),
    (["run", "m.lutkan", "--input", "x.npy", "-o", "y.npy", "--threads", "0"], "--threads: 0 is out of range"),
    (["compile", BC, "-o", "x.lutkan", "--L", "1"], "--L: L=1 is out of range"),
    (["compile", BC, "-o", "x.lutkan", "--L", "1e9"], "--L: expected an integer"),
    (["export", "m.lutkan", "-o", "x.onnx", "--L", "99999"], "--L: L=99999 is out of range"),
    (["compile", BC, "-o", "x.lutkan", "--scheme", "int4"], "invalid choice"),
    (["demo", "--L", "1"], "--L: L=1 is out of range"),
    (["demo", "--threads", "100000"], "--threads: 100000 is out of range"),
])
def test_out_of_range_flags_are_usage_errors(argv, match, capsys):
    assert match in usage_error(argv, capsys)


def test_warnings_are_notes_and_hints_name_flags(artifact, tmp_path, capsys):
    """A folder source warns which checkpoint it used: printed once as a note naming --checkpoint-id; a
    custom-form file in plain onnxruntime: the hint names --plugin and --form, not Python arguments."""
    folder = str(REPO / "models" / "breast_cancer")
    assert main(["compile", folder, "-o", str(tmp_path / "f.lutkan")]) == EXIT_OK
    err = capsys.readouterr().err
    assert err.count("note: ") == 1 and "--checkpoint-id" in err and "checkpoint_id" not in err
    assert "UserWarning" not in err and "warnings.warn" not in err
    custom = tmp_path / "c.onnx"
    assert main(["export", str(artifact / "bc.lutkan"), "-o", str(custom), "--form", "custom", "--quiet"]) == EXIT_OK
    assert main(["run", str(custom), "--input", str(artifact / "x.npy"), "-o", str(tmp_path / "y.npy")]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "--plugin" in err and "--form function" in err and "plugin=True" not in err and "form='" not in err
    assert main(["run", str(custom), "--input", str(artifact / "x.npy"), "-o", str(tmp_path / "y.npy"),
                 "--plugin", "--quiet"]) == EXIT_OK
    assert main(["compile", BC, "-o", str(tmp_path / "p.lutkan"), "--interp", "poly", "--scheme", "int8"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "--interp poly" in err and "--scheme float32" in err and "interp='" not in err, err


def test_bad_inputs_give_exit_code_3(artifact, tmp_path, capsys):
    assert main(["compile", str(tmp_path / "nope" / "0.1"), "-o", str(tmp_path / "m.lutkan"), "--quiet"]) == EXIT_ERROR
    assert "error" in capsys.readouterr().err
    bad = tmp_path / "bad.lutkan"
    bad.write_bytes(b"LUTKAN\x00\x01garbage")
    assert main(["run", str(bad), "--input", str(artifact / "x.npy"), "-o", str(tmp_path / "y.npy")]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "truncated" in err or "checksum" in err
    np.save(tmp_path / "wide.npy", np.zeros((2, 5), np.float32))
    assert main(["run", str(artifact / "bc.lutkan"), "--input", str(tmp_path / "wide.npy"), "-o",
                 str(tmp_path / "y.npy")]) == EXIT_ERROR
    assert "expects 30" in capsys.readouterr().err


def test_version_comes_from_package_metadata(capsys, monkeypatch):
    """--version, lutkan.__version__ and the ONNX producer_version all read the installed metadata."""
    import importlib.metadata

    import lutkan
    from lutkan import _version
    from lutkan.exporter._versions import producer_version

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"lutkan {_version.version()}"
    assert lutkan.__version__ == producer_version() == _version.version()
    assert _version.version() == importlib.metadata.version("lutkan")

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    _version.version.cache_clear()
    monkeypatch.setattr(_version, "_dist_version", missing)
    try:
        assert _version.version() == "0+unknown"
    finally:
        _version.version.cache_clear()
