"""The torch.onnx.export baseline (lutkan.bench.pykan_onnx): both exporters reproduce pykan in ORT."""

from __future__ import annotations

import copy
import time

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch")
kan = pytest.importorskip("kan")

from lutkan.bench.pykan_onnx import (
    ExportMismatchError,
    export_pykan_onnx,
    make_pykan_session,
    verify_pykan_onnx,
)


@pytest.fixture(scope="module")
def small_kan():
    model = kan.KAN(width=[5, 4, 2], grid=5, k=3, seed=0, auto_save=False)
    # make it non-trivial: a default-style (non-uniform) grid update from skewed samples
    x = torch.from_numpy(np.random.default_rng(1).lognormal(size=(200, 5)).astype(np.float32) - 1.5)
    with torch.no_grad():
        model.update_grid_from_samples(x)
    return model


@pytest.mark.parametrize("exporter", ["legacy", "dynamo"])
def test_export_matches_torch(small_kan, exporter, tmp_path, rng):
    state_before = {k: v.clone() for k, v in small_kan.state_dict().items()}
    flags_before = (small_kan.symbolic_enabled, small_kan.save_act, small_kan.auto_save)

    t0 = time.perf_counter()
    path = export_pykan_onnx(small_kan, tmp_path / f"kan_{exporter}.onnx", n_inputs=5, exporter=exporter)
    print(f"{exporter} export + verify: {time.perf_counter() - t0:.2f} s")
    assert path.is_file()

    g = onnx.load(str(path))
    assert [i.name for i in g.graph.input] == ["x"]
    assert [o.name for o in g.graph.output] == ["y"]
    assert g.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert g.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    opset = {o.domain: o.version for o in g.opset_import}[""]
    assert opset == (17 if exporter == "legacy" else 20)

    # the caller's model is untouched
    assert (small_kan.symbolic_enabled, small_kan.save_act, small_kan.auto_save) == flags_before
    for k, v in small_kan.state_dict().items():
        assert torch.equal(v, state_before[k]), k

    sess = make_pykan_session(path, threads=1)
    assert sess.get_session_options().intra_op_num_threads == 1
    ref_model = copy.deepcopy(small_kan).speed().eval()
    for b in (1, 17, 256):
        x = (2.0 * rng.standard_normal((b, 5))).astype(np.float32)  # includes out-of-grid values
        with torch.no_grad():
            ref = ref_model(torch.from_numpy(x)).numpy()
        (got,) = sess.run(None, {"x": x})
        assert got.shape == (b, 2)
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(ref).max())))


def test_verify_detects_mismatch(small_kan, tmp_path):
    path = export_pykan_onnx(small_kan, tmp_path / "kan.onnx", n_inputs=5, exporter="legacy")
    other = copy.deepcopy(small_kan).speed().eval()
    with torch.no_grad():
        other.act_fun[0].scale_base.mul_(2.0)
    with pytest.raises(ExportMismatchError):
        verify_pykan_onnx(other, path, n_inputs=5)


def test_bad_exporter(small_kan, tmp_path):
    with pytest.raises(ValueError):
        export_pykan_onnx(small_kan, tmp_path / "x.onnx", n_inputs=5, exporter="jit")
