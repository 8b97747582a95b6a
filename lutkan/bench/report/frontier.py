"""Sections 7-8 of the report: the size-vs-error frontier of every stored form (``lutkan.bench.frontier``)
and LUT vs poly kernel speed (``lutkan.bench.lutpoly``)."""

from __future__ import annotations

from collections import defaultdict

from lutkan.reporting import DASH, fmt, md_table

TIE_LIST = 3
"""Frontier points tied at one (bytes, error) beyond this many are summarised as a count."""


def cand(d: dict | None, with_error: bool = True) -> str:
    """``bytes B: interp L=.. scheme (error)`` of a frontier point, or a dash."""
    if not d:
        return "none"
    s = f"{fmt(d['stored_bytes'])} B: {d['interp']} L={d['L']} {d['scheme']}"
    return s + (f" ({fmt(d['error_over_std'], 3)})" if with_error else "")


def _frontier_list(points: list[dict]) -> str:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for d in points:
        if d["on_frontier"]:
            groups[(d["stored_bytes"], d["error_over_std"])].append(d)
    parts = []
    for (b, e), ds in sorted(groups.items(), key=lambda kv: kv[0][0]):
        if len(ds) > TIE_LIST:
            parts.append(f"{len(ds)} candidates tie at {fmt(b)} B, {fmt(e, 3)}")
        else:
            parts += [f"{d['interp']} L={d['L']} {d['scheme']}: {fmt(b)} B, {fmt(e, 3)}" for d in ds]
    return "; ".join(parts) or DASH


def frontier(res: dict) -> str:
    """Section 7: per model, the smallest candidate meeting each bar, reference points and the frontier."""
    fr = res["summary"].get("frontier")
    if not fr or not fr.get("models"):
        return ""
    bars = fr["bars"]
    p = res["profile"]
    s = ["## 7. Size vs error: every (interp, L, scheme) of each trained model\n",
         "Every candidate of `lutkan.compiler.select.candidates` (tables at L in "
         f"{{{', '.join(str(v) for v in p.get('frontier_Ls', []))}}} and schemes "
         f"{', '.join(p.get('frontier_schemes', []))}; `poly` control points, whose L is the spline order + 1) "
         "compiled with default options otherwise and evaluated with the NumPy reference evaluator on the "
         "checkpoint's `cache_data`, against the source's float64 forward. Bytes are the exact stored bytes "
         "(tables or control points, scales, offsets and knots, every layer; checked against the compiled model). "
         "Error = max over outputs of max |error| / output std (`lutkan.metrics.error_over_std`, what "
         "`lutkan compile --max-error` selects on). Every candidate is in the run's `frontier.csv` (beside `results.json`); the plot is "
         "`plots/frontier.png`.\n",
         "**Smallest stored form meeting each bar** (ties broken as the selector breaks them; in brackets the "
         "error / std):\n"]
    head = ["model", "candidates", "rows"]
    head += [f"smallest ≤ {fmt(b)}" for b in bars] + [f"smallest table-only ≤ {fmt(b)}" for b in bars]
    rows = []
    for m in fr["models"]:
        rows.append([m["model"], fmt(m["n_candidates"]), fmt(m["n_rows"])]
                    + [cand(m.get(f"best|{b:g}")) for b in bars] + [cand(m.get(f"best_table|{b:g}")) for b in bars])
    s.append(md_table(head, rows))
    s.append("\n**Linear int8 L=64 (the contract of target T4) against poly float32** (bytes, error / std):\n")
    rows = []
    for m in fr["models"]:
        lut, poly = m.get("linear|int8|64"), m.get("poly|float32")
        ratio = fmt(lut["stored_bytes"] / poly["stored_bytes"], 3) if lut and poly and poly["stored_bytes"] else DASH
        rows.append([m["model"], cand(lut, False), fmt(lut["error_over_std"], 3) if lut else DASH,
                     cand(poly, False), fmt(poly["error_over_std"], 3) if poly else DASH, ratio])
    s.append(md_table(["model", "linear int8 L=64", "error / std", "poly float32", "error / std",
                       "bytes LUT / poly"], rows))
    s.append("\n**Pareto frontier** (no other candidate is at most as large and at most as wrong, and strictly "
             "better in one; smallest first):\n")
    s.append(md_table(["model", "frontier points"],
                      [[m["model"], _frontier_list([d for d in fr["points"] if d["model"] == m["model"]])]
                       for m in fr["models"]]))
    if fr.get("failed"):
        s.append("\n**Failed candidates:**\n")
        s.append(md_table(["model", "reason"], [[f["model"], f["reason"]] for f in fr["failed"]]))
    return "\n".join(s)


def _ratio(d: dict, cell: str) -> str:
    v, pr = d.get(f"poly_over_lut_{cell}"), d.get(f"paired_{cell}")
    return fmt(v, 3) + (f" ({fmt(pr['median'], 3)}; {fmt(pr['q1'], 3)}–{fmt(pr['q3'], 3)})" if pr else "")


def lutpoly(res: dict) -> str:
    """Section 8: LUT vs poly medians and ratios per model and batch, with CPU model and load."""
    lp = res["summary"].get("lutpoly")
    if not lp or not lp.get("table"):
        return ""
    env = res["env"]
    load = lp.get("load_avg", {})
    t0 = lp["table"][0]
    s = ["## 8. Speed: LUT vs poly kernels, side by side\n",
         f"The same model compiled as `{t0.get('lut_contract', DASH)}` (LUT) and as `{t0.get('poly_contract', DASH)}` "
         "(exact polynomial pieces), run by the Numba evaluator and by the `function` ONNX form in plain "
         "onnxruntime; the two contenders of each backend are interleaved round by round (same harness, pinned "
         f"to {fmt(res['profile'].get('threads', 1))} thread, as section 5). CPU: {env.get('cpu_model')} "
         f"({env.get('cpus_usable')} usable CPUs); 1/5/15-min load average at the start of this stage "
         f"{' / '.join(fmt(v, 3) for v in load.get('start', [])) or DASH}, at its end "
         f"{' / '.join(fmt(v, 3) for v in load.get('end', [])) or DASH}.\n",
         "Median ms per call (n timed calls); poly / LUT is the ratio of the medians (> 1: poly slower), in "
         "brackets the median; interquartile range of the per-round ratio (each round times both contenders back "
         "to back, so machine load falls on both sides):\n"]
    rows = []
    for d in lp["table"]:
        r = [d["model"], fmt(d["batch"])]
        for cell in ("numba", "ort"):
            for kind in ("lut", "poly"):
                ms, n = d.get(f"{kind}_{cell}_ms"), d.get(f"{kind}_{cell}_n")
                r.append(f"{fmt(ms)} (n={n})" if ms is not None else DASH)
            r.append(_ratio(d, cell))
        rows.append(r)
    s.append(md_table(["model", "batch", "LUT Numba", "poly Numba", "poly / LUT Numba", "LUT ORT", "poly ORT",
                       "poly / LUT ORT"], rows))
    bad = [g for g in lp.get("gates", []) if g["status"] != "ok"]
    s.append(f"\nCorrectness gate before timing: {len(lp.get('gates', [])) - len(bad)} of {len(lp.get('gates', []))} "
             "contenders agree with the NumPy evaluator of their own model through the oracle"
             + ("; failed: " + ", ".join(f"{g['model']} {g['contender']}" for g in bad) if bad else "") + ".\n")
    return "\n".join(s)


__all__ = ["cand", "frontier", "lutpoly"]
