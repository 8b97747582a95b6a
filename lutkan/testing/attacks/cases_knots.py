"""Class 7: a 1-ulp summation-order difference of a hidden value on opposite sides of a knot.

``knot_straddle_model`` builds the 3-layer int8 case of issue 14 on purpose: it evaluates layer 0 with the NumPy
reference and the Numba kernel, picks a sample whose hidden value differs by float32 rounding between the two
(their summation orders differ), and moves an interior knot of layer 1 exactly onto the larger of the two values,
so that the two backends evaluate adjacent segments, whose quantized tables jump at the knot. The outputs then
differ by far more than float32 rounding; the oracle's ``rounding_allowance`` (hidden values perturbed by
+-16 eps x magnitude) straddles the knot as well and covers the difference, while the bare comparison does not.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from lutkan.contract import ContractOptions

WIDTH = [4, 4, 4, 2]


def knot_straddle_model(seed: int = 0, L: int = 16, n: int = 4000):
    """(model, x (1, 4), info) for the straddle case, or None if no hidden value of ``n`` samples differs."""
    from lutkan.compiler import compile_model
    from lutkan.evaluators.numba_eval import NumbaEvaluator
    from lutkan.evaluators.numpy_eval import NumpyEvaluator
    from lutkan.testing.models import random_source

    opts = ContractOptions(L=L, scheme="int8")
    src = random_source(WIDTH, G=5, k=3, seed=seed, amplitude="signed", knots="uniform")
    m = compile_model(src, opts)
    x = np.random.default_rng(seed).uniform(-2, 2, (n, WIDTH[0])).astype(np.float32)
    h_np, h_nb = NumpyEvaluator(m)(x, upto=1), NumbaEvaluator(m)(x, upto=1)
    g1 = src.layers[1].grid
    inside = (h_np > g1[:, 3][None, :]) & (h_np < g1[:, -4][None, :])  # interior of layer 1's grid
    rows, cols = np.nonzero((h_np != h_nb) & inside)
    if rows.size == 0:
        return None
    r, i = int(rows[0]), int(cols[0])
    v = max(h_np[r, i], h_nb[r, i])
    grid = g1.copy()
    mid = grid.shape[1] // 2
    grid[i] += float(v) - grid[i, mid]
    grid[i, mid] = float(v)  # exactly the float32 hidden value
    grid[i] = np.maximum.accumulate(grid[i])
    layers = list(src.layers)
    layers[1] = replace(layers[1], grid=grid)
    model = compile_model(replace(src, layers=tuple(layers)), opts)
    info = {"row": r, "hidden_input": i, "h_numpy": float(h_np[r, i]), "h_numba": float(h_nb[r, i]),
            "knot": float(v)}
    return model, x[r:r + 1], info


def _straddle(info):
    from lutkan.evaluators.numba_eval import NumbaEvaluator
    from lutkan.evaluators.numpy_eval import NumpyEvaluator
    from lutkan.testing import assert_backends_agree, rounding_allowance

    for seed in range(10):
        found = knot_straddle_model(seed)
        if found is not None:
            break
    assert found is not None, "no 1-ulp hidden difference between NumPy and Numba in 10 seeds"
    model, x, where = found
    y_np, y_nb = NumpyEvaluator(model)(x), NumbaEvaluator(model)(x)
    scale = max(float(np.abs(y_np).max()), 1.0)
    rel = float(np.abs(y_np.astype(np.float64) - y_nb).max()) / scale
    allow = float(rounding_allowance(model, x).max())
    info.update(where, seed=seed, rel_numpy_numba=rel, allowance_rel=allow / scale)
    assert rel > 1e-5, f"the straddle moved the output by only {rel:.2g} (no table jump at that knot)"
    try:
        assert_backends_agree(model, x, allowance=False)
    except AssertionError:
        pass
    else:
        raise AssertionError("without the rounding allowance the backends still agree: the case shows nothing")
    assert_backends_agree(model, x, what="knot straddle")  # the allowance covers the jump
    return "identical", (f"NumPy vs Numba differ by {rel:.2g} relative (1-ulp hidden difference across a knot); "
                         f"the oracle's allowance is {allow / scale:.2g} relative and covers it")


def _random_3layer(info):
    """How large the effect is without crafting: 3-layer int8 models on uniform random inputs."""
    from lutkan.evaluators.numba_eval import NumbaEvaluator
    from lutkan.evaluators.numpy_eval import NumpyEvaluator
    from lutkan.testing import assert_backends_agree
    from lutkan.testing.models import random_model

    worst = 0.0
    for seed in range(4):
        m = random_model(WIDTH, ContractOptions(L=16, scheme="int8"), seed=seed, amplitude="signed")
        x = np.random.default_rng(seed).uniform(-2, 2, (2000, WIDTH[0])).astype(np.float32)
        a, b = NumpyEvaluator(m)(x), NumbaEvaluator(m)(x)
        worst = max(worst, float(np.abs(a.astype(np.float64) - b).max() / max(np.abs(a).max(), 1.0)))
        assert_backends_agree(m, x[:256], include=("numba", "ort-function", "plugin-custom"))
    info["rel_numpy_numba_random"] = worst
    return "identical", f"worst NumPy vs Numba relative difference on 4 x 2000 random rows: {worst:.2g}"


CASES = [("3-layer int8: hidden value straddles a knot", _straddle),
         ("3-layer int8: random inputs", _random_3layer)]
