"""Compiler correctness against the inference contract (docs/contract.md), property-based.

(a) the Numba kernel equals the NumPy reference for every scheme x interp x boundary x oob on
    random SourceModels and adversarial inputs (exact knots, domain ends, nextafter of the ends,
    far OOB, NaN, +-inf, +-1e38, denormals);
(b) float32 tables at L=256 reproduce the float64 SourceModel.forward within a derived bound,
    in the domain and (oob='zero', PyKAN-faithful) outside it;
(c) the OOB truth table of contract section 4, one parametrized test, on every backend of the oracle;
(d) quantization golden values and the dequantization error bound;
(e) right-continuity at interior knots and the left-limit sample at segment ends.

Random models come from ``lutkan.testing.strategies.sources`` (the one factory,
``lutkan.testing.models.random_source``) and adversarial inputs from ``lutkan.testing.inputs``.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lutkan.artifact import LUTLayer, LUTModel
from lutkan.compiler import compile_model
from lutkan.compiler.quantize import quantize
from lutkan.contract import BOUNDARIES, INTERPS, OOB_POLICIES, SCHEMES, U_EXT, ContractOptions, valid_combination
from lutkan.evaluators.numba_eval import EdgeSumKernel, NumbaEvaluator
from lutkan.evaluators.numpy_eval import NumpyEvaluator, eval_layer, symbolic_sum
from lutkan.evaluators.symbolic_kernel import SymbolicKernel
from lutkan.metrics import HUGE, assert_outputs_close
from lutkan.source import SourceLayer, SourceModel, base_function, bspline_basis
from lutkan.tables import dequantize, model_tables
from lutkan.testing import backends, rounding_allowance
from lutkan.testing.inputs import adversarial_inputs, knot_inputs
from lutkan.testing.models import random_source
from lutkan.testing.strategies import sources

EPS32 = float(np.finfo(np.float32).eps) / 2  # unit roundoff u = 2**-24
F32 = np.float32
ALL_OPTS = list(itertools.product(INTERPS, BOUNDARIES, OOB_POLICIES))
"""Every (interp, boundary, oob); a test skips ``poly`` for the quantized schemes (``valid_combination``)."""

def finite_inputs(src: SourceModel, seed: int, n: int = 64) -> np.ndarray:
    """Finite adversarial rows: ordinary values, knots, knots +-1 ulp, domain ends and neighbours, +-1e3 off."""
    return adversarial_inputs(src, n, seed, special_fraction=0.0, far=1e3)


def extreme_inputs(src: SourceModel, seed: int, n: int = 64) -> np.ndarray:
    """The same classes plus NaN, +-inf, +-1e38, +-FLT_MAX, denormals and signed zeros in a quarter of the entries."""
    return adversarial_inputs(src, n, seed, special_fraction=0.25, far=1e3, clean_rows=0.0)


# ---------------------------------------------------------------------------------------------
# (a) Numba == NumPy for every option combination
# ---------------------------------------------------------------------------------------------

def _identity_combine(p):
    """The same packed layer with the node stage made the identity: exposes the raw edge sums."""
    return dataclasses.replace(p, nodes=None)


@pytest.mark.parametrize("scheme", SCHEMES)
@settings(suppress_health_check=[HealthCheck.too_slow])
@given(src=sources(), xseed=st.integers(0, 2**16))
def test_numba_equals_numpy_every_option(scheme, src, xseed):
    seed = src.provenance["seed"]
    x_ord = finite_inputs(src, xseed)  # finite, incl. knots/ends/nextafter/far OOB
    x_nan = x_ord.copy()
    x_nan[::5, :] = np.nan  # NaN poisoning through all layers
    x_ext = extreme_inputs(src, xseed + 1)
    for interp, boundary, oob in ALL_OPTS:
        if not valid_combination(scheme, interp):
            continue
        opts = ContractOptions(L=int(np.random.default_rng(seed).integers(2, 20)), scheme=scheme,
                               interp=interp, boundary=boundary, oob=oob)
        model = compile_model(src, opts)
        ref, nb = NumpyEvaluator(model), NumbaEvaluator(model)
        tag = f"{scheme}/{interp}/{boundary}/{oob} seed={seed}"
        # end to end (node affines, mult groups, input_id) on finite and NaN inputs
        for x in (x_ord, x_nan):
            assert_outputs_close(nb(x), ref(x), rel=1e-5, abs_floor=rounding_allowance(model, x), what=f"model {tag}")
            # the fused whole-network kernel runs exactly the per-layer kernels: bitwise equal
            assert np.array_equal(nb(x), nb.forward_layers(x), equal_nan=True), f"fused vs layered {tag}"
            # rows are independent: small batches (the kernel's few-row segment count) give the same bits
            assert x.shape[0] >= 16
            chunks = np.concatenate([nb(x[a:a + 3]) for a in range(0, x.shape[0], 3)])
            assert np.array_equal(nb(x), chunks, equal_nan=True), f"batch of {x.shape[0]} vs chunks of 3 {tag}"
        # layer by layer, fed the same float32 hidden values, including +-inf/1e38/denormals. The raw
        # edge sums are compared (the node stage is checked above): contract section 5 leaves the
        # overflowing sum of huge terms to each backend, and a later product could turn an inf on one
        # side and 3e38 on the other into NaN vs 0.
        h = np.ascontiguousarray(x_ext[:, model.input_id])
        for l, p in enumerate(model_tables(model)):
            if l:  # deeper layers: put that layer's own knots, ends and their neighbours in some rows
                h = h.copy()
                h[::3] = knot_inputs(p.knots, h[::3].shape[0], seed + l, special_fraction=0.3, far=100.0,
                                     clean_rows=0.0)
            kern = EdgeSumKernel(p)  # the LUTKanEdge op: tables and base branch
            assert_outputs_close(kern(h), eval_layer(dataclasses.replace(p, nodes=None, symbolic=None), h),
                                 rel=1e-5, what=f"layer {l} edge sums {tag}")
            if p.symbolic is not None:  # the KanSymbolic op
                assert_outputs_close(SymbolicKernel(p.symbolic)(h), symbolic_sum(p.symbolic, h), rel=1e-5,
                                     what=f"layer {l} symbolic sums {tag}")
            h = eval_layer(p, h)


# ---------------------------------------------------------------------------------------------
# (b) float32 / large L vs the float64 reference, with a derived error bound
# ---------------------------------------------------------------------------------------------

def _markov2(k: int) -> float:
    """T_k''(1) = k^2 (k^2 - 1) / 3: Markov's bound max|p''| <= T_k''(1) (2/W)^2 max|p| on a width-W
    interval for a degree-k polynomial p."""
    return k * k * (k * k - 1) / 3.0


def edge_sum_bound(layer: SourceLayer, base_fun: str, x: np.ndarray, L: int) -> np.ndarray:
    """(N, O) bound on |s32 - s64| for one layer's edge sums at float32-representable inputs x.

    On a knot span of width W the spline is one polynomial p of degree k with |p| <= A := |m sp| max|c|
    (B-splines are nonnegative and sum to <= 1). Linear interpolation between samples h = W/(L-1)
    apart errs by <= h^2/8 max|p''| <= h^2/8 * T_k''(1) (2/W)^2 A = T_k''(1) A / (2 (L-1)^2)  (W cancels).
    float32 effects: table rounding u A; pos = (x - t_k)*seg_scale has relative error <= 4u, i.e. a
    position error <= 4u W, times max|p'| <= k^2 (2/W) A (Markov) = 8 k^2 u A; the lerp a + w (b - a)
    <= 6 u A; summing I terms in float32 <= I u sum|terms|; base branch w b(x) in float32 (w rounded,
    exp/add/div/mul of the SiLU) <= 8 u |w b(x)|. Nothing is left out to first order in u; the test
    allows a factor 2 on top for second-order terms.
    """
    k, I = layer.k, layer.in_dim
    A = np.abs(layer.mask * layer.scale_sp) * np.abs(layer.coef).max(axis=2)  # (I, O)
    per_edge = A * (_markov2(k) / (2.0 * (L - 1) ** 2) + (8 * k * k + 8 + I) * EPS32)
    xin = x.astype(np.float64)
    inside = np.zeros_like(xin, dtype=bool)
    for i in range(I):
        t = layer.grid[i]
        inside[:, i] = (xin[:, i] >= t[0]) & (xin[:, i] <= t[-1])
    spline_part = inside.astype(np.float64) @ per_edge  # OOB: both sides are exactly 0 ('zero')
    base_terms = np.abs(base_function(base_fun, xin))[:, :, None] * np.abs(layer.mask * layer.scale_base)[None]
    # float32 SiLU(x) for x < -88.7 is -0 (exp overflows) where the true |SiLU| < 88.7 e^-88.7 < 3e-37:
    # an absolute floor per base term.
    floor = 3e-37 * np.abs(layer.mask * layer.scale_base).sum(axis=0) + 1e-44
    return spline_part + ((8 + I) * EPS32) * base_terms.sum(axis=1) + floor


def combine_bound(layer: SourceLayer, s64: np.ndarray, ds: np.ndarray) -> np.ndarray:
    """Propagate an edge-sum error bound ds through subnode affine, products and node affine (each
    float32 op adds <= u relative, parameters are rounded to float32: <= u relative)."""
    a = layer.subnode_scale * s64 + layer.subnode_bias
    da = np.abs(layer.subnode_scale) * ds + 4 * EPS32 * (np.abs(layer.subnode_scale * s64) + np.abs(layer.subnode_bias))
    nodes, dn = [a[:, : layer.n_sum]], [da[:, : layer.n_sum]]
    c = layer.n_sum
    for g in layer.mult_groups:
        vals, errs = np.abs(a[:, c : c + g]), da[:, c : c + g]
        prod = np.prod(vals, axis=1)
        d = np.zeros(a.shape[0])
        for r in range(g):
            d += errs[:, r] * np.prod(np.delete(vals + errs, r, axis=1), axis=1)
        nodes.append(np.prod(a[:, c : c + g], axis=1, keepdims=True))
        dn.append((d + 2 * g * EPS32 * prod)[:, None])
        c += g
    node, dnode = np.concatenate(nodes, axis=1), np.concatenate(dn, axis=1)
    return np.abs(layer.node_scale) * dnode + 4 * EPS32 * (np.abs(layer.node_scale * node) + np.abs(layer.node_bias))


def _raw_sum_layer(layer: SourceLayer) -> SourceLayer:
    O = layer.out_dim
    return dataclasses.replace(layer, subnode_scale=np.ones(O), subnode_bias=np.zeros(O), node_scale=np.ones(O),
                               node_bias=np.zeros(O), n_sum=O, mult_groups=())


@settings(max_examples=80)
@given(src=sources(symbolic=False), xseed=st.integers(0, 2**16), boundary=st.sampled_from(BOUNDARIES))
def test_float32_L256_matches_float64_reference(src, xseed, boundary):
    seed = src.provenance["seed"]
    L = 256
    model = compile_model(src, ContractOptions(L=L, scheme="float32", interp="linear", boundary=boundary,
                                               oob="zero"))
    packed = model_tables(model)
    x = finite_inputs(src, xseed, n=96)
    # At x = t_K half_open+zero gives 0 and closed gives T_hi = S(t_K-), which is 0 for a pykan spline
    # (continuous, k >= 1): both equal pykan's 0 there, so one bound serves both boundaries.
    h = x[:, src.input_id].astype(np.float32)
    for l, (layer, p) in enumerate(zip(src.layers, packed, strict=True)):
        h64 = h.astype(np.float64)
        # raw edge sums (node stage = identity) then the real node stage
        s64 = src.layer_forward(_raw_sum_layer(layer), h64)
        s32 = eval_layer(_identity_combine(p), h).astype(np.float64)
        bound_s = edge_sum_bound(layer, src.base_fun, h, L)
        err = np.abs(s32 - s64)
        ratio = err / bound_s
        worst = np.unravel_index(np.argmax(ratio), ratio.shape)
        assert np.all(ratio <= 2.0), (
            f"seed={seed} layer {l}: edge-sum error {err[worst]:.3g} exceeds 2x the derived bound "
            f"{bound_s[worst]:.3g} at {worst} (ratio {ratio.max():.3g}); x={h[worst[0]]}")
        y64 = src.layer_forward(layer, h64)
        y32 = eval_layer(p, h)
        bound_y = combine_bound(layer, s64, 2 * bound_s) + 1e-300
        ratio_y = np.abs(y32 - y64) / bound_y
        assert np.all(ratio_y <= 2.0), f"seed={seed} layer {l}: node output error ratio {ratio_y.max():.3g}"
        h = y32  # next layer sees the compiled float32 hidden values; the reference uses the same
    if len(src.layers) == 1:  # whole model, exactly SourceModel.forward on the model inputs
        y = NumpyEvaluator(model)(x)
        y64 = src.forward(x.astype(np.float64))
        s64 = src.layer_forward(_raw_sum_layer(src.layers[0]), x[:, src.input_id].astype(np.float64))
        bound = combine_bound(src.layers[0], s64, 2 * edge_sum_bound(src.layers[0], src.base_fun,
                                                                      x[:, src.input_id], L))
        assert np.all(np.abs(y - y64) <= 2 * bound + 1e-300), f"seed={seed}: forward mismatch"


def test_float32_bound_is_not_vacuous():
    """The derived bound is small against the function scale (so (b) can fail): k=3, L=256 gives an
    interpolation term 24/(2*255^2) ~ 1.8e-4 of max|m sp c|, and a real defect (wrong segment, no
    left-limit sample, missing OOB zeroing) is O(1) of it. Also checks the bound is tight-ish:
    the observed error on a smooth model reaches >= 1% of it."""
    src = random_source([2, 2], G=6, k=3, seed=7, knots="nonuniform", amplitude="signed", base_fun="zero")
    model = compile_model(src, ContractOptions(L=256, scheme="float32", oob="zero"))
    x = finite_inputs(src, 1, n=4000)
    s64 = src.forward(x.astype(np.float64))
    s32 = NumpyEvaluator(model)(x).astype(np.float64)
    layer = src.layers[0]
    bound = combine_bound(layer, src.layer_forward(_raw_sum_layer(layer), x[:, src.input_id].astype(np.float64)),
                          2 * edge_sum_bound(layer, src.base_fun, x[:, src.input_id], 256))
    scale = np.abs(s64).max()
    assert bound.max() < 2e-3 * max(scale, 1.0), (bound.max(), scale)
    print(f"\n[contract (b)] smooth k=3 model, L=256: observed max error {np.abs(s32 - s64).max():.3g}, "
          f"derived bound {bound.max():.3g}, max|y| {scale:.3g}")
    # a deliberately wrong model (table shifted by one segment) must break it
    bad_layer = dataclasses.replace(model.layers[0], table=np.roll(model.layers[0].table, 1, axis=1))
    bad = LUTModel(layers=(bad_layer,), contract=model.contract, base_fun=model.base_fun,
                   input_id=model.input_id, n_inputs=model.n_inputs)
    assert np.any(np.abs(NumpyEvaluator(bad)(x) - s64) > 2 * bound)


# ---------------------------------------------------------------------------------------------
# (c) the out-of-bounds truth table (contract section 4)
# ---------------------------------------------------------------------------------------------

# A 1x1 layer with knots [0, 1, 2] (lo=0, hi=2), L=3, float32 table: segment 0 = [1, 2, 3] at
# x = 0, .5, 1; segment 1 = [5, 6, 9] at x = 1, 1.5, 2 (a jump at the interior knot: right limit 5,
# left limit 3). T_lo = 1, T_hi = 9; line_lo(x) = 1 + 2x (samples 1 -> 2 over 0.5),
# line_hi(x) = 9 + 6 (x - 2) (samples 6 -> 9 over 0.5).
_T = np.array([[[1, 2, 3], [5, 6, 9]]], dtype=np.float32)
_LO, _HI = np.float32(0), np.float32(2)
_BELOW_LO = np.nextafter(_LO, np.float32(-np.inf))  # the smallest negative denormal
_BELOW_HI = np.nextafter(_HI, np.float32(-np.inf))
def _lerp32(a, b, w) -> float:
    """The contract's float32 interpolation a + w*(b - a), bit-exact."""
    return float(F32(a) + F32(w) * (F32(b) - F32(a)))


def _w32(x, t_k) -> tuple[int, float]:
    """(r0, w) of contract step 3 in float32 for this table (seg_scale = float32(2)/float32(1) = 2)."""
    pos = min(max((F32(x) - F32(t_k)) * F32(2), F32(0)), F32(2))
    r0 = min(int(np.floor(pos)), 1)
    return r0, float(pos - F32(r0))


def _in_table(x, interp) -> float:
    """T(x) for lo <= x <= hi (segment found right-continuously), bit-exact float32."""
    k = 1 if F32(x) >= F32(1) else 0
    r0, w = _w32(x, k)
    if interp == "nearest":
        return float(_T[0, k, r0 + (1 if w >= 0.5 else 0)])
    return _lerp32(_T[0, k, r0], _T[0, k, r0 + 1], w)


_T_BELOW_HI = {"linear": _in_table(_BELOW_HI, "linear"), "nearest": _in_table(_BELOW_HI, "nearest")}
POINTS = {"lo": _LO, "below_lo": _BELOW_LO, "hi": _HI, "below_hi": _BELOW_HI, "hi+1": F32(3),
          "+inf": F32(np.inf), "-inf": F32(-np.inf), "nan": F32(np.nan),
          "tie0": F32(0.25), "tie1": F32(1.25), "above_knot": np.nextafter(F32(1), F32(2)), "mid": F32(0.6)}


def truth_table(point: str, interp: str, boundary: str, oob: str) -> float | str:
    """Expected tabulated term of contract section 4. '+big'/'-big' mean non-finite or |v| > 1e30."""
    x = float(POINTS[point])
    line_lo = lambda v: 1 + 2 * v
    line_hi = lambda v: 9 + 6 * (v - 2)
    if point == "nan":
        return "nan"
    if point == "lo":
        return 1.0
    if point in ("below_hi", "tie0", "tie1", "above_knot", "mid"):  # inside the domain
        return _in_table(x, interp)
    below = point in ("below_lo", "-inf")
    if point == "hi" and boundary == "closed":
        return 9.0
    # outside the domain from here on (x < lo, x > hi, or x = hi under half_open)
    if oob == "zero":
        return 0.0
    if oob == "clip":
        if below:
            return 1.0
        return 9.0 if boundary == "closed" else _T_BELOW_HI[interp]
    # extrapolate: the boundary segment's line (linear even under nearest), at +-FLT_MAX for +-inf;
    # w' = (x_f - t_k)*seg_scale - r0 in float32 with r0 the clipped index (0 below, 1 above)
    if point == "-inf":
        return "-big"
    if point == "+inf":
        return "+big"
    if below:
        w = float((F32(x) - F32(0)) * F32(2) - F32(0))
        assert abs(_lerp32(1, 2, w) - line_lo(x)) < 1e-6
        return _lerp32(1, 2, w)
    w = float((F32(x) - F32(1)) * F32(2) - F32(1))
    assert abs(_lerp32(6, 9, w) - line_hi(x)) < 1e-5
    return _lerp32(6, 9, w)


@functools.cache
def _truth_backends(interp: str, boundary: str, oob: str) -> dict:
    """Every backend of the oracle (NumPy, Numba, each ONNX form in ORT / the plugin / onnx.reference)."""
    return backends(_truth_model(interp, boundary, oob))


def _truth_model(interp: str, boundary: str, oob: str) -> LUTModel:
    z = np.zeros(1, np.float32)
    layer = LUTLayer(knots=np.array([[0, 1, 2]], np.float32), edge_src=np.zeros(1, np.int32),
                     edge_dst=np.zeros(1, np.int32), table=_T.copy(), scale=None, offset=None,
                     base_weight=np.zeros((1, 1), np.float32), subnode_scale=z + 1, subnode_bias=z,
                     node_scale=z + 1, node_bias=z, n_sum=1, mult_groups=(), tab_error=z)
    return LUTModel(layers=(layer,), contract=ContractOptions(L=3, scheme="float32", interp=interp,
                                                              boundary=boundary, oob=oob),
                    base_fun="zero", input_id=np.zeros(1, np.int64), n_inputs=1)


TABLE_INTERPS = tuple(i for i in INTERPS if i != "poly")


@pytest.mark.parametrize("point", list(POINTS))
@pytest.mark.parametrize("oob", OOB_POLICIES)
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("interp", TABLE_INTERPS)
def test_oob_truth_table(interp, boundary, oob, point):
    want = truth_table(point, interp, boundary, oob)
    x = np.array([[POINTS[point]]], dtype=np.float32)
    for name, ev in _truth_backends(interp, boundary, oob).items():
        got = float(ev(x)[0, 0])
        what = f"{name}: T({point}) under {interp}/{boundary}/{oob} = {got!r}, contract says {want!r}"
        if want == "nan":
            assert np.isnan(got), what
        elif want == "+big":
            assert (got > HUGE) or got == np.inf, what
        elif want == "-big":
            assert (got < -HUGE) or got == -np.inf, what
        else:
            # one edge, base 'zero', identity node stage: no summation-order freedom, so the contract's
            # float32 operations give exactly one answer
            assert got == want, what


# The same layer as a ``poly`` table: L = 3 Bernstein control points per segment (degree 2), seg_scale =
# 1/width = 1. Segment 0 [1, 2, 3] is p0(u) = 1 + 2u; segment 1 [5, 6, 9] is p1(u) = 5 + 2u + 2u^2 (u = x - 1),
# with the same jump at the interior knot (p0(1) = 3, p1(0) = 5) and the same ends T_lo = 1, T_hi = 9.
def _p0(u):
    return 1 + 2 * u


def _p1(u):
    return 5 + 2 * u + 2 * u * u


def poly_truth_table(point: str, boundary: str, oob: str) -> float | str:
    """Expected tabulated term of contract section 4 for ``poly`` (float64: backends agree to float32)."""
    x = float(POINTS[point])
    if point == "nan":
        return "nan"
    inside = point in ("lo", "below_hi", "tie0", "tie1", "above_knot", "mid") or (point == "hi" and boundary == "closed")
    if inside:
        return _p0(x) if x < 1 else _p1(x - 1)
    if oob == "zero":
        return 0.0
    below = point in ("below_lo", "-inf")
    if oob == "clip":  # the polynomial at the clipped position: lo, or hi_idx = hi (closed) / below_hi (half_open)
        if below:
            return 1.0
        return 9.0 if boundary == "closed" else _p1(float(_BELOW_HI) - 1)
    # extrapolate: the boundary polynomial at u clipped to +-U_EXT segment widths (finite for +-inf)
    if below:
        return _p0(max(x, -float(U_EXT)))
    return _p1(min(x - 1, float(U_EXT)))


@pytest.mark.parametrize("point", list(POINTS))
@pytest.mark.parametrize("oob", OOB_POLICIES)
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_oob_truth_table_poly(boundary, oob, point):
    want = poly_truth_table(point, boundary, oob)
    x = np.array([[POINTS[point]]], dtype=np.float32)
    for name, ev in _truth_backends("poly", boundary, oob).items():
        got = float(ev(x)[0, 0])
        what = f"{name}: p({point}) under poly/{boundary}/{oob} = {got!r}, contract says {want!r}"
        if want == "nan":
            assert np.isnan(got), what
        else:  # far out the Bernstein sum cancels terms of size (1+|u|)^2: float32 error grows with them
            u = min(abs(float(POINTS[point])), float(U_EXT))
            assert got == pytest.approx(want, rel=2e-6 * (1 + u) ** 2, abs=1e-6), what


def test_oob_truth_table_through_compiler():
    """The same table via the compiler: a symbolic edge c*x + d (f = 'x') tabulated (symbolic='tabulate') has
    nonzero boundary samples, so clip/zero/extrapolate differ; base_fun 'zero' isolates the tabulated term.
    Evaluated exactly (the default), the edge is c*x + d everywhere under every policy."""
    I = O = 1
    k, G = 1, 2
    grid = np.array([[-1.0, 0.0, 1.0, 2.0, 3.0]])  # t0 = -1, tK = 3
    layer = SourceLayer(grid=grid, coef=np.zeros((I, O, G + k)), k=k, scale_base=np.ones((I, O)),
                        scale_sp=np.ones((I, O)), mask=np.zeros((I, O)), sym_mask=np.ones((O, I)),
                        sym_affine=np.array([[[1.0, 0.0, 2.0, 5.0]]]), sym_names=(("x",),),
                        subnode_scale=np.ones(O), subnode_bias=np.zeros(O), node_scale=np.ones(O),
                        node_bias=np.zeros(O), n_sum=1)
    src = SourceModel(layers=(layer,), input_id=np.zeros(1, np.int64), n_inputs=1, base_fun="zero")
    f = lambda v: 2 * v + 5
    xs = np.array([[-1], [np.nextafter(np.float32(-1), np.float32(-9))], [3], [np.nextafter(np.float32(3), np.float32(-9))],
                   [4], [-5], [1.25]], dtype=np.float32)
    expect = {
        ("closed", "clip"): [f(-1), f(-1), f(3), f(3), f(3), f(-1), f(1.25)],
        ("closed", "zero"): [f(-1), 0, f(3), f(3), 0, 0, f(1.25)],
        ("closed", "extrapolate"): [f(-1), f(-1), f(3), f(3), f(4), f(-5), f(1.25)],
        ("half_open", "clip"): [f(-1), f(-1), f(3), f(3), f(3), f(-1), f(1.25)],
        ("half_open", "zero"): [f(-1), 0, 0, f(3), 0, 0, f(1.25)],
        ("half_open", "extrapolate"): [f(-1), f(-1), f(3), f(3), f(4), f(-5), f(1.25)],
    }
    for (boundary, oob), want in expect.items():
        model = compile_model(src, ContractOptions(L=5, scheme="float32", boundary=boundary, oob=oob,
                                                   symbolic="tabulate"))
        for name, ev in backends(model).items():
            np.testing.assert_allclose(ev(xs)[:, 0], want, rtol=1e-6, atol=1e-6, err_msg=f"{name} {boundary}/{oob}")
        exact = compile_model(src, ContractOptions(L=5, scheme="float32", boundary=boundary, oob=oob))
        assert exact.layers[0].n_symbolic == 1 and exact.layers[0].n_edges == 0
        for name, ev in backends(exact).items():
            np.testing.assert_allclose(ev(xs)[:, 0], f(xs[:, 0].astype(np.float64)), rtol=1e-6, atol=1e-6,
                                       err_msg=f"exact {name} {boundary}/{oob}")


# ---------------------------------------------------------------------------------------------
# (d) quantization golden tests
# ---------------------------------------------------------------------------------------------

def test_int8_golden():
    f = np.array([[[-2.0, 0.0, 1.0, 2.0, 0.5]]])
    q, scale, offset = quantize(f, "int8")
    assert offset is None and q.dtype == np.int8 and scale.dtype == np.float32
    assert scale[0, 0] == np.float32(2.0 / 127)
    s = np.float64(np.float32(2.0 / 127))
    assert q[0, 0].tolist() == np.rint(f[0, 0] / s).astype(int).tolist()
    assert q[0, 0, 0] == -127 and q[0, 0, 3] == 127 and q[0, 0, 1] == 0 and q[0, 0, 2] == 64


def test_uint8_golden():
    f = np.array([[[-1.0, 0.0, 3.0, 1.0]]])
    q, scale, offset = quantize(f, "uint8")
    assert q.dtype == np.uint8
    assert offset[0, 0] == np.float32(-1.0)
    assert scale[0, 0] == np.float32(4.0 / 255)
    s = np.float64(np.float32(4.0 / 255))
    # q is computed against the stored float32 scale, which is slightly above 4/255: 2/s = 127.4999...
    assert s > 4.0 / 255
    assert q[0, 0].tolist() == [0, int(np.rint(1 / s)), 255, int(np.rint(2 / s))] == [0, 64, 255, 127]


@pytest.mark.parametrize("scheme", ["int8", "uint8"])
@pytest.mark.parametrize("c", [0.0, 3.25, -7.5, 1e-30])
def test_constant_segment(scheme, c):
    f = np.full((2, 3, 5), c)
    q, scale, offset = quantize(f, scheme)
    layer = dataclasses.make_dataclass("L", ["table", "scale", "offset"])(q, scale, offset)
    deq = dequantize(layer.table, layer.scale, layer.offset)
    if c == 0.0 or scheme == "uint8":
        # zero (int8) or any constant (uint8): scale 1 and the value exactly representable
        assert np.all(scale == 1)
        assert np.all(deq == np.float32(c))
    else:
        assert np.all(np.abs(q) == 127) and np.all(scale == np.float32(abs(c) / 127))
        np.testing.assert_allclose(deq, c, rtol=2e-7)


@settings(max_examples=150)
@given(seed=st.integers(0, 2**32 - 1), scheme=st.sampled_from(["int8", "uint8"]),
       mag=st.sampled_from([1e-20, 1e-3, 1.0, 1e3, 1e20]), shift=st.sampled_from([0.0, 1.0, -50.0]))
def test_quantization_error_within_half_step(seed, scheme, mag, shift):
    rng = np.random.default_rng(seed)
    f = (rng.normal(size=(3, 4, int(rng.integers(2, 40)))) + shift) * mag
    f[0, 0] = f[0, 0, 0]  # a constant segment
    if rng.random() < 0.5:
        f[1, 1, rng.integers(0, f.shape[2])] = 0.0
    q, scale, offset = quantize(f, scheme)
    if scheme == "int8":
        assert q.min() >= -127 and q.max() <= 127
        m = np.abs(f).max(axis=2)
        expect = np.where(m == 0, np.float32(1), (m / 127).astype(np.float32))
        np.testing.assert_array_equal(scale, expect)
    else:
        lo, hi = f.min(axis=2), f.max(axis=2)
        np.testing.assert_array_equal(offset, lo.astype(np.float32))
        np.testing.assert_array_equal(scale, np.where(hi == lo, np.float32(1), ((hi - lo) / 255).astype(np.float32)))
    layer = dataclasses.make_dataclass("L", ["table", "scale", "offset"])(q, scale, offset)
    deq = dequantize(layer.table, layer.scale, layer.offset).astype(np.float64)
    # scale/2 from rounding to the grid; the stored float32 scale/offset and the float32 multiply-add
    # add a few ulp of the largest magnitude in the segment.
    amax = np.abs(f).max(axis=2, keepdims=True)
    tol = scale.astype(np.float64)[..., None] / 2 + 4 * EPS32 * amax + 1e-45
    err = np.abs(deq - f)
    assert np.all(err <= tol), f"max err/tol {np.max(err / tol):.4g}"


@settings(max_examples=40)
@given(src=sources(symbolic=False, max_layers=1), scheme=st.sampled_from(["int8", "uint8", "float16"]))
def test_compiled_tables_quantize_the_spline(src, scheme):
    """Interior samples of every compiled table, dequantized, are within the scheme's step of the
    float64 pykan spline at that sample (independent of the compiler's own sampling code)."""
    seed = src.provenance["seed"]
    L = 9
    model = compile_model(src, ContractOptions(L=L, scheme=scheme))
    layer, lut = src.layers[0], model.layers[0]
    deq = dequantize(lut.table, lut.scale, lut.offset).astype(np.float64)
    for e, (i, j) in enumerate(zip(lut.edge_src.tolist(), lut.edge_dst.tolist(), strict=True)):
        t = lut.knots[i].astype(np.float64)
        for kseg in range(lut.n_segments):
            if t[kseg + 1] <= t[kseg]:
                continue
            xs = t[kseg] + (t[kseg + 1] - t[kseg]) * np.arange(1, L - 1) / (L - 1)
            ref = layer.spline_term(i, j, xs)
            got = deq[e, kseg, 1 : L - 1]
            amax = np.abs(ref).max(initial=0)
            if scheme == "float16":
                tol = 2.0**-11 * np.abs(ref) + 6e-8 + 1e-12 * amax
            else:
                tol = float(lut.scale[e, kseg]) / 2 + 4 * EPS32 * amax + 1e-9 * amax
            assert np.all(np.abs(got - ref) <= tol), (seed, e, kseg, np.abs(got - ref).max(), tol)


# ---------------------------------------------------------------------------------------------
# (e) right-continuity at interior knots, left-limit samples at segment ends
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("interp", INTERPS)
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("oob", OOB_POLICIES)
def test_interior_knot_right_continuous_and_left_limit(interp, boundary, oob):
    """The truth-table layer jumps at its interior knot t_1 = 1 (segment 0 ends with the left-limit
    sample 3, segment 1 starts with 5): x = 1 is evaluated in segment 1 (right-continuous, u = 0),
    nextafter(1, -inf) in segment 0 (-> the left limit 3)."""
    one = np.float32(1)
    below = np.nextafter(one, np.float32(-np.inf))
    x = np.array([[one], [below], [np.nextafter(one, np.float32(np.inf))]], dtype=np.float32)
    left = 3.0 if interp == "nearest" else 2 + float(below / np.float32(0.5) - np.float32(1))
    for name, ev in _truth_backends(interp, boundary, oob).items():
        y = ev(x)[:, 0].astype(np.float64)
        assert y[0] == 5.0, f"{name}: x = interior knot must start the right segment, got {y[0]}"
        assert y[1] == pytest.approx(left, abs=1e-6) and abs(y[1] - 3.0) < 1e-5, f"{name}: left limit {y[1]}"
        assert 5.0 <= y[2] < 5.0 + 1e-5, f"{name}: just above the knot {y[2]}"


def test_pykan_duplicate_knots_are_continuous():
    """Why the generic test below is the compiler's left-limit check: pykan's B_batch zeroes every
    basis function whose recursion meets a zero-width span (nan_to_num of inf*0), so pykan splines
    with repeated knots stay continuous; the compiler must reproduce exactly that."""
    grid = np.array([[0.0, 1.0, 2.0, 2.0, 3.0, 4.0]])
    B = bspline_basis(np.array([1.5, 2.0, 2.5]), grid[0], 1)
    np.testing.assert_array_equal(B[:, 1:3], 0)  # the two functions touching [2, 2]
    one = np.ones((1, 1))
    layer = SourceLayer(grid=grid, coef=np.array([[[3.0, 1.0, 5.0, 2.0]]]), k=1, scale_base=one, scale_sp=one,
                        mask=one, sym_mask=np.zeros((1, 1)), sym_affine=np.zeros((1, 1, 4)), sym_names=(("0",),),
                        subnode_scale=np.ones(1), subnode_bias=np.zeros(1), node_scale=np.ones(1),
                        node_bias=np.zeros(1), n_sum=1)
    src = SourceModel(layers=(layer,), input_id=np.zeros(1, np.int64), n_inputs=1, base_fun="zero")
    model = compile_model(src, ContractOptions(L=5, scheme="float32"))
    T = model.layers[0].table[0]
    assert T[1, -1] == pytest.approx(0.0) and T[3, 0] == pytest.approx(0.0)  # S(2-) = S(2) = 0
    xs = np.linspace(-0.5, 4.5, 101, dtype=np.float32)[:, None]
    np.testing.assert_allclose(NumpyEvaluator(model)(xs), src.forward(xs.astype(np.float64)), atol=1e-6)


@settings(max_examples=60)
@given(src=sources(symbolic=False, max_layers=1, ks=st.integers(1, 5)))
def test_segment_end_samples_are_limits(src):
    """For every edge and nonzero-width segment: the first sample is pykan's (right-continuous) value
    at t_k, the last is the left limit at t_{k+1}; at every interior knot both evaluators return the
    right value and nextafter(t, -inf) returns (close to) the left limit."""
    seed = src.provenance["seed"]
    layer = src.layers[0]
    L = 7
    model = compile_model(src, ContractOptions(L=L, scheme="float32"))
    lut = model.layers[0]
    for e, (i, j) in enumerate(zip(lut.edge_src.tolist(), lut.edge_dst.tolist(), strict=True)):
        t = layer.grid[i]
        A = float(np.abs(layer.mask[i, j] * layer.scale_sp[i, j]) * np.abs(layer.coef[i, j]).max()) + 1e-30
        for kseg in range(lut.n_segments):
            a, b = t[kseg], t[kseg + 1]
            if b <= a:
                continue
            if kseg < lut.n_segments and a < t[-1]:
                right = layer.spline_term(i, j, np.array([a]))[0]
                assert lut.table[e, kseg, 0] == pytest.approx(right, abs=1e-6 * A), (seed, e, kseg, "right value")
            left = layer.spline_term(i, j, np.array([b - 1e-9 * (b - a)]))[0]
            assert lut.table[e, kseg, L - 1] == pytest.approx(left, abs=1e-6 * A), (seed, e, kseg, "left limit")
    # through the evaluators: at every interior knot of input row 0 (right segment) and just below it
    i = 0
    t32 = lut.knots[i]
    interior = [v for v in np.unique(t32[1:-1]) if t32[0] < v < t32[-1]]
    assume(interior)
    rows = []
    for v in interior:
        for xv in (v, np.nextafter(v, np.float32(-np.inf))):
            row = np.zeros(src.n_inputs, np.float32)
            row[src.input_id[i]] = xv
            rows.append(row)
    x = np.stack(rows)
    y_ref = NumpyEvaluator(model)(x).astype(np.float64)
    y_nb = NumbaEvaluator(model)(x).astype(np.float64)
    # pykan (float64) at exactly the same float32 points; L=7 linear interpolation of a degree-k piece
    # errs by at most T_k''(1) A / (2 (L-1)^2) per edge, so compare against a sum of those.
    # Inputs other than row 0 are 0: they contribute their own (in- or out-of-domain) values to both.
    y64 = src.forward(x.astype(np.float64))
    s64 = src.layer_forward(_raw_sum_layer(layer), x[:, src.input_id].astype(np.float64))
    bound = combine_bound(layer, s64, 2 * edge_sum_bound(layer, src.base_fun, x[:, src.input_id], L))
    assert np.all(np.abs(y_ref - y64) <= 2 * bound + 1e-12), (seed, np.abs(y_ref - y64).max(), bound.max())
    assert_outputs_close(y_nb, y_ref, rel=1e-5)
