"""The CLI end to end on a real checkpoint: compile -> run -> verify -> export -> run .onnx, exit codes."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import realmodel_dir

from lutkan.cli import EXIT_ERROR, EXIT_OK, EXIT_VERIFY_FAILED, main

pytest.importorskip("kan", reason="compiling pykan checkpoints needs the [pykan] extra")

SRC = str(realmodel_dir("torward_vlbi_deep") / "0.2")


def test_help_documents_every_command(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("compile", "run", "verify", "export", "inspect"):
        assert cmd in out


def test_compile_run_verify(tmp_path, capsys):
    out = tmp_path / "m.lutkan"
    assert main(["compile", SRC, "-o", str(out), "--L", "128", "--scheme", "float32", "--quiet"]) == EXIT_OK
    assert out.stat().st_size > 0
    x = np.random.default_rng(0).normal(size=(7, 1)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    for backend in ("numpy", "numba"):
        y_path = tmp_path / f"y_{backend}.npy"
        assert main(["run", str(out), "--input", str(tmp_path / "x.npy"), "-o", str(y_path),
                     "--backend", backend, "--quiet"]) == EXIT_OK
        assert np.load(y_path).shape == (7, 1)
    np.testing.assert_allclose(np.load(tmp_path / "y_numpy.npy"), np.load(tmp_path / "y_numba.npy"), rtol=1e-5, atol=1e-7)
    capsys.readouterr()
    assert main(["verify", SRC, str(out), "--tol", "0.01"]) == EXIT_OK
    text = capsys.readouterr().out
    assert "max_abs_err" in text and "overall" in text
    # an impossible tolerance fails with exit code 1
    assert main(["verify", SRC, str(out), "--tol", "1e-12"]) == EXIT_VERIFY_FAILED


def test_bad_inputs_give_exit_code_3(tmp_path, capsys):
    assert main(["compile", str(tmp_path / "nope" / "0.1"), "-o", str(tmp_path / "m.lutkan"), "--quiet"]) == EXIT_ERROR
    assert "error" in capsys.readouterr().err
    bad = tmp_path / "bad.lutkan"
    bad.write_bytes(b"LUTKAN\x00\x01garbage")
    np.save(tmp_path / "x.npy", np.zeros((2, 1), np.float32))
    assert main(["run", str(bad), "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "truncated" in err or "checksum" in err
    good = tmp_path / "m.lutkan"
    assert main(["compile", SRC, "-o", str(good), "--quiet"]) == EXIT_OK
    np.save(tmp_path / "wide.npy", np.zeros((2, 5), np.float32))
    assert main(["run", str(good), "--input", str(tmp_path / "wide.npy"), "-o", str(tmp_path / "y.npy")]) == EXIT_ERROR
    assert "expects 1" in capsys.readouterr().err


def test_invalid_contract_flag_is_a_usage_error():
    with pytest.raises(SystemExit) as e:
        main(["compile", SRC, "-o", "x.lutkan", "--scheme", "int4"])
    assert e.value.code == 2


def test_invalid_L_is_reported(tmp_path, capsys):
    assert main(["compile", SRC, "-o", str(tmp_path / "m.lutkan"), "--L", "1", "--quiet"]) == EXIT_ERROR
    assert "L=1" in capsys.readouterr().err


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

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    _version.version.cache_clear()
    monkeypatch.setattr(_version, "_dist_version", missing)
    try:
        assert _version.version() == "0+unknown"
    finally:
        _version.version.cache_clear()
