"""Choose interp, L and scheme from data: the smallest stored model whose output error meets a bound.

``select_options(source, x, max_error)`` enumerates every candidate ``(interp, L, scheme)`` of
``candidates(...)`` (``linear``/``nearest`` tables at each L and scheme, ``poly`` control points in float16 and
float32, whose L is fixed by the spline order), computes each one's stored bytes exactly from the source's
shapes (``stored_bytes``: tables or control points, scales, offsets and knots, every layer) without compiling,
then compiles, evaluates and checks them in increasing order of bytes (ties: the ``INTERP_ORDER`` and
``SCHEMES`` order). The first candidate whose error is ``<= max_error`` is the smallest one that meets it.

The error is the benchmark's: ``max_j max_n |y_nj - ref_nj| / std_n(ref_nj)`` over outputs with non-zero
spread, with ``y`` from the NumPy reference evaluator on the calibration inputs ``x`` and ``ref`` the source's
float64 forward (pykan's math); a NaN/inf on one side only fails a candidate. Nothing is calibrated: tables are
built from the model alone; the data only decides which stored form is good enough.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from lutkan.artifact import LUTModel
from lutkan.contract import INTERPS, POLY_SCHEMES, SCHEMES, ContractOptions, valid_combination
from lutkan.errors import LutKanError
from lutkan.evaluators.inputs import check_input
from lutkan.metrics import error_over_std

__all__ = ["Candidate", "SelectionError", "Trial", "candidates", "select_options", "stored_bytes"]

DEFAULT_LS = (16, 32, 64, 128)
DEFAULT_SCHEMES = SCHEMES
INTERP_ORDER = ("poly", "linear", "nearest")
"""Tie-break at equal bytes: the exact form first."""


class SelectionError(LutKanError):
    """No candidate meets the requested error bound (the trials are attached)."""

    def __init__(self, msg: str, trials: list[Trial]):
        super().__init__(msg)
        self.trials = trials


@dataclass(frozen=True)
class Candidate:
    interp: str
    L: int
    scheme: str
    stored_bytes: int


@dataclass(frozen=True)
class Trial:
    interp: str
    L: int
    scheme: str
    stored_bytes: int
    error: float  # max_j max_n |err| / std_n(ref); inf when non-finite values disagree
    ok: bool


def _table_edges(src, symbolic: str) -> list[int]:
    """Edges with a table per layer: every active edge when symbolic edges are tabulated, else the splines."""
    out = []
    for layer in src.layers:
        active = layer.edge_active(src.symbolic_enabled) if symbolic == "tabulate" else layer.mask != 0
        out.append(int(np.count_nonzero(active)))
    return out


def stored_bytes(src, interp: str, L: int, scheme: str, symbolic: str = "exact") -> int:
    """Bytes a compiled model would store for its tabulated functions: tables (or poly control points),
    per-(edge, segment) scales and offsets, and knots, summed over layers (``LUTModel.table_bytes``)."""
    if interp == "poly":
        L = max(int(layer.k) for layer in src.layers) + 1
    item = np.dtype(scheme).itemsize
    total = 0
    for layer, E in zip(src.layers, _table_edges(src, symbolic), strict=True):
        I, K1 = layer.grid.shape
        K = K1 - 1
        total += E * K * L * item + I * K1 * 4
        if scheme in ("int8", "uint8"):
            total += E * K * 4
        if scheme == "uint8":
            total += E * K * 4
    return int(total)


def candidates(src, *, Ls=DEFAULT_LS, schemes=DEFAULT_SCHEMES, interps=INTERPS,
               symbolic: str = "exact") -> list[Candidate]:
    """Every (interp, L, scheme) to try, smallest stored bytes first (ties: ``INTERP_ORDER``, then ``SCHEMES``)."""
    for s in schemes:
        if s not in SCHEMES:
            raise LutKanError(f"unknown scheme {s!r}; expected one of {list(SCHEMES)}")
    for i in interps:
        if i not in INTERPS:
            raise LutKanError(f"unknown interp {i!r}; expected one of {list(INTERPS)}")
    for L in Ls:
        if int(L) < 2:
            raise LutKanError(f"L must be >= 2, got {L}")
    out = []
    for interp in interps:
        if interp == "poly" and symbolic == "tabulate":
            continue
        poly_L = max(int(layer.k) for layer in src.layers) + 1
        for L in ((poly_L,) if interp == "poly" else tuple(int(v) for v in Ls)):
            for scheme in schemes:
                if valid_combination(scheme, interp) and (interp != "poly" or scheme in POLY_SCHEMES):
                    out.append(Candidate(interp, L, scheme, stored_bytes(src, interp, L, scheme, symbolic)))
    return sorted(out, key=lambda c: (c.stored_bytes, INTERP_ORDER.index(c.interp), SCHEMES.index(c.scheme), c.L))


def select_options(source, x: np.ndarray, max_error: float, *, base: ContractOptions | None = None,
                   Ls=DEFAULT_LS, schemes=DEFAULT_SCHEMES, interps=INTERPS,
                   on_trial=None) -> tuple[LUTModel, list[Trial]]:
    """Compile the smallest candidate meeting ``max_error`` (see module doc); returns it and the trials.

    ``source``: SourceModel, live pykan model or checkpoint path. ``x``: (N, n_inputs) calibration inputs
    (N >= 2). ``base``: the boundary, OOB policy and symbolic mode to keep (its interp, L and scheme are the
    search). ``on_trial(trial)`` is called after each candidate (for progress output). Raises
    ``SelectionError`` when no candidate meets the bound, ``LutKanError`` on bad arguments.
    """
    from lutkan.compiler import as_source, compile_model
    from lutkan.evaluators.numpy_eval import NumpyEvaluator

    if not (isinstance(max_error, (int, float)) and np.isfinite(max_error) and max_error > 0):
        raise LutKanError(f"max_error must be a positive finite number, got {max_error!r}")
    src = as_source(source)
    x32 = check_input(x, src.n_inputs, name="calibration inputs")  # rank, width, dtype, empty batch
    if x32.shape[0] < 2:
        raise LutKanError(f"calibration inputs need at least 2 rows (an output std), got {x32.shape[0]}")
    y_ref = src.forward(x32.astype(np.float64))
    if not np.isfinite(y_ref).any():
        raise LutKanError("the source model's outputs on the calibration inputs are all non-finite")
    base = base or ContractOptions()
    trials: list[Trial] = []
    for c in candidates(src, Ls=Ls, schemes=schemes, interps=interps, symbolic=base.symbolic):
        model = compile_model(src, replace(base, interp=c.interp, L=c.L, scheme=c.scheme))
        err = error_over_std(NumpyEvaluator(model)(x32), y_ref)
        t = Trial(c.interp, model.contract.L, c.scheme, c.stored_bytes, err, bool(err <= max_error))
        trials.append(t)
        if on_trial is not None:
            on_trial(t)
        if t.ok:
            return model, trials
    best = min(trials, key=lambda t: t.error)
    raise SelectionError(f"no (interp, L, scheme) candidate meets max error {max_error:g} x output std on "
                         f"{x32.shape[0]} calibration rows; best was {best.interp} L={best.L} {best.scheme} at "
                         f"{best.error:.4g}", trials)
