"""Summary statistics of the study: mean ± std with a t-based 95 % interval, medians and quartiles.

scipy is not a dependency, so the Student-t quantile is a table: ``T975[df]`` holds
``scipy.stats.t.ppf(0.975, df)`` for df = 1..30 rounded to 4 decimals; for df > 30 the
Cornish-Fisher expansion of the t quantile around the normal quantile z = 1.959964 is used
(four terms; it agrees with scipy to better than 1e-5 from df = 31 on). The paper's aggregate
tables used 1.96·sd/√n with n = 5; the correct factor for n = 5 is t(0.975, 4) = 2.7764.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

Z975 = 1.959963984540054
T975 = (12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
        2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
        2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423)


def t_quantile_975(df: int) -> float:
    """Two-sided 95 % Student-t critical value t(0.975, df) for df >= 1."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(T975):
        return T975[df - 1]
    z = Z975
    return (z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)
            + (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * df ** 3))


def mean_ci(values: Iterable[float]) -> dict:
    """mean, sample std (ddof=1), n and the t-based 95 % half-width ``ci95`` (NaN for n < 2)."""
    v = np.asarray([float(x) for x in values], dtype=np.float64)
    n = int(v.size)
    if n == 0:
        return {"mean": math.nan, "std": math.nan, "n": 0, "ci95": math.nan}
    mean = float(v.mean())
    if n < 2:
        return {"mean": mean, "std": math.nan, "n": n, "ci95": math.nan}
    std = float(v.std(ddof=1))
    return {"mean": mean, "std": std, "n": n, "ci95": t_quantile_975(n - 1) * std / math.sqrt(n)}


def quartiles(samples: Iterable[float]) -> dict:
    """median, q1, q3, iqr, min, mean and n of timing samples (numpy's default linear quantiles)."""
    s = np.asarray(list(samples), dtype=np.float64)
    if s.size == 0:
        return {"median": math.nan, "q1": math.nan, "q3": math.nan, "iqr": math.nan,
                "min": math.nan, "mean": math.nan, "n": 0}
    q1, med, q3 = (float(x) for x in np.percentile(s, [25, 50, 75]))
    return {"median": med, "q1": q1, "q3": q3, "iqr": q3 - q1, "min": float(s.min()),
            "mean": float(s.mean()), "n": int(s.size)}


__all__ = ["T975", "Z975", "mean_ci", "quartiles", "t_quantile_975"]
