"""The native LUTKanEdge op (``lutkan.runtime_ext.library_path()``) in plain onnxruntime sessions.

Parity of unmodified custom- and function-form files against the NumPy reference, the function body not
run, split batches bitwise equal, malformed files and bad inputs (errors, never a crash: those run in a
subprocess), the ABI table. Threads, churn, fallback and the oldest onnxruntime: ``test_native_runtime.py``.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper
from test_runtime_ext import MALFORMED, decoy_function_model, last_json, probe, random_model, run_isolated

from lutkan.contract import SCHEMES, ContractOptions
from lutkan.errors import OnnxModelError
from lutkan.evaluators.numpy_eval import NumpyEvaluator
from lutkan.exporter import export
from lutkan.metrics import assert_outputs_close
from lutkan.runtime_ext import (
    inline_symbolic,
    library_path,
    make_session,
    native_available,
    native_unavailable_reason,
    ortabi,
    registry,
    run,
    session_backend,
)
from lutkan.testing import assert_backends_agree, backends

REPO = Path(__file__).resolve().parents[1]
NATIVE = ("native-function", "native-custom")


def native_session(om, threads: int = 1, **so_attrs) -> ort.InferenceSession:
    """What a user writes: a plain InferenceSession with the library registered (no lutkan call per session)."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    for k, v in so_attrs.items():
        setattr(so, k, v)
    so.register_custom_ops_library(library_path())
    data = om if isinstance(om, bytes) else om.SerializeToString()
    return ort.InferenceSession(data, sess_options=so, providers=["CPUExecutionProvider"])


def test_native_library_is_built():
    """The suite runs on a machine with a C compiler (conftest builds the forwarder in a checkout)."""
    assert native_available(), native_unavailable_reason()
    assert Path(library_path()).is_file()


def test_abi_entries_within_their_api_version():
    """Each OrtApi index lies inside the block of the API version it is annotated with (onnxruntime's
    static_asserts: the last index of versions 1, 14, 15 and 17), and every version is <= the one requested."""
    last = {1: 101, 13: 224, 14: 238, 15: 254, 16: 265, 17: 275}
    first = {v: last[max(p for p in last if p < v)] + 1 if v > 1 else 0 for v in last}
    for name, (index, version) in ortabi.ENTRIES.items():
        assert first[version] <= index <= last[version], name
        assert version <= ortabi.API_VERSION, name
    assert ctypes_size_of_custom_op() == 4 + 4 + 25 * 8  # uint32 version, padding, 25 function pointers


def ctypes_size_of_custom_op() -> int:
    import ctypes

    return ctypes.sizeof(ortabi.OrtCustomOp)


# ---------------------------------------------------------------------------------------------
# Parity (the oracle runs native-function / native-custom in every assert_backends_agree too).

CASES = {  # name: (options, random_model keywords)
    **{f"{s}-linear": (ContractOptions(L=9, scheme=s), {}) for s in SCHEMES},
    **{f"{s}-nearest-half_open-clip": (ContractOptions(L=7, scheme=s, interp="nearest", boundary="half_open",
                                                       oob="clip"), {}) for s in SCHEMES},
    "float32-poly-extrapolate": (ContractOptions(L=4, scheme="float32", interp="poly", oob="extrapolate"), {}),
    "float16-poly-zero": (ContractOptions(L=3, scheme="float16", interp="poly", oob="zero"), {}),
    "uint8-extrapolate-mult": (ContractOptions(L=16, scheme="uint8", oob="extrapolate"),
                               {"mult_groups": {0: (2,), 1: (2,)}, "width": (3, 5, 2), "input_id": [4, 0, 2],
                                "n_inputs": 5}),
    "int8-identity-base": (ContractOptions(L=12, scheme="int8"), {"base_fun": "identity", "zero_width": 1}),
    "int8-zero-base-K40": (ContractOptions(L=5, scheme="int8"), {"base_fun": "zero", "G": 34, "k": 3}),
    "int8-symbolic": (ContractOptions(L=10, scheme="int8"), {"symbolic": 0.4, "mult_groups": {0: (2,)},
                                                             "width": (4, 4, 2)}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_plain_session_matches_reference(case):
    opts, kw = CASES[case]
    kw = dict(kw)
    width = kw.pop("width", (4, 3, 2))
    model = random_model(width, opts, seed=sorted(CASES).index(case), **kw)
    x = probe(model, seed=3)
    runners = backends(model, include=NATIVE)
    assert_backends_agree(model, x, runners=runners, rel=1e-5, what=case)
    # the session is a plain one: no graph rewrite, the file's own initializers are the tables
    sess = runners["native-custom"].session
    assert session_backend(sess) is None


def test_function_form_runs_the_op_not_its_body():
    """A decoy body (MatMul) would give wrong numbers: the registered op takes precedence over it."""
    model = random_model((4, 3, 2), seed=3)
    x = probe(model, 1)
    ref = NumpyEvaluator(model)(x)
    assert_outputs_close(native_session(decoy_function_model(model)).run(None, {"x": x})[0], ref)


def test_custom_form_with_symbolic_edges_needs_inlining():
    model = random_model((4, 3, 2), ContractOptions(L=8), seed=2, symbolic=0.5)
    om = export(model, "custom")
    assert any(n.op_type == "KanSymbolic" for n in om.graph.node)
    with pytest.raises(Exception, match=r"KanSymbolic node 'kan0.symbolic'.*make_session"):
        native_session(om)
    x = probe(model, 2)
    ref = NumpyEvaluator(model)(x)
    inlined = inline_symbolic(om)
    assert not any(n.op_type == "KanSymbolic" for n in inlined.graph.node)
    assert sum(n.op_type == "LUTKanEdge" for n in inlined.graph.node) == 2
    assert_outputs_close(native_session(inlined).run(None, {"x": x})[0], ref, rel=1e-5)
    assert_outputs_close(run(make_session(om), x), ref, rel=1e-5)  # make_session inlines them itself


def test_make_session_uses_native_and_drops_its_table_copy():
    model = random_model((4, 3, 2), seed=5)
    before = set(registry._KERNELS)
    sess = make_session(export(model, "custom"), intra_op_num_threads=1)
    assert session_backend(sess) == "native"
    entries = [registry.get_kernel(k) for k in set(registry._KERNELS) - before]  # this session's two nodes
    assert len(entries) == 2 and all(e.tables is None and e.kernel is None for e in entries)
    x = probe(model, 4)
    assert_outputs_close(run(sess, x), NumpyEvaluator(model)(x))
    # threads for the native op are onnxruntime's intra-op threads
    assert make_session(export(model, "custom"), kernel_threads=2).get_session_options().intra_op_num_threads == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ORT_PARALLEL is fine without the GIL (the PyOp warns)
        make_session(export(model, "custom"), execution_mode=ort.ExecutionMode.ORT_PARALLEL)


def test_parallel_rows_equal_one_thread():
    """Batches of >= 1024 rows are split into row blocks (over onnxruntime's intra-op pool with 2 threads, in
    turn with 1): bitwise the output of the same session on chunks too small to split (rows are independent)."""
    model = random_model((6, 5, 3), ContractOptions(L=16, scheme="int8"), seed=8)
    om = export(model, "custom")
    x = np.concatenate([probe(model, 9)] * 40)[:5001]
    one, two = native_session(om, threads=1), native_session(om, threads=2)
    unsplit = np.concatenate([one.run(None, {"x": x[i:i + 500]})[0] for i in range(0, len(x), 500)])
    np.testing.assert_array_equal(one.run(None, {"x": x})[0], unsplit)
    np.testing.assert_array_equal(two.run(None, {"x": x})[0], unsplit)
    ref = NumpyEvaluator(model)(x)
    with np.errstate(invalid="ignore"):
        assert np.allclose(unsplit, ref, rtol=1e-5, atol=1e-5, equal_nan=True)


# ---------------------------------------------------------------------------------------------
# Malformed files and bad inputs: onnxruntime errors naming the node, never a crash (subprocess).

NOT_VISIBLE = {  # cases the C API does not let a kernel see; make_session still rejects them
    "unknown_attr": "attributes outside the schema are not enumerable through the C API",
    "opset_version": "the model's lutkan opset version is not visible to a kernel",
}
EXPECT = {**{case: want for case, (_, want) in MALFORMED.items()},
          "computed_table": "not an initializer",  # with graph optimizations off (else folded to a constant)
          "table_graph_input": "not an initializer"}


def _bool_table(m):
    t = next(t for t in m.graph.initializer if t.name == "kan0.table")
    t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(bool), t.name))


def _string_table(m):
    t = next(t for t in m.graph.initializer if t.name == "kan0.table")
    t.CopyFrom(helper.make_tensor(t.name, onnx.TensorProto.STRING, [2], [b"a", b"b"]))


def _keyed_node(m):
    n = next(n for n in m.graph.node if n.op_type == "LUTKanEdge")
    del n.input[1:]
    del n.attribute[:]
    n.attribute.append(helper.make_attribute("kernel_key", "lutkan.guess.0:3"))


NATIVE_MALFORMED = {
    "bool_table": (_bool_table, "Table must be int8, uint8, float16 or float32, got bool"),
    "string_table": (_string_table, "input Table has element type STRING"),
    "foreign_kernel_key": (_keyed_node, "no prepared tables under kernel_key='lutkan.guess.0:3'"),
}


@pytest.fixture(scope="module")
def malformed_native(tmp_path_factory):
    d = tmp_path_factory.mktemp("malformed_native")
    model = random_model((4, 3, 2), ContractOptions(scheme="int8"), seed=10)
    for form in ("custom", "function"):
        for case, (edit, _) in {**MALFORMED, **NATIVE_MALFORMED}.items():
            m = export(model, form)
            edit(m)
            (d / f"{form}.{case}.onnx").write_bytes(m.SerializeToString())
    proc = run_isolated(f"""
import json, pathlib, numpy as np, onnxruntime as ort
from lutkan.runtime_ext import library_path
out = {{}}
for p in sorted(pathlib.Path({str(d)!r}).glob("*.onnx")):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.register_custom_ops_library(library_path())
    try:
        s = ort.InferenceSession(str(p), so, providers=["CPUExecutionProvider"])
        y = s.run(None, {{"x": np.zeros((2, 4), np.float32)}})[0]
        out[p.stem] = ["no error", str(y.shape)]
    except Exception as e:
        out[p.stem] = [type(e).__name__, str(e)]
print(json.dumps(out))
""")
    return last_json(proc)


@pytest.mark.parametrize("form", ["custom", "function"])
@pytest.mark.parametrize("case", sorted({**MALFORMED, **NATIVE_MALFORMED}))
def test_malformed_file_gives_an_error(malformed_native, form, case):
    kind, msg = malformed_native[f"{form}.{case}"]
    if case in NOT_VISIBLE:  # documented limit: runs as a well-formed node (the file is otherwise valid)
        assert kind == "no error", msg
        return
    want = EXPECT.get(case) or NATIVE_MALFORMED[case][1]
    assert kind != "no error", f"{form}.{case}: {msg}"
    assert want in msg, msg
    if case != "too_few_inputs" or form == "custom":
        assert "LUTKanEdge node 'kan0'" in msg  # names the node


def test_bad_input_gives_an_error_not_a_crash():
    proc = run_isolated("""
import json, numpy as np, onnx, onnxruntime as ort
from lutkan.exporter import export
from lutkan.testing.models import random_model
from lutkan.runtime_ext import library_path, make_session, run, PluginKernelError
om = export(random_model((4, 3, 2), seed=9, input_id="sorted"), "custom")  # no Gather before the op
om.graph.input[0].type.tensor_type.shape.dim[1].dim_param = "width"  # X's width reaches the kernel unchecked
so = ort.SessionOptions(); so.register_custom_ops_library(library_path())
s = ort.InferenceSession(om.SerializeToString(), so, providers=["CPUExecutionProvider"])
out = {}
def attempt(name, x):
    try:
        y = s.run(None, {"x": x})[0]
        out[name] = ["ok", list(y.shape), bool(np.isfinite(y).all())]
    except Exception as e:
        out[name] = [type(e).__name__, str(e)]
attempt("wide", np.zeros((3, 7), np.float32))
attempt("narrow", np.zeros((3, 1), np.float32))
attempt("empty", np.zeros((0, 4), np.float32))
attempt("big_ok", np.zeros((3000, 4), np.float32))
attempt("ok_after", np.ones((2, 4), np.float32))
try:
    run(make_session(om), np.zeros((3, 7), np.float32)); out["run"] = "no error"
except PluginKernelError as e:
    out["run"] = str(e)
print(json.dumps(out))
""")
    out = last_json(proc)
    assert out["wide"][0] == "InvalidArgument", out
    assert "LUTKanEdge node 'kan0': input X must be a float32 (batch, 4) tensor; got element type 1" in out["wide"][1]
    assert "rank 2, shape (3, 7)" in out["wide"][1]
    assert "shape (3, 1)" in out["narrow"][1]
    assert out["empty"] == ["ok", [0, 2], True]
    assert out["big_ok"] == ["ok", [3000, 2], True]
    assert out["ok_after"] == ["ok", [2, 2], True]
    assert "input X must be a float32 (batch, 4) tensor" in out["run"]


def test_make_session_rejects_what_the_kernel_cannot_see():
    """make_session validates the whole node first, so the cases a plain session cannot see are still caught."""
    model = random_model((4, 3, 2), ContractOptions(scheme="int8"), seed=10)
    for case in NOT_VISIBLE:
        m = export(model, "custom")
        MALFORMED[case][0](m)
        with pytest.raises(OnnxModelError, match=re.escape(MALFORMED[case][1])):
            make_session(m)
