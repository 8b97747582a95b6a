"""Exact symbolic edges (issue 12): pykan models made with ``fix_symbolic`` compile with default options and
equal pykan's own float64 forward inside and far outside the knot domain, with NaN/+-inf at the same
positions, in every backend; every name of pykan's symbolic library is covered."""

from __future__ import annotations

import numpy as np
import pytest

from lutkan.compiler import compile_model
from lutkan.contract import ContractOptions
from lutkan.errors import UnsupportedModelError
from lutkan.evaluators.numpy_eval import NumpyEvaluator
from lutkan.metrics import HUGE, compare_outputs
from lutkan.symbolic import SYMBOLIC_NAMES
from lutkan.testing import assert_backends_agree

kan = pytest.importorskip("kan", reason="building pykan models needs the [pykan] extra")
torch = pytest.importorskip("torch")
from lutkan.compiler.pykan import load_source, pykan_forward

REL = 1e-5  # max |ours - pykan float64| / max |pykan| where pykan is finite (issue 12)

# Functions whose argument a*x + b reaches a singularity inside the knot domain [-2.2, 2.2] of a grid=3 KAN:
# x^0.5 of negative values (NaN), a pole of 1/x^2 at x = 0.5, log of <= 0, arctanh at +-1 and beyond. The
# singular points (in SINGULAR_X) make a*x + b exactly 0 or +-1 in float32 and in float64 alike: the contract
# computes the argument in float32, so within one float32 rounding of a boundary the side (NaN, inf or a
# finite value) follows the float32 argument (docs/contract.md §5).
SINGULAR = {"x^0.5": (1.0, 0.0), "1/x^2": (1.0, -0.5), "log": (2.0, 0.3), "arctanh": (2.0, 0.0),
            "1/x": (1.0, 0.25), "sqrt": (-1.0, 0.5), "1/sqrt(x)": (1.0, 0.0), "tan": (1.0, 0.0)}
SINGULAR_X = (0.0, 0.5, -0.5, -0.25, 0.25, -0.125, np.float32(-0.15), np.float32(np.pi / 2))
NAN_REGION = {"x^0.5", "sqrt", "log", "arctanh", "1/sqrt(x)"}
"""Functions NaN on a whole part of the knot domain: table samples always hit it, so tabulation is refused
(a pole may fall between samples; the float32 pi/2 is not a pole of tan, only a huge value)."""


def _pykan_model(names, *, seed=0):
    """A [2, 2, 1] pykan KAN (float64) whose layer-0 edges (0, 0), (1, 1), (0, 1) and layer-1 edge (0, 0) are
    symbolic with the given names (cycled); the other edges keep their splines, (1, 0) is spline plus cos."""
    torch.manual_seed(seed)
    m = kan.KAN(width=[2, 2, 1], grid=3, k=3, seed=seed, auto_save=False)
    edges = [(0, 0, 0), (0, 1, 1), (0, 0, 1), (1, 0, 0)]
    for q, (l, i, j) in enumerate(edges):
        name = names[q % len(names)]
        m.fix_symbolic(l, i, j, name, fit_params_bool=False, verbose=False, log_history=False)
        a, b = SINGULAR.get(name, (0.7 + 0.1 * q, 0.2 - 0.1 * q))
        m.symbolic_fun[l].affine.data[j, i] = torch.tensor([a, b, 1.3 - 0.2 * q, 0.1 * q])
    # spline plus symbolic on one edge: both branches on (set_mode "sn" keeps the numeric mask)
    m.symbolic_fun[0].mask.data[0, 1] = 1.0
    m.symbolic_fun[0].funs[0][1] = kan.utils.SYMBOLIC_LIB["cos"][0]
    m.symbolic_fun[0].funs_name[0][1] = "cos"
    m.symbolic_fun[0].affine.data[0, 1] = torch.tensor([0.9, 0.1, -0.5, 0.2])
    return m.double()


def _inputs(src, n=600, seed=0) -> np.ndarray:
    """Inputs spread to 3x the knot-domain width on each side, the singular points of each edge, knots."""
    rng = np.random.default_rng(seed)
    g = src.layers[0].grid
    lo, hi = g[:, 0], g[:, -1]
    w = hi - lo
    x = lo - 3 * w + rng.uniform(0, 1, (n, len(lo))) * 7 * w
    for q, p in enumerate(SINGULAR_X):
        x[q] = p
    x[len(SINGULAR_X):len(SINGULAR_X) + g.shape[1]] = g.T
    return x.astype(np.float32)


def _finite_hidden(src, x) -> np.ndarray:
    """Rows whose hidden values stay ordinary (not +-inf, |h| <= HUGE): where an overflow reaches a hidden
    layer the contract leaves the downstream outputs unspecified (docs/contract.md §5; pykan itself turns
    an inf into NaN on every masked edge, 0 * inf)."""
    ok = np.ones(x.shape[0], dtype=bool)
    for l in range(1, len(src.layers)):
        with np.errstate(all="ignore"):
            h = src.forward(x.astype(np.float64), upto=l)
        ok &= ~(np.isinf(h) | (np.abs(h) > HUGE)).any(axis=1)
    return ok


def _check_against_pykan(m, src, x):
    """Default options compile; the exact model (poly float32 splines + exact symbolic edges) equals pykan's
    float64 forward on the same float32 inputs to REL, with NaN/inf at the same positions, in every backend."""
    y_pykan = pykan_forward(m, x.astype(np.float64))
    default = compile_model(src)  # default options: exact symbolic edges, int8 L=64 spline tables
    assert sum(layer.n_symbolic for layer in default.layers) >= 5
    rows = _finite_hidden(src, x)
    st_default = compare_outputs(NumpyEvaluator(default)(x)[rows], y_pykan[rows])
    assert st_default["extreme_mismatch"] == 0, f"default options: NaN/inf positions differ: {st_default}"
    exact = compile_model(src, ContractOptions(interp="poly", scheme="float32"))
    st = compare_outputs(NumpyEvaluator(exact)(x)[rows], y_pykan[rows])
    assert st["extreme_mismatch"] == 0, f"NaN/inf/huge positions differ from pykan: {st}"
    assert st["max_abs"] <= REL * st["ref_max_abs"], st
    assert_backends_agree(exact, x, rel=REL)
    assert_backends_agree(default, x, rel=REL)
    return st, y_pykan[rows]


@pytest.mark.parametrize("name", sorted(SINGULAR))
def test_singular_formula_on_the_domain_is_exact(name, tmp_path, monkeypatch):
    """Refused before (the formula is not finite on the knot domain); now exact, NaN/inf where pykan's are."""
    monkeypatch.chdir(tmp_path)
    m = _pykan_model([name, "sin", "x^2", "tanh"])
    src = load_source(m)
    x = _inputs(src)
    st, y_pykan = _check_against_pykan(m, src, x)
    assert np.isfinite(y_pykan).sum() > 20, f"{name}: too few finite outputs to test the values"
    # the singular edge's own layer: NaN/inf exactly where pykan's (float64) formula has them
    h_ref = src.forward(x.astype(np.float64), upto=1)
    h = NumpyEvaluator(compile_model(src))(x, upto=1)
    with np.errstate(invalid="ignore"):
        assert not (np.abs(h_ref) < 1e6).all(), f"{name}: the test inputs must hit the singularity"
    np.testing.assert_array_equal(np.isnan(h), np.isnan(h_ref), err_msg=f"{name}: NaN positions")
    np.testing.assert_array_equal(np.isposinf(h) | (h > HUGE), np.isposinf(h_ref) | (h_ref > HUGE), err_msg=name)
    np.testing.assert_array_equal(np.isneginf(h) | (h < -HUGE), np.isneginf(h_ref) | (h_ref < -HUGE), err_msg=name)
    if name in NAN_REGION:
        with pytest.raises(UnsupportedModelError, match="not finite on its domain"):
            compile_model(src, ContractOptions(symbolic="tabulate"))


@pytest.mark.parametrize("chunk", range(0, len(SYMBOLIC_NAMES), 4))
def test_every_library_function(chunk, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    names = list(SYMBOLIC_NAMES[chunk:chunk + 4])
    m = _pykan_model(names, seed=chunk)
    src = load_source(m)
    assert {n for layer in src.layers for row in layer.sym_names for n in row} >= set(names)
    _check_against_pykan(m, src, _inputs(src, seed=chunk))


def test_poly_float16_with_symbolic_edges(tmp_path, monkeypatch):
    """float16 control points plus exact symbolic edges: close to pykan (float16 rounding of the splines)."""
    monkeypatch.chdir(tmp_path)
    m = _pykan_model(["sin", "x^0.5", "gaussian"])
    src = load_source(m)
    x = _inputs(src)
    rows = _finite_hidden(src, x)
    model = compile_model(src, ContractOptions(interp="poly", scheme="float16"))
    st = compare_outputs(NumpyEvaluator(model)(x)[rows], pykan_forward(m, x.astype(np.float64))[rows])
    assert st["extreme_mismatch"] == 0 and st["max_abs"] <= 1e-2 * st["ref_max_abs"], st  # float16 coefficients
    assert_backends_agree(model, x, rel=REL)
