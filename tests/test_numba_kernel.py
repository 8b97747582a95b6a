"""The Numba layer kernel (``lutkan.evaluators.lut_kernel``): its polynomial exp, its agreement with the 0.1
kernel (kept as the bench baseline), tiles and row blocks.

The new kernel performs the same float32 operations in the same order as the 0.1 kernel, except the SiLU's exp:
so with the identity or zero base branch the two are bitwise equal on every contract, and with SiLU they differ
only through the exp (at most ``EXP_MAX_ULP`` ulp).
"""

from __future__ import annotations

import numpy as np
import pytest

from lutkan.contract import FLT_MAX, OPTION_GRID, ContractOptions
from lutkan.evaluators.lut_kernel import EXP_HI, EXP_LO, EXP_MAX_ULP, TILE_ROWS, exp32, max_exp_ulp, silu
from lutkan.evaluators.lut_kernel_v1 import run_v1
from lutkan.evaluators.numba_eval import NumbaEvaluator
from lutkan.evaluators.numpy_eval import base_branch
from lutkan.metrics import assert_outputs_close
from lutkan.testing.inputs import adversarial_inputs
from lutkan.testing.models import random_model


def test_exp_within_one_ulp_on_a_sample_of_every_float32():
    """Every 1,009th float32 of [EXP_LO, EXP_HI] (the exhaustive check: ``python -m lutkan.evaluators.lut_kernel``),
    plus the ends and the values around them."""
    parts = []
    for sign, lim in ((1, EXP_HI), (-1, -EXP_LO)):
        top = int(np.float32(lim).view(np.int32))
        parts.append(np.arange(0, top + 1, 1009, dtype=np.int32).view(np.float32) * np.float32(sign))
    ends = np.array([EXP_HI, EXP_LO, 0.0, -0.0, 1e-45, -1e-45, 1.0, -1.0, 0.5, 88.0, -17.0], np.float32)
    z = np.concatenate(parts + [ends])
    assert max_exp_ulp(z) <= EXP_MAX_ULP
    above = np.array([np.nextafter(EXP_HI, np.float32(np.inf)), 89.0, 1e30, FLT_MAX], np.float32)
    with np.errstate(over="ignore"):
        assert np.all(np.isinf(np.exp(above.astype(np.float64)).astype(np.float32)))  # float32 exp overflows there
    assert np.all(np.isposinf(exp32(above)))
    below = np.array([-80.5, -100.0, -FLT_MAX], np.float32)
    assert np.all((exp32(below) > 0) & (exp32(below) < 1e-34))  # 1 + e == 1: the SiLU is x exactly


def test_silu_matches_numpy_within_rounding():
    """silu(x) = x * (1 / (1 + exp(-x))) on finite float32 (the kernel clips x to +-FLT_MAX first): against the
    NumPy reference, a few ulps of x, including huge, tiny and denormal x and the exp overflow boundary."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 3, 200_000), rng.uniform(-100, 100, 200_000),
                        [0.0, -0.0, 1e-45, -1e-45, 1e-38, -88.7, -88.72284, -89.0, 88.73, 1e30, -1e30, FLT_MAX,
                         -FLT_MAX]]).astype(np.float32)
    got, ref = silu(x), base_branch("silu", x)
    err = np.abs(got.astype(np.float64) - ref.astype(np.float64))
    ulp = np.spacing(np.abs(x).astype(np.float64)) * 2.0**29  # a float32 ulp of x
    assert np.all(err <= 4 * ulp + 1e-37), float(err.max())


def _run_both(model, x):
    """Layer 0's edge sums from the new and the 0.1 kernel."""
    nb = NumbaEvaluator(model)
    k = nb.kernels[0]
    h = np.ascontiguousarray(x[:, np.asarray(model.input_id)])
    new, old = k(h), np.empty((h.shape[0], k.out_dim), np.float32)
    run_v1(h, k.knots, k.bounds, k.seg_scale, k.dense, k.base_weight, k.edge_mask, *k.flags, old)
    return new, old


@pytest.mark.parametrize("scheme,interp,boundary,oob", OPTION_GRID)
def test_kernel_bitwise_equal_to_v1_without_silu(scheme, interp, boundary, oob):
    """Identity base branch: no exp involved, so the new kernel equals the 0.1 kernel bit for bit (NaN where
    NaN), on adversarial inputs (knots, domain ends, out of domain, NaN, +-inf), across tile boundaries."""
    L = 4 if interp == "poly" else 9
    model = random_model((7, 6, 2), ContractOptions(L=L, scheme=scheme, interp=interp, boundary=boundary, oob=oob),
                         G=4, k=3, seed=11, base_fun="identity", knots=("nonuniform", "repeated"))
    x = adversarial_inputs(model, TILE_ROWS + 37, seed=2)
    new, old = _run_both(model, x)
    np.testing.assert_array_equal(new, old)


@pytest.mark.parametrize("interp", ["linear", "nearest", "poly"])
def test_kernel_with_silu_equals_v1_within_exp_rounding(interp):
    model = random_model((9, 5, 2), ContractOptions(L=4 if interp == "poly" else 17, scheme="float32", interp=interp,
                                                     oob="extrapolate"), G=5, k=3, seed=3)
    x = adversarial_inputs(model, 700, seed=4)
    new, old = _run_both(model, x)
    assert np.array_equal(np.isnan(new), np.isnan(old))
    assert_outputs_close(new, old, rel=1e-6, what=f"silu {interp}")


@pytest.mark.parametrize("n", [1, 15, 16, 255, 256, 257, TILE_ROWS - 1, TILE_ROWS, TILE_ROWS + 1, 3 * TILE_ROWS + 5])
def test_rows_are_independent_across_tiles_and_threads(n):
    """A batch equals its rows evaluated one at a time (tiles, the few-rows path, groups of 4 inputs with a
    remainder of 2), and 3 threads equal 1 bit for bit."""
    model = random_model((10, 7, 3), ContractOptions(L=12, scheme="int8"), G=6, k=3, seed=8, mult_groups={0: (2,)})
    x = adversarial_inputs(model, max(n, 1), seed=n)[:n]
    one = NumbaEvaluator(model)
    y = one(x)
    rows = np.concatenate([one(x[i:i + 1]) for i in range(n)])
    np.testing.assert_array_equal(y, rows)
    np.testing.assert_array_equal(NumbaEvaluator(model, threads=3)(x), y)


def test_threads_argument_is_checked():
    model = random_model((3, 2), seed=1)
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="threads"):
            NumbaEvaluator(model, threads=bad)
