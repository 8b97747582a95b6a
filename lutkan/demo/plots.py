"""The demo's figures (matplotlib, optional): ``error_per_layer.png`` (table and output errors by L, one
panel per scheme) and ``latency.png`` (pykan vs onnxruntime vs the plugin, primary configuration)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lutkan.demo.config import Row
from lutkan.demo.report import fmt_us


def draw_plots(rows: list[Row], ref_lat: dict, n: int, out: Path, primary: Row | None) -> list[str]:
    """Write the figures into ``out``; returns their file names ([] without matplotlib or compiled rows)."""
    try:
        import matplotlib.figure  # noqa: F401 - optional dependency
    except ImportError:
        return []
    rows = [r for r in rows if r.layer_tab_error]  # compiled configurations only
    if not rows:
        return []
    written = [_error_plot(rows, out)]
    if primary is not None and primary.latency_us:
        written.append(_latency_plot(primary, ref_lat, n, out))
    return written


def _error_plot(rows: list[Row], out: Path) -> str:
    from matplotlib.figure import Figure

    schemes = list(dict.fromkeys(r.scheme for r in rows))
    n_layers = len(rows[0].layer_tab_error)
    fig = Figure(figsize=(4.2 * max(1, len(schemes)), 3.8), dpi=100)
    axes = fig.subplots(1, max(1, len(schemes)), squeeze=False, sharey=True)[0]
    for ax, scheme in zip(axes, schemes, strict=True):
        rs = sorted((r for r in rows if r.scheme == scheme), key=lambda r: r.L)
        Ls = [r.L for r in rs]
        for l in range(n_layers):
            ax.plot(Ls, [max(r.layer_tab_error[l], 1e-12) for r in rs], marker="o",
                    label=f"layer {l}: max table error (tab_error)")
        ax.plot(Ls, [max(r.max_abs_err, 1e-12) for r in rs], marker="s", color="k", linestyle="--",
                label="model output: max abs error vs pykan")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(Ls, [str(v) for v in Ls])
        ax.set_xlabel("L (samples per segment)")
        ax.set_title(scheme)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("max abs error")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    p = out / "error_per_layer.png"
    fig.savefig(p)
    return p.name


def _latency_plot(primary: Row, ref_lat: dict, n: int, out: Path) -> str:
    from matplotlib.figure import Figure

    labels = ["pykan (torch)", "ORT function", "ORT +plugin"]
    lat = primary.latency_us
    b1 = [ref_lat.get("pykan@1"), lat.get("ort-function@1"), lat.get("plugin-function@1")]
    bn = [ref_lat.get("pykan@N"), lat.get("ort-function@N"), lat.get("plugin-function@N")]
    fig = Figure(figsize=(8, 3.6), dpi=100)
    axes = fig.subplots(1, 2)
    for ax, vals, title in ((axes[0], b1, "batch 1"), (axes[1], bn, f"batch {n}")):
        v = [np.nan if x is None else x for x in vals]
        bars = ax.bar(labels, v, color=["#888888", "#1f77b4", "#2ca02c"])
        for b, x in zip(bars, v, strict=True):
            if np.isfinite(x):
                ax.annotate(fmt_us(x), (b.get_x() + b.get_width() / 2, x), ha="center", va="bottom", fontsize=8)
        ax.set_ylabel("median latency (µs)")
        ax.set_title(f"{title} (L={primary.L}, {primary.scheme})")
        ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    p = out / "latency.png"
    fig.savefig(p)
    return p.name


__all__ = ["draw_plots"]
