"""Derived figures of a run, computed from its result rows only: aggregates over seeds, the 8-bit
floor, speed ratios, memory ratios and the target checks. ``results.json["summary"]`` holds them and
``report.md`` prints them, so every number in the report can be traced to the rows.
"""

from __future__ import annotations

import math
from collections import defaultdict

from lutkan.bench import frontier, lutpoly
from lutkan.bench.rows import select
from lutkan.bench.stats import mean_ci

FLOOR_IMPROVEMENT = 1.25
"""Error "stops falling" at the first swept L after which doubling L improves the mean in-domain max
error by less than this factor (linear interpolation error alone would fall ~4x per doubling,
nearest ~2x)."""

TARGETS = (
    {"id": "T1", "what": "LUT Numba vs naive B-spline Numba, batch 1 (speed-up)", "op": ">=", "target": 20.0},
    {"id": "T2", "what": "LUT Numba vs strong B-spline Numba, every batch >= 256 (worst speed-up)", "op": ">=",
     "target": 2.0},
    {"id": "T3", "what": "best ORT path (ours) vs PyKAN via torch.onnx.export in ORT, batch 4096 (speed-up)",
     "op": ">=", "target": 10.0},
    {"id": "T4", "what": "int8 L=64 max abs output error / output std, trained models (worst model)", "op": "<=",
     "target": 1e-2},
    {"id": "T5", "what": "|F1 change| int8 L=64 on the bundled classifiers' test sets (worst model)", "op": "<=",
     "target": 2e-4},
)


PYKAN_ORT = ("pykan-onnx-dynamo-ort", "pykan-onnx-legacy-ort")
"""PyKAN exported by torch.onnx.export, run in onnxruntime: the faster exporter's file is the baseline."""

DEPLOYMENT_BARS = (
    # (id, what, op, bar, numerator contender(s), denominator contender, batch, kind); with several
    # numerator candidates the fastest one measured is used (the hardest bar)
    # kind "ratio": median(num) / median(den); "diff_us": (median(num) - median(den)) in µs
    ("D1", "plain ORT on our function file vs PyKAN via torch.onnx in ORT, batch 1 (speed-up)", ">=", 3.0,
     PYKAN_ORT, "lut-onnx-function-ort", 1, "ratio"),
    ("D2", "plain ORT on our function file vs PyKAN via torch.onnx in ORT, batch 4096 (speed-up)", ">=",
     5.0, PYKAN_ORT, "lut-onnx-function-ort", 4096, "ratio"),
    ("D3", "plugin session (function file) / NumbaEvaluator, batch 4096 (slow-down)", "<=", 1.3,
     "lut-onnx-function-plugin", "lut-numba", 4096, "ratio"),
    ("D4", "plugin session (function file) minus NumbaEvaluator, batch 1 (µs per call)", "<=", 25.0,
     "lut-onnx-function-plugin", "lut-numba", 1, "diff_us"),
    ("D5", "plain function-form session / plugin session, batch 4096 (speed-up)", ">=", 2.0,
     "lut-onnx-function-ort", "lut-onnx-function-plugin", 4096, "ratio"),
    ("D6", "plain function-form session / plugin session, batch 64 (speed-up)", ">", 1.0,
     "lut-onnx-function-ort", "lut-onnx-function-plugin", 64, "ratio"),
    ("D7", "plugin session / plain function-form session, batch 1 (slow-down)", "<=", 1.5,
     "lut-onnx-function-plugin", "lut-onnx-function-ort", 1, "ratio"),
)
"""The export (issue 3) and plugin (issue 4) bars, checked on the speed study's medians."""


def deployment_bars(sp: dict) -> list[dict]:
    med = {(t["batch"], t["contender"]): t["median_ms"] for t in sp["table"]}
    out = []
    for bid, what, op, bar, num, den, batch, kind in DEPLOYMENT_BARS:
        if isinstance(num, tuple):
            timed = [(med[(batch, c)], c) for c in num if (batch, c) in med]
            num = min(timed)[1] if timed else " or ".join(num)
        a, b = med.get((batch, num)), med.get((batch, den))
        d = {"id": bid, "what": what, "op": op, "target": bar, "batch": batch, "numerator": num,
             "denominator": den}
        if a is None or b is None:
            missing = [c for c, v in ((num, a), (den, b)) if v is None]
            d.update(achieved=None, met=None, detail=f"not measured at batch {batch}: {', '.join(missing)}")
        else:
            v = (a - b) * 1e3 if kind == "diff_us" else a / b
            met = {">=": v >= bar, "<=": v <= bar, ">": v > bar}[op]
            d.update(achieved=v, met=bool(met), detail=f"{num} {a:.4g} ms, {den} {b:.4g} ms")
        out.append(d)
    return out


def _num(v):
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _sort_key(values) -> tuple:
    """Sort mixed int/str keys: numbers numerically, strings alphabetically, blanks first."""
    return tuple((0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v)) for v in values)


def _group(rows, keys):
    g = defaultdict(list)
    for r in rows:
        if _num(r["value"]) is None:
            continue
        g[tuple(r[k] for k in keys)].append(r["value"])
    return g


def controlled_summary(rows: list[dict]) -> dict:
    rs = select(rows, study="accuracy_controlled", contender="lut")
    keys = ("scheme", "interp", "L", "input_set", "reference", "metric")
    table = []
    for k, vals in sorted(_group(rs, keys).items(), key=lambda kv: _sort_key(kv[0])):
        table.append(dict(zip(keys, k, strict=True), **mean_ci(vals)))
    tab = _group(select(rows, study="accuracy_controlled", metric="max_tab_error"), ("scheme", "interp", "L"))
    floors = []
    for scheme in sorted({t["scheme"] for t in table}):
        for interp in sorted({t["interp"] for t in table}):
            pts = sorted((t["L"], t["mean"]) for t in table if t["scheme"] == scheme and t["interp"] == interp
                         and t["input_set"] == "in_domain" and t["reference"] == "float64"
                         and t["metric"] == "max_abs_err")
            if len(pts) < 2:
                continue
            # improvement per doubling of L between consecutive swept values (geometric mean over the gap)
            ratios = [(pts[i][0], pts[i + 1][0],
                       (pts[i][1] / pts[i + 1][1]) ** (1.0 / math.log2(pts[i + 1][0] / pts[i][0]))
                       if pts[i + 1][1] > 0 else math.inf)
                      for i in range(len(pts) - 1)]
            floor_L = next((a for a, _b, r in ratios if r < FLOOR_IMPROVEMENT), None)
            floors.append({"scheme": scheme, "interp": interp, "L": [a for a, _ in pts],
                           "mean_max_abs": [e for _, e in pts],
                           "improvement_per_step": [r for _a, _b, r in ratios], "floor_L": floor_L,
                           "tab_error_mean": [float(sum(tab[(scheme, interp, L)]) / len(tab[(scheme, interp, L)]))
                                              if tab.get((scheme, interp, L)) else None for L, _ in pts]})
    oob = [dict(input_set=k[0], **mean_ci(v))
           for k, v in sorted(_group(select(rows, study="accuracy_controlled", metric="oob_row_frac"),
                                     ("input_set",)).items())]
    return {"table": table, "floors": floors, "oob_row_frac": oob}


def init_summary(rows: list[dict]) -> dict:
    rs = select(rows, study="accuracy_init")
    out = []
    for k, vals in sorted(_group([r for r in rs if r["seed"] != ""], ("model", "metric", "L")).items(),
                          key=lambda kv: _sort_key(kv[0])):
        out.append(dict(model=k[0], metric=k[1], L=k[2], **mean_ci(vals)))
    trained = [{"model": r["model"], "coef_std": r["value"]} for r in rs
               if r["seed"] == "" and r["metric"] == "coef_std"]
    return {"table": out, "trained_coef_std": trained}


def trained_summary(rows: list[dict]) -> dict:
    rs = select(rows, study="accuracy_trained")
    models = sorted({r["model"] for r in rs if r["model"]})
    table = []
    for m in models:
        mine = [r for r in rs if r["model"] == m]
        facts = {f"oob_row_frac_{r['input_set']}": r["value"] for r in mine if r["metric"] == "oob_row_frac"}
        facts.update({f"output_std_{r['input_set']}": r["value"] for r in mine if r["metric"] == "output_std"})
        combos = sorted({(r["scheme"], r["L"]) for r in mine if r["contender"] == "lut"}, key=_sort_key)
        for scheme, L in combos:
            d = {"model": m, "scheme": scheme, "L": L, **facts}
            for r in mine:
                if r["contender"] == "lut" and r["scheme"] == scheme and r["L"] == L:
                    d[f"{r['metric']}|{r['reference']}|{r['input_set']}"] = r["value"]
            table.append(d)
    cls = []
    rc = select(rows, study="classification")
    for m in sorted({r["model"] for r in rc}):
        mine = [r for r in rc if r["model"] == m]
        base = {f"f1_{r['contender']}": r["value"] for r in mine if r["metric"] == "f1" and r["contender"] != "lut"}
        for scheme, L in sorted({(r["scheme"], r["L"]) for r in mine if r["contender"] == "lut"}, key=_sort_key):
            d = {"model": m, "scheme": scheme, "L": L, **base}
            for r in mine:
                if r["contender"] == "lut" and r["scheme"] == scheme and r["L"] == L:
                    key = "f1_lut" if r["metric"] == "f1" else f"{r['metric']}|{r['reference']}"
                    d[key] = r["value"]
            cls.append(d)
    return {"table": table, "classification": cls}


def robustness_summary(rows: list[dict]) -> list[dict]:
    rs = select(rows, study="robustness")
    keys = ("model", "input_set", "scheme", "boundary", "oob", "metric")
    g = _group(rs, keys)
    cells = defaultdict(dict)
    for k, vals in g.items():
        cell = k[:5]
        st = mean_ci(vals)
        cells[cell][k[5]] = st["mean"]
        cells[cell]["n_seeds"] = st["n"]
    out = []
    for cell in sorted(cells, key=_sort_key):
        out.append(dict(zip(keys[:5], cell, strict=True), **cells[cell]))
    return out


def speed_summary(rows: list[dict]) -> dict:
    rs = select(rows, study="speed", metric="latency_ms")
    med = {(r["batch"], r["contender"]): r for r in rs}
    batches = sorted({r["batch"] for r in rs})
    edges = next((r["value"] for r in select(rows, study="speed", metric="edges")), None)
    table = [{"batch": r["batch"], "contender": r["contender"], "backend": r["backend"], "median_ms": r["value"],
              "q1_ms": r["q1"], "q3_ms": r["q3"], "n": r["n"]}
             for r in sorted(rs, key=lambda r: (r["batch"], r["contender"]))]

    def ratio(b, slow, fast):
        s, f = med.get((b, slow)), med.get((b, fast))
        return s["value"] / f["value"] if s and f and f["value"] > 0 else None

    def best(b, prefix):
        c = [r for (bb, name), r in med.items() if bb == b and name.startswith(prefix)]
        return min(c, key=lambda r: r["value"]) if c else None

    ratios = []
    for b in batches:
        d = {"batch": b,
             "naive_numba_over_lut_numba": ratio(b, "bspline-naive-numba", "lut-numba"),
             "strong_numba_over_lut_numba": ratio(b, "bspline-strong-numba", "lut-numba"),
             "naive_numpy_over_lut_numpy": ratio(b, "bspline-naive-numpy", "lut-numpy"),
             "strong_numpy_over_lut_numpy": ratio(b, "bspline-strong-numpy", "lut-numpy")}
        bl = [r for r in (best(b, "lut-onnx-"),) if r]
        bp = best(b, "pykan-onnx-")
        d["best_lut_ort"] = bl[0]["contender"] if bl else None
        d["best_pykan_ort"] = bp["contender"] if bp else None
        d["best_pykan_ort_over_best_lut_ort"] = (bp["value"] / bl[0]["value"]) if bl and bp else None
        d["pykan_speed_over_lut_numba"] = ratio(b, "pykan-torch-speed", "lut-numba")
        for r in select(rows, study="speed", metric="paired_ratio", batch=b):
            d[f"paired|{r['contender']}"] = {"median": r["value"], "q1": r["q1"], "q3": r["q3"], "n": r["n"]}
        if edges:
            for c in ("lut-numba", "bspline-strong-numba", "bspline-naive-numba", "lut-numpy"):
                if (b, c) in med:
                    d[f"ns_per_edge_{c}"] = med[(b, c)]["value"] * 1e6 / (b * edges)
        ratios.append(d)
    skipped = [{"batch": r["batch"], "contender": r["contender"], "status": r["status"], "reason": r["note"]}
               for r in rows if r["study"] in ("speed", "speed_gate") and r["status"] != "ok"]
    gates = [{"contender": r["contender"], "max_abs_err": r["value"], "reference": r["reference"],
              "status": r["status"]}
             for r in rows if r["study"] == "speed_gate"]
    exports = [{"contender": r["contender"], "seconds": r["value"]}
               for r in select(rows, study="speed", metric="export_s")]
    return {"batches": batches, "edges": edges, "table": table, "ratios": ratios, "skipped": skipped,
            "gates": gates, "export_s": exports}


def memory_summary(rows: list[dict]) -> dict:
    rs = select(rows, study="memory")
    fl = {(r["contender"], r["metric"]): r["value"] for r in rs if r["metric"].startswith("float_")}
    per = []
    for r in rs:
        if r["metric"] == "lut_table_bytes":
            dense = next((x["value"] for x in rs if x["metric"] == "lut_runtime_dense_bytes"
                          and x["contender"] == r["contender"] and x["L"] == r["L"]
                          and x["scheme"] == r["scheme"]), None)
            sp, al = fl.get((r["contender"], "float_spline_bytes")), fl.get((r["contender"], "float_all_bytes"))
            per.append({"layer": r["contender"], "L": r["L"], "scheme": r["scheme"], "lut_table_bytes": r["value"],
                        "runtime_dense_bytes": dense, "float_spline_bytes": sp, "float_all_bytes": al,
                        "lut_over_float_spline": r["value"] / sp if sp else None,
                        "lut_over_float_all": r["value"] / al if al else None})
    files = [{"file": r["contender"], "bytes": r["value"], "name": r["note"]}
             for r in rs if r["metric"] == "file_bytes"]
    rss = defaultdict(dict)
    for r in rs:
        if r["metric"].startswith("rss_"):
            rss[r["contender"]][r["metric"]] = r["value"]
            rss[r["contender"]]["batch"] = r["batch"]
    return {"layers": per, "files": files, "rss": [{"contender": k, **v} for k, v in rss.items()]}


def _check(t: dict, achieved, detail: str, missing: str) -> dict:
    d = dict(t)
    if achieved is None:
        d.update(achieved=None, met=None, detail=missing)
    else:
        d.update(achieved=achieved, met=bool(achieved >= t["target"] if t["op"] == ">=" else achieved <= t["target"]),
                 detail=detail)
    return d


def _paired(d: dict, key: str) -> str:
    p = d.get(f"paired|{key}")
    return f" (per-round ratio median {p['median']:.3g}, IQR {p['q1']:.3g}-{p['q3']:.3g})" if p else ""


def targets(results: dict, sp: dict, tr: dict) -> list[dict]:
    rat = {d["batch"]: d for d in sp["ratios"]}
    out = []
    t1, t2, t3, t4, t5 = TARGETS
    r1 = rat.get(1, {}).get("naive_numba_over_lut_numba")
    out.append(_check(t1, r1, "ratio of batch-1 medians" + _paired(rat.get(1, {}), "bspline-naive-numba/lut-numba"),
                      "not measured: naive B-spline Numba or LUT Numba not timed at batch 1"))
    big = [(b, rat[b].get("strong_numba_over_lut_numba")) for b in sorted(rat) if b >= 256]
    big = [(b, v) for b, v in big if v is not None]
    out.append(_check(t2, min(v for _, v in big) if big else None,
                      ", ".join(f"batch {b}: {v:.3g}x" + _paired(rat[b], "bspline-strong-numba/lut-numba")
                                for b, v in big),
                      "not measured: strong B-spline Numba not timed at batch >= 256"))
    r3 = rat.get(4096, {})
    v3 = r3.get("best_pykan_ort_over_best_lut_ort")
    out.append(_check(t3, v3, f"{r3.get('best_lut_ort')} vs {r3.get('best_pykan_ort')}",
                      "not measured: an ORT contender was not timed at batch 4096"))
    worst, det = None, []
    for d in tr["table"]:
        if d["scheme"] != "int8" or d["L"] != 64:
            continue
        v = d.get("max_abs_err_over_std|pykan|natural", d.get("max_abs_err_over_std|float64|natural"))
        ref = "pykan" if "max_abs_err_over_std|pykan|natural" in d else "float64"
        if v is None:
            continue
        det.append(f"{d['model']} {v:.3g} (vs {ref})")
        worst = v if worst is None else max(worst, v)
    out.append(_check(t4, worst, "; ".join(det), "not measured: no trained model compiled at int8 L=64"))
    worst, det = None, []
    for d in tr["classification"]:
        if d["scheme"] != "int8" or d["L"] != 64:
            continue
        v = d.get("f1_delta|pykan", d.get("f1_delta|float64"))
        if v is None:
            continue
        det.append(f"{d['model']} {v:+.3g}")
        worst = abs(v) if worst is None else max(worst, abs(v))
    out.append(_check(t5, worst, "; ".join(det), "not measured: no bundled classifier evaluated"))
    speed_model = results.get("speed_model", {})
    for d in out[:3]:
        d["model"] = speed_model.get("name")
    return out


def summarize(results: dict) -> dict:
    rows = results["rows"]
    sp = speed_summary(rows)
    tr = trained_summary(rows)
    return {
        "controlled": controlled_summary(rows),
        "init": init_summary(rows),
        "trained": tr,
        "robustness": robustness_summary(rows),
        "speed": sp,
        "memory": memory_summary(rows),
        "frontier": frontier.summarize(rows),
        "lutpoly": lutpoly.summarize(rows),
        "targets": targets(results, sp, tr),
        "deployment_bars": deployment_bars(sp),
        "not_run": [{"study": r["study"], "model": r["model"], "contender": r["contender"], "batch": r["batch"],
                     "status": r["status"], "reason": r["note"]} for r in rows if r["status"] != "ok"],
    }


__all__ = ["DEPLOYMENT_BARS", "FLOOR_IMPROVEMENT", "TARGETS", "summarize"]
