"""Matplotlib figures of a run, drawn from ``results["summary"]`` only (Agg backend, PNG):

* ``error_vs_L.png``        in-domain max abs error (mean over seeds, t-95 % error bars) and MAE vs L,
                            one line per scheme, one panel per interpolation
* ``latency_vs_batch.png``  median latency (IQR bars) vs batch, one panel per backend family
* ``bytes_per_form.png``    bytes of the float spline parameters, the LUT tables, the runtime tables
                            and every file form; and LUT table bytes vs L per scheme
* ``frontier.png``          stored bytes vs max error / output std of every (interp, L, scheme)
                            candidate, one panel per trained model, Pareto frontier and poly marked

Every figure carries the environment line and run id in a footer and in the PNG metadata.
"""

from __future__ import annotations

from pathlib import Path

from lutkan.bench.env import one_line

PANELS = (
    ("NumPy (same backend)", ("lut-numpy", "bspline-naive-numpy", "bspline-strong-numpy")),
    ("Numba (same backend)", ("lut-numba", "bspline-naive-numba", "bspline-strong-numba", "lut-numba-layered")),
    ("deployment", ("lut-numba", "lut-onnx-function-ort", "lut-onnx-standard-ort", "lut-onnx-function-plugin",
                    "lut-onnx-custom-plugin", "pykan-onnx-dynamo-ort", "pykan-onnx-legacy-ort", "pykan-torch-speed",
                    "pykan-torch-asis", "pykan-torch-symbolic-on")),
)


def _finish(fig, results: dict, path: Path) -> Path:
    footer = f"run {results.get('run_id')} | profile {results['profile']['name']} | {one_line(results['env'])}"
    fig.text(0.01, 0.005, footer, fontsize=5.5, color="0.35", ha="left", va="bottom")
    fig.savefig(path, dpi=130, metadata={"Title": path.stem, "Description": footer, "Software": "lutkan bench"})
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def error_vs_L(results: dict, path: Path) -> Path | None:
    import matplotlib.pyplot as plt

    table = results["summary"]["controlled"]["table"]
    interps = sorted({t["interp"] for t in table})
    if not interps:
        return None
    fig, axes = plt.subplots(1, len(interps), figsize=(5.2 * len(interps), 4.0), squeeze=False, sharey=True)
    for ax, interp in zip(axes[0], interps, strict=True):
        for i, scheme in enumerate(sorted({t["scheme"] for t in table})):
            color = f"C{i}"
            for metric, style in (("max_abs_err", "-o"), ("mae", "--s")):
                pts = sorted((t["L"], t["mean"], t["ci95"]) for t in table
                             if t["interp"] == interp and t["scheme"] == scheme and t["metric"] == metric
                             and t["input_set"] == "in_domain" and t["reference"] == "float64")
                if not pts:
                    continue
                xs, ys, es = zip(*pts, strict=True)
                es = [e if isinstance(e, float) and e == e else 0.0 for e in es]
                lower = [min(e, 0.9 * y) for e, y in zip(es, ys, strict=True)]  # a log axis cannot show y - e <= 0
                ax.errorbar(xs, ys, yerr=[lower, es], fmt=style, color=color, ms=4, capsize=2,
                            label=f"{scheme} {'max abs' if metric == 'max_abs_err' else 'MAE'}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("L (samples per knot interval)")
        ax.set_title(f"{interp} interpolation, in-domain, vs float64")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("output error (mean over seeds, t-95% bars;\nlower bars clipped at 0.1x the mean)")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return _finish(fig, results, path)


def latency_vs_batch(results: dict, path: Path) -> Path | None:
    import matplotlib.pyplot as plt

    table = results["summary"]["speed"]["table"]
    if not table:
        return None
    fig, axes = plt.subplots(1, len(PANELS), figsize=(5.2 * len(PANELS), 4.2), squeeze=False)
    for ax, (title, names) in zip(axes[0], PANELS, strict=True):
        for i, name in enumerate(names):
            pts = sorted((t["batch"], t["median_ms"], t["q1_ms"], t["q3_ms"]) for t in table if t["contender"] == name)
            if not pts:
                continue
            b, m, q1, q3 = zip(*pts, strict=True)
            ax.errorbar(b, m, yerr=[[mm - a for mm, a in zip(m, q1, strict=True)], [c - mm for mm, c in zip(m, q3, strict=True)]],
                        fmt="-o", ms=3.5, capsize=2, color=f"C{i}", label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("batch (rows per call)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6.5)
    sm = results.get("speed_model", {})
    axes[0][0].set_ylabel(f"median ms per call ({sm.get('name')} {sm.get('width')}, 1 thread)")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return _finish(fig, results, path)


def bytes_per_form(results: dict, path: Path) -> Path | None:
    import matplotlib.pyplot as plt

    mem = results["summary"]["memory"]
    prof = results["profile"]
    total = [d for d in mem["layers"] if d["layer"] == "total"]
    if not total and not mem["files"]:
        return None
    bars = []
    pick = [d for d in total if d["L"] == prof["speed_L"] and d["scheme"] == prof["speed_scheme"]]
    if pick:
        d = pick[0]
        bars += [("float spline params (f32)", d["float_spline_bytes"]),
                 ("all pykan params (f32)", d["float_all_bytes"]),
                 (f"LUT tables L{d['L']} {d['scheme']}", d["lut_table_bytes"]),
                 ("LUT runtime dense f32", d["runtime_dense_bytes"])]
    bars += [(f"file: {f['file']}", f["bytes"]) for f in mem["files"]]
    bars = [(k, v) for k, v in bars if isinstance(v, (int, float))]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), gridspec_kw={"width_ratios": [1.4, 1]})
    ax = axes[0]
    ax.barh([k for k, _ in bars], [v / 1024 for _, v in bars], color=[f"C{i % 10}" for i in range(len(bars))])
    ax.set_xscale("log")
    ax.set_xlabel("KiB")
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title(f"{results.get('speed_model', {}).get('name')}: bytes per form")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    ax = axes[1]
    for i, scheme in enumerate(sorted({d["scheme"] for d in total})):
        pts = sorted((d["L"], d["lut_table_bytes"]) for d in total if d["scheme"] == scheme)
        ax.plot([p[0] for p in pts], [p[1] / 1024 for p in pts], "-o", color=f"C{i}", label=f"LUT tables {scheme}")
    if total and total[0]["float_spline_bytes"]:
        ax.axhline(total[0]["float_spline_bytes"] / 1024, color="k", ls="--", lw=1, label="float spline params")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("L")
    ax.set_ylabel("KiB")
    ax.set_title("stored LUT bytes vs L")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return _finish(fig, results, path)


INTERP_MARKERS = {"linear": "o", "nearest": "^", "poly": "*"}
SCHEME_COLORS = {"int8": "C0", "uint8": "C1", "float16": "C2", "float32": "C3"}


def _frontier_panel(ax, model: dict, pts: list[dict], bars: list[float]) -> None:
    from matplotlib.ticker import NullFormatter

    good = [d for d in pts if isinstance(d["error_over_std"], (int, float)) and 0 < d["error_over_std"] < float("inf")]
    for d in good:
        poly = d["interp"] == "poly"
        ax.scatter(d["stored_bytes"], d["error_over_std"], marker=INTERP_MARKERS.get(d["interp"], "s"),
                   s=90 if poly else 22, color=SCHEME_COLORS.get(d["scheme"], "k"),
                   edgecolors="k" if poly else "none", linewidths=0.6, zorder=3, alpha=1.0 if poly else 0.75)
    front = sorted((d["stored_bytes"], d["error_over_std"]) for d in good if d["on_frontier"])
    if front:
        xs, ys = zip(*front, strict=True)
        ax.plot(xs, ys, "-", color="k", lw=2.2, alpha=0.35, zorder=2, drawstyle="steps-post")
        ax.scatter(xs, ys, s=160, facecolors="none", edgecolors="k", linewidths=1.0, zorder=4)
    for bar, ls in zip(bars, ("--", ":"), strict=False):
        ax.axhline(bar, color="0.4", ls=ls, lw=0.8)
    dropped = len(pts) - len(good)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title(f"{model['model']} ({model['n_candidates']} candidates, {model['n_rows']} rows"
                 + (f", {dropped} with error 0 or non-finite not drawn" if dropped else "") + ")", fontsize=8)
    ax.grid(True, which="both", alpha=0.25)
    ax.tick_params(labelsize=7)
    ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels overlap on axes spanning under a decade
    ax.yaxis.set_minor_formatter(NullFormatter())


def frontier(results: dict, path: Path) -> Path | None:
    """Stored bytes vs max error / output std of every candidate, one panel per model (log-log); the
    Pareto frontier is the grey step line with circled points, poly candidates are large stars."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    fr = results["summary"].get("frontier", {})
    models = fr.get("models", [])
    if not models:
        return None
    ncol = min(3, len(models))
    nrow = -(-len(models) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(max(4.4 * ncol, 9.0), 3.4 * nrow + 1.2), squeeze=False)
    for ax, m in zip(axes.flat, models, strict=False):
        _frontier_panel(ax, m, [d for d in fr["points"] if d["model"] == m["model"]], fr.get("bars", []))
    for ax in list(axes.flat)[len(models):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("max |error| / output std", fontsize=8)
    for ax in axes[-1, :]:
        ax.set_xlabel("stored bytes (tables/coefficients, scales, offsets, knots)", fontsize=8)
    handles = [Line2D([], [], ls="", marker=mk, color="0.3", label=i) for i, mk in INTERP_MARKERS.items()]
    handles += [Line2D([], [], ls="", marker="s", color=c, label=s) for s, c in SCHEME_COLORS.items()]
    handles += [Line2D([], [], color="k", lw=2.2, alpha=0.35, label="Pareto frontier"),
                Line2D([], [], color="0.4", ls="--", lw=0.8, label="1e-2 x std"),
                Line2D([], [], color="0.4", ls=":", lw=0.8, label="1e-3 x std")]
    top = 1 - 0.75 / fig.get_figheight()
    fig.suptitle("size vs error of every (interp, L, scheme) candidate: NumPy reference vs float64 on cache_data",
                 fontsize=9, y=0.995, va="top")
    fig.legend(handles=handles, loc="upper center", ncol=5, fontsize=7, frameon=False,
               bbox_to_anchor=(0.5, 1 - 0.3 / fig.get_figheight()))
    fig.tight_layout(rect=(0, 0.03, 1, top))
    return _finish(fig, results, path)


def draw_all(results: dict, out_dir: Path) -> list[Path]:
    """Draw every figure into ``out_dir/plots``; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    d = Path(out_dir) / "plots"
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for fn, name in ((error_vs_L, "error_vs_L.png"), (latency_vs_batch, "latency_vs_batch.png"),
                     (bytes_per_form, "bytes_per_form.png"), (frontier, "frontier.png")):
        p = fn(results, d / name)
        if p is not None:
            out.append(p)
    return out


__all__ = ["bytes_per_form", "draw_all", "error_vs_L", "frontier", "latency_vs_batch"]
