"""Seeded random pykan-shaped models: the one factory of the tests, the fuzzers and the benchmarks.

``random_source(width, G, k, seed=..., ...)`` builds a ``SourceModel`` directly from NumPy draws (no
torch): extended knot rows of ``G + 2k + 1`` float32-representable knots per input (uniform,
non-uniform, with a repeated knot, on a coarse lattice, or zero-width), B-spline coefficients,
base/spline scales, pruned edges, symbolic edges, multiplication nodes of any arities, subnode/node
affines and an ``input_id`` subset or permutation. ``random_model(width, options, ...)`` compiles it.

Draws happen in a fixed order and a feature that is off draws nothing, so a seed names one model
for one set of arguments (the benchmark's ``trained-like``/``pykan-init`` models are reproduced
draw for draw)::

    src = random_source([4, 3, 2], G=5, k=3, seed=0, knots=("uniform", "nonuniform"),
                        mult_groups={0: [2]}, masked=0.2, symbolic=0.2, n_inputs=5)
    model = random_model([78, 32, 16, 1], ContractOptions(L=64, scheme="int8"), seed=1)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from lutkan.artifact import LUTModel
from lutkan.contract import ContractOptions
from lutkan.source import SourceLayer, SourceModel

__all__ = ["AMPLITUDES", "COEF_STD_TRAINED", "KNOT_KINDS", "PYKAN_NOISE_SCALE", "SMOOTH_SYMBOLIC",
           "SYMBOLIC_NAMES", "random_model", "random_source"]

KNOT_KINDS = ("uniform", "nonuniform", "repeated", "coarse", "degenerate")
"""``uniform``: pykan's ``extend_grid(linspace(lo, hi, G+1), k)``; ``nonuniform``: pykan-like adaptive
interior knots (gaps up to 20x apart) extended by the mean step; ``repeated``: non-uniform with one
interior knot doubled (a zero-width segment); ``coarse``: knots on a 1/4 lattice (zero-width
intervals anywhere, pykan's ``grid_eps=0`` case); ``degenerate``: all knots equal (a constant feature)."""

AMPLITUDES = ("fuzz", "signed", "trained-like", "pykan-init")
"""Magnitudes (and signs) of coefficients, scales and affines:

* ``fuzz``: coef ~ N(0, 0.5²), scale_base ~ N(0, 0.3²), scale_sp ~ U(0.5, 1.5), affine scales > 0;
* ``signed``: coef, scale_base ~ N(0, 1), scale_sp, subnode/node/symbolic scales of random sign;
* ``trained-like``: pykan 0.2.8's layer init (scale_base ~ U(-1, 1)/sqrt(I), scale_sp = 1/sqrt(I)) with
  coef ~ N(0, COEF_STD_TRAINED²), the size of trained checkpoints' coefficients;
* ``pykan-init``: the same scales with coef ~ U(-1/2, 1/2) * PYKAN_NOISE_SCALE / G (pykan's initial
  noise fit)."""

COEF_STD_TRAINED = 0.5
PYKAN_NOISE_SCALE = 0.3

SYMBOLIC_NAMES = ("x", "x^2", "x^3", "sin", "cos", "tanh", "exp", "gaussian", "abs")
"""Symbolic functions drawn by default: finite (and within float16) on every knot domain drawn here."""
SMOOTH_SYMBOLIC = ("x", "x^2", "tanh", "gaussian", "abs")
"""Bounded-sensitivity subset: float32 rounding of a huge hidden activation stays small relative
to the output (no sin/cos/exp of 1e10)."""

_SPAN = (1.5, 8.0)  # extended row width [t_0, t_K]: every knot lies within about +-5


def _knot_row(rng: np.random.Generator, kind: str, G: int, k: int, domain, f32: bool) -> np.ndarray:
    """One extended row of ``G + 2k + 1`` nondecreasing knots (float64; float32-representable if ``f32``)."""
    n = G + 2 * k + 1
    if kind == "uniform" and domain is not None:  # a fixed grid_range: no draws
        lo, hi = (float(v) for v in domain)
        h = (hi - lo) / G
        row = np.linspace(lo - k * h, hi + k * h, n)
    elif kind == "degenerate":
        row = np.full(n, rng.uniform(-2.0, 2.0))
    elif kind == "coarse":
        row = np.sort(rng.integers(-8, 9, n)) / 4.0 + rng.uniform(-0.5, 0.5)
    elif kind in ("uniform", "nonuniform", "repeated"):
        c, span = rng.uniform(-1.0, 1.0), rng.uniform(*_SPAN)
        inner_span = span * G / (G + 2 * k)
        if kind == "uniform":
            inner = np.linspace(0.0, 1.0, G + 1)
        else:
            gaps = rng.uniform(0.05, 1.0, G)
            inner = np.concatenate([[0.0], np.cumsum(gaps) / gaps.sum()])
        h = inner_span / G  # pykan's extend_grid: the mean interior step on both sides
        lo = c - span / 2 + k * h
        row = np.concatenate([lo - h * np.arange(k, 0, -1), lo + inner_span * inner,
                              lo + inner_span + h * np.arange(1, k + 1)])
        if kind == "repeated" and n >= 4:
            m = int(rng.integers(1, n - 2))
            row[m + 1] = row[m]
    else:
        raise ValueError(f"unknown knot kind {kind!r}; choose from {KNOT_KINDS}")
    return np.maximum.accumulate(row.astype(np.float32).astype(np.float64)) if f32 else row


def _grid(rng, I: int, G: int, k: int, kinds: tuple[str, ...], zero_width: int, domain, f32: bool) -> np.ndarray:
    picks = [kinds[0]] * I if len(kinds) == 1 else [kinds[int(j)] for j in rng.integers(len(kinds), size=I)]
    rows = [_knot_row(rng, kind, G, k, domain, f32) for kind in picks]
    for i in range(I - min(zero_width, I), I):
        rows[i] = _knot_row(rng, "degenerate", G, k, domain, f32)
    return np.stack(rows)


def _amplitudes(rng, amplitude: str, I: int, O: int, G: int, k: int):
    """(coef, scale_base, scale_sp) of one layer."""
    if amplitude == "fuzz":
        return rng.normal(0.0, 0.5, (I, O, G + k)), rng.normal(0.0, 0.3, (I, O)), rng.uniform(0.5, 1.5, (I, O))
    if amplitude == "signed":
        coef, sb = rng.normal(size=(I, O, G + k)), rng.normal(size=(I, O))
        return coef, sb, rng.uniform(0.5, 1.5, (I, O)) * rng.choice([-1.0, 1.0], (I, O))
    if amplitude == "trained-like":
        coef = rng.normal(0.0, COEF_STD_TRAINED, (I, O, G + k))
    elif amplitude == "pykan-init":
        coef = (rng.random((I, O, G + k)) - 0.5) * PYKAN_NOISE_SCALE / G
    else:
        raise ValueError(f"unknown amplitude {amplitude!r}; choose from {AMPLITUDES}")
    return coef, (rng.random((I, O)) * 2 - 1) / np.sqrt(I), np.full((I, O), 1 / np.sqrt(I))


def _sign(rng, signed: bool, n) -> np.ndarray | float:
    return rng.choice([-1.0, 1.0], n) if signed else 1.0


def _at_least_one(rng, m: np.ndarray) -> np.ndarray:
    """``m`` with one random entry set if none is (a requested feature always appears)."""
    if not m.any():
        m[tuple(int(rng.integers(s)) for s in m.shape)] = True
    return m


def _symbolic(rng, I: int, O: int, p: float, names: Sequence[str], signed: bool, mask: np.ndarray):
    """sym_mask (O, I), sym_affine (O, I, 4), names; half the symbolic edges lose their numeric part
    (``mask`` is edited in place), as pykan's ``fix_symbolic`` leaves them."""
    sym = _at_least_one(rng, rng.random((O, I)) < p)
    pick = rng.integers(len(names), size=(O, I))
    aff = np.stack([rng.uniform(0.5, 1.5, (O, I)) * _sign(rng, signed, (O, I)), rng.uniform(-1, 1, (O, I)),
                    rng.uniform(-1, 1, (O, I)), rng.uniform(-0.5, 0.5, (O, I))], axis=-1)
    mask[(sym & (rng.random((O, I)) < 0.5)).T] = 0.0
    table = tuple(tuple(names[pick[j, i]] if sym[j, i] else "0" for i in range(I)) for j in range(O))
    return sym.astype(np.float64), np.where(sym[..., None], aff, 0.0), table


def _affines(rng, affine: bool, signed: bool, O: int, n_nodes: int):
    if not affine:
        return np.ones(O), np.zeros(O), np.ones(n_nodes), np.zeros(n_nodes)
    bias = 0.5 if signed else 0.1
    sub_s = rng.uniform(0.5, 1.5, O) * _sign(rng, signed, O)
    sub_b = rng.normal(0.0, bias, O)
    node_s = rng.uniform(0.5, 1.5, n_nodes) * _sign(rng, signed, n_nodes)
    return sub_s, sub_b, node_s, rng.normal(0.0, bias, n_nodes)


def _input_id(rng, input_id, n_in: int, I: int) -> np.ndarray:
    if not isinstance(input_id, str):
        return np.asarray(input_id, dtype=np.int64)
    if input_id == "sorted":
        return np.arange(n_in) if n_in == I else np.sort(rng.choice(n_in, size=I, replace=False))
    if input_id == "permute":
        return rng.permutation(n_in)[:I]
    raise ValueError(f"input_id must be 'sorted', 'permute' or a sequence, got {input_id!r}")


def _kinds(knots: str | Sequence[str]) -> tuple[str, ...]:
    return (knots,) if isinstance(knots, str) else tuple(knots)


def random_source(width: Sequence[int], G: int = 5, k: int = 3, *, seed: int | np.random.Generator = 0,
                  knots: str | Sequence[str] = "uniform", hidden_knots: str | Sequence[str] | None = None,
                  domain: tuple[float, float] | None = None, float32_knots: bool = True, zero_width: int = 0,
                  amplitude: str = "fuzz", masked: float = 0.0, symbolic: float = 0.0,
                  symbolic_names: Sequence[str] = SYMBOLIC_NAMES,
                  mult_groups: Mapping[int, Sequence[int]] | None = None, affine: bool = True,
                  base_fun: str = "silu", n_inputs: int | None = None, input_id: str | Sequence[int] = "permute",
                  symbolic_enabled: bool | None = None, provenance: Mapping | None = None) -> SourceModel:
    """A random pykan-shaped ``SourceModel``.

    Args:
        width: node counts per layer boundary, e.g. ``[78, 32, 16, 1]`` (multiplication nodes included).
        G, k: grid intervals and spline order (``G + 2k`` segments per input).
        seed: an int for ``numpy.random.default_rng`` or a Generator to draw from (advanced in place).
        knots: a kind from ``KNOT_KINDS`` for every row, or kinds each row picks from at random.
        hidden_knots: the same for layers >= 1 (default: ``knots``).
        domain: with ``knots="uniform"``: every row is this grid range extended by k steps (no draws).
        float32_knots: round knots to float32 (as a pykan model stores them, so the float64 reference
            and the compiled float32 knots agree); False keeps the float64 rows (the benchmark zoo's).
        zero_width: the last ``zero_width`` rows of every layer are degenerate (all knots equal).
        amplitude: one of ``AMPLITUDES``.
        masked: fraction of edges pruned (numeric mask 0); at least one when > 0.
        symbolic: fraction of edges with a symbolic function from ``symbolic_names`` (random affine);
            at least one per layer when > 0; half of them lose their numeric part.
        mult_groups: layer -> arities of its multiplication nodes (the last ``len(arities)`` of that
            layer's ``width[l+1]`` nodes are products of consecutive subnodes; arities may differ).
        affine: random subnode/node affines (else the identity).
        base_fun: ``silu``, ``identity`` or ``zero``.
        n_inputs: model input count (default ``width[0]``); larger: layer 0 reads a random subset.
        input_id: ``"permute"`` (a random subset in random order), ``"sorted"`` (a sorted subset, the
            identity when ``n_inputs == width[0]``) or the explicit column of each layer-0 input.
        symbolic_enabled: the model flag (default: ``symbolic > 0``).
        provenance: extra provenance entries (JSON-safe).
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    groups_of = {int(l): tuple(int(g) for g in gs) for l, gs in (mult_groups or {}).items()}
    signed = amplitude == "signed"
    layers = []
    for l in range(len(width) - 1):
        I, n_nodes, groups = int(width[l]), int(width[l + 1]), groups_of.get(l, ())
        n_sum = n_nodes - len(groups)
        if n_sum < 0 or any(g < 2 for g in groups):
            raise ValueError(f"layer {l}: mult groups {groups} do not fit {n_nodes} nodes (arity >= 2)")
        O = n_sum + sum(groups)
        kinds = _kinds(knots if l == 0 or hidden_knots is None else hidden_knots)
        grid = _grid(rng, I, G, k, kinds, zero_width, domain, float32_knots)
        coef, scale_base, scale_sp = _amplitudes(rng, amplitude, I, O, G, k)
        mask = np.ones((I, O))
        if masked > 0:
            mask[_at_least_one(rng, rng.random((I, O)) < masked)] = 0.0
        sym_mask, sym_affine, names = np.zeros((O, I)), np.zeros((O, I, 4)), (("0",) * I,) * O
        if symbolic > 0:
            sym_mask, sym_affine, names = _symbolic(rng, I, O, symbolic, symbolic_names, signed, mask)
        sub_s, sub_b, node_s, node_b = _affines(rng, affine, signed, O, n_nodes)
        layers.append(SourceLayer(grid=grid, coef=coef, k=k, scale_base=scale_base, scale_sp=scale_sp, mask=mask,
                                  sym_mask=sym_mask, sym_affine=sym_affine, sym_names=names, subnode_scale=sub_s,
                                  subnode_bias=sub_b, node_scale=node_s, node_bias=node_b, n_sum=n_sum,
                                  mult_groups=groups))
    n_in = int(width[0]) if n_inputs is None else int(n_inputs)
    ids = _input_id(rng, input_id, n_in, int(width[0]))
    prov = {"generator": "lutkan.testing.models.random_source",
            "seed": int(seed) if isinstance(seed, (int, np.integer)) else None, **(provenance or {})}
    return SourceModel(layers=tuple(layers), input_id=ids, n_inputs=n_in, base_fun=base_fun,
                       symbolic_enabled=symbolic > 0 if symbolic_enabled is None else symbolic_enabled,
                       provenance=prov)


def random_model(width: Sequence[int], options: ContractOptions | None = None, **kw) -> LUTModel:
    """``random_source(width, **kw)`` compiled under ``options`` (default ``ContractOptions()``)."""
    from lutkan.compiler import compile_model

    return compile_model(random_source(width, **kw), options or ContractOptions())
