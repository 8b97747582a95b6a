"""Hypothesis-driven compile -> save -> load -> export -> run round trips on random models.

Per example: a random SourceModel (either factory: ``tests/_models.random_source`` or the contract
suite's, which adds repeated knots, k 1..5, G 1..12, float32-exact knots), random contract options,
compile, ``save``/``load`` through a real file, then every backend on adversarial inputs:
NumPy and Numba on the loaded model, the ``function`` and ``standard`` ONNX forms in plain
onnxruntime, the ``function`` and ``custom`` forms in a plugin session (``lutkan.runtime_ext``),
and ``onnx.reference`` on the ``custom`` form (small batch). All must agree with the NumPy reference
on the model as compiled (before saving). Cases are counted and summarised at the end of the module.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from conftest import terminal_line
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import _models
from lutkan.artifact import load, save, to_bytes
from lutkan.compiler import compile_model
from lutkan.contract import BOUNDARIES, INTERPS, OOB_POLICIES, SCHEMES, ContractOptions
from lutkan.evaluators.numba_eval import NumbaEvaluator
from lutkan.evaluators.numpy_eval import NumpyEvaluator, eval_layer
from lutkan.evaluators.packing import pack_model
from lutkan.metrics import HUGE, assert_outputs_close
from test_contract_properties import _identity_combine, special_inputs
from test_contract_properties import models as contract_models

try:
    from onnx.reference import ReferenceEvaluator

    from lutkan.custom_ops.reference_op import LUTKanEdge
    from lutkan.exporter import export
    from lutkan.runtime_ext import live_kernels, make_session, run

    HAVE_ONNX, WHY_NOT = True, ""
except ImportError as e:  # pragma: no cover
    HAVE_ONNX, WHY_NOT = False, f"exporter/runtime_ext not importable: {e}"

STATS: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def _summary(request):
    yield
    line = (f"roundtrip fuzz: {STATS['examples']} models, {STATS['backend_runs']} backend runs compared, "
            f"{STATS['rows']} input rows compared ({STATS['rows_overflow_skipped']} overflow-region rows not compared end to end), {STATS['mismatch']} mismatches, {STATS['crashes']} crashes")
    terminal_line(request.config, line)


@st.composite
def sources(draw):
    if draw(st.booleans()):
        src, _ = draw(contract_models(max_layers=3))
        return src
    n_layers = draw(st.integers(1, 3))
    width = [draw(st.integers(1, 4)) for _ in range(n_layers + 1)]
    mult = {l: [2] for l in range(n_layers) if width[l + 1] >= 2 and draw(st.booleans())}
    return _models.random_source(
        width, G=draw(st.integers(1, 8)), k=draw(st.integers(1, 4)), seed=draw(st.integers(0, 2**31)),
        uniform=draw(st.booleans()), mult_groups=mult, masked=draw(st.sampled_from([0.0, 0.3])),
        symbolic=draw(st.sampled_from([0.0, 0.3])), zero_width=draw(st.integers(0, 1)),
        affine=draw(st.booleans()), base_fun=draw(st.sampled_from(["silu", "identity", "zero"])),
        n_inputs=width[0] + draw(st.integers(0, 2)))


options = st.builds(ContractOptions, L=st.integers(2, 48), scheme=st.sampled_from(SCHEMES),
                    interp=st.sampled_from(INTERPS), boundary=st.sampled_from(BOUNDARIES),
                    oob=st.sampled_from(OOB_POLICIES))


def overflow_rows(model, x) -> np.ndarray:
    """Rows in float32's overflow region somewhere in the network (contract section 5).

    A layer input |h| >= HUGE (incl. +-inf) that meets a nonzero base weight, or any active edge under
    ``extrapolate``, makes terms near FLT_MAX whose sum is +inf, -inf, NaN or finite depending on the
    summation order, which the contract leaves to each backend. Downstream that difference is no
    longer "extreme on both sides" (NaN poisons the next layer, inf is clipped to T_hi; a product
    with 0 gives NaN vs 0), so such rows are not compared end to end (the contract suite compares
    them layer by layer on the raw edge sums).
    """
    c = model.contract
    h = np.ascontiguousarray(x[:, model.input_id], dtype=np.float32)
    bad = np.zeros(len(x), dtype=bool)
    for layer, p in zip(model.layers, pack_model(model)):
        reach = np.abs(layer.base_weight).sum(axis=1) > 0 if model.base_fun != "zero" else np.zeros(layer.in_dim, bool)
        if c.oob == "extrapolate":
            reach = reach | layer.active.any(axis=1)
        with np.errstate(invalid="ignore"):
            bad |= ((np.abs(h) >= HUGE) & reach[None, :]).any(axis=1)
            kw = dict(interp=c.interp, boundary=c.boundary, oob=c.oob, base_fun=model.base_fun)
            sums = eval_layer(_identity_combine(p), h, **kw)
            bad |= (np.isinf(sums) | (np.abs(sums) >= HUGE)).any(axis=1)
            h = eval_layer(p, h, **kw)
    return bad


def _compare(name, y, ref, what):
    STATS["backend_runs"] += 1
    try:
        with np.errstate(invalid="ignore"):
            assert_outputs_close(y, ref, rel=1e-5, what=f"{name}: {what}")
    except AssertionError:
        STATS["mismatch"] += 1
        raise


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(src=sources(), opts=options, xseed=st.integers(0, 2**16))
def test_compile_save_load_export_run(tmp_path_factory, src, opts, xseed):
    STATS["examples"] += 1
    model = compile_model(src, opts)
    x = _models.probe_inputs(model, 48, seed=xseed, special_fraction=0.2)
    x = np.concatenate([x, special_inputs(src, xseed, n=16, extremes=True)])
    skip = overflow_rows(model, x)
    STATS["rows"] += int((~skip).sum())
    STATS["rows_overflow_skipped"] += int(skip.sum())
    ref_all = NumpyEvaluator(model)(x)
    x_all, x = x, x[~skip]
    ref = ref_all[~skip]
    what = f"{opts} width={model.width} base={model.base_fun}"

    path = tmp_path_factory.mktemp("rt") / "m.lutkan"
    save(model, path)
    loaded = load(path)
    assert to_bytes(loaded) == path.read_bytes()
    np.testing.assert_array_equal(NumpyEvaluator(loaded)(x_all), ref_all)  # same bytes -> same numbers
    if not len(x):
        return
    outs = {"numba(loaded)": NumbaEvaluator(loaded)(x)}

    if HAVE_ONNX:
        base = live_kernels()
        for form, plugin in (("function", False), ("standard", False), ("function", True), ("custom", True)):
            proto = export(loaded, form=form)
            sess = make_session(proto, plugin=plugin, intra_op_num_threads=1)
            outs[f"ort {form}{'+plugin' if plugin else ''}"] = run(sess, x)
            del sess
        small = x[:16]
        ref_eval = ReferenceEvaluator(export(loaded, form="custom"), new_ops=[LUTKanEdge])
        with np.errstate(all="ignore"):
            y_small = ref_eval.run(None, {"x": small})[0]
        _compare("onnx.reference custom", y_small, ref[:16], what)
        import gc

        gc.collect()
        assert live_kernels() == base, "plugin kernels leaked after the sessions were dropped"
    for name, y in outs.items():
        assert y.shape == ref.shape and y.dtype == np.float32, (name, y.shape, y.dtype)
        _compare(name, y, ref, what)


def test_onnx_backends_present():
    """The ONNX legs of the round trip are not optional: the exporter and plugin ship with lutkan."""
    assert HAVE_ONNX, WHY_NOT
