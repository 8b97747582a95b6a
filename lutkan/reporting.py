"""Small helpers shared by the user-facing reports (``lutkan demo``, ``lutkan bench``, ``lutkan inspect``).

- ``md_table``: one markdown table renderer for every ``report.md``.
- ``fmt`` / ``DASH``: how a number appears in a report table (4 significant digits, missing as a dash).
- ``predict`` / ``f1``: the classification figures. One definition for every report:

  * a model with **one output** is a binary classifier: class 1 when the logit is > 0, and its F1 is
    the binary F1 of class 1;
  * a model with **several outputs** predicts the argmax, and its F1 is the **macro F1 over the classes
    present in y_true ∪ y_pred** (scikit-learn's default ``labels``): a class that neither occurs in
    the labels nor is ever predicted does not count as a 0 in the mean.

  Both are ``sklearn.metrics.f1_score`` (``zero_division=0``); scikit-learn is imported only when an F1
  is computed (it comes with the ``pykan`` and ``bench`` extras).

Low level on purpose: imports nothing from lutkan.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

DASH = "–"
EMPTY_TABLE = "_(no data in this run)_\n"


def md_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table ending in a newline; ``|`` and newlines inside cells are escaped.

    An empty ``rows`` gives the line ``EMPTY_TABLE`` instead of a header without rows.
    """
    if not rows:
        return EMPTY_TABLE
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def fmt(v, digits: int = 4) -> str:
    """A table cell: ``digits`` significant digits for floats, ints as ints, yes/no for bools, and
    ``DASH`` for a missing value (None, "", NaN, inf)."""
    if v is None or v == "" or (isinstance(v, float) and not math.isfinite(v)):
        return DASH
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def predict(logits: np.ndarray) -> np.ndarray:
    """Class decisions (int64) from model outputs ``(N, O)``: ``logit > 0`` for one output, else argmax."""
    y = np.asarray(logits)
    if y.ndim != 2:
        raise ValueError(f"predict expects outputs of shape (N, O), got {y.shape}")
    if y.shape[1] == 1:
        return (y[:, 0] > 0).astype(np.int64)
    return np.argmax(y, axis=1).astype(np.int64)


def f1(y_true: np.ndarray, y_pred: np.ndarray, *, binary: bool) -> float:
    """F1 of the decisions ``y_pred`` against integer labels ``y_true`` (see the module doc).

    Args:
        y_true: labels, shape (N,).
        y_pred: decisions from ``predict``, shape (N,).
        binary: True for a single-logit model (binary F1 of class 1), False for an argmax model
            (macro F1 over the classes in ``y_true`` ∪ ``y_pred``).
    """
    from sklearn.metrics import f1_score

    t = np.asarray(y_true).astype(np.int64).reshape(-1)
    p = np.asarray(y_pred).astype(np.int64).reshape(-1)
    if binary:
        return float(f1_score(t, p, average="binary", pos_label=1, zero_division=0))
    return float(f1_score(t, p, average="macro", zero_division=0))


__all__ = ["DASH", "EMPTY_TABLE", "f1", "fmt", "md_table", "predict"]
