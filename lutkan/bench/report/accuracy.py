"""Sections 1-4 of the report: the controlled sweep, why random initialisations hide errors, trained
models (with the classification F1 table) and the OOB robustness matrix."""

from __future__ import annotations

from lutkan.bench.report.intro import design_of
from lutkan.reporting import DASH, fmt, md_table


def fmt_ci(d: dict) -> str:
    """mean ± std [± t-95 % half-width] of a ``stats.mean_ci`` dict."""
    if d.get("n", 0) >= 2:
        return f"{fmt(d['mean'])} ± {fmt(d['std'], 2)} [±{fmt(d['ci95'], 2)}]"
    return fmt(d.get("mean"))


def controlled(res: dict) -> str:
    """Section 1: error by L x scheme x interp on trained-like random layers, and the 8-bit floor."""
    c = res["summary"]["controlled"]
    table = c["table"]
    p = res["profile"]
    dz = design_of(res)
    s = ["## 1. Accuracy: controlled sweep (trained-like random layers)\n",
         f"One pykan-shaped layer {dz['controlled_width']}, grid {dz['controlled_grid']}, k {dz['controlled_k']} (the "
         f"paper's controlled layer: K = {dz['controlled_grid'] + 2 * dz['controlled_k']} segments on the extended "
         f"grid), spline coefficients trained-like; {p['seeds']} seeds; {dz['rows_per_set']} rows per input set; "
         f"contract closed / zero; errors of the compiled model vs the float64 reference (and vs pykan below).\n"]
    Ls = sorted({t["L"] for t in table})

    def grid_table(metric, input_set, reference):
        rows = []
        for scheme in sorted({t["scheme"] for t in table}):
            for interp in sorted({t["interp"] for t in table}):
                cells = {t["L"]: t for t in table if t["scheme"] == scheme and t["interp"] == interp
                         and t["metric"] == metric and t["input_set"] == input_set and t["reference"] == reference}
                if cells:
                    rows.append([scheme, interp] + [fmt_ci(cells[L]) if L in cells else DASH for L in Ls])
        return md_table(["scheme", "interp"] + [f"L={L}" for L in Ls], rows)

    s.append("**Max abs error, in-domain, vs float64** (mean ± std [± t-95 %] over seeds):\n")
    s.append(grid_table("max_abs_err", "in_domain", "float64"))
    s.append("\n**MAE, in-domain, vs float64:**\n")
    s.append(grid_table("mae", "in_domain", "float64"))
    if any(t["reference"] == "pykan" for t in table):
        s.append("\n**Max abs error, in-domain, vs pykan's own forward** (float32 torch; includes pykan's own "
                 "float32 rounding):\n")
        s.append(grid_table("max_abs_err", "in_domain", "pykan"))
    for name in ("gauss1", "gauss3"):
        if any(t["input_set"] == name for t in table):
            frac = next((o for o in c["oob_row_frac"] if o["input_set"] == name), None)
            s.append(f"\n**Max abs error on `{name}` (unclipped Gaussian), vs float64**; OOB rows: "
                     f"{fmt(frac['mean'] if frac else None)} of rows:\n")
            s.append(grid_table("max_abs_err", name, "float64"))
            s.append("\nSame inputs, error over the OOB rows only:\n")
            s.append(grid_table("max_abs_err_oob_rows", name, "float64"))
    s.append("\n**Where the error stops falling with L** (in-domain mean max abs error; floor = the first L "
             f"after which doubling L improves it by less than {fmt(dz['floor_improvement'])}×):\n")
    rows = []
    for f in c["floors"]:
        by_L = ", ".join(f"{L}: {fmt(e, 3)}" for L, e in zip(f["L"], f["mean_max_abs"], strict=True))
        rows.append([f["scheme"], f["interp"], by_L,
                     ", ".join(f"{fmt(r, 3)}×" for r in f["improvement_per_step"]),
                     fmt(f["floor_L"]) if f["floor_L"] is not None else f"not reached by L={max(f['L'])}",
                     ", ".join(fmt(t, 3) for t in f["tab_error_mean"])])
    s.append(md_table(["scheme", "interp", "max abs error by L", "improvement per doubling", "floor at L",
                        "stored-table error by L (compile-time, max over edges)"], rows))
    s.append("\nReading: linear interpolation error alone falls about 4× per doubling of L and nearest about 2×; "
             "with 8-bit codes every segment also carries a rounding error of up to half a step "
             "(max|f|/254 for int8, range/510 for uint8), which does not depend on L. Where the improvement per "
             "doubling drops towards 1× the quantization step dominates: that is the 8-bit floor. float16 "
             "tables keep falling until float16's own rounding (relative 2^-11) is reached.\n")
    return "\n".join(s)


def init(res: dict) -> str:
    """Section 2: the same compile on pykan-init-sized vs trained-like coefficients ("" if not run)."""
    init = res["summary"]["init"]
    dz = design_of(res)
    table = init["table"]
    if not table:
        return ""
    models = sorted({t["model"] for t in table})
    Ls = sorted({t["L"] for t in table if t["L"] != ""})
    rows = []
    vals = {}
    for m in models:
        def get(metric, L="", m=m):
            d = next((t for t in table if t["model"] == m and t["metric"] == metric and t["L"] == L), None)
            return d["mean"] if d else None

        vals[m] = {k: get(k) for k in ("coef_std", "output_std", "base_branch_std", "spline_branch_std")}
        r = [m, fmt(vals[m]["coef_std"]), fmt(vals[m]["output_std"]), fmt(vals[m]["base_branch_std"]),
             fmt(vals[m]["spline_branch_std"])]
        for L in Ls:
            vals[m][f"err{L}"] = get("max_abs_err", L)
            vals[m][f"rel{L}"] = get("max_abs_err_over_std", L)
            r += [fmt(vals[m][f"err{L}"]), fmt(vals[m][f"rel{L}"])]
        rows.append(r)
    hdr = ["model (int8, in-domain)", "coef std", "output std", "SiLU-branch std", "spline-branch std"]
    for L in Ls:
        hdr += [f"max abs err L={L}", f"max err / output std L={L}"]
    s = ["## 2. Why random initialisations hide errors\n",
         f"The same {dz['controlled_width']} layer built twice per seed: with pykan-init-sized coefficients (what "
         "the paper's "
         "controlled study compiled) and with trained-like ones (means over seeds):\n", md_table(hdr, rows)]
    tc = init["trained_coef_std"]
    if tc:
        s.append("\nCoefficient std of the trained checkpoints this run loaded (mean over layers): "
                 + ", ".join(f"`{d['model']}` {fmt(d['coef_std'], 3)}" for d in tc) + ".\n")
    pi = next((m for m in models if "pykan-init" in m), None)
    tl = next((m for m in models if "trained-like" in m), None)
    if pi and tl and Ls:
        L = Ls[-1]
        a, b = vals[pi], vals[tl]
        s.append(
            f"\nWhy: quantization is per (edge, segment) and relative to that segment's own range, so the absolute "
            f"error scales with the spline's amplitude. At pykan's initialisation the spline branch has std "
            f"{fmt(a['spline_branch_std'], 3)} against {fmt(a['base_branch_std'], 3)} for the SiLU branch, which "
            f"is computed exactly at run time and is never tabulated; the output is almost all SiLU, so the max "
            f"error is {fmt(a[f'err{L}'], 3)} = {fmt(a[f'rel{L}'], 3)} of the output std at L={L}. With "
            f"trained-size coefficients the spline carries the signal (std {fmt(b['spline_branch_std'], 3)}) and "
            f"the same compile gives {fmt(b[f'err{L}'], 3)} = {fmt(b[f'rel{L}'], 3)} of the output std. Absolute "
            f"errors measured on random inits therefore say little about trained models; this study reports "
            f"trained-like random models and real checkpoints, and errors relative to the output scale.\n")
    return "\n".join(s)


def trained(res: dict) -> str:
    """Section 3: errors of every trained checkpoint, and F1 on the bundled test sets."""
    tr = res["summary"]["trained"]
    s = ["## 3. Trained models (bundled `models/*` and real checkpoints `../shared/realmodels/*`)\n",
         "Natural inputs: the test set (bundled) or the checkpoint's cache_data (real). Contract closed / zero / "
         "linear. `vs pykan` is pykan's own forward of the loaded checkpoint.\n"]
    rows = []
    for d in tr["table"]:
        ref = "pykan" if "max_abs_err|pykan|natural" in d else "float64"
        rows.append([d["model"], d["scheme"], fmt(d["L"]),
                     fmt(d.get("max_abs_err|pykan|natural")), fmt(d.get("max_abs_err|float64|natural")),
                     fmt(d.get(f"mae|{ref}|natural")), fmt(d.get(f"max_abs_err_over_std|{ref}|natural")),
                     fmt(d.get("output_std_natural")), fmt(d.get("oob_row_frac_natural")),
                     fmt(d.get("max_abs_err|float64|wide")), fmt(d.get("oob_row_frac_wide"))])
    s.append(md_table(["model", "scheme", "L", "max abs vs pykan", "max abs vs float64", "MAE", "max err / output std",
                        "output std", "OOB rows (natural)", "max abs, wide inputs vs float64", "OOB rows (wide)"],
                       rows))
    cls = tr["classification"]
    if cls:
        rows = []
        for d in cls:
            ref = "pykan" if "f1_delta|pykan" in d else "float64"
            rows.append([d["model"], d["scheme"], fmt(d["L"]), fmt(d.get("f1_pykan")), fmt(d.get("f1_float64")),
                         fmt(d.get("f1_lut")), fmt(d.get(f"f1_delta|{ref}")), fmt(d.get(f"decisions_changed|{ref}"))])
        s.append("\n**Classification on the bundled test sets** (F1 as under Method: binary F1 with logit > 0; "
                 "macro F1 over the classes present for digits; change = LUT − pykan, or − float64 without "
                 "pykan):\n")
        s.append(md_table(["model", "scheme", "L", "F1 pykan", "F1 float64", "F1 LUT", "F1 change",
                            "decisions changed"], rows))
    return "\n".join(s)


def robustness(res: dict) -> str:
    """Section 4: boundary x OOB policy, in-domain vs OOB rows ("" if not run)."""
    rb = res["summary"]["robustness"]
    if not rb:
        return ""
    s = ["## 4. Robustness: boundary × OOB policy (+ extrapolate)\n",
         f"L={res['profile']['robust_L']}, vs float64 (pykan semantics: the spline is 0 outside the extended grid, "
         "symbolic edges keep evaluating their formula). `in` = rows inside every layer's domain under that "
         "boundary mode, `oob` = the other rows; random models averaged over seeds.\n"]
    groups = {}
    for d in rb:
        groups.setdefault((d["model"], d["input_set"], d["scheme"]), []).append(d)
    for (model, iset, scheme), cells in groups.items():
        rows = [[d["boundary"], d["oob"], fmt(d.get("in_max_abs")), fmt(d.get("oob_max_abs")),
                 fmt(d.get("out_max_abs")), fmt(d.get("oob_any_frac")), fmt(d.get("n_seeds"))] for d in cells]
        s.append(f"\n`{model}`, inputs `{iset}`, {scheme}:\n")
        s.append(md_table(["boundary", "oob", "in max abs", "oob max abs", "all rows max abs", "OOB row fraction",
                            "seeds"], rows))
    s.append("\nReading: pykan's spline is built on the extended grid and is exactly 0 at both ends of the "
             "domain, so for pure spline edges `clip` (hold the boundary value) and `zero` coincide up to how "
             "the boundary sample is stored (int8 stores 0 exactly; uint8 does not), and `extrapolate` follows a "
             "nearly flat last segment. The policies differ where an edge is not 0 at the domain end: symbolic "
             "edges (the `mguo_gwp_symbolic` checkpoint). `half_open` only changes inputs exactly at the upper "
             "end, which clipped inputs produce in bulk (the paper's inflated OOB fraction).\n")
    return "\n".join(s)


__all__ = ["controlled", "fmt_ci", "init", "robustness", "trained"]
