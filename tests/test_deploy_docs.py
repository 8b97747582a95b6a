"""Every snippet of docs/deploy.md runs and gives the NumPy reference's outputs.

The guide marks each fenced block ``<!-- snippet: NAME -->`` (or ``<!-- snippet: NAME (not run: why) -->``
for the C++/C#/Java ones: no SDK for those is reachable from the build machine). The snippets run as written
in a scratch folder holding a ``models`` link to the bundled models; ``lutkan`` and ``python`` in the bash
ones are this interpreter. Python snippets leave ``y``; the Node snippet prints the outputs as JSON.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from lutkan.testing import assert_backends_agree

pytest.importorskip("kan", reason="the guide compiles the bundled checkpoint ([pykan] extra)")

DOC = REPO / "docs" / "deploy.md"
BLOCK = re.compile(r"<!-- snippet: ([\w-]+)(?: \(not run: ([^)]+)\))? -->\n```(\w+)\n(.*?)\n```", re.S)
PY_SNIPPETS = ("python-onnxruntime", "python-plugin", "tract", "openvino")


def snippets() -> dict[str, tuple[str, str, str | None]]:
    """{name: (language, code, reason it is not run or None)} of docs/deploy.md."""
    return {m[1]: (m[3], m[4], m[2]) for m in BLOCK.finditer(DOC.read_text())}


def _bash(code: str, cwd: Path, env=None) -> None:
    py = f"{sys.executable} -m lutkan.cli"
    script = "set -euo pipefail\n" + "\n".join(
        re.sub(r"^python ", f"{sys.executable} ", re.sub(r"^lutkan ", f"{py} ", line)) for line in code.splitlines())
    r = subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=600,
                       env={**os.environ, **(env or {})})
    assert r.returncode == 0, f"{code}\n{r.stdout[-1500:]}\n{r.stderr[-1500:]}"


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A folder where the guide's `files` snippet has run, and the reference (model, x)."""
    from lutkan.artifact import load

    d = tmp_path_factory.mktemp("deploy")
    (d / "models").symlink_to(REPO / "models")
    _bash(snippets()["files"][1], d)
    return d, load(d / "model.lutkan"), np.load(d / "x.npy")


def test_every_block_is_a_named_snippet():
    text = DOC.read_text()
    blocks = text.count("```") // 2
    found = snippets()
    assert len(found) == blocks, "every fenced block of docs/deploy.md needs a <!-- snippet: NAME --> line"
    not_run = {n for n, (_, _, why) in found.items() if why}
    assert not_run == {"cpp", "csharp", "java"}, not_run
    run_here = set(PY_SNIPPETS) | {"files", "node-install", "node", "inline", "opset"}
    assert set(found) - not_run == run_here


@pytest.mark.parametrize("name", PY_SNIPPETS)
def test_python_snippet(work, name):
    if name == "tract":
        pytest.importorskip("tract")
    if name == "openvino":
        pytest.importorskip("openvino")
    d, model, x = work
    code = snippets()[name][1] + f"\nimport numpy as _np\n_np.save('y_{name}.npy', _np.asarray(y))\n"
    r = subprocess.run([sys.executable, "-c", code], cwd=d, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    y = np.load(d / f"y_{name}.npy")
    assert_backends_agree(model, x, runners={name: lambda _x: y}, rel=1e-5, what="docs/deploy.md")


def test_inline_and_opset_snippets(work):
    from lutkan.testing import onnx_runner

    d, model, x = work
    r = subprocess.run([sys.executable, "-c", snippets()["inline"][1]], cwd=d, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    _bash(snippets()["opset"][1], d)
    runners = {"ort-inlined": onnx_runner(str(d / "model.inlined.onnx"), "ort"),
               "ort-opset18": onnx_runner(str(d / "model.opset18.onnx"), "ort")}
    assert_backends_agree(model, x, runners=runners, rel=1e-5, what="docs/deploy.md")


def test_node_snippet(work, tmp_path_factory):
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("node/npm not on PATH: the onnxruntime-node snippet is not run")
    d, model, _ = work
    js = tmp_path_factory.mktemp("node")
    _bash(snippets()["node-install"][1], js)
    shutil.copy(d / "model.onnx", js / "model.onnx")
    (js / "main.js").write_text(snippets()["node"][1])
    r = subprocess.run(["node", "main.js"], cwd=js, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    y = np.asarray(json.loads(r.stdout), dtype=np.float32).reshape(4, model.n_outputs)
    x = np.sin(np.arange(4 * model.n_inputs, dtype=np.float64)).astype(np.float32).reshape(4, model.n_inputs)
    assert_backends_agree(model, x, runners={"onnxruntime-node": lambda _x: y}, rel=1e-5, what="docs/deploy.md")


def test_readme_quick_start_writes_only_into_an_ignored_folder():
    """The README's quick start writes every file under out/, which .gitignore ignores (a clean checkout stays
    clean); its commands are the ones the CLI tests run."""
    text = (REPO / "README.md").read_text()
    block = text.split("## Quick start", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    written = re.findall(r"(?:-o|--out)\s+(\S+)", block) + re.findall(r"np\.save\('([^']+)'", block)
    assert len(written) >= 6 and all(p.startswith("out/") for p in written), written
    assert "/out/" in (REPO / ".gitignore").read_text().split()
