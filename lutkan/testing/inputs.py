"""Adversarial inputs: the one generator of rows that hit every case of the contract on layer 0.

Per layer-0 input (knot row ``t``, domain ``[t_0, t_K]``) the value classes are ``CATEGORIES``:
ordinary values in a slightly widened domain, exact knots, knots +-1 float32 ulp, the domain ends,
their float32 neighbours and +-1 beyond them, far out of the domain, and ``SPECIALS`` (NaN, +-inf,
+-1e38, +-FLT_MAX, denormals, signed zeros, +-1e6). Works for a compiled ``LUTModel`` (its layer-0
knots) and a ``SourceModel`` (its layer-0 grid in float32, the same values)::

    x = adversarial_inputs(model, 256, seed=1)              # random mix, (256, n_inputs) float32
    x = single_value_rows(model)                            # one adversarial value per row
    h = knot_inputs(layer.knots, 64, seed=2)                # feed one layer directly
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["CATEGORIES", "FLT_MAX", "NONFINITE", "SPECIALS", "SPECIAL_VALUES", "WEIGHTS", "adversarial_inputs",
           "knot_inputs", "layer0", "single_value_rows", "value_pools"]

F32 = np.float32
FLT_MAX = float(np.finfo(np.float32).max)
SPECIALS = {
    "nan": np.nan, "+inf": np.inf, "-inf": -np.inf, "+1e38": 1e38, "-1e38": -1e38, "+FLT_MAX": FLT_MAX,
    "-FLT_MAX": -FLT_MAX, "+denormal": 1e-40, "-denormal": -1e-40, "min_denormal": 1e-45, "+0": 0.0, "-0": -0.0,
    "+1e6": 1e6, "-1e6": -1e6,
}
"""Values that are not ordinary data: non-finite, overflowing, denormal, signed zeros, far out of range."""
SPECIAL_VALUES = np.array(list(SPECIALS.values()), dtype=F32)
NONFINITE = np.array([np.nan, np.inf, -np.inf], dtype=F32)

CATEGORIES = ("ordinary", "knot", "knot_ulp", "end", "far", "special")
WEIGHTS = {"ordinary": 0.35, "knot": 0.2, "knot_ulp": 0.1, "end": 0.2, "far": 0.05}
"""Default mix of the non-special categories (scaled to ``1 - special_fraction``)."""


def layer0(model) -> tuple[np.ndarray, np.ndarray, int]:
    """(knots (I, K+1) float32, input_id, n_inputs) of a ``LUTModel`` or ``SourceModel``."""
    first = model.layers[0]
    knots = first.knots if hasattr(first, "knots") else first.grid
    return np.asarray(knots, dtype=F32), np.asarray(model.input_id, dtype=np.int64), int(model.n_inputs)


def value_pools(t: np.ndarray, *, far: float | None = None) -> dict[str, np.ndarray]:
    """The float32 values of each non-ordinary, non-special category for one knot row ``t``.

    ``far``: distance of the far-out values from the domain ends (default 10x the domain width).
    """
    t = np.asarray(t, dtype=F32)
    lo, hi = t[0], t[-1]
    span = max(float(hi) - float(lo), 1e-3)
    d = 10 * span if far is None else float(far)
    down, up = F32(-np.inf), F32(np.inf)
    ends = [lo, hi, np.nextafter(lo, down), np.nextafter(lo, up), np.nextafter(hi, down), np.nextafter(hi, up),
            lo - 1, hi + 1]
    pools = {"knot": np.unique(t), "knot_ulp": np.concatenate([np.nextafter(t, down), np.nextafter(t, up)]),
             "end": np.array(ends), "far": np.array([lo - d, hi + d])}
    return {c: v.astype(F32) for c, v in pools.items()}


def _weights(special_fraction: float, weights: Mapping[str, float] | None) -> np.ndarray:
    w = dict(WEIGHTS if weights is None else weights)
    total = sum(w.values())
    p = np.array([w.get(c, 0.0) / total * (1 - special_fraction) for c in CATEGORIES[:-1]] + [special_fraction])
    return np.cumsum(p)


def knot_inputs(knots: np.ndarray, n: int, seed: int | np.random.Generator = 0, *, special_fraction: float = 0.15,
                weights: Mapping[str, float] | None = None, far: float | None = None,
                specials: np.ndarray = SPECIAL_VALUES, clean_rows: float = 0.5) -> np.ndarray:
    """(n, I) float32 adversarial values for the I inputs of one layer with these knot rows.

    Each entry draws a category: ``special`` with probability ``special_fraction``, the others in the
    proportions of ``weights`` (default ``WEIGHTS``). A ``clean_rows`` fraction of the rows has no
    special value, so the ordinary region stays well covered.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    knots = np.asarray(knots, dtype=F32)
    cum = _weights(special_fraction, weights)
    clean = rng.random(n) < clean_rows
    out = np.empty((n, knots.shape[0]), dtype=F32)
    for i, t in enumerate(knots):
        pools = value_pools(t, far=far)
        lo, hi = float(t[0]), float(t[-1])
        span = max(hi - lo, 1e-3)
        col = {"ordinary": rng.uniform(lo - 0.2 * span, hi + 0.2 * span, n).astype(F32),
               **{c: v[rng.integers(len(v), size=n)] for c, v in pools.items()},
               "special": np.asarray(specials, F32)[rng.integers(len(specials), size=n)]}
        cat = np.minimum(np.searchsorted(cum, rng.random(n), side="right"), len(CATEGORIES) - 1)
        cat[clean & (cat == len(CATEGORIES) - 1)] = 0  # clean rows: specials become ordinary values
        out[:, i] = np.choose(cat, [col[c] for c in CATEGORIES])
    return out


def adversarial_inputs(model, n: int, seed: int = 0, *, special_fraction: float = 0.15,
                       weights: Mapping[str, float] | None = None, far: float | None = None,
                       specials: np.ndarray = SPECIAL_VALUES, clean_rows: float = 0.5) -> np.ndarray:
    """(n, n_inputs) float32 rows mixing ordinary data and every adversarial case of layer 0's knots.

    Columns layer 0 reads get ``knot_inputs`` of their knot row (same arguments); the others get
    standard normal noise. With ``special_fraction > 0`` one row in 16 (at least one) holds a single
    special value in every column.
    """
    rng = np.random.default_rng(seed)
    knots, input_id, n_inputs = layer0(model)
    x = rng.normal(size=(n, n_inputs)).astype(F32)
    x[:, input_id] = knot_inputs(knots, n, rng, special_fraction=special_fraction, weights=weights, far=far,
                                 specials=specials, clean_rows=clean_rows)
    if special_fraction > 0:  # one row in 16 (at least one) is a single special value everywhere
        for j in range(min(len(specials), max(1, n // 16))):
            x[n - 1 - 3 * j] = specials[j]
    return np.ascontiguousarray(x)


def single_value_rows(model, *, specials: np.ndarray = SPECIAL_VALUES, far: float | None = None,
                      fill: np.ndarray | None = None) -> np.ndarray:
    """Rows holding exactly one adversarial value (every category of every layer-0 input, and every
    special value in every column); the other columns hold ``fill`` (default: the middle of each
    read column's domain, 0 elsewhere), so a special value cannot hide behind another one."""
    knots, input_id, n_inputs = layer0(model)
    if fill is None:
        fill = np.zeros(n_inputs, F32)
        fill[input_id] = 0.5 * (knots[:, 0] + knots[:, -1])
    base = np.broadcast_to(np.asarray(fill, F32), (n_inputs,))
    values = {c: np.asarray(specials, F32) for c in range(n_inputs)}
    for i, c in enumerate(input_id.tolist()):
        values[c] = np.concatenate([*value_pools(knots[i], far=far).values(), values[c]])
    rows = []
    for c, vals in values.items():
        block = np.tile(base, (len(vals), 1))
        block[:, c] = vals
        rows.append(block)
    return np.ascontiguousarray(np.concatenate(rows), dtype=F32)
