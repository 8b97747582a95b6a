"""Every ONNX form computes the contract: ORT / onnx.reference outputs equal ``NumpyEvaluator``.

Grid: scheme x interp x boundary x oob on a small random model with everything the graph has to
handle (a non-identity ``input_id`` subset, masked and symbolic edges, a zero-width knot row,
multiplication nodes, affines), probed with ordinary data, exact knots, domain ends and their
float32 neighbours, far out-of-bounds values, NaN, +-inf, +-1e38, +-FLT_MAX and denormals.
"""

from __future__ import annotations

import dataclasses
import itertools
import zlib

import numpy as np
import onnx
import onnx.inliner
import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st
from onnx.reference import ReferenceEvaluator

import lutkan
from lutkan.contract import BOUNDARIES, INTERPS, OOB_POLICIES, SCHEMES, ContractOptions
from lutkan.custom_ops.function_body import VARIANTS
from lutkan.custom_ops.reference_op import LUTKanEdge
from lutkan.errors import UnsupportedModelError
from lutkan.evaluators.numpy_eval import NumpyEvaluator
from lutkan.exporter import export
from lutkan.exporter.function_form import body_spec, function_model
from lutkan.metrics import assert_outputs_close
from _models import probe_inputs, random_source
from conftest import ort_run

REL = 1e-5


def ref_run(proto: onnx.ModelProto, x: np.ndarray, **kw) -> np.ndarray:
    with np.errstate(all="ignore"):
        return ReferenceEvaluator(proto, **kw).run(None, {"x": x})[0]


_SRC = random_source([5, 4, 3], G=3, k=2, uniform=False, seed=7, mult_groups={0: (2,)}, masked=0.25,
                     symbolic=0.2, zero_width=1, n_inputs=7)


@pytest.mark.parametrize("scheme,interp,boundary,oob",
                         list(itertools.product(SCHEMES, INTERPS, BOUNDARIES, OOB_POLICIES)))
def test_forms_equal_numpy(scheme, interp, boundary, oob):
    model = lutkan.compile_model(_SRC, ContractOptions(L=8, scheme=scheme, interp=interp, boundary=boundary, oob=oob))
    x = probe_inputs(model, 400, seed=zlib.crc32(f"{scheme}{interp}{boundary}{oob}".encode()))
    ref = NumpyEvaluator(model)(x)
    assert np.isnan(ref).any() and np.isfinite(ref).any()
    fn = export(model, "function")
    for form, proto in (("function", fn), ("standard", export(model, "standard"))):
        onnx.checker.check_model(proto, full_check=True)
        assert_outputs_close(ort_run(proto, x), ref, rel=REL, what=f"ORT {form}")
    assert_outputs_close(ref_run(fn, x), ref, rel=REL, what="ReferenceEvaluator function body")
    custom = export(model, "custom")
    onnx.checker.check_model(custom, full_check=True)
    assert_outputs_close(ref_run(custom, x, new_ops=[LUTKanEdge]), ref, rel=REL, what="ReferenceEvaluator custom op")


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("interp,oob", [("linear", "extrapolate"), ("nearest", "extrapolate"), ("linear", "zero"),
                                        ("nearest", "clip")])
@pytest.mark.parametrize("nan", ["rows", "mask"])
def test_body_variants_equal_numpy(variant, interp, oob, nan):
    model = lutkan.compile_model(_SRC, ContractOptions(L=16, scheme="uint8", interp=interp, oob=oob,
                                                       boundary="half_open"))
    x = probe_inputs(model, 300, seed=3)
    proto = function_model(model, body_spec(model, variant, nan=nan))
    onnx.checker.check_model(proto, full_check=True)
    assert_outputs_close(ort_run(proto, x), NumpyEvaluator(model)(x), rel=REL, what=f"{variant}/{nan}")


@pytest.mark.parametrize("base_fun", ["silu", "identity", "zero"])
@pytest.mark.parametrize("affine", [True, False])
def test_base_functions_deep_model(base_fun, affine):
    src = random_source([6, 5, 4, 3, 2], G=5, k=3, seed=11, base_fun=base_fun, affine=affine,
                        mult_groups={1: (2, 3), 2: (2,)}, masked=0.1)
    model = lutkan.compile_model(src, ContractOptions(L=32, scheme="int8"))
    x = probe_inputs(model, 300, seed=5)
    ref = NumpyEvaluator(model)(x)
    for form in ("function", "standard"):
        assert_outputs_close(ort_run(export(model, form), x), ref, rel=REL, what=form)
    assert_outputs_close(ref_run(export(model, "custom"), x, new_ops=[LUTKanEdge]), ref, rel=REL)


@pytest.mark.parametrize("batch", [1, 2, 4096])
def test_batch_sizes(batch):
    src = random_source([9, 4, 1], G=5, k=3, seed=2)
    model = lutkan.compile_model(src, ContractOptions(L=64, scheme="int8", oob="extrapolate"))
    x = probe_inputs(model, batch, seed=batch)
    for form in ("function", "standard"):
        assert_outputs_close(ort_run(export(model, form), x), NumpyEvaluator(model)(x), rel=REL, what=form)


def test_single_special_rows_and_columns():
    """Rows holding one special value each (the rest ordinary), in every column: exact NaN positions."""
    src = random_source([4, 3, 2], G=4, k=3, seed=4, masked=0.4)
    model = lutkan.compile_model(src, ContractOptions(L=16, scheme="float32", oob="extrapolate"))
    specials = np.array([np.nan, np.inf, -np.inf, 1e38, -1e38, 1e-40, -0.0, 3.4028235e38], np.float32)
    x = np.tile(np.float32(0.3), (len(specials) * 4, 4))
    for r, (c, v) in enumerate(itertools.product(range(4), specials)):
        x[r, c] = v
    ref = NumpyEvaluator(model)(x)
    for form in ("function", "standard"):
        y = ort_run(export(model, form), x)
        assert_outputs_close(y, ref, rel=REL, what=form)
        np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))


def test_onnxslim_and_inliner_keep_function_model_valid_and_equal():
    onnxslim = pytest.importorskip("onnxslim")
    src = random_source([6, 4, 2], G=5, k=3, seed=9, mult_groups={0: (2,)}, n_inputs=8)
    model = lutkan.compile_model(src, ContractOptions(L=32, scheme="uint8", oob="clip", boundary="half_open"))
    x = probe_inputs(model, 200, seed=1)
    ref = NumpyEvaluator(model)(x)
    fn = export(model, "function")
    slim = onnxslim.slim(fn)
    onnx.checker.check_model(slim, full_check=True)
    assert sum(n.op_type == "LUTKanEdge" for n in slim.graph.node) == len(model.layers)
    assert_outputs_close(ort_run(slim, x), ref, rel=REL, what="onnxslim")
    inlined = onnx.inliner.inline_local_functions(fn)
    onnx.checker.check_model(inlined, full_check=True)
    assert not any(n.domain for n in inlined.graph.node)
    assert_outputs_close(ort_run(inlined, x), ref, rel=REL, what="inlined")
    assert_outputs_close(ref_run(inlined, x), ref, rel=REL, what="inlined, ReferenceEvaluator")


@settings(max_examples=25)
@given(seed=st.integers(0, 2**31 - 1), L=st.sampled_from([2, 3, 5, 16]), scheme=st.sampled_from(SCHEMES),
       interp=st.sampled_from(INTERPS), boundary=st.sampled_from(BOUNDARIES), oob=st.sampled_from(OOB_POLICIES),
       variant=st.sampled_from(VARIANTS))
def test_random_models_with_repeated_knots(seed, L, scheme, interp, boundary, oob, variant):
    """Small random models, tiny L, repeated interior knots (zero-width segments), every body variant."""
    rng = np.random.default_rng(seed)
    width = [int(rng.integers(1, 6)) for _ in range(int(rng.integers(2, 4)))]
    src = random_source(width, G=int(rng.integers(1, 6)), k=int(rng.integers(1, 4)), seed=seed,
                        uniform=bool(rng.integers(2)), masked=float(rng.uniform(0, 0.5)),
                        symbolic=float(rng.uniform(0, 0.3)), zero_width=int(rng.integers(0, 2)),
                        base_fun=str(rng.choice(["silu", "identity", "zero"])), affine=bool(rng.integers(2)))
    layers = []
    for layer in src.layers:
        g = layer.grid.copy()
        for i in range(g.shape[0]):
            if g.shape[1] > 3 and rng.random() < 0.4:
                j = int(rng.integers(1, g.shape[1] - 1))
                g[i, j] = g[i, j - 1]
        layers.append(dataclasses.replace(layer, grid=g))
    src = dataclasses.replace(src, layers=tuple(layers))
    try:
        model = lutkan.compile_model(src, ContractOptions(L=L, scheme=scheme, interp=interp, boundary=boundary,
                                                          oob=oob))
    except UnsupportedModelError:  # e.g. a symbolic exp overflowing float16
        reject()
    x = probe_inputs(model, 150, seed=seed)
    ref = NumpyEvaluator(model)(x)
    for form in ("function", "standard"):
        assert_outputs_close(ort_run(export(model, form, variant=variant), x), ref, rel=REL, what=form)
