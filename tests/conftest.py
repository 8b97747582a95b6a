"""Shared fixtures: the real checkpoints in ../shared/realmodels and a clean working directory."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parents[1]
REALMODELS = Path(os.environ.get("LUTKAN_REALMODELS", REPO.parent / "shared" / "realmodels"))
REALMODEL_NAMES = sorted(p.name for p in REALMODELS.iterdir() if p.is_dir()) if REALMODELS.is_dir() else []

settings.register_profile("ci", deadline=None, max_examples=40, derandomize=True)
settings.register_profile("dev", deadline=None, max_examples=20)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_configure(config):
    """Build the native op forwarder in this checkout if it is missing (``python setup.py build_ext --inplace``;
    an installed lutkan has it from its own build). Once, in the controller, not in xdist workers."""
    if hasattr(config, "workerinput") or any((REPO / "lutkan" / "runtime_ext").glob("_native*.so")):
        return
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace", "--build-temp", tmp], cwd=REPO,
                       capture_output=True, check=False)


def realmodel_dir(name: str) -> Path:
    return REALMODELS / name


@pytest.fixture(scope="session")
def realmodels() -> Path:
    if not REALMODELS.is_dir():
        pytest.fail(f"real checkpoints not found at {REALMODELS}; CI must provide ../shared/realmodels")
    return REALMODELS


@pytest.fixture(autouse=True)
def _no_model_dir_side_effect(tmp_path, monkeypatch):
    """Run every test in a scratch cwd and fail if anything creates ./model (pykan's auto_save)."""
    monkeypatch.chdir(tmp_path)
    yield
    assert not (tmp_path / "model").exists(), "a test left pykan's ./model folder behind"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def terminal_line(config, line: str) -> None:
    """Write a summary line (case counts of the fuzz/robustness modules) to the terminal, past capture."""
    tr = config.pluginmanager.getplugin("terminalreporter")
    cm = config.pluginmanager.getplugin("capturemanager")
    if tr is None or cm is None:  # pragma: no cover - plain python runs
        print(line)
        return
    with cm.global_and_fixture_disabled():
        tr.write_line("")
        tr.write_line(line)

