"""The exported files in the OLDEST onnxruntime pyproject allows (the suite's own venv has the newest).

A second venv with only ``onnxruntime~=<lower bound>`` and numpy is built once (``LUTKAN_ORT_OLDEST_VENV``,
default ``<repo>/.venv-ort-oldest``, git-ignored; ~15 s from the package registry) and runs a tiny script
(no lutkan inside) on files written here: the function and standard forms of each case and an ``--opset 18``
file; the outputs must equal the NumPy reference. Without the registry the test skips, saying why, except in
CI (``CI=true``), where it must run. The plugin path is not tested there (it needs onnxruntime-extensions).
"""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from lutkan.contract import ContractOptions
from lutkan.exporter import export
from lutkan.exporter.opset import MIN_OPSET, convert_opset
from lutkan.testing import assert_backends_agree
from lutkan.testing.inputs import adversarial_inputs

pytest.importorskip("kan", reason="compiling the bundled checkpoints needs the [pykan] extra")

RUN = """
import sys, pathlib, numpy as np, onnxruntime as ort
print(ort.__version__)
for f in sorted(pathlib.Path(sys.argv[1]).glob("*.onnx")):
    so = ort.SessionOptions(); so.intra_op_num_threads = 1
    s = ort.InferenceSession(str(f), so, providers=["CPUExecutionProvider"])
    x = np.load(f.with_suffix(".x.npy"))
    np.save(f.with_suffix(".y.npy"), s.run(None, {s.get_inputs()[0].name: x})[0])
"""


def oldest_onnxruntime() -> str:
    """``X.Y`` of onnxruntime's lower bound in pyproject.toml (``onnxruntime>=X.Y``)."""
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    spec = next(d for d in deps if re.match(r"onnxruntime\s*[<>=]", d))
    return re.search(r">=\s*([0-9]+\.[0-9]+)", spec).group(1)


@pytest.fixture(scope="session")
def old_python() -> Path:
    venv = Path(os.environ.get("LUTKAN_ORT_OLDEST_VENV", REPO / ".venv-ort-oldest"))
    want = oldest_onnxruntime()
    py = venv / "bin" / "python"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:  # xdist workers build it once
        fcntl.flock(lock, fcntl.LOCK_EX)
        ok = py.exists() and subprocess.run([py, "-c", f"import onnxruntime as o; assert o.__version__.startswith('{want}.')"],
                                            capture_output=True).returncode == 0
        if not ok:
            steps = [[sys.executable, "-m", "venv", "--clear", str(venv)],
                     [py, "-m", "pip", "install", "-q", "--disable-pip-version-check", f"onnxruntime~={want}.0", "numpy<2.3"]]
            for cmd in steps:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
                if r.returncode:
                    why = f"cannot build the onnxruntime {want} venv at {venv}: {r.stderr.strip()[-300:]}"
                    if os.environ.get("CI"):
                        pytest.fail(why)
                    pytest.skip(why)
    return py


def test_oldest_onnxruntime_runs_both_forms(old_python, tmp_path):
    from lutkan.compiler import compile_model

    cases = {"int8": (REPO / "models" / "breast_cancer" / "0.0", ContractOptions()),
             "poly": (REPO / "models" / "breast_cancer" / "0.0", ContractOptions(interp="poly", scheme="float32")),
             "featured": (REPO / "models" / "featured" / "0.0", ContractOptions(L=16, scheme="uint8", oob="clip"))}
    models = {}
    for name, (src, opts) in cases.items():
        model = compile_model(src, opts)
        x = adversarial_inputs(model, 48, seed=5)
        files = {"function": export(model, "function"), "standard": export(model, "standard"),
                 f"opset{MIN_OPSET}": convert_opset(export(model, "function"), MIN_OPSET)[0]}
        for form, proto in files.items():
            (tmp_path / f"{name}.{form}.onnx").write_bytes(proto.SerializeToString())
            np.save(tmp_path / f"{name}.{form}.x.npy", x)
        models[name] = model, x, list(files)
    r = subprocess.run([old_python, "-c", RUN, str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    version = r.stdout.split()[0]
    assert version.startswith(oldest_onnxruntime() + "."), version
    for name, (model, x, forms) in models.items():
        runners = {f"onnxruntime {version} {form}": (lambda _x, p=tmp_path / f"{name}.{form}.y.npy": np.load(p))
                   for form in forms}
        assert_backends_agree(model, x, runners=runners, rel=1e-5, what=name)
