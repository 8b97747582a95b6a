"""The study's result records: one flat row per measurement, and explicit rows for skipped work.

Every measurement the study takes becomes one ``dict`` with the columns in ``COLUMNS`` (the
header of ``results.csv``, and ``results.json["rows"]``). Work that cannot run (a component not
installed, a contender over the profile's time budget, a failed correctness gate) is never
dropped silently: it becomes a row with ``status`` ``skipped`` or ``failed`` and the reason in
``note``.

Columns:
    study       accuracy_controlled | accuracy_init | accuracy_trained | classification |
                robustness | speed | speed_gate | memory | deps
    model       model name (``random-trained-like[10,8]/s0``, ``ids78``, ...)
    contender   what was measured (``lut``, ``bspline-naive-numba``, ``onnx-function-ort``, ...)
    backend     numpy | numba | torch | onnxruntime | onnxruntime+plugin | file | process | ""
    reference   what an error is measured against: ``float64`` (SourceModel.forward), ``pykan``
                (pykan's own torch forward), ``lut-numpy`` (the NumPy evaluator), ...
    L, scheme, interp, boundary, oob   the contract of the compiled model ("" if not applicable)
    seed        model seed of random models ("" otherwise)
    batch       rows per call (speed) or evaluated rows (accuracy)
    input_set   in_domain | gauss1 | gauss3 | clipped1 | natural | natural_x3 | test ...
    metric      max_abs_err, mae, max_abs_err_over_std, latency_ms, bytes, f1, ...
    value       the number (for timings: the median)
    q1, q3      timing quartiles ("" otherwise)
    n           repeats (timings), rows (errors) or samples behind ``value``
    unit        ms, bytes, MiB, "" ...
    status      ok | skipped | failed
    note        free text (reasons, flags)
"""

from __future__ import annotations

import importlib
import math
from typing import Any

COLUMNS = ("study", "model", "contender", "backend", "reference", "L", "scheme", "interp", "boundary", "oob",
           "seed", "batch", "input_set", "metric", "value", "q1", "q3", "n", "unit", "status", "note")


def row(study: str, metric: str, value: Any = "", **kw) -> dict:
    """A result row with every column present (missing ones are "")."""
    unknown = set(kw) - set(COLUMNS)
    if unknown:
        raise KeyError(f"unknown result columns {sorted(unknown)}")
    r = {c: "" for c in COLUMNS}
    r.update(study=study, metric=metric, value=_clean(value), status="ok")
    for k, v in kw.items():
        r[k] = _clean(v)
    return r


def skipped(study: str, reason: str, *, metric: str = "", status: str = "skipped", **kw) -> dict:
    """A row recording work that did not run, and why."""
    r = row(study, metric, "", **kw)
    r["status"] = status
    r["note"] = reason
    return r


def _clean(v: Any) -> Any:
    """JSON/CSV-friendly scalars: numpy numbers -> python, NaN/inf -> "" (JSON has no NaN)."""
    if v is None:
        return ""
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        try:
            v = v.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(v, float) and not math.isfinite(v):
        return ""
    return v


def optional(module: str, *names: str):
    """Import an optional third-party package (torch, pykan) and check it defines ``names``; return
    (module, None) or (None, reason): the caller records the reason in a skipped row."""
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        return None, f"{module} is not available ({type(e).__name__}: {e})"
    missing = [n for n in names if not hasattr(mod, n)]
    if missing:
        return None, f"{module} does not define {', '.join(missing)}"
    return mod, None


def select(rows: list[dict], **match) -> list[dict]:
    """Rows whose columns equal every ``match`` value (status defaults to ok)."""
    match.setdefault("status", "ok")
    return [r for r in rows if all(r.get(k) == v for k, v in match.items())]


__all__ = ["COLUMNS", "optional", "row", "select", "skipped"]
