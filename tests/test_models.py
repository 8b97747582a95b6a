"""The bundled models (models/<name>/): the committed ``<name>.onnx`` is what the committed checkpoint
compiles and exports to today (not stale), runs in plain onnxruntime, with the plugin and in onnx.reference, and its
predictions on the committed test split equal the float model's (the demo's accuracy claim)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from conftest import REPO
from onnx import numpy_helper

from lutkan.compiler import compile_model
from lutkan.compiler.pykan import load_source
from lutkan.contract import ContractOptions
from lutkan.evaluators.numpy_eval import NumpyEvaluator
from lutkan.exporter import export
from lutkan.testing import onnx_runner

MODELS = ("breast_cancer", "digits", "ids78", "featured")
CLASSIFIERS = MODELS[:3]
REGEN = "regenerate with `python models/make_models.py --export-onnx`"


def _initializers(m: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}


@pytest.fixture(scope="module", params=MODELS)
def bundled(request):
    name = request.param
    d = REPO / "models" / name
    committed = onnx.load(str(d / f"{name}.onnx"))
    lut = compile_model(d / "0.0", ContractOptions())
    data = np.load(d / "test_data.npz")
    return name, committed, lut, data["X_test"], data["y_test"]


def test_committed_onnx_is_current(bundled):
    name, committed, lut, _, _ = bundled
    fresh = export(lut, form="function")
    a, b = _initializers(committed), _initializers(fresh)
    assert a.keys() == b.keys(), f"{name}.onnx initializers differ from a fresh export; {REGEN}"
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), f"{name}.onnx: {k} is stale; {REGEN}"
    meta = {p.key: p.value for p in committed.metadata_props}
    fresh_meta = {p.key: p.value for p in fresh.metadata_props}
    for key in ("lutkan.form", "lutkan.contract", "lutkan.source_sha256", "lutkan.table_dtype"):
        assert meta[key] == fresh_meta[key], f"{name}.onnx metadata {key} is stale; {REGEN}"
    assert json.loads(meta["lutkan.contract"]) == {"L": 64, "boundary": "closed", "interp": "linear",
                                                   "oob": "zero", "scheme": "int8", "symbolic": "exact"}
    onnx.checker.check_model(committed, full_check=True)
    assert sum(n.op_type == "LUTKanEdge" for n in committed.graph.node) == len(lut.layers)


@pytest.mark.parametrize("engine", ["ort", "plugin", "onnxref"], ids=["plain-ort", "plugin", "onnx.reference"])
def test_committed_onnx_matches_reference_and_float_predictions(bundled, engine):
    name, committed, lut, x, y = bundled
    ref = NumpyEvaluator(lut)(x)
    got = onnx_runner(committed.SerializeToString(), engine)(x)
    scale = float(np.max(np.abs(ref)))
    assert np.max(np.abs(got - ref)) <= 1e-5 * scale, name
    if name not in CLASSIFIERS:  # regression: the LUT model fits the committed targets as the float model does
        r2 = 1 - np.sum((got - y) ** 2) / np.sum((y - y.mean()) ** 2)
        assert r2 > 0.98, f"{name}: R² {r2:.4f} of the committed ONNX on the test targets"
        return
    # same predicted classes as the float (pykan-exact float64) model on the committed test split
    y_float = load_source(REPO / "models" / name / "0.0").forward(x.astype(np.float64))
    pred = (got[:, 0] > 0).astype(int) if got.shape[1] == 1 else got.argmax(1)
    pred_float = (y_float[:, 0] > 0).astype(int) if y_float.shape[1] == 1 else y_float.argmax(1)
    changed = int(np.sum(pred != pred_float))
    assert changed == 0, f"{name}: {changed} of {len(y)} test predictions differ from the float model"
    assert np.mean(pred == y) > 0.9


def test_featured_checkpoint_has_every_feature():
    """models/featured carries what the suite needs without the real checkpoints: updated (non-uniform) knots,
    a multiplication node, pruned edges and symbolic edges (exact by default, in every ONNX form)."""
    src = load_source(REPO / "models" / "featured" / "0.0")
    l0, l1 = src.layers
    assert l0.mult_groups == (2,) and src.symbolic_enabled
    assert l0.sym_names[0][2] == "sin" and l1.sym_names[0][0] == "x"
    assert not l0.mask[3].any() and not l0.sym_mask[:, 3].any(), "x3 edges are pruned (mask (I, O), sym_mask (O, I))"
    steps = np.diff(l0.grid, axis=1)
    assert np.ptp(steps) > 1e-3 and not np.allclose(l0.grid[0], np.linspace(-1, 1, l0.grid.shape[1])), "updated knots"
    lut = compile_model(src, ContractOptions())
    assert sum(layer.n_symbolic for layer in lut.layers) == 2
    proto = export(lut, form="standard")
    assert any(n.op_type == "ReduceProd" for n in proto.graph.node), "the multiplication node"
