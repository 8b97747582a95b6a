"""Hypothesis strategies: random models, contract options and adversarial inputs, in one place.

Test-only (needs ``hypothesis`` from the ``dev`` extra); nothing in lutkan's runtime imports it.
Models come from ``lutkan.testing.models.random_source`` and inputs from the value classes of
``lutkan.testing.inputs``, so a failing example names a reproducible ``random_source`` call
(``src.provenance["call"]``)::

    @given(src=sources(max_layers=2), opts=contract_options(), x=...)
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from lutkan.contract import BASE_FUNS, BOUNDARIES, INTERPS, OOB_POLICIES, SCHEMES, ContractOptions, valid_combination
from lutkan.testing.inputs import CATEGORIES, SPECIAL_VALUES, layer0, value_pools
from lutkan.testing.models import KNOT_KINDS, random_source

__all__ = ["contract_options", "inputs", "mult_groups", "sources"]

_L = st.integers(2, 48)
_KS, _GS = st.integers(1, 5), st.integers(1, 12)
_ROWS = st.integers(1, 6)
KNOT_MIXES = ("uniform", "nonuniform", "repeated", ("uniform", "nonuniform", "repeated"), KNOT_KINDS)
"""Knot choices a drawn model uses: one kind for every row, or a per-row mix."""


def contract_options(*, L=_L, schemes=SCHEMES) -> st.SearchStrategy[ContractOptions]:
    """Any valid ``ContractOptions``: L from ``L``, every scheme / interp / boundary / OOB policy (``poly`` only
    with float schemes; its L is set by the compiler)."""
    combos = [(s, i) for s in schemes for i in INTERPS if valid_combination(s, i)]
    return st.sampled_from(combos).flatmap(lambda si: st.builds(
        ContractOptions, L=L, scheme=st.just(si[0]), interp=st.just(si[1]), boundary=st.sampled_from(BOUNDARIES),
        oob=st.sampled_from(OOB_POLICIES)))


@st.composite
def mult_groups(draw, width, *, max_arity: int = 3) -> dict[int, tuple[int, ...]]:
    """Multiplication nodes for some layers of ``width``: 1-2 groups of arity 2..``max_arity`` (equal or not)."""
    groups = {}
    for l, n_nodes in enumerate(width[1:]):
        if draw(st.booleans()):
            n = draw(st.integers(1, min(2, n_nodes)))
            groups[l] = tuple(draw(st.integers(2, max_arity)) for _ in range(n))
    return groups


@st.composite
def sources(draw, *, max_layers: int = 2, max_width: int = 3, ks=_KS, Gs=_GS,
            symbolic: bool | None = None, mult: bool | None = None, base_fun: str | None = None,
            max_extra_inputs: int = 1, **fixed):
    """A random ``SourceModel`` (``random_source``) with drawn shape and features.

    Args:
        max_layers, max_width: 1..max_layers layers of 1..max_width nodes per boundary.
        ks, Gs: strategies for the spline order and grid size.
        symbolic, mult, base_fun: fix a feature, or a strategy to draw it from (None: drawn).
        max_extra_inputs: model inputs layer 0 does not read (0..this many).
        **fixed: ``random_source`` arguments replacing the drawn ones (a strategy is drawn from).
    """
    symbolic, mult, base_fun = (draw(v) if isinstance(v, st.SearchStrategy) else v for v in (symbolic, mult, base_fun))
    n_layers = draw(st.integers(1, max_layers))
    width = [draw(st.integers(1, max_width)) for _ in range(n_layers + 1)]
    if symbolic is None:
        symbolic = draw(st.booleans())
    if mult is None:
        groups = draw(mult_groups(width))
    else:  # every layer with >= 2 nodes gets one product of 2 subnodes
        groups = {l: (2,) for l, n in enumerate(width[1:]) if n >= 2} if mult else {}
    kw = dict(
        G=draw(Gs), k=draw(ks), seed=draw(st.integers(0, 2**32 - 1)), knots=draw(st.sampled_from(KNOT_MIXES)),
        zero_width=draw(st.integers(0, 1)), amplitude=draw(st.sampled_from(["fuzz", "signed"])),
        masked=draw(st.sampled_from([0.0, 0.3, 0.7])),
        symbolic=0.3 if symbolic else 0.0, mult_groups=groups, affine=draw(st.booleans()),
        base_fun=draw(st.sampled_from(BASE_FUNS)) if base_fun is None else base_fun,
        n_inputs=width[0] + draw(st.integers(0, max_extra_inputs)),
        input_id=draw(st.sampled_from(["permute", "sorted"])),
    )
    kw.update({k: draw(v) if isinstance(v, st.SearchStrategy) else v for k, v in fixed.items()})
    call = f"random_source({width}, " + ", ".join(f"{k}={v!r}" for k, v in kw.items()) + ")"
    return random_source(width, **kw, provenance={"call": call})


@st.composite
def inputs(draw, model, *, rows=_ROWS, far: float | None = None, specials=SPECIAL_VALUES,
           categories=CATEGORIES) -> np.ndarray:
    """(n, n_inputs) float32 rows whose every entry's value class (``CATEGORIES``) is drawn by
    hypothesis, for a ``LUTModel`` or ``SourceModel`` (unread columns use the knot row [-1, 1])."""
    knots, input_id, n_inputs = layer0(model)
    row_of = {int(c): i for i, c in enumerate(input_id)}
    n = draw(rows)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = np.empty((n, n_inputs), dtype=np.float32)
    for c in range(n_inputs):
        t = knots[row_of[c]] if c in row_of else np.array([-1.0, 1.0], np.float32)
        pools = {**value_pools(t, far=far), "special": np.asarray(specials, np.float32)}
        lo, hi = float(t[0]), float(t[-1])
        span = max(hi - lo, 1e-3)
        for r in range(n):
            cat = draw(st.sampled_from(categories))
            if cat == "ordinary":
                x[r, c] = rng.uniform(lo - 0.2 * span, hi + 0.2 * span)
            else:
                x[r, c] = pools[cat][rng.integers(len(pools[cat]))]
    return x
