"""onnxruntime plugin (lutkan.runtime_ext): parity, robustness, threading, session lifetime.

Everything that pokes a failure path inside onnxruntime (bad inputs fed to ``session.run``
directly, kernels that raise, malformed models, many threads, many sessions) runs in a
subprocess, so a regression shows up as a failed test instead of an aborted pytest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from lutkan.contract import BASE_FUNS, BOUNDARIES, INTERPS, OOB_POLICIES, OPTION_GRID, SCHEMES, ContractOptions
from lutkan.errors import InputError, OnnxModelError
from lutkan.evaluators.numpy_eval import NumpyEvaluator
from lutkan.exporter import export
from lutkan.metrics import assert_outputs_close
from lutkan.runtime_ext import (
    SESSION_OPTION_NAMES,
    live_kernels,
    make_session,
    register,
    run,
)
from lutkan.runtime_ext.graph import prepare
from lutkan.testing import assert_backends_agree, onnx_runner
from lutkan.testing.inputs import adversarial_inputs, single_value_rows
from lutkan.testing.models import random_model as _random_model

REPO = Path(__file__).resolve().parents[1]


def run_isolated(code: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (repo on sys.path); returns the CompletedProcess."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=os.getcwd())


def last_json(proc: subprocess.CompletedProcess):
    assert proc.returncode == 0, \
        f"subprocess failed (rc={proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def random_model(width=(4, 3, 2), options=None, **kw):
    """The plugin tests' models: non-uniform knot rows, ~10% pruned edges, identity input_id unless given."""
    return _random_model(width, options, **{"knots": "nonuniform", "masked": 0.1, "input_id": "sorted", **kw})


def probe(model, seed) -> np.ndarray:
    """One adversarial value per row (every knot, knot +-1 ulp, domain end and neighbour, far OOB and
    special value of every column, the rest mid-domain), then a random adversarial mix."""
    return np.concatenate([single_value_rows(model), adversarial_inputs(model, 64, seed=seed)])


# ---------------------------------------------------------------------------------------------
# Parity: custom and function forms, with and without the plugin, against the NumPy reference.

@pytest.mark.parametrize("scheme,interp,boundary,oob", OPTION_GRID)
def test_forms_match_reference(scheme, interp, boundary, oob):
    opts = ContractOptions(L=9, scheme=scheme, interp=interp, boundary=boundary, oob=oob)
    seed = SCHEMES.index(scheme) * 100 + INTERPS.index(interp) * 10 + BOUNDARIES.index(boundary) * 3 + \
        OOB_POLICIES.index(oob)
    model = random_model((4, 3, 2), opts, G=3, k=2, seed=seed, zero_width=int(seed % 2 == 0))
    # custom and function forms with the plugin, function and standard forms in plain onnxruntime (and the rest)
    assert_backends_agree(model, probe(model, seed), rel=1e-5, what=str(opts))


@pytest.mark.parametrize("base_fun", BASE_FUNS)
def test_base_funs_input_id_mult_nodes(base_fun):
    opts = ContractOptions(L=16, scheme="uint8", oob="extrapolate")
    model = random_model((3, 5, 2), opts, seed=7, base_fun=base_fun, input_id=[4, 0, 2], n_inputs=5,
                         mult_groups={0: (2,), 1: (2,)})
    assert model.layers[0].mult_groups == (2,)
    x = probe(model, 1)
    assert_backends_agree(model, x, rel=1e-5, what=base_fun)
    # standard form in a plugin session: no LUTKanEdge node, the plugin is a no-op
    y = onnx_runner(export(model, "standard"), "plugin")(x)
    assert_outputs_close(y, NumpyEvaluator(model)(x), rel=1e-5, what="standard + plugin")


def decoy_function_model(model) -> onnx.ModelProto:
    """The real function-form export with its LUTKanEdge body replaced by a wrong one (``MatMul(X, EdgeMask)``)."""
    om = export(model, "function")
    (f,) = om.functions
    del f.node[:]
    del f.value_info[:]
    f.node.append(helper.make_node("MatMul", ["X", "EdgeMask"], ["Y"]))
    onnx.checker.check_model(om)
    return om


def test_plugin_refuses_a_decoy_function_body():
    """The function body is a decoy (MatMul): plain onnxruntime runs it and computes something else than the
    reference, so the plugin (which would compute the reference) must refuse the file instead of silently
    disagreeing with plain onnxruntime (issue 14, class 4); the real body runs the same in both."""
    model = random_model((4, 3, 2), seed=3)
    om = decoy_function_model(model)
    x = np.random.default_rng(0).normal(0, 1, (8, 4)).astype(np.float32)
    ref = NumpyEvaluator(model)(x)
    with pytest.raises(OnnxModelError, match="LUTKanEdge function is not the body lutkan builds"):
        make_session(om)
    plain = run(make_session(om, plugin=False), x)
    assert np.abs(plain - ref).max() > 1e-2
    real = export(model, "function")
    assert_outputs_close(run(make_session(real), x), run(make_session(real, plugin=False), x), rel=1e-5)


def test_rewrite_in_memory_only(tmp_path):
    model = random_model((4, 3, 2), ContractOptions(scheme="uint8"), seed=4)
    om = export(model, "function")
    path = tmp_path / "m.onnx"
    onnx.save(om, path)
    before = path.read_bytes()
    sess = make_session(path)
    assert path.read_bytes() == before  # the file stays self-contained
    x = np.random.default_rng(0).normal(0, 1, (5, 4)).astype(np.float32)
    assert_outputs_close(run(sess, x), NumpyEvaluator(model)(x))
    assert_outputs_close(run(make_session(before), x), NumpyEvaluator(model)(x))  # bytes input

    copy = onnx.ModelProto()
    copy.CopyFrom(om)
    rewritten, nodes = prepare(copy, lambda O: f"k{O}")
    assert len(nodes) == 2
    assert not [f for f in rewritten.functions if f.name == "LUTKanEdge"]
    assert not [t for t in rewritten.graph.initializer if ".table" in t.name or ".knots" in t.name]
    for n in rewritten.graph.node:
        if n.op_type == "LUTKanEdge":
            assert len(n.input) == 1 and [a.name for a in n.attribute] == ["kernel_key"]
    assert om.SerializeToString() == before  # the caller's ModelProto is not touched either


def test_registry_released_with_session():
    import gc

    model = random_model((4, 3, 2), seed=5)
    om = export(model, "custom")
    gc.collect()
    base = live_kernels()
    sess = make_session(om)
    assert live_kernels() == base + 2
    del sess
    gc.collect()
    assert live_kernels() == base


# ---------------------------------------------------------------------------------------------
# Options

def test_session_options_and_errors():
    om = export(random_model((4, 3, 2), seed=6), "custom")
    sess = make_session(om, intra_op_num_threads=1, inter_op_num_threads=1,
                        graph_optimization_level=ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
                        config={"session.intra_op.allow_spinning": "0"})
    so = sess.get_session_options()
    assert so.intra_op_num_threads == 1 and so.inter_op_num_threads == 1
    with pytest.raises(TypeError, match="intra_op_num_threads"):  # the message lists valid names
        make_session(om, intra_threads=1)
    with pytest.raises(TypeError, match="intra_op_num_threads"):
        make_session(om, intra_op_num_threads="four")
    with pytest.raises(TypeError, match="kernel_threads"):
        make_session(om, kernel_threads=0)
    with pytest.raises(TypeError, match="optimized_model_filepath"):
        make_session(om, optimized_model_filepath="x.onnx")
    with pytest.warns(RuntimeWarning, match="ORT_PARALLEL"):  # the PyOp serializes on the GIL
        make_session(om, plugin="pyop", execution_mode=ort.ExecutionMode.ORT_PARALLEL)
    with pytest.raises(OnnxModelError, match="plugin=True"):
        make_session(om, plugin=False)  # a custom-form file needs the plugin
    assert "intra_op_num_threads" in SESSION_OPTION_NAMES


def test_register_idempotent():
    so = register(backend="pyop")
    assert register(so, backend="pyop") is so
    assert so.get_session_config_entry("lutkan.runtime_ext.registered") == "1"
    om = export(random_model((4, 3, 2), seed=6), "custom")
    sess = make_session(om, plugin="pyop", sess_options=so)
    x = np.zeros((2, 4), np.float32)
    assert run(sess, x).shape == (2, 2)
    native = register()  # the default backend: the native library when it is built
    assert register(native) is native
    assert native.get_session_config_entry("lutkan.runtime_ext.native") == "1"
    assert run(make_session(om, sess_options=native), x).shape == (2, 2)
    # SessionOptions on which other code registered the extensions library: a clear error, not a crash
    from onnxruntime_extensions import get_library_path

    foreign = ort.SessionOptions()
    foreign.register_custom_ops_library(get_library_path())
    with pytest.raises(OnnxModelError, match="already registered"):
        make_session(om, plugin="pyop", sess_options=foreign)
    for plugin in (True, False):
        with pytest.raises(TypeError, match="path, bytes or onnx.ModelProto"):
            make_session(123, plugin=plugin)


def test_plugin_runtime_does_not_import_torch():
    """Runtime inference needs no torch: the plugin path (onnxruntime-extensions included) must not
    load it, and torch must still import normally afterwards."""
    model = Path(__file__).resolve().parents[1] / "models" / "ids78" / "ids78.onnx"
    code = textwrap.dedent(f"""
        import sys, numpy as np
        from lutkan.runtime_ext import make_session, run
        sess = make_session({str(model)!r}, intra_op_num_threads=1)
        y = run(sess, np.zeros((3, 78), np.float32))
        assert y.shape == (3, 1) and np.isfinite(y).all(), y
        assert "torch" not in sys.modules, "torch was imported by the runtime path"
        import torch, onnxruntime_extensions
        print("ok", torch.__version__)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.startswith("ok"), r.stdout + r.stderr


def test_unreadable_model(tmp_path):
    with pytest.raises(OnnxModelError, match="not found"):
        make_session(tmp_path / "missing.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00not an onnx file" * 10)
    with pytest.raises(OnnxModelError):
        make_session(bad)
    with pytest.raises(OnnxModelError):
        make_session(b"garbage")


# ---------------------------------------------------------------------------------------------
# Inputs

@pytest.fixture(scope="module")
def small_session():
    model = random_model((4, 3, 2), seed=8)
    return model, make_session(export(model, "custom"), intra_op_num_threads=1)


@pytest.mark.parametrize("bad, match", [
    (np.zeros((4,), np.float32), "rank 1"),
    (np.zeros((2, 4, 1), np.float32), "rank 3"),
    (np.zeros((3, 5), np.float32), "5 columns"),
    (np.zeros((3, 3), np.float32), "3 columns"),
    (np.zeros((0, 4), np.float32), "empty batch"),
    (np.zeros((3, 4), bool), "dtype bool"),
    (np.zeros((3, 4), np.complex64), "dtype complex64"),
    (np.array([["a"] * 4]), "dtype <U1"),
    (np.zeros((3, 4), object), "dtype object"),
])
def test_run_rejects_bad_input(small_session, bad, match):
    _, sess = small_session
    with pytest.raises(InputError, match=match):
        run(sess, bad)


def test_run_converts_float64_and_int(small_session):
    """Like every lutkan front door (``check_input``), float64/integer arrays are converted."""
    model, sess = small_session
    x = np.random.default_rng(0).normal(0, 1, (5, 4))
    y32 = run(sess, x.astype(np.float32))
    np.testing.assert_array_equal(run(sess, x), y32)
    xi = np.arange(20).reshape(5, 4) - 10
    np.testing.assert_array_equal(run(sess, xi), run(sess, xi.astype(np.float32)))
    assert_outputs_close(y32, NumpyEvaluator(model)(x.astype(np.float32)))


_ISOLATED_PRELUDE = """
import gc, json, numpy as np, onnx, onnxruntime as ort
from onnx import helper
from lutkan.contract import ContractOptions
from lutkan.runtime_ext import make_session, run, kernel_errors, PluginKernelError
from lutkan.runtime_ext import pyop
from lutkan.exporter import export
from lutkan.testing.models import random_model
model = random_model((4, 3, 2), seed=9, knots="nonuniform", masked=0.1, input_id="sorted")
om = export(model, "custom")
"""


def test_direct_session_run_never_aborts():
    """PyOp backend: bad inputs fed straight to session.run, and a kernel that raises: ORT error or NaN, no abort
    (the native op's counterpart is in test_native_op.py)."""
    proc = run_isolated(_ISOLATED_PRELUDE + """
out = {}
sess = make_session(om, plugin="pyop", intra_op_num_threads=1)
def attempt(name, x, s=sess):
    try:
        y = s.run(None, {"x": x})[0]
        out[name] = {"ok": True, "shape": list(y.shape), "all_nan": bool(np.isnan(y).all())}
    except Exception as e:
        out[name] = {"ok": False, "error": type(e).__name__}
attempt("wrong_width", np.zeros((3, 5), np.float32))
attempt("float64", np.zeros((3, 4)))
attempt("rank3", np.zeros((3, 4, 1), np.float32))
attempt("empty", np.zeros((0, 4), np.float32))
# a symbolic input width lets a wrong width reach the kernel itself
m2 = onnx.ModelProto(); m2.CopyFrom(om)
m2.graph.input[0].type.tensor_type.shape.dim[1].dim_param = "width"
s2 = make_session(m2, plugin="pyop", intra_op_num_threads=1)
attempt("kernel_wrong_width", np.zeros((3, 7), np.float32), s2)
try:
    run(s2, np.zeros((3, 7), np.float32)); out["run_kernel_wrong_width"] = "no error"
except PluginKernelError as e:
    out["run_kernel_wrong_width"] = str(e)
out["run_ok_after"] = list(run(s2, np.zeros((3, 4), np.float32)).shape)
# a kernel that raises (and one that is interrupted) inside onnxruntime
for k, e in list(pyop._KERNELS.items()):
    class Boom:
        def __call__(self, x): raise ZeroDivisionError("boom")
    pyop._KERNELS[k] = pyop.KernelEntry(kernel=Boom(), in_dim=e.in_dim, out_dim=e.out_dim, where=e.where)
attempt("raising_kernel", np.zeros((3, 4), np.float32))
try:
    run(sess, np.zeros((3, 4), np.float32)); out["run_raising"] = "no error"
except PluginKernelError as e:
    out["run_raising"] = str(e)
# a node whose kernel_key is not registered
pyop._KERNELS.clear()
attempt("missing_key", np.zeros((2, 4), np.float32))
print(json.dumps(out))
""")
    out = last_json(proc)
    assert out["wrong_width"]["ok"] is False  # ORT checks the declared width
    assert out["float64"]["ok"] is False
    assert out["rank3"]["ok"] is False
    assert out["empty"] == {"ok": True, "shape": [0, 2], "all_nan": True}
    assert out["kernel_wrong_width"] == {"ok": True, "shape": [3, 2], "all_nan": True}
    assert "expected float32 (batch, 4)" in out["run_kernel_wrong_width"]
    assert out["run_ok_after"] == [3, 2]
    assert out["raising_kernel"] == {"ok": True, "shape": [3, 2], "all_nan": True}
    assert "ZeroDivisionError: boom" in out["run_raising"]
    assert out["missing_key"] == {"ok": True, "shape": [2, 2], "all_nan": True}


# ---------------------------------------------------------------------------------------------
# Malformed LUTKanEdge nodes -> OnnxModelError from make_session (checked in a subprocess).

def _edit_attr(name, value):
    def f(m):
        n = _first_edge(m)
        for i, a in enumerate(n.attribute):
            if a.name == name:
                del n.attribute[i]
                break
        if value is not None:
            n.attribute.append(helper.make_attribute(name, value))
    return f


def _first_edge(m):
    return next(n for n in m.graph.node if n.op_type == "LUTKanEdge")


def _replace_init(suffix, fn):
    def f(m):
        for i, t in enumerate(m.graph.initializer):
            if t.name == f"kan0.{suffix}":
                arr = fn(numpy_helper.to_array(t).copy())
                m.graph.initializer[i].CopyFrom(numpy_helper.from_array(arr, t.name))
                return
        raise KeyError(suffix)
    return f


def _computed_table(m):
    n = _first_edge(m)
    m.graph.node.insert(0, helper.make_node("Identity", [n.input[6]], ["table_copy"]))
    n.input[6] = "table_copy"


def _table_as_graph_input(m):
    t = next(t for t in m.graph.initializer if t.name == "kan0.table")
    m.graph.input.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))


def _too_few_inputs(m):
    del _first_edge(m).input[5:]


def _opset3(m):
    for o in m.opset_import:
        if o.domain == "lutkan":
            o.version = 3


def _nonfinite_bounds(m):
    _replace_init("bounds", lambda a: np.where(np.arange(a.shape[1]) == 0, np.float32(np.nan), a))(m)


MALFORMED = {
    "missing_attr": (_edit_attr("interp", None), "missing attribute(s) interp"),
    "bad_interp": (_edit_attr("interp", "cubic"), "interp='cubic' is not supported"),
    "bad_oob": (_edit_attr("oob", "wrap"), "oob='wrap'"),
    "L_too_small": (_edit_attr("L", 1), "L=1 is out of range"),
    "L_mismatch": (_edit_attr("L", 7), "Table has shape"),
    "L_as_string": (_edit_attr("L", "64"), "'L' must be an INT"),
    "interp_as_int": (_edit_attr("interp", 3), "'interp' must be a STRING"),
    "unknown_attr": (_edit_attr("colour", "red"), "unknown attribute 'colour'"),
    "table_shape": (_replace_init("table", lambda a: a[:, :, :-1]), "Table has shape"),
    "table_dtype": (_replace_init("table", lambda a: a.astype(np.int32)), "Table must be int8, uint8"),
    "knots_dtype": (_replace_init("knots", lambda a: a.astype(np.float64)), "Knots must be float32"),
    "knots_rank": (_replace_init("knots", lambda a: a[0]), "Knots must be a float32 (I, K+1)"),
    "knots_nan": (_replace_init("knots", lambda a: np.where(a == a.max(), np.float32(np.nan), a)), "NaN/inf"),
    "knots_unsorted": (_replace_init("knots", lambda a: a[:, ::-1].copy()), "not nondecreasing"),
    "bounds_nan": (_nonfinite_bounds, "Bounds contains NaN/inf"),
    "seg_scale_shape": (_replace_init("seg_scale", lambda a: a[:, :-1]), "SegScale has shape"),
    "base_weight_width": (_replace_init("edge_mask", lambda a: a[:, :-1]), "EdgeMask has shape"),
    "scale_shape": (_replace_init("table_scale", lambda a: a[:, :, :-1]), "TableScale has shape"),
    "computed_table": (_computed_table, "not an initializer"),
    "table_graph_input": (_table_as_graph_input, "also a graph input"),
    "too_few_inputs": (_too_few_inputs, "takes 7-9 inputs"),
    "opset_version": (_opset3, "version 3"),
}


@pytest.fixture(scope="module")
def malformed_results(tmp_path_factory):
    d = tmp_path_factory.mktemp("malformed")
    model = random_model((4, 3, 2), ContractOptions(scheme="int8"), seed=10)
    for case, (edit, _) in MALFORMED.items():
        m = export(model, "custom")  # initializers kan0.knots, kan0.table, ...
        edit(m)
        (d / f"{case}.onnx").write_bytes(m.SerializeToString())
    proc = run_isolated(f"""
import json, pathlib
from lutkan.runtime_ext import make_session
out = {{}}
for p in sorted(pathlib.Path({str(d)!r}).glob("*.onnx")):
    try:
        make_session(p); out[p.stem] = ["no error", ""]
    except Exception as e:
        out[p.stem] = [type(e).__name__, str(e)]
print(json.dumps(out))
""")
    return last_json(proc)


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_node_rejected(malformed_results, case):
    kind, msg = malformed_results[case]
    assert kind == "OnnxModelError", f"{case}: {kind}: {msg}"
    assert MALFORMED[case][1] in msg, msg
    if case != "opset_version":
        assert "LUTKanEdge node 'kan0'" in msg  # names the node


# ---------------------------------------------------------------------------------------------
# Threads and session churn (subprocesses).

def test_threads_one_session():
    proc = run_isolated(_ISOLATED_PRELUDE + """
from concurrent.futures import ThreadPoolExecutor
sess = make_session(om, intra_op_num_threads=1)
x = np.random.default_rng(0).normal(0, 2, (16, 4)).astype(np.float32)
x[0, 0] = np.nan
want = sess.run(None, {"x": x})[0]
def work(t):
    bad = 0
    for i in range(500):
        y = sess.run(None, {"x": x})[0] if i % 2 else run(sess, x)
        bad += not np.array_equal(y, want, equal_nan=True)
    return bad
with ThreadPoolExecutor(8) as ex:
    bad = sum(ex.map(work, range(8)))
# kernel_threads=2 splits large batches over a worker pool: same numbers, also under 4 callers
xl = np.random.default_rng(1).normal(0, 2, (1000, 4)).astype(np.float32)
xl[::7, 1] = np.nan
want_l = sess.run(None, {"x": xl})[0]
split = make_session(om, intra_op_num_threads=1, kernel_threads=2)
def work_l(t):
    return sum(not np.array_equal(split.run(None, {"x": xl})[0], want_l, equal_nan=True) for _ in range(50))
with ThreadPoolExecutor(4) as ex:
    bad_split = sum(ex.map(work_l, range(4)))
print(json.dumps({"bad": bad, "bad_split": bad_split, "errors": len(kernel_errors())}))
""")
    assert last_json(proc) == {"bad": 0, "bad_split": 0, "errors": 0}


def test_session_churn_rss_flat():
    proc = run_isolated(_ISOLATED_PRELUDE + """
import psutil
proc = psutil.Process()
x = np.zeros((4, 4), np.float32)
data = om.SerializeToString()
def churn(n):
    for _ in range(n):
        s = make_session(data, intra_op_num_threads=1)
        s.run(None, {"x": x})
        del s
    gc.collect()
churn(50)
r0 = proc.memory_info().rss
churn(300)
r1 = proc.memory_info().rss
print(json.dumps({"growth_mb": (r1 - r0) / 2**20, "live": pyop.live_kernels()}))
""")
    out = last_json(proc)
    print(f"session churn: RSS {out['growth_mb']:+.1f} MB over 300 creations after 50 warm-up")
    assert out["live"] == 0
    assert out["growth_mb"] < 20, out
