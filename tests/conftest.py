"""Shared fixtures: the real checkpoints (``../shared/realmodels``), a generated pykan checkpoint with every
feature, and a clean working directory.

Real checkpoints: tests that need them request the ``realmodels`` fixture (directly or through a fixture,
or carry ``@pytest.mark.realmodels``). Where the folder is missing (a fresh clone) they are skipped with one
summary line naming the folder and ``LUTKAN_REALMODELS``; with ``LUTKAN_REQUIRE_REALMODELS=1`` (CI,
``.ci/run``) a missing folder fails them instead.
"""

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
REALMODELS_ENV, REQUIRE_ENV = "LUTKAN_REALMODELS", "LUTKAN_REQUIRE_REALMODELS"
REALMODELS = Path(os.environ.get(REALMODELS_ENV, REPO.parent / "shared" / "realmodels"))
EXPECTED_REALMODELS = ("logiknet_mult", "mguo_gwp_symbolic", "nikita_ids_k2", "pykan_tutorial_g100",
                       "ramyar_digits_wide", "torward_vlbi_deep")
HAVE_REALMODELS = REALMODELS.is_dir()
REQUIRE_REALMODELS = os.environ.get(REQUIRE_ENV, "") not in ("", "0")
# parametrize over what is there; without the folder over the expected names (those tests are skipped)
REALMODEL_NAMES = (sorted(p.name for p in REALMODELS.iterdir() if p.is_dir()) if HAVE_REALMODELS
                   else list(EXPECTED_REALMODELS))
REALMODELS_SKIP = (f"real checkpoints not found at {REALMODELS}: set {REALMODELS_ENV}=/path/to/realmodels to run "
                   f"these tests ({REQUIRE_ENV}=1 makes a missing folder fail, as in CI)")

settings.register_profile("ci", deadline=None, max_examples=40, derandomize=True)
settings.register_profile("dev", deadline=None, max_examples=20)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_configure(config):
    """Register the ``realmodels`` marker; build the native op forwarder in this checkout if it is missing
    (``python setup.py build_ext --inplace``; an installed lutkan has it from its own build). Once, in the
    controller, not in xdist workers."""
    config.addinivalue_line("markers", "realmodels: needs the real checkpoints (../shared/realmodels or "
                                       f"${REALMODELS_ENV})")
    if hasattr(config, "workerinput") or any((REPO / "lutkan" / "runtime_ext").glob("_native*.so")):
        return
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace", "--build-temp", tmp], cwd=REPO,
                       capture_output=True, check=False)


def realmodel_dir(name: str) -> Path:
    """The folder of one real checkpoint (only call it from a test that needs ``realmodels``)."""
    return REALMODELS / name


FEATURED = "featured"
"""The bundled regression checkpoint with every feature (models/featured: updated knots, a multiplication
node, pruned and symbolic edges): the acceptance modules run on it with or without the real checkpoints."""
CHECKPOINT_PARAMS = [pytest.param(n, marks=pytest.mark.realmodels) for n in REALMODEL_NAMES] + [FEATURED]
"""Parameters of the acceptance fixtures: every real checkpoint (marked ``realmodels``) and ``featured``."""


def checkpoint_dir(request, name: str) -> Path:
    """The folder of ``name`` from ``CHECKPOINT_PARAMS`` (a real one requires the ``realmodels`` fixture)."""
    if name == FEATURED:
        return REPO / "models" / FEATURED
    request.getfixturevalue("realmodels")
    return REALMODELS / name


def needs_realmodels(item) -> bool:
    return "realmodels" in getattr(item, "fixturenames", ()) or item.get_closest_marker("realmodels") is not None


def pytest_collection_modifyitems(config, items):
    if HAVE_REALMODELS or REQUIRE_REALMODELS:
        return
    for item in items:
        if needs_realmodels(item):
            item.add_marker(pytest.mark.skip(reason=REALMODELS_SKIP))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Fold every real-checkpoint skip into one summary line (pytest folds skips by file and reason)."""
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped and isinstance(rep.longrepr, tuple) and rep.longrepr[2].endswith(REALMODELS_SKIP):
        rep.longrepr = (str(Path(__file__)), None, rep.longrepr[2])


@pytest.fixture(scope="session")
def realmodels() -> Path:
    if not REALMODELS.is_dir():
        pytest.fail(f"real checkpoints not found at {REALMODELS} ({REQUIRE_ENV} is set): CI must provide "
                    f"../shared/realmodels, or point {REALMODELS_ENV} at them")
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

