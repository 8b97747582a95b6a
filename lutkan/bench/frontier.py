"""The size-vs-error frontier of every stored form of each trained checkpoint.

For every model, every ``(interp, L, scheme)`` candidate of ``lutkan.compiler.select.candidates`` (tables
at each L and scheme, ``poly`` control points in float16/float32; exact stored bytes computed from the
source's shapes) is compiled and evaluated with the NumPy reference evaluator on the checkpoint's
``cache_data``, against the source's float64 forward (pykan's math). The error is
``lutkan.metrics.error_over_std``: max over outputs of max |error| / output std, the same figure
``lutkan compile --max-error`` selects on. Each candidate gives two rows (study ``frontier``): ``stored_bytes``
and ``error_over_std``; a candidate whose compiled model stores a different number of bytes than the
selector computed is marked ``failed`` (the selector would then be ranking by a wrong size).

``summarize(rows)`` derives, per model, which candidates are on the Pareto frontier (no other candidate is
at most as large and at most as wrong, and strictly better in one of the two) and the smallest candidate
meeting each bar of ``BARS`` (ties broken as the selector breaks them), overall and among the table forms
(``linear``/``nearest``, for table-only targets). ``write_csv`` writes
``frontier.csv`` from that summary.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from lutkan.bench.rows import row, skipped
from lutkan.bench.zoo import BenchModel

BARS = (1e-2, 1e-3)
"""Error bars (max error / output std) the report looks up the smallest candidate for."""
CSV_FIELDS = ("model", "interp", "L", "scheme", "stored_bytes", "error_over_std", "on_frontier")
STUDY = "frontier"


def frontier_inputs(bm: BenchModel) -> np.ndarray | None:
    """The rows a model is judged on: its checkpoint's ``cache_data`` (what ``lutkan compile --max-error``
    calibrates on), else its natural inputs, else None."""
    if bm.src.cache_data is not None and np.asarray(bm.src.cache_data).shape[0] >= 2:
        return np.ascontiguousarray(bm.src.cache_data, dtype=np.float32)
    return bm.x


def model_rows(p, bm: BenchModel) -> list[dict]:
    """Compile and evaluate every candidate of ``bm`` (profile ``p``: ``frontier_Ls/schemes/interps``)."""
    from lutkan.compiler import compile_model
    from lutkan.compiler.select import candidates
    from lutkan.contract import ContractOptions
    from lutkan.evaluators.numpy_eval import NumpyEvaluator
    from lutkan.metrics import error_over_std

    x = frontier_inputs(bm)
    if x is None:
        return [skipped(STUDY, "the checkpoint has no cache_data or natural inputs to measure errors on",
                        model=bm.name)]
    y_ref = bm.src.forward(x.astype(np.float64))
    input_set = "cache_data" if bm.src.cache_data is not None else "natural"
    out = []
    cands = candidates(bm.src, Ls=p.frontier_Ls, schemes=p.frontier_schemes, interps=p.frontier_interps)
    for c in cands:
        opts = replace(ContractOptions(), interp=c.interp, L=c.L, scheme=c.scheme)
        model = compile_model(bm.src, opts)
        err = error_over_std(NumpyEvaluator(model)(x), y_ref)
        cols = dict(model=bm.name, contender="candidate", backend="numpy", reference="float64", L=c.L,
                    scheme=c.scheme, interp=c.interp, boundary=opts.boundary, oob=opts.oob, batch=int(x.shape[0]),
                    input_set=input_set)
        b = row(STUDY, "stored_bytes", c.stored_bytes, unit="bytes", n=len(cands), **cols)
        compiled = sum(model.table_bytes())
        if compiled != c.stored_bytes:
            b["status"] = "failed"
            b["note"] = (f"lutkan.compiler.select.stored_bytes says {c.stored_bytes} B but the compiled model "
                         f"stores {compiled} B (LUTModel.table_bytes): fix stored_bytes")
        e = row(STUDY, "error_over_std", err, n=int(x.shape[0]), **cols)
        if not math.isfinite(err):
            e["status"] = "failed"
            e["note"] = ("NaN/inf on one side only (error_over_std = inf)" if err == math.inf
                         else "no output has spread on these rows (error_over_std = NaN)")
        out += [b, e]
    return out


def run(p, models: list[BenchModel], tick: Callable[[str], None] = lambda s: None) -> list[dict]:
    """Rows of the frontier study for every model the profile names (``frontier_models``; None = all)."""
    rows = []
    for bm in models:
        if p.frontier_models is not None and bm.name not in p.frontier_models:
            continue
        tick(f"frontier {bm.name}")
        try:
            rows += model_rows(p, bm)
        except Exception as e:  # noqa: BLE001 - a model whose candidates cannot be built is a result
            rows.append(skipped(STUDY, f"{type(e).__name__}: {e}", status="failed", model=bm.name))
    return rows


def pareto(points: list[tuple[float, float]]) -> list[bool]:
    """For (bytes, error) points: True where no other point is <= in both and < in one. Points with a
    non-finite error are never on the frontier (and dominate nothing)."""
    ok = [math.isfinite(e) for _, e in points]
    out = []
    for i, (b, e) in enumerate(points):
        dominated = any(ok[j] and bj <= b and ej <= e and (bj < b or ej < e)
                        for j, (bj, ej) in enumerate(points) if j != i)
        out.append(ok[i] and not dominated)
    return out


def _tie_key(d: dict) -> tuple:
    """The selector's order: bytes, then ``INTERP_ORDER``, then ``SCHEMES``, then L."""
    from lutkan.compiler.select import INTERP_ORDER
    from lutkan.contract import SCHEMES

    return (d["stored_bytes"], INTERP_ORDER.index(d["interp"]), SCHEMES.index(d["scheme"]), d["L"])


def summarize(rows: list[dict]) -> dict:
    """``{"models": [...], "points": [...]}`` from the frontier rows: every candidate with its bytes, error
    and ``on_frontier``; per model the smallest candidate meeting each bar of ``BARS`` (``best|<bar>``) and the
    smallest table candidate (``best_table|<bar>``), the linear int8 L=64 and poly float32 candidates."""
    rs = [r for r in rows if r["study"] == STUDY and r["contender"] == "candidate"]
    key = ("model", "interp", "L", "scheme")
    pts: dict[tuple, dict] = {}
    for r in rs:
        d = pts.setdefault(tuple(r[k] for k in key), {k: r[k] for k in key} | {"n_rows": r["batch"],
                                                                               "input_set": r["input_set"]})
        if r["metric"] == "stored_bytes":
            d["stored_bytes"] = r["value"]
            d["bytes_ok"] = r["status"] == "ok"
        elif r["metric"] == "error_over_std":
            d["error_over_std"] = r["value"] if r["status"] == "ok" else math.inf
    models, points = [], []
    for m in sorted({k[0] for k in pts}):
        mine = sorted((d for k, d in pts.items() if k[0] == m and "stored_bytes" in d and "error_over_std" in d),
                      key=_tie_key)
        for d, on in zip(mine, pareto([(d["stored_bytes"], d["error_over_std"]) for d in mine]), strict=True):
            d["on_frontier"] = on
        points += mine
        s = {"model": m, "n_candidates": len(mine), "n_rows": mine[0]["n_rows"] if mine else None,
             "input_set": mine[0]["input_set"] if mine else None,
             "n_frontier": sum(d["on_frontier"] for d in mine)}
        for bar in BARS:
            s[f"best|{bar:g}"] = next((d for d in mine if d["error_over_std"] <= bar), None)
            s[f"best_table|{bar:g}"] = next((d for d in mine if d["error_over_std"] <= bar and d["interp"] != "poly"),
                                            None)
        s["linear|int8|64"] = next((d for d in mine if (d["interp"], d["scheme"], d["L"]) == ("linear", "int8", 64)),
                                   None)
        s["poly|float32"] = next((d for d in mine if (d["interp"], d["scheme"]) == ("poly", "float32")), None)
        models.append(s)
    failed = [{"model": r["model"], "reason": r["note"]} for r in rows
              if r["study"] == STUDY and r["status"] != "ok"]
    return {"bars": list(BARS), "models": models, "points": points, "failed": failed}


def write_csv(summary: dict, out_dir: Path) -> Path:
    """``out_dir/frontier.csv``: one line per candidate (``CSV_FIELDS``; error ``inf`` when non-finite)."""
    path = Path(out_dir) / "frontier.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for d in summary["points"]:
            e = d["error_over_std"]  # None once the summary went through results.json (inf -> null)
            finite = isinstance(e, (int, float)) and math.isfinite(e)
            w.writerow({**d, "error_over_std": repr(float(e)) if finite else "inf",
                        "on_frontier": int(d["on_frontier"])})
    return path


__all__ = ["BARS", "CSV_FIELDS", "frontier_inputs", "model_rows", "pareto", "run", "summarize", "write_csv"]
