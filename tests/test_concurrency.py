"""Threads and many sessions in one process (complements tests/test_runtime_ext.py, which covers one
custom-form plugin session shared by 8 threads and churn of that one session).

Here: one ``NumbaEvaluator`` / ``NumpyEvaluator`` shared by many threads with distinct inputs (bitwise
equal to single-threaded results), the first-ever JIT compile racing in 8 threads, several sessions
of different models and forms (plain function/standard, plugin function/custom) in one process
driven concurrently with cross-talk checks, sessions created concurrently, and RSS/registry flat
under repeated creation of mixed sessions and evaluators. Everything that drives onnxruntime or a
cold JIT runs in a subprocess so a crash fails the test instead of aborting pytest.

``LUTKAN_CHURN_N`` (default 200) sets the number of creations in the churn test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from lutkan.compiler import compile_model
from lutkan.contract import ContractOptions
from lutkan.evaluators.numba_eval import NumbaEvaluator
from lutkan.evaluators.numpy_eval import NumpyEvaluator
from lutkan.metrics import assert_outputs_close
from lutkan.testing.inputs import adversarial_inputs
from lutkan.testing.models import random_source

REPO = Path(__file__).resolve().parents[1]
CHURN_N = int(os.environ.get("LUTKAN_CHURN_N", "200"))


def run_isolated(code: str, timeout: float = 400, env_extra: dict | None = None) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    env.update(env_extra or {})
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=os.getcwd())
    assert proc.returncode == 0, (f"subprocess failed (rc={proc.returncode}):\n{proc.stdout[-3000:]}\n"
                                  f"{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _model(seed, scheme="int8", **kw):
    src = random_source([4, 5, 3], G=5, k=3, seed=seed, mult_groups={0: [2]}, masked=0.2, symbolic=0.2, **kw)
    return compile_model(src, ContractOptions(L=32, scheme=scheme))


# ------------------------------------------------------------------------------------------ evaluators


@pytest.mark.parametrize("cls", [NumbaEvaluator, NumpyEvaluator])
def test_shared_evaluator_many_threads(cls):
    model = _model(1)
    ev = cls(model)
    inputs = [adversarial_inputs(model, int(n), seed=s) for s, n in enumerate([1, 7, 64, 333, 1000, 5, 2, 129])]
    want = [ev(x) for x in inputs]
    want_h = [ev(x, upto=1) for x in inputs]
    barrier = threading.Barrier(8)

    def work(t):
        barrier.wait()
        bad = 0
        for r in range(40):
            i = (t + r) % len(inputs)
            if r % 3 == 0:
                bad += not np.array_equal(ev(inputs[i], upto=1), want_h[i], equal_nan=True)
            else:
                bad += not np.array_equal(ev(inputs[i]), want[i], equal_nan=True)
        return bad

    with ThreadPoolExecutor(8) as pool:
        bad = sum(pool.map(work, range(8)))
    assert bad == 0, f"{bad} of 320 concurrent calls differed from the single-threaded result"


def test_many_evaluators_many_models_threads():
    """Different models evaluated concurrently (no shared scratch between evaluators/models)."""
    models = [_model(s, scheme) for s, scheme in zip(range(4), ("int8", "uint8", "float16", "float32"), strict=True)]
    evs = [NumbaEvaluator(m) for m in models]
    xs = [adversarial_inputs(m, 200, seed=7) for m in models]
    want = [NumpyEvaluator(m)(x) for m, x in zip(models, xs, strict=True)]
    got0 = [e(x) for e, x in zip(evs, xs, strict=True)]

    def work(t):
        out = []
        for r in range(30):
            i = (t * 7 + r) % 4
            out.append(np.array_equal(evs[i](xs[i]), got0[i], equal_nan=True))
        return all(out)

    with ThreadPoolExecutor(6) as pool:
        assert all(pool.map(work, range(6)))
    for g, w in zip(got0, want, strict=True):
        with np.errstate(invalid="ignore"):
            assert_outputs_close(g, w, rel=1e-5)


def test_cold_jit_race():
    """8 threads hit a cold Numba kernel at once (no on-disk cache): one compile, identical results."""
    out = run_isolated("""
        import json, threading, numpy as np
        from concurrent.futures import ThreadPoolExecutor
        from lutkan.testing.inputs import adversarial_inputs
        from lutkan.testing.models import random_source
        from lutkan.compiler import compile_model
        from lutkan.contract import ContractOptions
        from lutkan.evaluators.numba_eval import NumbaEvaluator
        from lutkan.evaluators.numpy_eval import NumpyEvaluator
        m = compile_model(random_source([3, 4, 2], seed=3, mult_groups={0: [2]}), ContractOptions(L=16))
        x = adversarial_inputs(m, 100, seed=1)
        ev = NumbaEvaluator(m)
        b = threading.Barrier(8)
        def work(_):
            b.wait()
            return ev(x)
        with ThreadPoolExecutor(8) as p:
            ys = list(p.map(work, range(8)))
        same = all(np.array_equal(y, ys[0], equal_nan=True) for y in ys)
        ref = NumpyEvaluator(m)(x)
        ok = np.array_equal(np.isnan(ref), np.isnan(ys[0]))
        print(json.dumps({"same": bool(same), "nan_positions_match": bool(ok)}))
    """, env_extra={"NUMBA_CACHE_DIR": os.path.join(os.getcwd(), "numba_cache_cold")})
    assert out == {"same": True, "nan_positions_match": True}


# ------------------------------------------------------------------------------------------ onnxruntime


_PRELUDE = """
import gc, json, threading, numpy as np
from concurrent.futures import ThreadPoolExecutor
from lutkan.compiler import compile_model
from lutkan.contract import ContractOptions
from lutkan.evaluators.numpy_eval import NumpyEvaluator
from lutkan.exporter import export
from lutkan.metrics import compare_outputs
from lutkan.runtime_ext import make_session, run, live_kernels, kernel_errors
from lutkan.testing import backends
from lutkan.testing.inputs import adversarial_inputs
from lutkan.testing.models import random_source

def model(seed, width=(4, 5, 3), scheme="int8", L=32, **kw):
    src = random_source(list(width), seed=seed, mult_groups={0: [2]}, masked=0.2, **kw)
    return compile_model(src, ContractOptions(L=L, scheme=scheme))

def close(y, ref):
    with np.errstate(invalid="ignore"):
        st = compare_outputs(y, ref)
    return st["extreme_mismatch"] == 0 and st["max_abs"] <= 1e-5 * max(st["ref_max_abs"], 1.0)
"""


def test_many_sessions_one_process_threads():
    """8 sessions (4 models x forms, with and without plugin) driven by 8 threads at random: every
    result equals its own model's reference (no cross-talk through the kernel registry)."""
    out = run_isolated(_PRELUDE + """
models = [model(s, scheme=sc) for s, sc in zip(range(4), ("int8", "uint8", "float16", "float32"))]
kinds = ["ort-function", "ort-standard", "plugin-function", "plugin-custom"]
sessions = []
for i, m in enumerate(models):
    for name, f in backends(m, include=(kinds[i % 4], kinds[(i + 2) % 4])).items():
        sessions.append((i, name, f.session))
xs = [adversarial_inputs(m, 64, seed=11) for m in models]
refs = [NumpyEvaluator(m)(x) for m, x in zip(models, xs)]
first = [run(s, xs[i]) for i, _, s in sessions]
ok_ref = [close(y, refs[i]) for y, (i, _, _) in zip(first, sessions)]
barrier = threading.Barrier(8)
def work(t):
    rng = np.random.default_rng(t)
    barrier.wait()
    bad = []
    for r in range(60):
        j = int(rng.integers(len(sessions)))
        i, name, s = sessions[j]
        y = run(s, xs[i]) if r % 2 else s.run(None, {s.get_inputs()[0].name: xs[i]})[0]
        if not np.array_equal(y, first[j], equal_nan=True):
            bad.append(f"{name} model {i}")
    return bad
with ThreadPoolExecutor(8) as p:
    bad = sum(p.map(work, range(8)), [])
print(json.dumps({"ok_ref": ok_ref, "bad": bad[:5], "n_bad": len(bad), "errors": len(kernel_errors()),
                  "n_sessions": len(sessions)}))
""")
    assert all(out["ok_ref"]), out
    assert out["n_bad"] == 0 and out["errors"] == 0, out


def test_sessions_created_concurrently():
    out = run_isolated(_PRELUDE + """
models = [model(s, width=(3, 4, 2), L=8 + s) for s in range(8)]
onnx_models = [export(m, form="function" if i % 2 else "custom") for i, m in enumerate(models)]
x = [adversarial_inputs(m, 32, seed=2) for m in models]
refs = [NumpyEvaluator(m)(xx) for m, xx in zip(models, x)]
base = live_kernels()
barrier = threading.Barrier(8)
def create(i):
    barrier.wait()
    s = make_session(onnx_models[i], plugin=True, intra_op_num_threads=1)
    return close(run(s, x[i]), refs[i]), s
with ThreadPoolExecutor(8) as p:
    res = list(p.map(create, range(8)))
ok = [r[0] for r in res]
live_during = live_kernels() - base
del res
gc.collect()
print(json.dumps({"ok": ok, "live_during": live_during, "live_after": live_kernels() - base}))
""")
    assert all(out["ok"]), out
    assert out["live_during"] == 16 and out["live_after"] == 0, out


def test_mixed_session_churn_rss_flat():
    """Create, run and drop sessions of different models/forms (plugin and plain) and evaluators
    CHURN_N times: RSS growth stays small and the plugin's kernel registry returns to its baseline."""
    out = run_isolated(_PRELUDE + f"""
import psutil, time
proc = psutil.Process()
from lutkan.evaluators.numba_eval import NumbaEvaluator
models = [model(s, width=(3, 4, 2), L=16) for s in range(4)]
payloads = [export(m, form=f).SerializeToString() for m, f in zip(models, ("function", "custom", "standard", "function"))]
x = np.zeros((8, models[0].n_inputs), np.float32)
def churn(n):
    for i in range(n):
        j = i % 4
        plugin = (j != 2) and (i % 3 != 0 or j == 1)
        s = make_session(payloads[j], plugin=plugin, intra_op_num_threads=1)
        run(s, np.zeros((8, models[j].n_inputs), np.float32))
        NumbaEvaluator(models[j])(np.zeros((2, models[j].n_inputs), np.float32))
        del s
    gc.collect()
base_live = live_kernels()
churn(40)
r0 = proc.memory_info().rss
t = time.perf_counter()
churn({CHURN_N})
dt = time.perf_counter() - t
r1 = proc.memory_info().rss
print(json.dumps({{"n": {CHURN_N}, "growth_mb": (r1 - r0) / 2**20, "rss_mb": r1 / 2**20,
                  "live": live_kernels() - base_live, "sec": dt}}))
""", timeout=900)
    print(f"\n[churn] {out}")
    assert out["live"] == 0, out
    assert out["growth_mb"] < 25, out
