"""Every ONNX form of every real checkpoint equals ``NumpyEvaluator`` (the oracle's backends:
ORT function/standard, plugin function/custom, onnx.reference custom op, Numba), on the checkpoint's
own cache_data (which includes out-of-domain inputs) and on adversarial inputs."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
from conftest import CHECKPOINT_PARAMS, checkpoint_dir

from lutkan.compiler import compile_model
from lutkan.contract import ContractOptions
from lutkan.exporter import export
from lutkan.testing import BACKENDS, assert_backends_agree
from lutkan.testing.inputs import adversarial_inputs

pytest.importorskip("kan", reason="reading pykan checkpoints needs the [pykan] extra")
pykan = pytest.importorskip("lutkan.compiler.pykan")


@pytest.fixture(scope="module", params=CHECKPOINT_PARAMS)
def source(request):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "using the latest checkpoint ..."
        src = pykan.load_source(checkpoint_dir(request, request.param))
    assert src.cache_data is not None and src.cache_data.shape[0] > 0
    return request.param, src


OPTIONS = {
    "default": ContractOptions(),
    "f32-extrap-halfopen": ContractOptions(L=32, scheme="float32", oob="extrapolate", boundary="half_open"),
    "u8-nearest-clip": ContractOptions(L=16, scheme="uint8", interp="nearest", oob="clip"),
}


@pytest.mark.parametrize("opts", list(OPTIONS.values()), ids=list(OPTIONS))
def test_real_checkpoint_forms_equal_numpy(source, opts):
    name, src = source
    model = compile_model(src, opts)
    x_cache = np.ascontiguousarray(src.cache_data, dtype=np.float32)
    x = np.concatenate([x_cache, adversarial_inputs(model, 64, seed=1)])
    for form in ("function", "standard", "custom"):
        onnx.checker.check_model(export(model, form), full_check=True)
    # every backend, onnx.reference on the function body included (G=100: the segment search uses Gather only)
    assert_backends_agree(model, x, rel=1e-5, what=name, include=BACKENDS)
