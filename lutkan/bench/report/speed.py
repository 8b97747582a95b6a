"""Sections 5-6 of the report and its closing parts: speed (medians, speed-ups, correctness gate),
memory, everything not run, and the plot links."""

from __future__ import annotations

from pathlib import Path

from lutkan.bench.report.intro import design_of
from lutkan.reporting import DASH, fmt, md_table


def speed(res: dict) -> str:
    """Section 5: median latencies, same-backend speed-ups, the correctness gate, export times."""
    sp = res["summary"]["speed"]
    sm = res.get("speed_model", {})
    s = [f"## 5. Speed: `{sm.get('name')}` {sm.get('width')}, L={res['profile']['speed_L']} "
         f"{res['profile']['speed_scheme']}, one thread\n",
         f"{fmt(sp.get('edges'))} active edges. Median ms per call [q1–q3] (n timed calls):\n"]
    batches = sp["batches"]
    names = []
    for t in sp["table"]:
        if t["contender"] not in names:
            names.append(t["contender"])
    cell = {(t["contender"], t["batch"]): t for t in sp["table"]}
    rows = []
    for n in names:
        r = [n, next(t["backend"] for t in sp["table"] if t["contender"] == n)]
        for b in batches:
            t = cell.get((n, b))
            r.append(f"{fmt(t['median_ms'])} [{fmt(t['q1_ms'], 3)}–{fmt(t['q3_ms'], 3)}] (n={t['n']})" if t else DASH)
        rows.append(r)
    s.append(md_table(["contender", "backend"] + [f"batch {b}" for b in batches], rows))
    rows = []

    def rat(d, key, pair):
        p = d.get(f"paired|{pair}")
        return fmt(d[key]) + (f" ({fmt(p['q1'], 3)}–{fmt(p['q3'], 3)})" if p else "")

    for d in sp["ratios"]:
        rows.append([fmt(d["batch"]), rat(d, "naive_numba_over_lut_numba", "bspline-naive-numba/lut-numba"),
                     rat(d, "strong_numba_over_lut_numba", "bspline-strong-numba/lut-numba"),
                     rat(d, "naive_numpy_over_lut_numpy", "bspline-naive-numpy/lut-numpy"),
                     rat(d, "strong_numpy_over_lut_numpy", "bspline-strong-numpy/lut-numpy"),
                     fmt(d.get("ns_per_edge_lut-numba")), fmt(d.get("ns_per_edge_bspline-strong-numba")),
                     fmt(d["best_pykan_ort_over_best_lut_ort"]),
                     f"{d['best_lut_ort'] or DASH} / {d['best_pykan_ort'] or DASH}",
                     fmt(d["pykan_speed_over_lut_numba"])])
    s.append("\n**Speed-ups** (ratio of medians, > 1 means the LUT is faster; in brackets the interquartile range "
             "of the per-round ratio, i.e. how much the comparison itself moved while the machine's load varied):\n")
    s.append(md_table(["batch", "naive B-spl NB / LUT NB", "strong B-spl NB / LUT NB", "naive B-spl NP / LUT NP",
                        "strong B-spl NP / LUT NP", "LUT NB ns/edge", "strong NB ns/edge",
                        "best pykan ORT / best LUT ORT", "ORT paths compared (ours / pykan)",
                        "pykan torch speed() / LUT NB"], rows))
    s.append("\nThe honest comparison is same backend against same backend: the naive per-edge Cox–de Boor is the "
             "paper's baseline (it recomputes the full recursion for every edge and every output), the strong "
             "shared-basis local de Boor is what a competent spline kernel does. Cross-framework ratios (pykan "
             "torch vs a Numba kernel) are the deployment view, not a claim about table lookup.\n")
    if sp["gates"]:
        rows = [[g["contender"], g["reference"], fmt(g["max_abs_err"]), g["status"]] for g in sp["gates"]]
        s.append(f"\n**Correctness gate** ({design_of(res)['gate_rows']} rows, before timing; tolerance "
                 f"{fmt(design_of(res)['gate_rtol'])} × max(1, max|ref|)):\n")
        s.append(md_table(["contender", "reference", "max abs error", "status"], rows))
    if sp["export_s"]:
        s.append("\nExport times: " + ", ".join(f"`{e['contender']}` {fmt(e['seconds'], 3)} s" for e in sp["export_s"])
                 + ".\n")
    return "\n".join(s)


def memory(res: dict) -> str:
    """Section 6: table bytes vs pykan parameters, files on disk, peak RSS."""
    mem = res["summary"]["memory"]
    sm = res.get("speed_model", {})
    s = [f"## 6. Memory: `{sm.get('name')}`\n",
         "LUT table bytes (tables + scales/offsets + knots, what the artifact stores) vs pykan's float spline "
         "parameters as float32 (coef + grid + scale_base + scale_sp + mask) and all pykan parameters "
         "(+ symbolic mask/affine, node/subnode affine); runtime dense = the float32 `(I·K·L, O)` table the "
         "evaluators hold after dequantizing:\n"]
    rows = [[d["layer"], fmt(d["L"]), d["scheme"], fmt(d["lut_table_bytes"]), fmt(d["runtime_dense_bytes"]),
             fmt(d["float_spline_bytes"]), fmt(d["float_all_bytes"]), fmt(d["lut_over_float_spline"]),
             fmt(d["lut_over_float_all"])] for d in mem["layers"]]
    s.append(md_table(["layer", "L", "scheme", "LUT bytes", "runtime dense bytes", "float spline bytes",
                        "all pykan param bytes", "LUT / spline", "LUT / all"], rows))
    if mem["files"]:
        s.append("\n**Files on disk:**\n")
        s.append(md_table(["form", "bytes", "file"], [[f["file"], fmt(f["bytes"]), f["name"]] for f in mem["files"]]))
    if mem["rss"]:
        s.append("\n**Peak RSS of a fresh process** (one model, 3 runs at the batch shown; MiB):\n")
        s.append(md_table(["contender", "batch", "after imports", "after session + first run", "peak while running",
                            "peak overall"],
                           [[d["contender"], fmt(d.get("batch")), fmt(d.get("rss_after_import_mib")),
                             fmt(d.get("rss_after_session_mib")), fmt(d.get("rss_peak_run_mib")),
                             fmt(d.get("rss_peak_total_mib"))] for d in mem["rss"]]))
    return "\n".join(s)


def not_run(res: dict) -> str:
    """Everything the run could not do, with the reason."""
    nr = res["summary"]["not_run"]
    s = ["## Not run\n", "Everything the study could not do in this run, and why (nothing is left out silently):\n"]
    rows = [[d["study"], d["model"] or DASH, d["contender"] or DASH, fmt(d["batch"]), d["status"], d["reason"]]
            for d in nr]
    s.append(md_table(["study", "model", "contender", "batch", "status", "reason"], rows) if rows else "Nothing.\n")
    return "\n".join(s)


def plots(res: dict, plot_files: list[str]) -> str:
    """Links to the plot files ("" without plots)."""
    if not plot_files:
        return ""
    return "## Plots\n\n" + "\n".join(f"![{Path(f).stem}]({f})" for f in plot_files) + "\n"


__all__ = ["memory", "not_run", "plots", "speed"]
