"""The native op in a process: many threads, session churn, the PyOp fallback, import weight, the forwarder
without lutkan, the Numba cache guard, and the oldest onnxruntime pyproject allows (in a throwaway venv).

Everything that could crash or pollutes process state runs in a subprocess (``run_isolated``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import tomllib
import venv
from pathlib import Path

import numpy as np
import pytest
from test_runtime_ext import last_json, run_isolated

from lutkan.runtime_ext import library_path

REPO = Path(__file__).resolve().parents[1]


def test_threads_one_session():
    proc = run_isolated("""
import json, numpy as np, onnxruntime as ort
from concurrent.futures import ThreadPoolExecutor
from lutkan.exporter import export
from lutkan.testing.models import random_model
from lutkan.testing.inputs import adversarial_inputs
from lutkan.evaluators.numpy_eval import NumpyEvaluator
from lutkan.runtime_ext import library_path, make_session
model = random_model((5, 4, 2), seed=12, masked=0.1, mult_groups={0: (2,)})
def plain(form, threads):
    so = ort.SessionOptions(); so.intra_op_num_threads = threads
    so.register_custom_ops_library(library_path())
    return ort.InferenceSession(export(model, form).SerializeToString(), so, providers=["CPUExecutionProvider"])
sessions = [plain("custom", 1), plain("function", 2), make_session(export(model, "custom"), kernel_threads=2)]
xs = [adversarial_inputs(model, n, seed=n) for n in (1, 7, 64, 1500)]
want = [NumpyEvaluator(model)(x) for x in xs]
first = [[s.run(None, {"x": x})[0] for x in xs] for s in sessions]
ok = all(np.allclose(f, w, rtol=1e-5, atol=1e-5, equal_nan=True) for fs in first for f, w in zip(fs, want))
def work(t):
    rng = np.random.default_rng(t)
    bad = 0
    for _ in range(120):
        si, xi = int(rng.integers(len(sessions))), int(rng.integers(len(xs)))
        bad += not np.array_equal(sessions[si].run(None, {"x": xs[xi]})[0], first[si][xi], equal_nan=True)
    return bad
with ThreadPoolExecutor(8) as ex:
    bad = sum(ex.map(work, range(8)))
print(json.dumps({"ok": ok, "bad": bad}))
""")
    assert last_json(proc) == {"ok": True, "bad": 0}


def test_session_churn_frees_kernels():
    """KernelDestroy is the forwarder's free(): 150 sessions of a 6 MB-table model leave RSS flat."""
    proc = run_isolated("""
import gc, json, numpy as np, onnxruntime as ort, psutil
from lutkan.contract import ContractOptions
from lutkan.exporter import export
from lutkan.testing.models import random_model
from lutkan.runtime_ext import library_path
model = random_model((64, 48, 1), ContractOptions(L=64, scheme="int8"), G=5, k=3, seed=1)
data = export(model, "custom").SerializeToString()  # dense float32 table per session: ~6.9 MB
so = ort.SessionOptions(); so.register_custom_ops_library(library_path())
x = np.zeros((4, 64), np.float32)
def churn(n):
    for _ in range(n):
        s = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
        s.run(None, {"x": x})
        del s
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20
churn(30)
a = churn(30)
b = churn(150)
print(json.dumps({"growth_mib": b - a}))
""")
    assert last_json(proc)["growth_mib"] < 150, "kernels are not freed (150 x 6.9 MB would be ~1 GB)"


def test_fallback_to_pyop_when_the_library_is_absent():
    env_code = """
import json, warnings, numpy as np
from lutkan.exporter import export
from lutkan.testing.models import random_model
from lutkan.evaluators.numpy_eval import NumpyEvaluator
import lutkan.runtime_ext as rt
model = random_model((4, 3, 2), seed=4)
x = np.random.default_rng(0).normal(0, 1, (6, 4)).astype(np.float32)
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    s1 = rt.make_session(export(model, "custom"))
    s2 = rt.make_session(export(model, "function"))
out = {"available": rt.native_available(), "reason": rt.native_unavailable_reason(),
       "warnings": [str(m.message) for m in w], "backends": [rt.session_backend(s1), rt.session_backend(s2)],
       "ok": bool(np.allclose(rt.run(s1, x), NumpyEvaluator(model)(x), rtol=1e-5, atol=1e-6))}
for call in (rt.library_path, lambda: rt.make_session(export(model, "custom"), plugin="native")):
    try:
        call(); out.setdefault("raised", []).append("no error")
    except rt.NativeUnavailableError as e:
        out.setdefault("raised", []).append(str(e))
print(json.dumps(out))
"""
    for env, why in (({"LUTKAN_NATIVE": "0"}, "LUTKAN_NATIVE=0"),
                     ({"LUTKAN_NATIVE_LIBRARY": "/nonexistent/_native.so"}, "is not a file")):
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            out = last_json(run_isolated(env_code))
        finally:
            for k, v in old.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        assert out["available"] is False and why in out["reason"], out
        assert len(out["warnings"]) == 1, out["warnings"]  # one warning per process, saying why
        assert why in out["warnings"][0] and "falls back to the onnxruntime-extensions PyOp" in out["warnings"][0]
        assert out["backends"] == ["pyop", "pyop"] and out["ok"], out
        assert all(why in r for r in out["raised"]), out["raised"]


def test_runtime_import_is_light():
    code = textwrap.dedent("""
        import sys, time
        t = time.perf_counter()
        import lutkan.runtime_ext as rt
        rt.library_path()
        print({m: m in sys.modules for m in ("onnxruntime_extensions", "onnxscript", "numba", "torch")})
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str({"onnxruntime_extensions": False, "onnxscript": False, "numba": False,
                                    "torch": False}), r.stdout


def test_library_without_lutkan_reports_it():
    """The forwarder loaded by onnxruntime in a process that never imported lutkan: a clear error."""
    path = library_path()
    code = textwrap.dedent(f"""
        import onnxruntime as ort
        so = ort.SessionOptions()
        try:
            so.register_custom_ops_library({path!r}); print("no error")
        except Exception as e:
            print(type(e).__name__, e)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "import lutkan.runtime_ext" in r.stdout, r.stdout


# ---------------------------------------------------------------------------------------------
# The oldest onnxruntime pyproject allows, in a throwaway venv that sees this venv's other packages.

def _oldest_onnxruntime() -> str:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    spec = next(d for d in deps if re.match(r"onnxruntime\s*[><=]", d))
    return re.search(r">=\s*([\d.]+)", spec).group(1)


@pytest.mark.slow
def test_oldest_onnxruntime(tmp_path_factory):
    oldest = _oldest_onnxruntime()
    d = tmp_path_factory.mktemp("ort_oldest")
    venv.EnvBuilder(with_pip=True).create(d / "venv")
    py = d / "venv" / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True,
                          text=True, check=True).stdout.strip()
    import numpy  # the shared venv's packages (numba, onnx, ...) come after the pinned onnxruntime

    Path(site, "zz_lutkan_shared.pth").write_text(str(Path(numpy.__file__).parents[1]) + "\n")
    pip = subprocess.run([str(py), "-m", "pip", "install", "-q", f"onnxruntime~={oldest}.0"], capture_output=True,
                         text=True, timeout=600)
    if pip.returncode != 0:
        pytest.skip(f"cannot install onnxruntime~={oldest}.0 here: {pip.stderr[-500:]}")
    code = textwrap.dedent("""
        import json, numpy as np, onnx, onnxruntime as ort
        from lutkan.contract import ContractOptions
        from lutkan.exporter import export
        from lutkan.testing import assert_backends_agree, backends
        from lutkan.testing.models import random_model
        from lutkan.testing.inputs import adversarial_inputs
        from lutkan.runtime_ext import make_session, session_backend
        out = {"version": ort.__version__}
        for i, opts in enumerate([ContractOptions(L=9, scheme="int8"), ContractOptions(L=5, scheme="float32",
                                  interp="poly", oob="extrapolate"), ContractOptions(L=6, scheme="uint8",
                                  interp="nearest", boundary="half_open")]):
            m = random_model((4, 4, 2), opts, seed=i, mult_groups={0: (2,)})
            x = np.concatenate([adversarial_inputs(m, 64, seed=i), adversarial_inputs(m, 2000, seed=i + 9)])
            assert_backends_agree(m, x, include=("native-function", "native-custom", "plugin-custom"), rel=1e-5)
        s = make_session(export(m, "custom"))
        out["backend"] = session_backend(s)
        decoy = export(m, "function")  # a body that would give wrong numbers: the op must run instead
        body = decoy.functions[0]
        del body.node[:]
        del body.value_info[:]
        body.node.append(onnx.helper.make_node("MatMul", ["X", "EdgeMask"], ["Y"]))
        from lutkan.evaluators.numpy_eval import NumpyEvaluator
        from lutkan.runtime_ext import library_path
        so = ort.SessionOptions()
        so.register_custom_ops_library(library_path())
        xd = np.random.default_rng(0).normal(0, 1, (64, m.n_inputs)).astype(np.float32)
        got = ort.InferenceSession(decoy.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(
            None, {"x": xd})[0]
        ref = NumpyEvaluator(m)(xd)
        out["decoy_rel_diff"] = float(np.max(np.abs(got - ref)) / max(1.0, float(np.max(np.abs(ref)))))
        bad = export(m, "custom")
        edge = next(n for n in bad.graph.node if n.op_type == "LUTKanEdge")
        next(a for a in edge.attribute if a.name == "interp").s = b"cubic"
        so = ort.SessionOptions()
        from lutkan.runtime_ext import library_path
        so.register_custom_ops_library(library_path())
        try:
            ort.InferenceSession(bad.SerializeToString(), so, providers=["CPUExecutionProvider"]); out["bad"] = ""
        except Exception as e:
            out["bad"] = str(e)
        print(json.dumps(out))
    """)
    r = subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=900,
                       env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["version"].startswith(oldest), out
    assert out["backend"] == "native", out
    assert out["decoy_rel_diff"] < 1e-5, out
    assert "interp='cubic' is not supported" in out["bad"] and "LUTKanEdge node 'kan0'" in out["bad"], out


def test_numba_cache_is_flushed_when_the_evaluators_change(tmp_path, monkeypatch):
    """Numba's cache does not notice edits of callees in other files (lut_layer_kernel lives in
    lutkan/evaluators): the native kernel's entries are dropped when those files' content hash changes."""
    import numba

    from lutkan.evaluators import jit_cache
    from lutkan.runtime_ext import native_kernel as nk

    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path))
    f = nk._threads_seen.py_func
    stacks = np.array([0, 1 << 20, 5 << 20], np.int64)

    def fresh():
        d = numba.njit(cache=True)(f)
        assert d(stacks) == 3
        return d.stats

    assert jit_cache.flush_stale((f,))
    assert fresh().cache_misses and fresh().cache_hits  # cached, then loaded
    assert jit_cache.flush_stale((f,))  # same sources: kept
    assert fresh().cache_hits
    monkeypatch.setattr(jit_cache, "_stamp", lambda extra: "an edited lutkan/evaluators")
    assert jit_cache.flush_stale((f,))
    assert not fresh().cache_hits  # recompiled
    assert next(tmp_path.rglob("*._threads_seen.lutkan-deps")).read_text() == "an edited lutkan/evaluators"
