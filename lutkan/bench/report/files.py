"""The run's data files: ``results.csv`` (environment as ``#`` comment lines, then one row per
measurement) and ``results.json`` (strict JSON)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from lutkan.bench.env import one_line
from lutkan.bench.rows import COLUMNS

CSV_COLUMNS = ("run_id",) + COLUMNS


def write_csv(results: dict, out_dir: Path) -> Path:
    """``out_dir/results.csv``: ``#`` environment lines, then the rows with ``CSV_COLUMNS``."""
    path = Path(out_dir) / "results.csv"
    with path.open("w", newline="") as f:
        f.write(f"# lutkan bench results, schema {results['schema']}, run {results['run_id']}, "
                f"profile {results['profile']['name']}\n")
        f.write(f"# environment: {one_line(results['env'])}\n")
        f.write(f"# environment-json: {json.dumps(results['env'], sort_keys=True)}\n")
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in results["rows"]:
            w.writerow({"run_id": results["run_id"], **r})
    return path


def json_safe(v):
    """Strict JSON: NaN/inf -> null, tuples -> lists, numpy scalars -> python."""
    if isinstance(v, dict):
        return {str(k): json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def write_json(results: dict, out_dir: Path) -> Path:
    """``out_dir/results.json`` (``json_safe`` of ``results``)."""
    path = Path(out_dir) / "results.json"
    path.write_text(json.dumps(json_safe(results), indent=1, allow_nan=False, default=str))
    return path


__all__ = ["CSV_COLUMNS", "json_safe", "write_csv", "write_json"]
