"""``lutkan.Predictor``: lazy, picklable (path and options only), both model kinds, identical to ``lutkan.evaluate``."""

from __future__ import annotations

import pickle
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
import pytest
from _score_data import features, make_model

import lutkan
from lutkan.errors import InputError, LutKanError
from lutkan.score import backends
from lutkan.score.backends import choose_backend


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return make_model(tmp_path_factory.mktemp("pred"), width=(7, 5, 3), seed=3)


@pytest.fixture(scope="module")
def x():
    return features(5000, 7, seed=2)


def test_lutkan_predictor_is_the_evaluator_bit_for_bit(models, x):
    ref = lutkan.evaluate(lutkan.load(models["lutkan"]), x)
    for batch_size, threads in ((65536, 1), (7, 1), (1000, 2), (4096, 3)):
        p = lutkan.Predictor(models["lutkan"], batch_size=batch_size, threads=threads)
        y = p(x)
        assert y.dtype == np.float32 and y.shape == (5000, 3)
        assert np.array_equal(y, ref, equal_nan=True), (batch_size, threads)
    assert p.backend == "numba" and p.n_inputs == 7 and p.n_outputs == 3
    assert np.array_equal(p(x.astype(np.float64)), ref, equal_nan=True)  # converted like every backend
    assert np.array_equal(p(x[:1]), ref[:1], equal_nan=True)


@pytest.mark.parametrize("form, backend, plugin", [("function", "ort-native", "native"),
                                                   ("custom", "ort-native", "native"), ("standard", "ort", False)])
def test_onnx_predictor_is_the_session(models, x, form, backend, plugin):
    from lutkan.runtime_ext import make_session, native_available, run

    assert native_available(), "the native op library was not built (conftest builds it in a checkout)"
    p = lutkan.Predictor(models[form], batch_size=999, threads=2)
    assert p.backend == backend and choose_backend(str(models[form])) == backend
    sess = make_session(str(models[form]), plugin=plugin)
    assert np.array_equal(p(x), run(sess, x), equal_nan=True)
    ref = lutkan.evaluate(lutkan.load(models["lutkan"]), x)
    np.testing.assert_allclose(p(x), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("form", ["function", "custom"])
def test_pyop_when_the_native_op_is_missing(models, x, form, monkeypatch):
    """Without the native library the choice falls back to the PyOp (same kernel: identical scores), and says why."""
    import lutkan.runtime_ext as rt

    native = lutkan.Predictor(models[form], batch_size=999)(x)
    monkeypatch.setattr(rt, "native_available", lambda: False)
    monkeypatch.setattr(rt, "native_unavailable_reason", lambda: "the native LUTKanEdge library is not available: test")
    assert choose_backend(str(models[form])) == "ort-pyop"
    assert "PyOp" in backends.describe("ort-pyop") and "not available: test" in backends.describe("ort-pyop")
    p = lutkan.Predictor(models[form], batch_size=999, backend="ort-pyop", threads=2)
    assert p.backend == "ort-pyop"
    assert np.array_equal(p(x), native, equal_nan=True)


def test_auto_and_named_backend_share_the_evaluator(models):
    auto = lutkan.Predictor(models["function"]).build()
    named = lutkan.Predictor(models["function"], backend=auto.backend).build()
    assert named._evaluator is auto._evaluator


def test_backend_choice_and_overrides(models, x, tmp_path):
    assert choose_backend(str(models["lutkan"])) == "numba"
    p = lutkan.Predictor(models["function"], backend="ort")  # plain onnxruntime runs the function body
    assert p.backend == "ort"
    np.testing.assert_allclose(p(x[:100]), lutkan.Predictor(models["function"])(x[:100]), rtol=1e-5, atol=1e-5)
    with pytest.raises(LutKanError, match="needs a .lutkan"):
        lutkan.Predictor(models["function"], backend="numba").build()
    with pytest.raises(LutKanError, match="needs an .onnx"):
        lutkan.Predictor(models["lutkan"], backend="ort").build()
    (tmp_path / "junk.onnx").write_bytes(b"\x00junk")
    with pytest.raises(LutKanError, match="not a .lutkan artifact and not a readable ONNX"):
        lutkan.Predictor(tmp_path / "junk.onnx").build()
    with pytest.raises(ValueError, match="backend"):
        lutkan.Predictor(models["lutkan"], backend="torch")
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(TypeError):
            lutkan.Predictor(models["lutkan"], batch_size=bad)
        with pytest.raises(TypeError):
            lutkan.Predictor(models["lutkan"], threads=bad)
    with pytest.raises(TypeError):
        lutkan.Predictor(3)


def test_lazy_and_pickles_only_path_and_options(models, x, tmp_path):
    missing = lutkan.Predictor(tmp_path / "later.lutkan")  # nothing is read at construction
    assert not missing.is_built
    with pytest.raises(LutKanError, match="not found"):
        missing(x)
    p = lutkan.Predictor(models["lutkan"], batch_size=123, threads=2)
    assert not p.is_built
    blob = pickle.dumps(p)
    assert len(blob) < 400  # the path and three options, no tables
    y = p(x)
    assert p.is_built
    blob_after = pickle.dumps(p)
    assert len(blob_after) == len(blob)
    q = pickle.loads(blob_after)
    assert not q.is_built and (q.path, q.batch_size, q.threads) == (p.path, 123, 2)
    assert np.array_equal(q(x), y, equal_nan=True)
    # one evaluator per process per (file, backend, threads): every unpickled copy shares it
    assert q._evaluator is p._evaluator
    assert "batch_size=123" in repr(q)


def test_model_rewritten_in_place_is_reloaded(tmp_path, x):
    import shutil

    a = make_model(tmp_path, width=(7, 2), seed=10, name="a")["lutkan"]
    b = make_model(tmp_path, width=(7, 2), seed=11, name="b")["lutkan"]
    path = tmp_path / "live.lutkan"
    shutil.copy(a, path)
    y_a = lutkan.Predictor(path)(x)
    shutil.copy(b, path)
    import os

    os.utime(path, ns=(0, 1))  # a new mtime even on coarse clocks
    assert np.array_equal(lutkan.Predictor(path)(x), lutkan.Predictor(b)(x), equal_nan=True)
    assert not np.array_equal(y_a, lutkan.Predictor(b)(x), equal_nan=True)


def test_inputs_are_checked(models):
    p = lutkan.Predictor(models["lutkan"])
    assert p(np.zeros((0, 7), np.float32)).shape == (0, 3)
    with pytest.raises(InputError, match="expects 7"):
        p(np.zeros((4, 6), np.float32))
    with pytest.raises(InputError, match="rank"):
        p(np.zeros(7, np.float32))
    with pytest.raises(InputError, match="dtype"):
        p(np.zeros((2, 7), bool))


def _score_in_worker(pred, x):
    return pred.is_built, pred(x), backends._CACHE.__len__()


def test_built_in_the_worker_process(models, x):
    p = lutkan.Predictor(models["lutkan"])
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as ex:
        built_before, y, cached = ex.submit(_score_in_worker, p, x).result(timeout=120)
    assert not built_before and cached == 1
    assert np.array_equal(y, lutkan.evaluate(lutkan.load(models["lutkan"]), x), equal_nan=True)


def test_import_lutkan_stays_light():
    code = ("import sys, lutkan; assert 'lutkan.score.predictor' not in sys.modules; "
            "assert 'numba' not in sys.modules and 'pyarrow' not in sys.modules; "
            "P = lutkan.Predictor; assert P.__module__ == 'lutkan.score.predictor'; "
            "assert 'numba' not in sys.modules; print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
    with pytest.raises(AttributeError):
        lutkan.NoSuchThing  # noqa: B018
