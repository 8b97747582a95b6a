"""The oracle's rounding allowance (``lutkan.testing.rounding_allowance``, docs/contract.md §5): zero where no
hidden value can move, sized by the downstream slope where one can, and never wide enough to hide a real error."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lutkan.artifact import LUTModel
from lutkan.contract import ContractOptions
from lutkan.evaluators.numpy_eval import NumpyEvaluator
from lutkan.testing import assert_backends_agree, rounding_allowance
from lutkan.testing.models import random_model, random_source


def test_single_layer_has_no_allowance():
    model = random_model((4, 3), ContractOptions(L=8), seed=1)
    x = np.random.default_rng(0).normal(0, 2, (50, 4)).astype(np.float32)
    assert np.all(rounding_allowance(model, x) == 0)


def test_allowance_grows_with_the_downstream_slope():
    """A steep exact symbolic edge downstream (cos(a*h) with a large a) turns one rounding step of h into a
    visible output change; the allowance follows it, a flat one (a small a) stays tiny."""
    src = random_source([3, 2, 1], seed=2, symbolic=1.0)
    layer = src.layers[1]
    names = tuple(tuple("cos" for _ in row) for row in layer.sym_names)
    steep = np.zeros_like(layer.sym_affine)
    steep[..., 0], steep[..., 2] = 1e3, 1.0  # c*cos(a*h + b) + d with a = 1000, c = 1
    flat = steep.copy()
    flat[..., 0] = 1e-3
    x = np.random.default_rng(3).normal(0, 1, (64, 3)).astype(np.float32)
    allow = {}
    for name, aff in (("steep", steep), ("flat", flat)):
        l1 = dataclasses.replace(layer, sym_names=names, sym_affine=aff, sym_mask=np.ones_like(layer.sym_mask))
        s = dataclasses.replace(src, layers=(src.layers[0], l1))
        from lutkan.compiler import compile_model

        allow[name] = float(rounding_allowance(compile_model(s, ContractOptions(L=16)), x).max())
    assert allow["steep"] > 100 * allow["flat"] > 0


def test_allowance_does_not_hide_a_wrong_table():
    """A table error far above float32 rounding still fails the comparison."""
    model = random_model((4, 5, 2), ContractOptions(L=16, scheme="float32"), seed=4)
    x = np.random.default_rng(5).normal(0, 1, (200, 4)).astype(np.float32)
    l0 = model.layers[0]
    bad0 = dataclasses.replace(l0, table=(l0.table + np.float32(1e-3)).astype(np.float32))
    bad = LUTModel(layers=(bad0,) + model.layers[1:], contract=model.contract, base_fun=model.base_fun,
                   input_id=model.input_id, n_inputs=model.n_inputs)
    wrong = NumpyEvaluator(bad)(x)
    with pytest.raises(AssertionError, match="tolerance"):
        assert_backends_agree(model, x, include=("numba",), reference=wrong, rel=1e-6)
