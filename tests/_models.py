"""Seeded random ``SourceModel``s and adversarial inputs for tests and benchmarks (no torch needed).

``random_source(width, G=5, k=3, ...)`` builds a pykan-shaped network directly from NumPy arrays
(extended knot rows of ``G + 2k + 1`` knots per input, random B-spline coefficients, base/spline
scales, masks, optional symbolic edges, multiplication nodes, affines, an ``input_id`` permutation);
compile it with ``lutkan.compile_model(src, ContractOptions(...))``.

``probe_inputs(model, n, seed)`` gives float32 rows for a compiled model that hit every case of the
contract on layer 0: ordinary values, exact knots, domain ends and their float32 neighbours, far
out-of-bounds values, NaN, +-inf, +-1e38, +-FLT_MAX, denormals and signed zeros.

Example::

    src = random_source([78, 32, 16, 1], G=5, k=3, seed=0)
    model = lutkan.compile_model(src, ContractOptions(L=64, scheme="int8"))
    x = probe_inputs(model, 256, seed=1)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from lutkan.artifact import LUTModel
from lutkan.source import SourceLayer, SourceModel

SYMBOLIC_CHOICES = ("sin", "x^2", "tanh", "exp", "gaussian")
"""Symbolic functions that are finite on any domain (used when ``symbolic > 0``)."""


def _knot_rows(rng: np.random.Generator, I: int, G: int, k: int, uniform: bool, zero_width: int) -> np.ndarray:
    """(I, G+2k+1) float64 extended knot rows; the last ``zero_width`` rows have all knots equal."""
    lo = rng.uniform(-3.0, -0.5, size=I)
    hi = lo + rng.uniform(1.0, 5.0, size=I)
    rows = np.empty((I, G + 2 * k + 1))
    for i in range(I):
        if uniform:
            inner = np.linspace(lo[i], hi[i], G + 1)
        else:  # pykan-like adaptive grid: random positive steps, rescaled to [lo, hi]
            steps = rng.gamma(1.5, size=G)
            inner = lo[i] + (hi[i] - lo[i]) * np.concatenate([[0.0], np.cumsum(steps) / steps.sum()])
        h_lo, h_hi = inner[1] - inner[0], inner[-1] - inner[-2]
        rows[i] = np.concatenate([inner[0] - h_lo * np.arange(k, 0, -1), inner, inner[-1] + h_hi * np.arange(1, k + 1)])
    for i in range(I - zero_width, I):
        rows[i] = rng.uniform(-1, 1)
    return rows


def random_source(width: Sequence[int], G: int = 5, k: int = 3, *, uniform: bool = True, seed: int = 0,
                  mult_groups: Mapping[int, Sequence[int]] | None = None, masked: float = 0.0,
                  symbolic: float = 0.0, zero_width: int = 0, affine: bool = True, base_fun: str = "silu",
                  n_inputs: int | None = None, permute_inputs: bool = True) -> SourceModel:
    """A random pykan-shaped ``SourceModel``.

    Args:
        width: node counts per layer boundary, e.g. ``[78, 32, 16, 1]``.
        G, k: grid intervals and spline order (``K = G + 2k`` segments per input).
        uniform: evenly spaced knots per input row (else pykan-like adaptive, non-uniform rows).
        seed: everything is drawn from ``numpy.random.default_rng(seed)``.
        mult_groups: layer index -> arities of its multiplication nodes (the last ``len(groups)`` of
            that layer's ``width[l+1]`` nodes are products; the layer gets ``n_sum + sum(groups)`` subnodes).
        masked: fraction of edges whose numeric mask is 0 (pruned; inactive unless symbolic).
        symbolic: fraction of edges given a symbolic function (from ``SYMBOLIC_CHOICES``).
        zero_width: number of inputs per layer whose knot row has zero width (constant features).
        affine: random subnode/node affines (else identity: scale 1, bias 0).
        base_fun: ``silu``, ``identity`` or ``zero``.
        n_inputs: model input count; if larger than ``width[0]`` layer 0 reads a random subset
            (``input_id``), else a random permutation (identity if ``permute_inputs`` is False).
    """
    rng = np.random.default_rng(seed)
    groups_of = {l: tuple(int(g) for g in gs) for l, gs in (mult_groups or {}).items()}
    layers = []
    for l in range(len(width) - 1):
        I, n_nodes = int(width[l]), int(width[l + 1])
        groups = groups_of.get(l, ())
        n_sum = n_nodes - len(groups)
        if n_sum < 0:
            raise ValueError(f"layer {l}: {len(groups)} mult groups but only {n_nodes} nodes")
        O = n_sum + sum(groups)
        mask = (rng.random((I, O)) >= masked).astype(np.float64)
        sym_mask = ((rng.random((O, I)) < symbolic)).astype(np.float64)
        names = tuple(tuple(SYMBOLIC_CHOICES[rng.integers(len(SYMBOLIC_CHOICES))] if sym_mask[j, i] else "0"
                            for i in range(I)) for j in range(O))
        sym_affine = np.zeros((O, I, 4))
        sym_affine[..., 0] = rng.uniform(0.5, 1.5, size=(O, I))
        sym_affine[..., 1] = rng.uniform(-0.5, 0.5, size=(O, I))
        sym_affine[..., 2] = rng.uniform(-1.0, 1.0, size=(O, I))
        sym_affine[..., 3] = rng.uniform(-0.2, 0.2, size=(O, I))
        ones_o, ones_n = np.ones(O), np.ones(n_nodes)
        layers.append(SourceLayer(
            grid=_knot_rows(rng, I, G, k, uniform, min(zero_width, I)),
            coef=rng.normal(0.0, 0.5, size=(I, O, G + k)), k=k,
            scale_base=rng.normal(0.0, 0.3, size=(I, O)), scale_sp=rng.uniform(0.5, 1.5, size=(I, O)),
            mask=mask, sym_mask=sym_mask, sym_affine=sym_affine, sym_names=names,
            subnode_scale=rng.uniform(0.5, 1.5, O) if affine else ones_o,
            subnode_bias=rng.normal(0.0, 0.1, O) if affine else 0 * ones_o,
            node_scale=rng.uniform(0.5, 1.5, n_nodes) if affine else ones_n,
            node_bias=rng.normal(0.0, 0.1, n_nodes) if affine else 0 * ones_n,
            n_sum=n_sum, mult_groups=groups,
        ))
    n_in = int(width[0]) if n_inputs is None else int(n_inputs)
    if n_in > width[0]:
        input_id = np.sort(rng.choice(n_in, size=int(width[0]), replace=False))
    else:
        input_id = rng.permutation(n_in) if permute_inputs else np.arange(n_in)
    return SourceModel(layers=tuple(layers), input_id=input_id.astype(np.int64), n_inputs=n_in,
                       base_fun=base_fun, symbolic_enabled=symbolic > 0,
                       provenance={"generator": "tests._models.random_source", "seed": seed})


F32 = np.float32
FLT_MAX = np.finfo(np.float32).max
SPECIALS = np.array([np.nan, np.inf, -np.inf, 1e38, -1e38, FLT_MAX, -FLT_MAX, 1e-40, -1e-40, 1e-45, 0.0, -0.0,
                     1e6, -1e6], dtype=np.float32)
"""Values that are not ordinary data: non-finite, overflowing, denormal, signed zeros, far out of range."""


def probe_inputs(model: LUTModel, n: int, seed: int = 0, *, special_fraction: float = 0.15) -> np.ndarray:
    """(n, n_inputs) float32 rows mixing ordinary data and every edge case of layer 0's knots.

    Per row and column: with probability 0.35 an ordinary value in a slightly widened domain,
    0.3 an exact knot, 0.15 a domain end or its nextafter neighbours, ``special_fraction`` a value
    from ``SPECIALS``; a few rows are all-special. Columns no layer-0 input reads get normal noise.
    """
    rng = np.random.default_rng(seed)
    knots = model.layers[0].knots
    x = rng.normal(size=(n, model.n_inputs)).astype(F32)
    for i, c in enumerate(model.input_id.tolist()):  # layer-0 input i reads model column c
        t = knots[i]
        lo, hi = t[0], t[-1]
        span = max(float(hi - lo), 1e-3)
        ordinary = rng.uniform(lo - 0.2 * span, hi + 0.2 * span, size=n).astype(F32)
        at_knot = t[rng.integers(len(t), size=n)]
        ends = np.array([lo, hi, np.nextafter(lo, F32(-np.inf)), np.nextafter(lo, F32(np.inf)),
                         np.nextafter(hi, F32(-np.inf)), np.nextafter(hi, F32(np.inf)),
                         lo - 10 * span, hi + 10 * span], dtype=F32)
        at_end = ends[rng.integers(len(ends), size=n)]
        special = SPECIALS[rng.integers(len(SPECIALS), size=n)]
        u = rng.random(n)
        col = np.where(u < 0.35, ordinary, np.where(u < 0.65, at_knot, np.where(u < 1 - special_fraction, at_end,
                                                                                   special)))
        x[:, c] = col
    # keep plenty of rows free of non-finite/huge values so the ordinary region is well covered
    clean = rng.random(n) < 0.5
    x[clean] = np.where(np.isfinite(x[clean]) & (np.abs(x[clean]) < 1e5), x[clean], F32(0.25))
    # a few rows where every column is the same special value
    for r, v in zip(range(min(n, len(SPECIALS))), SPECIALS):
        if r % 3 == 0:
            x[n - 1 - r] = v
    return np.ascontiguousarray(x)
