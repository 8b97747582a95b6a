"""The architecture checks run with the suite: import layers (import-linter, ``[tool.importlinter]`` in
pyproject.toml) and lint (ruff, ``[tool.ruff]``). A new import cycle or an upward import fails here."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _tool(name: str) -> str:
    exe = Path(sys.executable).with_name(name)
    path = str(exe) if exe.exists() else shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: `pip install -e '.[dev]'` (scripts/setup.sh installs it)")
    return path


def test_import_layers():
    r = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"import-linter contract broken:\n{r.stdout[-4000:]}\n{r.stderr[-2000:]}"
    assert "0 broken" in r.stdout


def test_ruff_clean():
    r = subprocess.run([_tool("ruff"), "check", "--no-cache", "."], cwd=REPO, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, f"ruff findings:\n{r.stdout[-4000:]}"
