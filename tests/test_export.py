"""Every ONNX form computes the contract: every backend of the oracle equals ``NumpyEvaluator``.

Grid: scheme x interp x boundary x oob on a small random model with everything the graph has to
handle (a non-identity ``input_id`` subset, masked and symbolic edges, a zero-width knot row,
multiplication nodes, affines), probed with ordinary data, exact knots, knots +-1 ulp, domain ends
and their float32 neighbours, far out-of-bounds values, NaN, +-inf, +-1e38, +-FLT_MAX, denormals and
signed zeros (``lutkan.testing.inputs``), through ORT (function/standard), the plugin
(function/custom), onnx.reference (function body, custom op) and Numba (``lutkan.testing.BACKENDS``).
"""

from __future__ import annotations

import zlib

import numpy as np
import onnx
import onnx.inliner
import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st

import lutkan
from lutkan.contract import OPTION_GRID, ContractOptions
from lutkan.errors import UnsupportedModelError
from lutkan.evaluators.numpy_eval import NumpyEvaluator
from lutkan.exporter import export
from lutkan.exporter.function_form import body_spec, function_model
from lutkan.metrics import assert_outputs_close
from lutkan.testing import assert_backends_agree, backends, onnx_runner
from lutkan.testing.inputs import adversarial_inputs, single_value_rows
from lutkan.testing.models import KNOT_KINDS, random_model, random_source
from lutkan.testing.strategies import contract_options, sources

REL = 1e-5

_SRC = random_source([5, 4, 3], G=3, k=2, knots="nonuniform", seed=7, mult_groups={0: (2,)}, masked=0.25,
                     symbolic=0.2, zero_width=1, n_inputs=7)


def test_grid_model_has_everything():
    """The grid model really has what the module docstring lists."""
    model = lutkan.compile_model(_SRC, ContractOptions())
    layer = model.layers[0]
    assert len(model.input_id) == 5 and model.n_inputs == 7
    assert layer.edge_src.size < layer.in_dim * layer.out_dim and layer.n_symbolic > 0  # pruned; exact symbolic
    assert (layer.knots[:, -1] == layer.knots[:, 0]).any() and layer.mult_groups == (2,)
    assert not np.all(layer.node_scale == 1) and not np.all(layer.subnode_bias == 0)


@pytest.mark.parametrize("scheme,interp,boundary,oob", OPTION_GRID)
def test_forms_equal_numpy(scheme, interp, boundary, oob):
    model = lutkan.compile_model(_SRC, ContractOptions(L=8, scheme=scheme, interp=interp, boundary=boundary, oob=oob))
    x = adversarial_inputs(model, 400, seed=zlib.crc32(f"{scheme}{interp}{boundary}{oob}".encode()))
    ref = NumpyEvaluator(model)(x)
    assert np.isnan(ref).any() and np.isfinite(ref).any()
    for form in ("function", "standard", "custom"):
        onnx.checker.check_model(export(model, form), full_check=True)
    assert_backends_agree(model, x, rel=REL, what=f"{scheme}/{interp}/{boundary}/{oob}")


@pytest.mark.parametrize("interp,oob", [("linear", "extrapolate"), ("nearest", "extrapolate"), ("linear", "zero"),
                                        ("nearest", "clip")])
def test_body_equals_numpy(interp, oob):
    model = lutkan.compile_model(_SRC, ContractOptions(L=16, scheme="uint8", interp=interp, oob=oob,
                                                       boundary="half_open"))
    x = adversarial_inputs(model, 300, seed=3)
    proto = function_model(model, body_spec(model))
    onnx.checker.check_model(proto, full_check=True)
    y = onnx_runner(proto, "ort")(x)
    assert_outputs_close(y, NumpyEvaluator(model)(x), rel=REL, what=f"{interp}/{oob}")


@pytest.mark.parametrize("base_fun", ["silu", "identity", "zero"])
@pytest.mark.parametrize("affine", [True, False])
def test_base_functions_deep_model(base_fun, affine):
    src = random_source([6, 5, 4, 3, 2], G=5, k=3, seed=11, base_fun=base_fun, affine=affine,
                        mult_groups={1: (2, 3), 2: (2,)}, masked=0.1)
    model = lutkan.compile_model(src, ContractOptions(L=32, scheme="int8"))
    x = adversarial_inputs(model, 300, seed=5)
    assert_backends_agree(model, x, rel=REL, what=f"{base_fun} affine={affine}")


@pytest.mark.parametrize("batch", [1, 2, 4096])
def test_batch_sizes(batch):
    src = random_source([9, 4, 1], G=5, k=3, seed=2)
    model = lutkan.compile_model(src, ContractOptions(L=64, scheme="int8", oob="extrapolate"))
    x = adversarial_inputs(model, batch, seed=batch)
    assert_backends_agree(model, x, rel=REL, what=f"batch {batch}",
                          include=("numba", "ort-function", "ort-standard", "plugin-function", "plugin-custom",
                                   "onnxref-custom"))


def test_single_special_rows_and_columns():
    """Rows holding one adversarial value each (the rest ordinary), in every column: exact NaN positions."""
    src = random_source([4, 3, 2], G=4, k=3, seed=4, masked=0.4)
    model = lutkan.compile_model(src, ContractOptions(L=16, scheme="float32", oob="extrapolate"))
    x = single_value_rows(model, fill=np.full(model.n_inputs, 0.3, np.float32))
    ref = NumpyEvaluator(model)(x)
    runners = backends(model)
    assert_backends_agree(model, x, runners=runners, rel=REL)
    for name, f in runners.items():
        np.testing.assert_array_equal(np.isnan(f(x)), np.isnan(ref), err_msg=name)


def test_onnxslim_and_inliner_keep_function_model_valid_and_equal():
    onnxslim = pytest.importorskip("onnxslim")
    src = random_source([6, 4, 2], G=5, k=3, seed=9, mult_groups={0: (2,)}, n_inputs=8)
    model = lutkan.compile_model(src, ContractOptions(L=32, scheme="uint8", oob="clip", boundary="half_open"))
    x = adversarial_inputs(model, 200, seed=1)
    ref = NumpyEvaluator(model)(x)
    fn = export(model, "function")
    slim = onnxslim.slim(fn)
    onnx.checker.check_model(slim, full_check=True)
    assert sum(n.op_type == "LUTKanEdge" for n in slim.graph.node) == len(model.layers)
    assert_outputs_close(onnx_runner(slim, "ort")(x), ref, rel=REL, what="onnxslim")
    inlined = onnx.inliner.inline_local_functions(fn)
    onnx.checker.check_model(inlined, full_check=True)
    assert not any(n.domain for n in inlined.graph.node)
    assert_outputs_close(onnx_runner(inlined, "ort")(x), ref, rel=REL, what="inlined")
    assert_outputs_close(onnx_runner(inlined, "onnxref")(x), ref, rel=REL, what="inlined, ReferenceEvaluator")


@settings(max_examples=25)
@given(src=sources(max_width=5, ks=st.integers(1, 3), Gs=st.integers(1, 5),
                   knots=st.sampled_from([("repeated",), ("uniform", "repeated"), ("nonuniform", "repeated", "coarse"),
                                          KNOT_KINDS])),
       opts=contract_options(L=st.sampled_from([2, 3, 5, 16])),
       xseed=st.integers(0, 2**31 - 1))
def test_random_models_with_repeated_knots(src, opts, xseed):
    """Small random models, tiny L, repeated interior knots (zero-width segments)."""
    try:
        model = lutkan.compile_model(src, opts)
    except UnsupportedModelError:  # e.g. a symbolic exp overflowing float16
        reject()
    x = adversarial_inputs(model, 150, seed=xseed)
    ref = NumpyEvaluator(model)(x)
    for form in ("function", "standard"):
        y = onnx_runner(export(model, form), "ort")(x)
        assert_outputs_close(y, ref, rel=REL, what=f"{form} {src.provenance['call']}")


@pytest.mark.parametrize("interp,scheme", [("linear", "int8"), ("poly", "float32")])
@pytest.mark.parametrize("runtime", ["ort", "onnxref"])
def test_row_chunks_equal_one_pass(interp, scheme, runtime):
    """Past ``max_rows()`` rows the body runs a Scan over row chunks of max_rows() // 8 rows (bounded memory): every
    row, the padded tail included, equals the reference, at, just past and well past the limit, and for one row."""
    from dataclasses import replace

    from lutkan.exporter.standard_form import standard_model

    model = random_model((6, 5, 2), ContractOptions(L=8, scheme=scheme, interp=interp), G=3, k=2, seed=5)
    spec = body_spec(model)
    per_row = 6 * 5 * (spec.degree + 1 if interp == "poly" else 2)  # the largest layer: 6 inputs x 5 outputs
    small = replace(spec, chunk_floats=24 * per_row)  # one pass up to 24 rows, else chunks of 3 rows
    x = adversarial_inputs(model, 61, seed=6)
    ref = NumpyEvaluator(model)(x)
    for build in (function_model, standard_model):
        proto = build(model, small)
        onnx.checker.check_model(proto, full_check=True)
        run = onnx_runner(proto, runtime)
        for n in (1, 24, 25, 30, 61):  # one pass; the largest one pass; 9 chunks (2 padded rows); 10 full; 21
            assert_outputs_close(run(x[:n]), ref[:n], rel=REL, what=f"{build.__name__} {runtime} at {n} rows")
