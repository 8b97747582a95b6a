"""Output comparison: the one definition of "agrees" used by the tests, the oracle, `lutkan verify`,
the compiler's `--max-error` selection and the benchmarks (imports only NumPy)."""

from __future__ import annotations

import numpy as np

HUGE = 1e30
"""Magnitudes above this are in float32's overflow region: sums of such terms may become ±inf or
NaN depending on summation order, which the contract leaves to each backend (docs/contract.md §5)."""


def _extreme(a: np.ndarray) -> np.ndarray:
    """Mask of NaN / ±inf / |a| > HUGE entries (float64 input)."""
    with np.errstate(invalid="ignore"):
        return ~np.isfinite(a) | (np.abs(a) > HUGE)


def compare_outputs(actual: np.ndarray, reference: np.ndarray) -> dict:
    """Max abs / relative error over the ordinary region, plus mismatch counts elsewhere.

    Ordinary region: both finite and below ``HUGE``. Elsewhere both must be "extreme" (non-finite
    or huge); a NaN in the reference that the other side misses while ordinary counts as a mismatch.
    """
    a = np.asarray(actual, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if a.shape != r.shape:
        raise AssertionError(f"shape mismatch: {a.shape} vs {r.shape}")
    a_ext, r_ext = _extreme(a), _extreme(r)
    ordinary = ~a_ext & ~r_ext
    diff = np.abs(a[ordinary] - r[ordinary])
    scale = float(np.abs(r[ordinary]).max()) if ordinary.any() else 0.0
    return {
        "max_abs": float(diff.max()) if diff.size else 0.0,
        "mean_abs": float(diff.mean()) if diff.size else 0.0,
        "ref_max_abs": scale,
        "max_rel": float(diff.max() / scale) if diff.size and scale > 0 else 0.0,
        "extreme_mismatch": int((a_ext != r_ext).sum()),
        "n": int(a.size),
        "n_ordinary": int(ordinary.sum()),
    }


def error_over_std(actual: np.ndarray, reference: np.ndarray) -> float:
    """max over outputs j of ``max_n |actual_nj - reference_nj| / std_n(reference_nj)`` (the accuracy bar
    of the benchmark: error relative to each output's spread), over rows where both sides are ordinary
    (see ``compare_outputs``); outputs with zero spread are skipped. ``inf`` when an entry is extreme
    (NaN/inf/huge) on one side only, ``nan`` when no output has spread."""
    a = np.asarray(actual, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if a.shape != r.shape:
        raise AssertionError(f"shape mismatch: {a.shape} vs {r.shape}")
    a, r = a.reshape(a.shape[0], -1), r.reshape(r.shape[0], -1)
    a_ext, r_ext = _extreme(a), _extreme(r)
    if (a_ext != r_ext).any():
        return float("inf")
    worst = float("nan")
    for j in range(r.shape[1]):
        m = ~r_ext[:, j]
        if not m.any():
            continue
        sd = float(np.std(r[m, j]))
        if sd > 0:
            e = float(np.abs(a[m, j] - r[m, j]).max()) / sd
            worst = e if np.isnan(worst) else max(worst, e)
    return worst


def assert_outputs_close(actual: np.ndarray, reference: np.ndarray, *, rel: float = 1e-5,
                         abs_floor: float | np.ndarray = 0.0, what: str = "output") -> dict:
    """Assert ``|actual - reference| <= rel * max|reference| + abs_floor`` on the ordinary region
    and identical extreme (NaN/inf/huge) positions. ``abs_floor`` may be an array of the outputs' shape (an
    allowance per entry, e.g. ``lutkan.testing.rounding_allowance``). Returns the stats."""
    st = compare_outputs(actual, reference)
    base = rel * max(st["ref_max_abs"], 1.0)
    if st["extreme_mismatch"]:
        raise AssertionError(f"{what}: {st['extreme_mismatch']} entries are NaN/inf/huge on one side only")
    if np.ndim(abs_floor) == 0:
        tol = base + float(abs_floor)
        if st["max_abs"] > tol:
            raise AssertionError(f"{what}: max abs error {st['max_abs']:.3g} > tolerance {tol:.3g} "
                                 f"(max |ref| {st['ref_max_abs']:.3g})")
        return st
    a = np.asarray(actual, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    ordinary = ~_extreme(a) & ~_extreme(r)
    floor = np.broadcast_to(np.asarray(abs_floor, dtype=np.float64), a.shape)
    with np.errstate(invalid="ignore"):
        excess = np.where(ordinary, np.abs(a - r) - floor, -np.inf)
    worst = np.unravel_index(int(np.argmax(excess)), a.shape)
    if excess[worst] > base:
        raise AssertionError(f"{what}: error {abs(a[worst] - r[worst]):.3g} at {tuple(int(v) for v in worst)} > "
                             f"tolerance {base:.3g} + allowance {floor[worst]:.3g} (max |ref| {st['ref_max_abs']:.3g})")
    return st
