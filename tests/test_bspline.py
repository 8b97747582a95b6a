"""B-spline baselines (lutkan.evaluators.bspline) against the float64 reference SourceModel.forward.

Models come from ``lutkan.testing.models.random_source`` (no pykan needed) with uniform, non-uniform,
repeated, coarse and degenerate knot rows, k in 1..5, G in 1..12, masked edges, multiplication
groups of equal and unequal arity, non-identity affines and symbolic edges; inputs from
``lutkan.testing.inputs`` (ordinary values, exact knots, knots +-1 ulp, domain ends, far OOB, NaN,
+-inf). One test compares against a real pykan KAN. All knots are float32-representable, so float32
and float64 evaluation see the same knot (in)equalities.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lutkan.errors import InputError, LutKanError
from lutkan.evaluators.bspline import BSplineModel
from lutkan.source import SourceLayer, SourceModel, bspline_basis
from lutkan.testing.inputs import NONFINITE, adversarial_inputs
from lutkan.testing.models import KNOT_KINDS, SMOOTH_SYMBOLIC, random_source
from lutkan.testing.strategies import inputs, sources

# the float64 reference itself warns on the NaN/inf inputs these tests feed it on purpose
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning:lutkan.source")

COMBOS = [(b, m) for b in ("numpy", "numba") for m in ("naive", "strong")]
F32_REL = 1e-5  # one layer on the same float32 input, and end to end on the fixed models below
F32_REL_E2E = 5e-5  # end to end on random deep models: rounding is amplified by spline slopes
F64_REL = 1e-10
# Symbolic edges use SMOOTH_SYMBOLIC (bounded sensitivity): sin/cos of a 1e10 hidden activation would
# turn float32 rounding into O(1) differences (test_symbolic_edges_and_disabled covers sin on moderate inputs).
HIDDEN_KINDS = ("uniform", "nonuniform", "degenerate")  # no jumps in hidden layers: float32 e2e stays tight
MIX = {"ordinary": 0.6, "knot": 0.15, "knot_ulp": 0.1, "end": 0.1, "far": 0.05}


# ------------------------------------------------------------------------------------------------
# random models
# ------------------------------------------------------------------------------------------------


def _f32(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64).astype(np.float32).astype(np.float64)


def random_model(rng: np.random.Generator, *, n_layers: int = 2, k: int = 3, G: int = 5, extra_inputs: int = 1,
                 hidden_kinds=HIDDEN_KINDS, first_kinds=HIDDEN_KINDS + ("repeated", "coarse"), mult: bool = True,
                 symbolic: float = 0.1, base_fun: str = "silu", symbolic_enabled: bool = True,
                 affine: bool = True) -> SourceModel:
    """A random model of 1-4 inputs and ``n_layers`` layers of 1-3 sum nodes (+ 0-2 products of 2-3
    subnodes if ``mult``), drawn from ``rng``; symbolic edges (``SMOOTH_SYMBOLIC``) on a
    ``symbolic`` fraction of the edges (at least one per layer when > 0), 20% pruned edges."""
    width, groups = [int(rng.integers(1, 5))], {}
    for l in range(n_layers):
        g = tuple(int(a) for a in rng.integers(2, 4, rng.integers(0, 3))) if mult else ()
        width.append(int(rng.integers(1, 4)) + len(g))
        groups[l] = g
    return random_source(width, G, k, seed=rng, knots=first_kinds, hidden_knots=hidden_kinds, masked=0.2,
                         symbolic=symbolic, symbolic_names=SMOOTH_SYMBOLIC, mult_groups=groups, affine=affine,
                         base_fun=base_fun, n_inputs=width[0] + extra_inputs, symbolic_enabled=symbolic_enabled)


def special_inputs(rng: np.random.Generator, model: SourceModel, N: int, *, far: float,
                   nonfinite: bool = False) -> np.ndarray:
    """(N, n_inputs) float64 (float32-representable) rows of ordinary values, exact knots, knots +-1
    float32 ulp, domain ends and neighbours, +-far off the domain; with ``nonfinite`` also some NaN/+-inf."""
    x = adversarial_inputs(model, N, seed=int(rng.integers(2**32)), weights=MIX, far=far, specials=NONFINITE,
                           special_fraction=0.04 if nonfinite else 0.0)
    return x.astype(np.float64)


# ------------------------------------------------------------------------------------------------
# comparison
# ------------------------------------------------------------------------------------------------


def check(actual: np.ndarray, ref: np.ndarray, rel: float, what: str = "") -> float:
    """NaN and +-inf positions (and signs) identical; finite |a - r| <= rel*(1 + max|r|). Returns the
    error in units of (1 + max|r|)."""
    a = np.asarray(actual, dtype=np.float64)
    assert a.shape == ref.shape, what
    np.testing.assert_array_equal(np.isnan(a), np.isnan(ref), err_msg=f"{what}: NaN pattern")
    np.testing.assert_array_equal(np.isposinf(a), np.isposinf(ref), err_msg=f"{what}: +inf pattern")
    np.testing.assert_array_equal(np.isneginf(a), np.isneginf(ref), err_msg=f"{what}: -inf pattern")
    fin = np.isfinite(ref)
    if not fin.any():
        return 0.0
    scale = 1.0 + float(np.abs(ref[fin]).max())
    err = float(np.abs(a[fin] - ref[fin]).max()) / scale
    assert err <= rel, f"{what}: max abs error {err * scale:.3g} > {rel:g}*(1+max|ref|={scale:.3g})"
    return err


F32_SAFE = 1e20


def f32_safe_rows(model: SourceModel, x: np.ndarray) -> np.ndarray:
    """Rows whose float64 activations stay below 1e20 in every layer (float32 cannot overflow there;
    beyond that float32 legitimately turns finite reference values into inf/NaN)."""
    ok = np.ones(x.shape[0], dtype=bool)
    for l in range(len(model.layers) + 1):
        h = model.forward(x, upto=l)
        with np.errstate(invalid="ignore"):
            ok &= ~(np.isfinite(h) & (np.abs(h) > F32_SAFE)).any(axis=1)
    return ok


def check_all(model: SourceModel, x: np.ndarray, *, f32: bool = True, f32_layerwise: bool = False,
              f32_rel: float = F32_REL) -> dict:
    ref = model.forward(x)
    ok = f32_safe_rows(model, x) if (f32 or f32_layerwise) else None
    errs = {}
    for b, m in COMBOS:
        y = BSplineModel(model, dtype=np.float64).forward(x, backend=b, method=m)
        assert y.dtype == np.float64
        errs[("f64", b, m)] = check(y, ref, F64_REL, f"float64 {b}/{m}")
    if f32:
        bm = BSplineModel(model, dtype=np.float32)
        for b, m in COMBOS:
            y = bm.forward(x.astype(np.float32), backend=b, method=m)
            assert y.dtype == np.float32
            errs[("f32", b, m)] = check(y[ok], ref[ok], f32_rel, f"float32 {b}/{m}")
    if f32_layerwise:  # each layer on the same float32 input as the reference layer
        bm = BSplineModel(model, dtype=np.float32)
        for l, layer in enumerate(model.layers):
            h = model.forward(x, upto=l).astype(np.float32)
            if l == 0:
                h = x[:, model.input_id].astype(np.float32)
            ref_l = model.layer_forward(layer, h.astype(np.float64))
            for b, m in COMBOS:
                y = bm.forward_layer(l, h, backend=b, method=m)
                errs[("f32-layer", l, b, m)] = check(y[ok], ref_l[ok], F32_REL, f"float32 layer {l} {b}/{m}")
    return errs


# ------------------------------------------------------------------------------------------------
# deterministic tests
# ------------------------------------------------------------------------------------------------


def test_bspline_basis_is_pykan_b_batch():
    """The one Cox-de Boor implementation (float64 and float32) against pykan's own ``B_batch``."""
    torch = pytest.importorskip("torch")
    spline = pytest.importorskip("kan.spline")
    rng = np.random.default_rng(1)
    for kind in KNOT_KINDS:
        for k in range(1, 6):
            t = random_source([1, 1], 4, k, seed=rng, knots=kind).layers[0].grid[0]
            x = np.concatenate([rng.uniform(-3, 3, 50), t, [np.nan, np.inf, -np.inf]])
            for dt, tol in ((np.float64, 1e-12), (np.float32, 1e-5)):
                ref = spline.B_batch(torch.from_numpy(x.astype(dt)[:, None]), torch.from_numpy(t.astype(dt)[None, :]),
                                     k=k)[:, 0, :].numpy()
                got = bspline_basis(x.astype(dt), t.astype(dt), k)
                assert got.dtype == dt
                np.testing.assert_allclose(got, ref, rtol=tol, atol=tol, err_msg=f"{kind} k={k} {dt.__name__}")


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_all_variants_match_reference_k(k):
    rng = np.random.default_rng(100 + k)
    worst = 0.0
    for G in (1, 2, 5, 12):
        model = random_model(rng, n_layers=2, k=k, G=G)
        x = special_inputs(rng, model, 40, far=10.0, nonfinite=True)
        errs = check_all(model, x, f32_layerwise=True)
        worst = max(worst, max(v for kk, v in errs.items() if kk[0] != "f64"))
        x = special_inputs(rng, model, 40, far=1e4, nonfinite=True)  # huge hidden activations: float32 layer by layer
        check_all(model, x, f32=False, f32_layerwise=True)
    assert worst <= F32_REL


def test_repeated_knots_float64_three_layers():
    """Zero-width intervals everywhere (pykan's wipe semantics in every layer), float64 end to end."""
    rng = np.random.default_rng(7)
    kinds = ("repeated", "coarse", "degenerate", "nonuniform")
    for k in (1, 2, 3, 5):
        model = random_model(rng, n_layers=3, k=k, G=int(rng.integers(1, 13)), hidden_kinds=kinds,
                             first_kinds=kinds)
        x = special_inputs(rng, model, 60, far=1e4, nonfinite=True)
        check_all(model, x, f32=False, f32_layerwise=True)
        x = special_inputs(rng, model, 30, far=1e30, nonfinite=True)  # float32 would overflow here
        check_all(model, x, f32=False)


def test_wipe_differs_from_textbook_de_boor():
    """knots 0,1,1,2 (k=1): textbook B_0 = x on [0,1), B_1 = 2-x on [1,2); pykan's nan_to_num wipes both."""
    layer = random_source([1, 1], G=1, k=1, seed=0, affine=False).layers[0]
    layer.grid[0] = [0.0, 1.0, 1.0, 2.0]
    layer.coef[0, 0] = [1.0, 1.0]
    layer.scale_base[:] = 0.0
    layer.scale_sp[:] = 1.0
    layer.mask[:] = 1.0
    model = SourceModel(layers=(layer,), input_id=np.array([0]), n_inputs=1)
    x = np.array([[0.0], [0.5], [0.999], [1.0], [1.5], [2.0]])
    ref = model.forward(x)
    # both basis functions touch the zero-width interval [1, 1): textbook gives x resp. 2 - x
    assert np.all(ref == 0.0)
    check_all(model, x)


def test_domain_ends_half_open_and_degenerate_rows():
    layer = random_source([3, 2], G=4, k=3, seed=3, knots="uniform", affine=False).layers[0]
    layer.grid[2] = 0.25  # degenerate row
    layer.scale_base[:] = 0.0
    model = SourceModel(layers=(layer,), input_id=np.arange(3), n_inputs=3)
    rows = []
    for i in range(2):
        t = layer.grid[i]
        for v in (t[0], t[-1], np.nextafter(np.float32(t[-1]), np.float32(-np.inf)),
                  np.nextafter(np.float32(t[0]), np.float32(-np.inf)), t[1], t[4]):
            r = np.zeros(3)
            r[:] = 99.0  # others far out of range -> contribute 0
            r[i] = v
            rows.append(r)
    rows.append(np.array([99.0, 99.0, 0.25]))
    rows.append(np.array([99.0, 99.0, -7.0]))
    x = _f32(np.array(rows))
    ref = model.forward(x)
    # x == t_K and far OOB give exactly 0; the degenerate row gives 0 everywhere
    assert np.all(ref[1] == 0.0) and np.all(ref[7] == 0.0)
    assert np.all(ref[-2:] == 0.0)
    for dt in (np.float32, np.float64):
        bm = BSplineModel(model, dtype=dt)
        for b, m in COMBOS:
            y = bm.forward(x, backend=b, method=m)
            assert np.all(y[1] == 0) and np.all(y[7] == 0) and np.all(y[-2:] == 0), (dt, b, m)
    check_all(model, x)


@pytest.mark.parametrize("base_fun", ["silu", "identity", "zero"])
def test_nan_inf_semantics(base_fun):
    rng = np.random.default_rng(11)
    model = random_model(rng, n_layers=2, base_fun=base_fun, extra_inputs=0, symbolic=0.0)
    x = np.zeros((6, model.n_inputs))
    x[1, 0] = np.nan
    x[2, 0] = np.inf
    x[3, 0] = -np.inf
    x[4, :] = np.inf
    x[5, :] = np.nan
    ref = model.forward(x)
    if base_fun == "zero":
        assert np.isfinite(ref).all()  # the reference's zeros_like base: non-finite x -> spline 0, base 0
    else:
        assert np.isnan(ref[1]).all() and np.isnan(ref[5]).all()  # 0*NaN poisons even masked edges
    assert np.isfinite(ref[0]).all()
    check_all(model, x)


def test_symbolic_edges_and_disabled():
    rng = np.random.default_rng(5)
    model = random_model(rng, n_layers=2, symbolic=0.3)
    layer = model.layers[0]
    layer.sym_mask[0, 0] = 1.0
    layer.sym_affine[0, 0] = (1.3, 0.2, 0.8, -0.1)
    names = [list(r) for r in layer.sym_names]
    names[0][0] = "sin"
    object.__setattr__(layer, "sym_names", tuple(tuple(r) for r in names))
    x = special_inputs(rng, model, 30, far=50.0)
    check_all(model, x)
    off = SourceModel(layers=model.layers, input_id=model.input_id, n_inputs=model.n_inputs,
                      symbolic_enabled=False)
    check_all(off, x)
    assert not np.allclose(off.forward(x), model.forward(x), equal_nan=True)


def test_larger_model_float32_accuracy():
    """A [12, 8, 6, 2]-ish model with G=8, k=3, mult groups and affines; reports float32 error."""
    rng = np.random.default_rng(21)
    model = random_source([12, 7, 6, 2], G=8, k=3, seed=rng, knots=HIDDEN_KINDS, mult_groups={0: (2,), 1: (2, 2)},
                          masked=0.2, input_id="sorted")
    x = special_inputs(rng, model, 500, far=10.0)
    errs = check_all(model, x)
    assert max(v for kk, v in errs.items() if kk[0] == "f32") <= F32_REL


def test_numpy_strong_chunking(monkeypatch):
    import lutkan.evaluators.bspline as bspline

    rng = np.random.default_rng(9)
    model = random_model(rng, n_layers=2, k=2, G=4)
    x = special_inputs(rng, model, 50, far=10.0, nonfinite=True)
    monkeypatch.setattr(bspline, "_NUMPY_STRONG_CHUNK", 30)  # a handful of rows per chunk
    ref = model.forward(x)
    for dt, rel in ((np.float64, F64_REL), (np.float32, F32_REL)):
        check(BSplineModel(model, dtype=dt).forward(x, method="strong"), ref, rel, f"chunked {dt.__name__}")


def test_input_validation_and_options():
    model = random_model(np.random.default_rng(0), n_layers=1)
    bm = BSplineModel(model)
    x = np.zeros((2, model.n_inputs), dtype=np.float32)
    with pytest.raises(InputError):
        bm.forward(np.zeros((2, model.n_inputs + 1)))
    with pytest.raises(InputError):
        bm.forward(np.zeros(model.n_inputs))
    with pytest.raises(InputError):
        bm.forward(x.astype(bool))
    with pytest.raises(InputError):
        bm.forward(x[:0])
    with pytest.raises(LutKanError):
        bm.forward(x, backend="torch")
    with pytest.raises(LutKanError):
        bm.forward(x, method="fast")
    with pytest.raises(LutKanError):
        BSplineModel(model, dtype=np.float16)
    assert bm.forward(x.astype(np.int64)).dtype == np.float32
    assert bm.forward(x.tolist(), backend="numba", method="strong").shape == (2, bm.n_outputs)


# ------------------------------------------------------------------------------------------------
# hypothesis
# ------------------------------------------------------------------------------------------------

@st.composite
def model_and_input(draw):
    repeated_hidden = draw(st.booleans())
    src = draw(sources(max_layers=3, max_width=4, max_extra_inputs=2, knots=KNOT_KINDS,
                       hidden_knots=KNOT_KINDS if repeated_hidden else HIDDEN_KINDS, amplitude="fuzz",
                       symbolic_names=SMOOTH_SYMBOLIC, symbolic_enabled=True, masked=0.2,
                       base_fun=st.sampled_from(["silu", "silu", "identity", "zero"])))
    far = draw(st.sampled_from([10.0, 1e4]))
    x = draw(inputs(src, far=far, specials=NONFINITE))
    return src, x.astype(np.float64), repeated_hidden, far


@settings(max_examples=30)
@given(model_and_input())
def test_hypothesis_all_variants(case):
    model, x, repeated_hidden, far = case
    # float32 end to end only when it is well-conditioned: repeated knots in hidden layers make
    # pykan's splines discontinuous there (float32 rounding of a hidden activation may cross a jump),
    # and 1e4-sized inputs through identity bases and products cancel catastrophically; otherwise
    # float32 is checked layer by layer (same float32 input for both sides)
    check_all(model, x, f32=not (repeated_hidden or far > 10), f32_layerwise=True, f32_rel=F32_REL_E2E)


# ------------------------------------------------------------------------------------------------
# real pykan
# ------------------------------------------------------------------------------------------------


def _source_from_pykan(model) -> SourceModel:
    """Hand-made reader for a plain MultKAN (sum nodes only) -- independent of lutkan's reader."""
    t = lambda v: v.detach().double().cpu().numpy()
    layers = []
    for l, af in enumerate(model.act_fun):
        sf = model.symbolic_fun[l]
        O = af.out_dim
        n_sum = model.width[l + 1][0] if isinstance(model.width[l + 1], list) else model.width[l + 1]
        groups = ()
        if model.width[l + 1][1]:
            groups = (int(model.mult_arity),) * int(model.width[l + 1][1])
        layers.append(SourceLayer(
            grid=t(af.grid), coef=t(af.coef), k=int(af.k), scale_base=t(af.scale_base), scale_sp=t(af.scale_sp),
            mask=t(af.mask), sym_mask=t(sf.mask), sym_affine=t(sf.affine),
            sym_names=tuple(tuple(r) for r in sf.funs_name),
            subnode_scale=t(model.subnode_scale[l]), subnode_bias=t(model.subnode_bias[l]),
            node_scale=t(model.node_scale[l]), node_bias=t(model.node_bias[l]), n_sum=int(n_sum),
            mult_groups=groups))
        assert layers[-1].out_dim == O
    return SourceModel(layers=tuple(layers), input_id=model.input_id.cpu().numpy().astype(np.int64),
                       n_inputs=model.width_in[0], base_fun="silu", symbolic_enabled=bool(model.symbolic_enabled))


def test_against_real_pykan():
    torch = pytest.importorskip("torch")
    kan = pytest.importorskip("kan")
    m = kan.KAN(width=[4, 5, 3], grid=5, k=3, seed=0, auto_save=False)
    g = torch.Generator().manual_seed(0)
    m.update_grid_from_samples(torch.randn(200, 4, generator=g) * torch.tensor([1.0, 0.5, 2.0, 1.0]))
    with torch.no_grad():  # non-trivial affines and a pruned edge
        for l in range(2):
            m.subnode_scale[l].uniform_(0.5, 1.5, generator=g)
            m.subnode_bias[l].uniform_(-0.3, 0.3, generator=g)
            m.node_scale[l].uniform_(0.5, 1.5, generator=g)
            m.node_bias[l].uniform_(-0.3, 0.3, generator=g)
        m.act_fun[0].mask[1, 2] = 0.0
    src = _source_from_pykan(m)
    grid0 = src.layers[0].grid
    d = np.diff(grid0[:, 3:-3], axis=1)
    assert (d.max(axis=1) / d.min(axis=1)).max() > 1.5, "grid update should give non-uniform knots"
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1.5, (300, 4))
    x[:20] = grid0[np.arange(4)[None, :], rng.integers(0, grid0.shape[1], (20, 4))]  # exact knots
    x[20:30] = grid0[:, -1]  # right end (half-open -> spline 0)
    x[30:35] = rng.choice([-50.0, 50.0], (5, 4))
    x[35, 0], x[36, 1], x[37, 2] = np.nan, np.inf, -np.inf  # torch agrees with the reference here too
    x = _f32(x)
    with torch.no_grad():
        y_pykan = m(torch.tensor(x, dtype=torch.float32)).double().numpy()
    ref = src.forward(x)
    check(ref, y_pykan, 1e-5, "reference vs pykan")
    for dt in (np.float32, np.float64):
        bm = BSplineModel(src, dtype=dt)
        for b, meth in COMBOS:
            y = bm.forward(x, backend=b, method=meth)
            check(y, y_pykan, 2e-5, f"pykan vs {dt.__name__} {b}/{meth}")
