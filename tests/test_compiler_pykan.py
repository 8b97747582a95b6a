"""lutkan.compiler.pykan: live models and saveckpt checkpoints -> SourceModel, safely.

The float64 reference (``SourceModel.forward``) must equal pykan's own forward on every real checkpoint
and on random live models exercising every feature (mult nodes, affines, masks, symbolic edges,
k = 1..5, updated grids, prune_input, base_fun identity/zero); malicious files must be refused.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import random
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import CHECKPOINT_PARAMS, REALMODEL_NAMES, checkpoint_dir, realmodel_dir
from hypothesis import given, settings
from hypothesis import strategies as st

from lutkan.errors import CheckpointError, UnsupportedModelError
from lutkan.source import SourceModel

torch = pytest.importorskip("torch")
kan = pytest.importorskip("kan", reason="reading pykan models needs the [pykan] extra")
from lutkan.compiler.pykan import (
    build_pykan_model,
    load_source,
    pykan_forward,
    read_checkpoint_config,
)

# relative tolerance on max(1, max|y|): float64 states are compared at float64 precision; float32 states
# run pykan in float32. Measured worst: float32 3.6e-7 (real) / 6.6e-7 (random live models); float64
# 6.9e-15 (logiknet_mult) / 1.8e-12 (random live models)
TOL = {"float64": 1e-10, "float32": 1e-5}

REAL_FACTS = {  # what /work/shared/realmodels/README.md says about each file
    "logiknet_mult": {"state_dtype": "float64", "device": "cuda:0", "width": [[4, 0], [3, 1], [7, 0]]},
    "mguo_gwp_symbolic": {"state_dtype": "float32", "device": "mps", "width": [[20, 0], [1, 0], [1, 0]]},
    "nikita_ids_k2": {"state_dtype": "float32", "device": "cpu", "width": [[41, 0], [2, 0], [1, 0]]},
    "pykan_tutorial_g100": {"state_dtype": "float32", "device": "cpu", "width": [[2, 0], [1, 0], [1, 0]]},
    "ramyar_digits_wide": {"state_dtype": "float32", "device": "cpu", "width": [[64, 0], [10, 0]]},
    "torward_vlbi_deep": {"state_dtype": "float32", "device": "cpu", "width": [[1, 0], [6, 0], [6, 0], [1, 0]]},
}


def assert_matches(y_ref, y_pykan, tol, what=""):
    """Same NaN positions; elsewhere max abs error <= tol * max(1, max|y_pykan|)."""
    y_ref, y_pykan = np.asarray(y_ref), np.asarray(y_pykan)
    assert y_ref.shape == y_pykan.shape, what
    nan_r, nan_p = ~np.isfinite(y_ref), ~np.isfinite(y_pykan)
    assert np.array_equal(nan_r, nan_p), f"{what}: non-finite positions differ ({nan_r.sum()} vs {nan_p.sum()})"
    ok = ~nan_r
    if not ok.any():
        return 0.0
    err = float(np.abs(y_ref[ok] - y_pykan[ok]).max())
    scale = max(1.0, float(np.abs(y_pykan[ok]).max()))
    assert err <= tol * scale, f"{what}: max abs error {err:.3g} > {tol:g} * {scale:.3g}"
    return err / scale


def rng_states():
    return torch.random.get_rng_state().clone(), np.random.get_state(), random.getstate()


def assert_same_rng(a, b):
    assert torch.equal(a[0], b[0])
    assert a[1][0] == b[1][0] and np.array_equal(a[1][1], b[1][1]) and a[1][2:] == b[1][2:]
    assert a[2] == b[2]


# ----------------------------------------------------------------------------- real checkpoints


@pytest.fixture(scope="module", params=CHECKPOINT_PARAMS)
def real(request):
    path = checkpoint_dir(request, request.param)
    with pytest.warns(UserWarning, match=r"using checkpoint \S+ \(latest of 1 "):
        src = load_source(path)
    with pytest.warns(UserWarning, match="latest"):
        model = build_pykan_model(path)
    return request.param, path, src, model


def test_real_checkpoints_present(realmodels):
    assert len(REALMODEL_NAMES) >= 6, REALMODEL_NAMES


def test_real_checkpoint_forward_matches_pykan(real):
    name, path, src, model = real
    x = src.cache_data
    assert x is not None and x.shape == (x.shape[0], src.n_inputs) and x.dtype == np.float64
    y_pykan = pykan_forward(model, x)
    tol = TOL[src.provenance["state_dtype"]]
    rel = assert_matches(src.forward(x), y_pykan, tol, name)
    print(f"\n[pykan] {name}: max abs err / max(1,max|y|) = {rel:.3g} ({src.provenance['state_dtype']})")


def test_real_checkpoint_provenance_and_precision(real):
    name, path, src, model = real
    prov = src.provenance
    (state_file,) = Path(path).glob("*_state")
    cid = state_file.name[: -len("_state")]
    assert prov["checkpoint_id"] == cid
    assert prov["source"] == str((Path(path) / cid).resolve())
    assert prov["state_sha256"] == hashlib.sha256(state_file.read_bytes()).hexdigest()
    assert prov["config_sha256"] == hashlib.sha256((Path(path) / f"{cid}_config.yml").read_bytes()).hexdigest()
    assert prov["pykan_version"] == "0.2.8"
    if name in REAL_FACTS:
        for key, value in REAL_FACTS[name].items():
            assert prov[key] == value, (name, key)
    # every array is the state tensor exactly (float64 kept, float32 upcast exactly)
    state = torch.load(state_file, map_location="cpu", weights_only=True)
    for l, layer in enumerate(src.layers):
        for field, key in (("grid", f"act_fun.{l}.grid"), ("coef", f"act_fun.{l}.coef"),
                           ("scale_base", f"act_fun.{l}.scale_base"), ("mask", f"act_fun.{l}.mask"),
                           ("sym_affine", f"symbolic_fun.{l}.affine"), ("node_bias", f"node_bias_{l}")):
            want = state[key].to(torch.float64).numpy()
            assert getattr(layer, field).dtype == np.float64
            assert np.array_equal(getattr(layer, field), want), (name, key)
    # the live model pykan runs has the state's dtype
    assert str(model.act_fun[0].coef.dtype) == f"torch.{prov['state_dtype']}"
    assert model.auto_save is False


def test_real_checkpoint_surprises(realmodels):
    """The traps listed in realmodels/README.md, each read correctly."""
    g100 = next(realmodel_dir("pykan_tutorial_g100").glob("*_config.yml"))
    with pytest.raises(yaml.YAMLError):
        yaml.safe_load(g100.read_text())  # pykan's own loadckpt uses this and fails
    cfg = read_checkpoint_config(g100)
    assert cfg["grid"] == 100 and type(cfg["grid"]) is int

    with pytest.warns(UserWarning):
        src = load_source(realmodel_dir("nikita_ids_k2"))
    g = src.layers[0].grid
    assert src.layers[0].k == 2 and int((g[:, -1] <= g[:, 0]).sum()) == 3

    with pytest.warns(UserWarning):
        mult = load_source(realmodel_dir("logiknet_mult"))
    assert mult.layers[0].n_sum == 3 and mult.layers[0].mult_groups == (2,)
    assert mult.provenance["state_dtypes"] == ["float32", "float64"]  # masks float32, the rest float64
    assert np.abs(mult.layers[1].grid).max() > 1e9

    with pytest.warns(UserWarning):
        sym = load_source(realmodel_dir("mguo_gwp_symbolic"))
    assert sym.symbolic_enabled and sym.layers[1].sym_names == (("sqrt",),)
    assert int((sym.layers[0].sym_mask != 0).sum()) == 20 and not sym.layers[0].mask.any()


def test_real_symbolic_sqrt_nan_matches_pykan(realmodels):
    """mguo's output edge is c*sqrt(a*x+b)+d with a<0: pykan itself gives NaN once a*x+b<0."""
    path = realmodel_dir("mguo_gwp_symbolic")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        src, model = load_source(path), build_pykan_model(path)
    a, b = src.layers[1].sym_affine[0, 0, :2]
    c = src.cache_data
    rng = np.random.default_rng(0)
    x = c[rng.integers(0, len(c), 2000)] + 2 * c.std(0) * rng.standard_normal((2000, c.shape[1]))
    y_pykan = pykan_forward(model, x)
    assert np.isnan(y_pykan).any(), "expected some NaN from sqrt of a negative argument"
    h = src.forward(x, upto=1)[:, 0]
    assert np.array_equal(np.isnan(y_pykan[:, 0]), a * h + b < 0)
    assert_matches(src.forward(x), y_pykan, TOL["float32"], "mguo perturbed")


def test_build_and_load_have_no_side_effects(realmodels, capsys):
    path = realmodel_dir("torward_vlbi_deep")
    before = rng_states()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_source(path)
        model = build_pykan_model(path)
    assert_same_rng(before, rng_states())
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    assert not Path("model").exists()
    x = np.linspace(-2, 4, 50)[:, None]
    cache, save_act, sym = model.cache_data, model.save_act, model.symbolic_enabled
    pykan_forward(model, x)
    assert model.cache_data is cache and model.save_act == save_act and model.symbolic_enabled == sym


# ----------------------------------------------------------------------------- live models


def _kan(width, *, dtype="float32", seed=0, **kw):
    m = kan.KAN(width=width, seed=seed, auto_save=False, **kw)
    return m.double() if dtype == "float64" else m


def _set_affines(m, rng):
    for l in range(m.depth):
        for params, base in ((m.node_scale, 1.0), (m.subnode_scale, 1.0), (m.node_bias, 0.0), (m.subnode_bias, 0.0)):
            p = params[l]
            p.data.copy_(torch.as_tensor(base + 0.4 * rng.standard_normal(tuple(p.shape))))


def _x(rng, n, width, scale=1.5):
    return scale * rng.standard_normal((n, width))


def _check_live(m, x, what=""):
    src = load_source(m)
    dtype = "float64" if m.act_fun[0].coef.dtype == torch.float64 else "float32"
    assert src.provenance["state_dtype"] == dtype and src.provenance["source"] == "live"
    rel = assert_matches(src.forward(x), pykan_forward(m, x), TOL[dtype], what)
    return src, rel


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", ["mult2", "mult_list", "mult3", "affine", "masked", "symbolic", "grid_update",
                                  "identity", "zero"])
def test_live_model_matches_pykan(case, dtype, rng):
    width = [3, [2, 2], 2]
    kw = {}
    if case == "mult_list":
        kw["mult_arity"] = [[], [2, 3], []]
    elif case == "mult3":
        width, kw["mult_arity"] = [2, [1, 2], [1, 1], 1], 3
    elif case in ("identity", "zero"):
        kw["base_fun"] = case
    m = _kan(width, dtype=dtype, grid=4, k=3, **kw)
    if case in ("affine", "mult_list", "mult3", "symbolic", "identity", "zero"):
        _set_affines(m, rng)
    if case == "masked":
        m.act_fun[0].mask.data[0, 1] = 0.0
        m.act_fun[0].mask.data[2, 3] = 0.0
        m.act_fun[1].mask.data[1, 0] = 0.0
    if case in ("symbolic", "identity", "zero"):
        m.fix_symbolic(0, 0, 1, "sin", fit_params_bool=False)
        m.fix_symbolic(0, 1, 4, "x^2", fit_params_bool=False)
        m.fix_symbolic(1, 2, 0, "tanh", fit_params_bool=False)
        m.fix_symbolic(1, 3, 1, "gaussian", fit_params_bool=False)
        m.symbolic_fun[0].affine.data[1, 0] = torch.tensor([1.7, 0.3, 0.8, -0.2])
        m.symbolic_fun[1].affine.data[0, 2] = torch.tensor([-0.9, 0.1, 1.3, 0.05])
        m.act_fun[1].mask.data[3, 1] = 1.0  # 'sn': spline and symbolic branch on the same edge
    if case == "grid_update":
        xs = torch.as_tensor(rng.standard_normal((300, 3)) ** 3, dtype=m.act_fun[0].coef.dtype)
        m.update_grid_from_samples(xs)
        g = m.act_fun[0].grid.detach().numpy()
        d = np.diff(g[:, 3:-3], axis=1)
        assert (d.max(axis=1) / d.min(axis=1)).max() > 2  # really non-uniform
    x = _x(rng, 200, m.width_in[0])
    src, _ = _check_live(m, x, f"{case}/{dtype}")
    if case == "mult_list":
        assert src.layers[0].mult_groups == (2, 3) and src.layers[0].n_sum == 2
    if case in ("identity", "zero"):
        assert src.base_fun == case
    if case == "symbolic":
        assert src.layers[0].sym_names[1][0] == "sin" and src.layers[1].mask[3, 1] == 1
    if case == "grid_update":  # cache_data is the last batch the model saw (in input space)
        assert src.cache_data.shape == (300, 3)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_live_model_spline_orders(k, rng):
    m = _kan([2, 3, 1], grid=3 + k, k=k)
    m.update_grid_from_samples(torch.as_tensor(np.exp(rng.standard_normal((200, 2))), dtype=torch.float32))
    src, _ = _check_live(m, _x(rng, 300, 2, 3.0), f"k={k}")
    assert all(layer.k == k for layer in src.layers)


def test_live_per_layer_grid_and_k(rng):
    m = _kan([2, 3, 2], grid=[4, 7], k=[2, 4])
    src, _ = _check_live(m, _x(rng, 100, 2), "per-layer G/k")
    assert [layer.k for layer in src.layers] == [2, 4]
    assert [layer.grid.shape[1] for layer in src.layers] == [4 + 5, 7 + 9]


def test_live_prune_input(rng):
    m = _kan([4, 3, 1], grid=5, k=3)
    _set_affines(m, rng)
    x = _x(rng, 120, 4)
    m(torch.as_tensor(x, dtype=torch.float32))
    p = m.prune_input(active_inputs=[1, 3], log_history=False)
    assert p.auto_save is True  # pykan hard-codes it; keep the test from writing ./model
    p.auto_save = False
    src, _ = _check_live(p, x, "pruned")
    assert src.input_id.tolist() == [1, 3] and src.n_inputs == 4
    assert src.cache_data.shape == (120, 4)  # the parent's cache, in the original input space
    # after a forward pykan caches x[:, input_id]; the reader scatters it back
    with torch.no_grad():
        y = p(torch.as_tensor(x, dtype=torch.float32)).numpy()
    assert tuple(p.cache_data.shape) == (120, 2)
    src2 = load_source(p)
    assert src2.cache_data.shape == (120, 4) and "cache_data_note" in src2.provenance
    assert_matches(src2.forward(src2.cache_data), y, TOL["float32"], "scattered cache")
    # a model that only reads inputs 0 and 2 of 3, with no cache: n_inputs = max(input_id)+1
    q = _kan([3, 2, 1], grid=3).prune_input(active_inputs=[0, 2], log_history=False)
    q.auto_save = False
    assert load_source(q).n_inputs == 3


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    k=st.integers(1, 5),
    G=st.integers(1, 8),
    hidden=st.tuples(st.integers(0, 3), st.integers(0, 2)).filter(lambda t: sum(t) > 0),
    arity=st.sampled_from([2, 3, "list"]),
    base=st.sampled_from(["silu", "identity", "zero"]),
    n_sym=st.integers(0, 3),
    update=st.booleans(),
    dtype=st.sampled_from(["float32", "float64"]),
)
def test_live_random_models_match_pykan(seed, k, G, hidden, arity, base, n_sym, update, dtype):
    rng = np.random.default_rng(seed)
    n_in, n_out = int(rng.integers(1, 4)), int(rng.integers(1, 3))
    n_sum, n_mult = hidden
    mult_arity = [[], [2 + i % 2 for i in range(n_mult)], []] if arity == "list" else arity
    m = _kan([n_in, [n_sum, n_mult], n_out], dtype=dtype, grid=G, k=k, mult_arity=mult_arity, base_fun=base,
             seed=seed)
    _set_affines(m, rng)
    for l in range(m.depth):
        mask = m.act_fun[l].mask.data
        mask[torch.as_tensor(rng.random(tuple(mask.shape)) < 0.2)] = 0.0
    names = ["sin", "x^2", "tanh", "exp", "arctan", "gaussian", "abs", "cos"]
    for _ in range(n_sym):
        l = int(rng.integers(0, m.depth))
        i, j = int(rng.integers(0, m.width_in[l])), int(rng.integers(0, m.width_out[l + 1]))
        m.fix_symbolic(l, i, j, names[int(rng.integers(0, len(names)))], fit_params_bool=False)
        m.symbolic_fun[l].affine.data[j, i] = torch.as_tensor(rng.uniform(-1, 1, 4))
    if update:
        m.update_grid_from_samples(torch.as_tensor(rng.standard_normal((64, n_in)) ** 3,
                                                   dtype=m.act_fun[0].coef.dtype))
    _check_live(m, _x(rng, 64, n_in), f"seed={seed}")


def test_live_unsupported_models():
    m = _kan([2, 2, 1], grid=3)
    m.fix_symbolic(0, 0, 1, lambda x: x * 2, fit_params_bool=False)  # pykan names it 'anonymous'
    with pytest.raises(UnsupportedModelError, match=r"layer 0, edge \(0, 1\).*'anonymous'"):
        load_source(m)
    m = _kan([2, 2, 1], grid=3)
    m.fix_symbolic(1, 1, 0, "sin", fit_params_bool=False)
    m.symbolic_fun[1].funs[0][1] = torch.cos  # name and function disagree
    with pytest.raises(UnsupportedModelError, match=r"layer 1, edge \(1, 0\) is named 'sin'"):
        load_source(m)
    m = _kan([2, 2, 1], grid=3)
    m.base_fun = torch.nn.ReLU()
    with pytest.raises(UnsupportedModelError, match="base_fun"):
        load_source(m)
    for bad in (torch.nn.Linear(2, 2), 42, object()):
        with pytest.raises(UnsupportedModelError, match="not a pykan model"):
            load_source(bad)


def test_load_source_passes_source_model_through():
    src = load_source(_kan([2, 1], grid=3))
    assert load_source(src) is src and isinstance(src, SourceModel)


def test_pykan_forward_restores_state(rng):
    m = _kan([2, 2, 1], grid=3)
    x0 = torch.as_tensor(_x(rng, 10, 2), dtype=torch.float32)
    m(x0)
    cache, acts = m.cache_data, m.acts
    y = pykan_forward(m, _x(rng, 5, 2))
    assert y.dtype == np.float64 and y.shape == (5, 1)
    assert m.cache_data is cache and m.acts is acts and m.save_act is True and m.symbolic_enabled is True


# ----------------------------------------------------------------------------- checkpoint round trips


def _save(m, prefix):
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    m.saveckpt(str(prefix))


def _assert_same_source(a: SourceModel, b: SourceModel):
    assert len(a.layers) == len(b.layers) and a.base_fun == b.base_fun
    assert a.symbolic_enabled == b.symbolic_enabled and a.n_inputs == b.n_inputs
    for la, lb in zip(a.layers, b.layers, strict=True):
        for f in ("grid", "coef", "scale_base", "scale_sp", "mask", "sym_mask", "sym_affine", "subnode_scale",
                  "subnode_bias", "node_scale", "node_bias"):
            assert np.array_equal(getattr(la, f), getattr(lb, f)), f
        assert (la.k, la.sym_names, la.n_sum, la.mult_groups) == (lb.k, lb.sym_names, lb.n_sum, lb.mult_groups)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_saveckpt_round_trip(dtype, rng):
    m = _kan([3, [2, 2], 2], dtype=dtype, grid=4, k=2, mult_arity=[[], [3, 2], []])
    _set_affines(m, rng)
    m.fix_symbolic(0, 2, 1, "sin", fit_params_bool=False)
    m.symbolic_fun[0].affine.data[1, 2] = torch.tensor([1.2, -0.4, 0.7, 0.1])
    m.act_fun[1].mask.data[0, 0] = 0.0
    m.update_grid_from_samples(torch.as_tensor(rng.standard_normal((100, 3)) ** 3, dtype=m.act_fun[0].coef.dtype))
    _save(m, "ck/0.3")
    assert not Path("model").exists()
    live = load_source(m)
    src = load_source("ck/0.3")
    _assert_same_source(live, src)
    assert np.array_equal(src.cache_data, live.cache_data)
    assert src.provenance["state_dtype"] == dtype and src.provenance["checkpoint_id"] == "0.3"
    rebuilt = build_pykan_model("ck/0.3")
    x = _x(rng, 150, 3)
    y = pykan_forward(m, x)
    assert np.array_equal(pykan_forward(rebuilt, x), y)  # pykan on the rebuilt model: bit-identical
    assert_matches(src.forward(x), y, TOL[dtype], "round trip")
    assert load_source("ck/0.3_state").provenance["checkpoint_id"] == "0.3"  # a file path works too


@pytest.mark.parametrize("base", ["silu", "identity", "zero"])
def test_prune_input_checkpoint_base_fun_tag(base, rng):
    """prune_input writes base_fun_name as a python object/name tag, which pykan's loadckpt cannot read."""
    m = _kan([3, 2, 1], grid=3, base_fun=base)
    x = _x(rng, 20, 3)
    m(torch.as_tensor(x, dtype=torch.float32))
    p = m.prune_input(active_inputs=[0, 2], log_history=False)
    p.auto_save = False
    _save(p, "ck/0.1")
    text = Path("ck/0.1_config.yml").read_text()
    assert "base_fun_name: !!python/" in text
    if base != "zero":
        with pytest.raises(yaml.YAMLError):
            kan.KAN.loadckpt("ck/0.1")
    with pytest.warns(UserWarning, match="prune_input"):  # cache_data has 3 columns, width[0] is 2
        src = load_source("ck/0.1")
    assert src.base_fun == base and src.input_id.tolist() == [0, 1]  # checkpoints lose input_id
    with pytest.warns(UserWarning, match="prune_input"):
        rebuilt = build_pykan_model("ck/0.1")
    xs = x[:, [0, 2]]
    assert_matches(src.forward(xs), pykan_forward(p, x), TOL["float32"], "pruned ckpt")
    assert_matches(pykan_forward(rebuilt, xs), pykan_forward(p, x), 1e-7, "pruned rebuilt")


# ----------------------------------------------------------------------------- folders


@pytest.fixture
def tiny_ckpt():
    """A small saveckpt checkpoint at ck/0.0; returns (model, prefix)."""
    m = _kan([2, 3, 1], grid=3)
    m(torch.zeros(4, 2))
    _save(m, "ck/0.0")
    return m, Path("ck/0.0")


def _versions(m, folder, ids):
    for n, cid in enumerate(ids):
        m.node_bias[1].data.fill_(float(n))
        _save(m, f"{folder}/{cid}")


def test_folder_picks_latest_version(tiny_ckpt):
    m, _ = tiny_ckpt
    _versions(m, "runs", ["0.2", "0.9", "0.10"])
    Path("runs/history.txt").write_text("### Round 0 ###\n")
    with pytest.warns(UserWarning, match=r"using checkpoint 0\.10 \(latest of 3"):
        src = load_source("runs")
    assert src.provenance["checkpoint_id"] == "0.10" and src.layers[1].node_bias[0] == 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an explicit id does not warn
        src = load_source("runs", checkpoint_id="0.9")
    assert src.provenance["checkpoint_id"] == "0.9" and src.layers[1].node_bias[0] == 1.0
    assert build_pykan_model("runs", checkpoint_id="0.2").node_bias[1].item() == 0.0
    _versions(m, "rounds", ["0.6", "1.6", "1.10", "0.20"])
    with pytest.warns(UserWarning, match=r"using checkpoint 1\.10 "):
        assert load_source("rounds").provenance["checkpoint_id"] == "1.10"
    with pytest.raises(CheckpointError, match=r"no checkpoint '0\.7'.*0\.2, 0\.9, 0\.10"):
        load_source("runs", checkpoint_id="0.7")
    with pytest.raises(CheckpointError, match="not a folder"):
        load_source("runs/0.2", checkpoint_id="0.2")
    Path("empty").mkdir()
    with pytest.raises(CheckpointError, match="holds no pykan checkpoint"):
        load_source("empty")


# ----------------------------------------------------------------------------- errors and security


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_malicious_state_pickle_is_refused(tiny_ckpt):
    _, prefix = tiny_ckpt
    Path(f"{prefix}_state").write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(CheckpointError, match=r"0\.0_state: refused to unpickle .*\(weights_only\)"):
        load_source(prefix)
    with pytest.raises(CheckpointError, match="refused to unpickle"):
        build_pykan_model(prefix)
    torch.save({"act_fun.0.grid": _Evil()}, f"{prefix}_state")  # a torch zip file with a payload
    with pytest.raises(CheckpointError, match="refused to unpickle"):
        load_source(prefix)
    assert not Path("PWNED").exists()


def test_malicious_cache_data_is_refused(tiny_ckpt):
    _, prefix = tiny_ckpt
    torch.save(_Evil(), f"{prefix}_cache_data")
    with pytest.raises(CheckpointError, match=r"0\.0_cache_data: refused to unpickle"):
        load_source(prefix)
    assert not Path("PWNED").exists()


@pytest.mark.parametrize("payload", [
    "width: !!python/object/apply:os.system ['touch PWNED']\n",
    "width: [2, 3, 1]\nk: !!python/object/new:os.system ['touch PWNED']\n",
    "width: !!python/name:os.system ''\n",
    "width: [2, 3, 1]\ngrid_range: !!python/object/apply:numpy.core.multiarray._reconstruct [1, 2]\n",
    # a numpy scalar whose dtype is not a plain number is refused, not constructed
    "width: [2, 3, 1]\ngrid: !!python/object/apply:numpy.core.multiarray.scalar\n"
    "- !!python/object/apply:numpy.dtype {args: [O8, false, true]}\n- !!binary AAAAAAAAAAA=\n",
])
def test_malicious_yaml_is_refused(tiny_ckpt, payload):
    _, prefix = tiny_ckpt
    Path(f"{prefix}_config.yml").write_text(payload)
    with pytest.raises(CheckpointError, match=r"0\.0_config\.yml: refused"):
        load_source(prefix)
    assert not Path("PWNED").exists()


def test_yaml_numpy_scalars_are_decoded(tiny_ckpt):
    m, prefix = tiny_ckpt
    cfg_path = Path(f"{prefix}_config.yml")
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg.update(grid=np.int64(3), k=np.int32(3), grid_eps=np.float64(0.125), symbolic_enabled=np.bool_(True),
               mult_arity=np.int64(2), grid_range=[np.float32(-1.5), np.float64(1.0)])
    cfg_path.write_text(yaml.dump(cfg))  # the full (unsafe) dumper, as saveckpt uses
    assert "numpy" in cfg_path.read_text()
    got = read_checkpoint_config(cfg_path)
    assert got["grid"] == 3 and type(got["grid"]) is int and got["k"] == 3
    assert got["grid_eps"] == 0.125 and got["symbolic_enabled"] is True and got["grid_range"] == [-1.5, 1.0]
    src = load_source(prefix)
    assert src.layers[0].k == 3
    assert build_pykan_model(prefix).grid_eps == 0.125


def test_missing_files(tiny_ckpt):
    _, prefix = tiny_ckpt
    Path(f"{prefix}_cache_data").unlink()
    assert load_source(prefix).cache_data is None  # allowed
    Path(f"{prefix}_state").unlink()
    with pytest.raises(CheckpointError, match=r"state file 0\.0_state is missing.*0\.0_config\.yml"):
        load_source(prefix)
    with pytest.raises(CheckpointError, match="no pykan checkpoint at"):
        load_source("nowhere/0.1")
    with pytest.raises(CheckpointError, match="no pykan checkpoint at"):
        build_pykan_model("nowhere/0.1")


def test_missing_config(tiny_ckpt):
    _, prefix = tiny_ckpt
    Path(f"{prefix}_config.yml").unlink()
    with pytest.raises(CheckpointError, match=r"config file 0\.0_config\.yml is missing"):
        load_source(prefix)


def _edit_config(prefix, **changes):
    p = Path(f"{prefix}_config.yml")
    cfg = yaml.safe_load(p.read_text())
    cfg.update(changes)
    p.write_text(yaml.safe_dump(cfg))


@pytest.mark.parametrize("changes, error, match", [
    ({"width": [[3, 0], [3, 0], [1, 0]]}, CheckpointError, r"act_fun\.0\.grid has shape \(2, 10\).*3 rows"),
    ({"width": [[2, 0], [4, 0], [1, 0]]}, CheckpointError, r"act_fun\.0\.coef has shape \(2, 3, 6\)"),
    ({"width": [[2, 0], [3, 0], [1, 0], [1, 0]]}, CheckpointError, r"missing keys \['node_bias_2'"),
    ({"width": [[2, 0], [1, 1], [1, 0]]}, CheckpointError, r"node_scale_0 has shape \(3,\).*needs \(2,\)"),
    ({"k": 2}, CheckpointError, r"config says k=2 but the tensors have k=3"),
    ({"grid": 5}, CheckpointError, r"config says grid=5 but .*G=3"),
    ({"base_fun_name": "relu"}, UnsupportedModelError, r"base_fun_name 'relu'"),
    ({"symbolic.funs_name.1": [["0", "sinh", "0"]]}, UnsupportedModelError, r"layer 1, edge \(1, 0\).*'sinh'"),
    ({"symbolic.funs_name.1": [["0", "0"]]}, CheckpointError, r"\[1\]\[3\]"),
    ({"width": "three"}, CheckpointError, "width must be a list"),
    ({"mult_arity": [[2]]}, CheckpointError, "mult_arity"),
])
def test_config_state_mismatch(tiny_ckpt, changes, error, match):
    _, prefix = tiny_ckpt
    _edit_config(prefix, **changes)
    with pytest.raises(error, match=match):
        load_source(prefix)


def test_unexpected_state_keys(tiny_ckpt):
    m, prefix = tiny_ckpt
    sd = m.state_dict()
    sd["extra.weight"] = torch.zeros(2)
    torch.save(sd, f"{prefix}_state")
    with pytest.raises(CheckpointError, match=r"unexpected keys \['extra\.weight'\]"):
        load_source(prefix)
    torch.save([1, 2, 3], f"{prefix}_state")
    with pytest.raises(CheckpointError, match="not a pykan state_dict"):
        load_source(prefix)
    Path(f"{prefix}_state").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="cannot read the state file|refused to unpickle"):
        load_source(prefix)


def test_checkpoint_loading_has_no_side_effects(tiny_ckpt, capsys):
    _, prefix = tiny_ckpt
    capsys.readouterr()
    before = rng_states()
    load_source(prefix)
    build_pykan_model(prefix)
    assert_same_rng(before, rng_states())
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def test_import_does_not_load_torch_or_pykan():
    """Importing the compiler and this package is torch-free: torch/pykan load only when a function needs them."""
    code = ("import sys, lutkan.compiler, lutkan.compiler.pykan\n"
            "print(sorted(m for m in ('torch', 'kan') if m in sys.modules))\n")
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", r.stdout
