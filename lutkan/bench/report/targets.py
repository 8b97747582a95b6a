"""The "Targets" section: the T1-T5 table, the export/plugin bars, and for each target that is not met
an analysis of why (from the same run's figures)."""

from __future__ import annotations

from lutkan.reporting import DASH, fmt, md_table


def targets(res: dict) -> str:
    """The targets table, the analyses of unmet targets, and the export/plugin bars."""
    rows = []
    for t in res["summary"]["targets"]:
        met = DASH if t["met"] is None else ("**met**" if t["met"] else "**not met**")
        rows.append([t["id"], t["what"], f"{t['op']} {fmt(t['target'])}", fmt(t["achieved"]), met, t["detail"]])
    sm = res.get("speed_model", {})
    s = ["## Targets\n",
         f"The bar, not timed tests. T1–T3 on `{sm.get('name')}` {sm.get('width')} (grid {sm.get('grid')}, "
         f"k {sm.get('k')}) compiled at L={res['profile']['speed_L']} {res['profile']['speed_scheme']}; "
         f"T4 on every trained checkpoint (natural inputs); T5 on the bundled classifiers' test sets.\n",
         md_table(["id", "target", "bar", "achieved", "", "detail"], rows)]
    s.append(_analyses(res))
    bars = res["summary"].get("deployment_bars") or []
    if bars:
        rows = [[d["id"], d["what"], f"{d['op']} {fmt(d['target'])}", fmt(d["achieved"]),
                 DASH if d["met"] is None else ("**met**" if d["met"] else "**not met**"), d["detail"]]
                for d in bars]
        s += ["\n**Export and plugin bars** (same run, same model; the plugin rows use the `function` file run "
              "with the lutkan kernel):\n",
              md_table(["id", "bar", "", "achieved", "", "medians"], rows)]
    return "\n".join(s)


def _ratio_row(res: dict, batch: int) -> dict:
    return next((d for d in res["summary"]["speed"]["ratios"] if d["batch"] == batch), {})


def _median(res: dict, contender: str, batch: int):
    return next((t["median_ms"] for t in res["summary"]["speed"]["table"]
                 if t["contender"] == contender and t["batch"] == batch), None)


def _t1_analysis(res: dict, t: dict) -> str:
    sp = res["summary"]["speed"]
    edges = sp.get("edges")
    lut1, naive1 = _median(res, "lut-numba", 1), _median(res, "bspline-naive-numba", 1)
    big = max((b for b in sp["batches"] if _median(res, "lut-numba", b) is not None), default=None)
    if None in (lut1, naive1, big, edges):
        return ""
    ns_big = _ratio_row(res, big).get("ns_per_edge_lut-numba")
    compute_us = ns_big * edges / 1e3 if ns_big else None
    need_us = naive1 * 1e3 / t["target"]
    over_us = lut1 * 1e3 - compute_us if compute_us is not None else None
    layered = _median(res, "lut-numba-layered", 1)
    layered_txt = "" if layered is None else (
        f" For scale: the same kernels called one layer at a time from Python (`lut-numba-layered`) take "
        f"{fmt(layered * 1e3)} µs, so the fused whole-network call saves {fmt((layered - lut1) * 1e3)} µs.")
    return (f"\n**T1 is not met: analysis.** At batch 1 the naive B-spline Numba call takes {fmt(naive1 * 1e3)} µs "
            f"and the LUT Numba call {fmt(lut1 * 1e3)} µs ({fmt(t['achieved'])}×). {fmt(t['target'])}× needs the "
            f"LUT call at {fmt(need_us)} µs. The LUT kernel's own work, estimated from its cost per edge at batch "
            f"{big} ({fmt(ns_big)} ns × {fmt(edges)} edges), is {fmt(compute_us)} µs, so about {fmt(over_us)} µs "
            f"of the batch-1 call is fixed per-call cost (input validation, Numba's argument dispatch, output "
            f"allocation).{layered_txt} What it would take: the kernel changes listed under T2, or a native "
            f"(C++) entry point without Numba's dispatch. The ratio is against the paper's baseline kernel, which "
            f"this repository implements faithfully; its absolute cost here is "
            f"{fmt(naive1 * 1e6 / edges if edges else None)} ns per edge evaluation at batch 1.\n")


def _t2_analysis(res: dict, t: dict) -> str:
    sp = res["summary"]["speed"]
    rat = {d["batch"]: d for d in sp["ratios"]}
    cand = [bb for bb in rat if bb >= 256 and rat[bb].get("strong_numba_over_lut_numba") is not None]
    if not cand:
        return ""
    b = max(cand)
    d = rat[b]
    lut_ns, strong_ns = d.get("ns_per_edge_lut-numba"), d.get("ns_per_edge_bspline-strong-numba")
    mem = res["summary"]["memory"]["layers"]
    dense = next((x["runtime_dense_bytes"] for x in mem if x["layer"] == "layer0"
                  and x["L"] == res["profile"]["speed_L"] and x["scheme"] == res["profile"]["speed_scheme"]), None)
    spline = next((x["float_spline_bytes"] for x in mem if x["layer"] == "layer0"), None)
    cache = res["env"].get("cache_size")
    k1 = int(res.get("speed_model", {}).get("k", 3)) + 1
    return (f"\n**T2 is not met: analysis.** At batch {b} the LUT Numba kernel costs {fmt(lut_ns)} ns per edge "
            f"evaluation and the strong B-spline {fmt(strong_ns)} ns ({fmt(d.get('strong_numba_over_lut_numba'))}×); "
            f"{fmt(t['target'])}× needs the LUT at {fmt(strong_ns / t['target'] if strong_ns else None)} ns per "
            f"edge. Per (row, input) both kernels do a little index work (LUT: a segment search over that input's "
            f"knots, branch-free for up to 32 segments; strong B-spline: the same search plus {fmt(k1)} basis "
            f"values) and then an inner loop over the O outputs: the "
            f"LUT reads two float32 table rows and does a lerp per output, the strong B-spline reads {fmt(k1)} "
            f"coefficient rows and does {fmt(k1)} multiply-adds. Per output that is 2 against {fmt(k1)} loads, and "
            f"per (row, input) a segment count against a segment search plus the basis recurrence. Memory: the "
            f"LUT's rows come from a dense float32 table of {fmt(dense / 2**20 if dense else None)} MiB "
            f"for layer 0, against {fmt(spline / 2**20 if spline else None)} MiB of float spline parameters "
            f"(cache per core: {cache}). The kernel already runs the per-(row, input) work as separate "
            f"passes over the batch (segment count vectorized over rows, branch-free parameters, then the row "
            f"gathers): done as one branchy scalar pass it dominated the layer. What more it would take: "
            f"(1) gather int8 codes instead of "
            f"dequantized float32 rows (4× fewer bytes per row); (2) FMA contraction (needs `fastmath`, which "
            f"gives up bitwise agreement with the reference, or a native kernel); (3) a vectorized exp for the "
            f"SiLU base branch (Numba has no SVML here).\n")


def _t4_analysis(res: dict, t: dict) -> str:
    tr = res["summary"]["trained"]["table"]
    by = {}
    for d in tr:
        by.setdefault(d["model"], {})[(d["scheme"], d["L"])] = d
    lines = []
    for model, cells in sorted(by.items()):
        d = cells.get(("int8", 64))
        if not d:
            continue
        ref = "pykan" if "max_abs_err_over_std|pykan|natural" in d else "float64"
        v = d.get(f"max_abs_err_over_std|{ref}|natural")
        if v is None or v <= t["target"]:
            continue
        std = d.get("output_std_natural")
        tab = d.get("max_tab_error||")
        alts = ", ".join(f"{sch} {fmt(c.get(f'max_abs_err_over_std|{ref}|natural'), 3)}"
                         for (sch, L), c in sorted(cells.items(), key=str) if L == 64 and sch != "int8")
        lines.append(f"`{model}` {fmt(v, 3)} (output std {fmt(std, 3)}, largest stored-table error "
                     f"{fmt(tab, 3)} = {fmt(tab / std if tab is not None and std else None, 3)} output stds; "
                     f"at L=64: {alts or 'no other scheme run'})")
    if not lines:
        return ""
    return ("\n**T4 is not met: analysis.** The int8 error is set per (edge, segment) by that segment's own "
            "range (step max|f|/127), not by the output's scale. Models whose output is a small difference of "
            "large edge terms (cancellation across edges, deep stacks, multiplication nodes whose inputs reach "
            "huge magnitudes) therefore get errors that are large relative to the output std even though every "
            "table is accurate relative to its own range. Models over the bar: " + "; ".join(lines) + ". What it "
            "would take: uint8 or float16 tables for such models (columns above); `lutkan compile --max-error REL` "
            "picks the smallest (L, scheme) that meets a bound on the model's own data. Per-edge scheme choice "
            "(int8 where it suffices, wider tables elsewhere) is not implemented.\n")


def _generic_analysis(res: dict, t: dict) -> str:
    return (f"\n**{t['id']} is not met**: achieved {fmt(t['achieved'])} against {t['op']} {fmt(t['target'])} "
            f"({t['detail']}).\n")


_ANALYSES = {"T1": _t1_analysis, "T2": _t2_analysis, "T4": _t4_analysis}


def _analyses(res: dict) -> str:
    out = []
    for t in res["summary"]["targets"]:
        if t["met"] is False:
            out.append(_ANALYSES.get(t["id"], _generic_analysis)(res, t) or _generic_analysis(res, t))
    return "".join(out)


__all__ = ["targets"]
