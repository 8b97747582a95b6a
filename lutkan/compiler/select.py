"""Choose L and scheme from data: the smallest tables whose output error meets a bound.

``select_options(source, x, max_error)`` tries (L, scheme) candidates in increasing order of stored
bytes per sample (L × bytes per table entry; int8 before uint8 at equal size), compiles each under
the caller's interpolation / boundary / OOB options, evaluates it with the NumPy reference evaluator
on the calibration inputs ``x`` and compares with the source's float64 forward (pykan's math). The
first candidate whose error metric is ``<= max_error`` wins. The metric is the benchmark's:
``max_j max_n |y_nj - ref_nj| / std_n(ref_nj)`` over outputs with non-zero spread; a NaN/inf on one
side only fails the candidate. Nothing is calibrated: tables are still built from the sampled values
alone; the data only decides which stored resolution is good enough.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from lutkan.artifact import LUTModel
from lutkan.contract import SCHEMES, ContractOptions
from lutkan.errors import LutKanError
from lutkan.evaluators.inputs import check_input
from lutkan.metrics import error_over_std

__all__ = ["Trial", "SelectionError", "candidate_order", "select_options"]

DEFAULT_LS = (16, 32, 64, 128)
DEFAULT_SCHEMES = SCHEMES  # int8, uint8, float16, float32: also the tie-break order at equal size


class SelectionError(LutKanError):
    """No candidate meets the requested error bound (the trials are attached)."""

    def __init__(self, msg: str, trials: list[Trial]):
        super().__init__(msg)
        self.trials = trials


@dataclass(frozen=True)
class Trial:
    L: int
    scheme: str
    table_bytes: int
    error: float  # max_j max_n |err| / std_n(ref); inf when non-finite values disagree
    ok: bool


def candidate_order(Ls=DEFAULT_LS, schemes=DEFAULT_SCHEMES) -> list[tuple[int, str]]:
    """(L, scheme) pairs, smallest bytes per sample first (int8 before uint8 at equal size)."""
    for s in schemes:
        if s not in SCHEMES:
            raise LutKanError(f"unknown scheme {s!r}; expected one of {list(SCHEMES)}")
    for L in Ls:
        if int(L) < 2:
            raise LutKanError(f"L must be >= 2, got {L}")
    # every scheme name is also its stored numpy dtype
    return sorted(((int(L), s) for L in Ls for s in schemes),
                  key=lambda c: (c[0] * np.dtype(c[1]).itemsize, SCHEMES.index(c[1]), c[0]))


def select_options(source, x: np.ndarray, max_error: float, *, base: ContractOptions | None = None,
                   Ls=DEFAULT_LS, schemes=DEFAULT_SCHEMES, on_trial=None) -> tuple[LUTModel, list[Trial]]:
    """Compile the smallest candidate meeting ``max_error`` (see module doc); returns it and the trials.

    ``source``: SourceModel, live pykan model or checkpoint path. ``x``: (N, n_inputs) calibration
    inputs (N >= 2). ``on_trial(trial)`` is called after each candidate (for progress output).
    Raises ``SelectionError`` when no candidate meets the bound, ``LutKanError`` on bad arguments.
    """
    from lutkan.compiler import as_source, compile_model
    from lutkan.evaluators.numpy_eval import NumpyEvaluator

    if not (isinstance(max_error, (int, float)) and np.isfinite(max_error) and max_error > 0):
        raise LutKanError(f"max_error must be a positive finite number, got {max_error!r}")
    src = as_source(source)
    x32 = check_input(x, src.n_inputs, name="calibration inputs")  # rank, width, dtype, empty batch
    if x32.shape[0] < 2:
        raise LutKanError(f"calibration inputs need at least 2 rows (an output std), got {x32.shape[0]}")
    x64 = np.asarray(x, dtype=np.float64)
    y_ref = src.forward(x64)
    if not np.isfinite(y_ref).any():
        raise LutKanError("the source model's outputs on the calibration inputs are all non-finite")
    base = base or ContractOptions()
    trials: list[Trial] = []
    for L, scheme in candidate_order(Ls, schemes):
        model = compile_model(src, replace(base, L=L, scheme=scheme))
        err = error_over_std(NumpyEvaluator(model)(x32), y_ref)
        t = Trial(L=L, scheme=scheme, table_bytes=int(sum(model.table_bytes())), error=err,
                  ok=bool(err <= max_error))
        trials.append(t)
        if on_trial is not None:
            on_trial(t)
        if t.ok:
            return model, trials
    best = min(trials, key=lambda t: t.error)
    raise SelectionError(f"no (L, scheme) candidate meets max error {max_error:g} × output std on "
                         f"{x32.shape[0]} calibration rows; best was L={best.L} {best.scheme} at {best.error:.4g}",
                         trials)
