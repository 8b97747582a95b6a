"""``lutkan inspect --edges``: the per-edge error report against the source pykan model.

For every active edge ``(i, j)`` of every layer: the compile-time table error recorded in the artifact
(``tab_error``: the stored table vs the exact edge function at the samples and midpoints) and an error
measured here on a dense grid over the input's domain ``[t_0, t_K)``, comparing the compiled edge
(table lookup plus base branch, evaluated by the NumPy reference) with the source's float64 edge
function (``mask*(scale_base*base(x) + scale_sp*spline(x))`` plus the symbolic term). Written as
``edges.csv`` and one heatmap PNG per layer.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from lutkan.artifact import LUTModel
from lutkan.errors import LutKanError, OnnxModelError


def _grid_points(knots_row: np.ndarray, L: int, per_interval: int) -> np.ndarray:
    """float32 points covering [t_0, t_K): every table sample, ``per_interval`` points per sample
    interval (so midpoints and quarter points are included), on every nonzero-width segment."""
    t = knots_row.astype(np.float64)
    n = (L - 1) * per_interval
    frac = np.arange(n, dtype=np.float64) / n
    pts = [t[k] + (t[k + 1] - t[k]) * frac for k in range(len(t) - 1) if t[k + 1] > t[k]]
    if not pts:
        return np.asarray([t[0]], dtype=np.float32)
    x = np.unique(np.concatenate(pts).astype(np.float32))
    return x[x < np.float32(t[-1])] if np.any(x < np.float32(t[-1])) else x


def edge_errors(model: LUTModel, src, *, per_interval: int = 4) -> list[dict]:
    """Per active edge: the artifact's ``tab_error`` and the error measured on a dense grid.

    The compiled edge ``(i, j)`` is evaluated with the NumPy reference (table lookup + base branch,
    float32) on ``per_interval`` points per table sample interval of every segment of input ``i``;
    the reference is the source's float64 edge function at the same (float32) points.
    """
    from lutkan.evaluators.numpy_eval import eval_layer
    from lutkan.source import base_function, bspline_basis
    from lutkan.tables import model_tables

    if len(src.layers) != len(model.layers):
        raise LutKanError(f"the source has {len(src.layers)} layers but the model has {len(model.layers)}: "
                          f"--source is not the model this artifact was compiled from")
    rows = []
    for l, (layer, p, sl) in enumerate(zip(model.layers, model_tables(model), src.layers, strict=True)):
        if (sl.in_dim, sl.out_dim) != (layer.in_dim, layer.out_dim):
            raise LutKanError(f"layer {l}: source is {sl.in_dim}x{sl.out_dim} but the model is "
                              f"{layer.in_dim}x{layer.out_dim}: --source does not match the model")
        L = p.L
        tab_err = {(int(i), int(j)): float(e) for i, j, e in zip(layer.edge_src, layer.edge_dst, layer.tab_error, strict=True)}
        for i in sorted({int(v) for v in layer.edge_src}):
            x = _grid_points(p.knots[i], L, per_interval)
            got = eval_layer(p.input_slice(i), x[:, None]).astype(np.float64)
            x64 = x.astype(np.float64)
            B = bspline_basis(x64, sl.grid[i], sl.k)
            base = base_function(src.base_fun, x64)
            for j in np.nonzero(p.active[i])[0].tolist():
                ref = float(sl.mask[i, j] * sl.scale_sp[i, j]) * (B @ sl.coef[i, j])
                ref = ref + float(sl.mask[i, j] * sl.scale_base[i, j]) * base
                if src.symbolic_enabled and sl.sym_mask[j, i]:
                    ref = ref + sl.symbolic_term(i, j, x64)
                with np.errstate(invalid="ignore"):
                    d = np.abs(got[:, j] - ref)
                finite = np.isfinite(ref)
                err = float(d[finite].max()) if finite.any() else float("nan")
                rows.append({
                    "layer": l, "i": i, "j": j,
                    "lo": float(p.lo[i]), "hi": float(p.hi[i]),
                    "tab_error": tab_err.get((i, j), float("nan")),
                    "grid_max_abs_error": err,
                    "grid_points": int(x.shape[0]),
                    "edge_max_abs": float(np.abs(ref[finite]).max()) if finite.any() else float("nan"),
                })
    return rows


def _heatmap(rows: list[dict], layer: int, shape: tuple[int, int], path: Path, title: str) -> None:
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    I, O = shape
    m = np.full((O, I), np.nan)
    for r in rows:
        if r["layer"] == layer:
            m[r["j"], r["i"]] = r["grid_max_abs_error"]
    pos = m[np.isfinite(m) & (m > 0)]
    w = min(16.0, max(6.0, 0.25 * I + 2.5))
    h = min(10.0, max(3.0, 0.28 * O + 1.8))
    fig = Figure(figsize=(w, h), dpi=100)
    ax = fig.add_subplot()
    norm = LogNorm(vmin=max(pos.min(), 1e-12), vmax=max(pos.max(), pos.min() * 10)) if pos.size else None
    im = ax.imshow(np.where(m > 0, m, np.nan) if pos.size else m, aspect="auto", cmap="viridis",
                   norm=norm, interpolation="nearest")
    if I * O <= 64:
        for j in range(O):
            for i in range(I):
                if np.isfinite(m[j, i]):
                    light = norm is not None and m[j, i] > 0 and norm(m[j, i]) > 0.6
                    ax.text(i, j, f"{m[j, i]:.2g}", ha="center", va="center", fontsize=7, color="k" if light else "w")
    ax.set_xlabel("input i")
    ax.set_ylabel("output j")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label="max abs error")
    fig.tight_layout()
    fig.savefig(path)


def write_edge_report(model: LUTModel, src, out_dir: str | Path, *, label: str = "") -> dict:
    """Write ``edges.csv`` and ``layer<l>_edge_error.png`` into ``out_dir``; returns paths + summary."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise LutKanError("--edges needs matplotlib for the heatmaps: pip install 'lutkan[pykan]'") from None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = edge_errors(model, src)
    csv_path = out / "edges.csv"
    fields = ["layer", "i", "j", "lo", "hi", "tab_error", "grid_max_abs_error", "grid_points", "edge_max_abs"]
    with csv_path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.8g}" if isinstance(v, float) else v) for k, v in r.items()})
    pngs = []
    c = model.contract
    for l, layer in enumerate(model.layers):
        png = out / f"layer{l}_edge_error.png"
        _heatmap(rows, l, (layer.in_dim, layer.out_dim), png,
                 f"{label}layer {l}: compiled edge vs source edge, max abs error\non a dense grid "
                 f"(L={c.L}, {c.scheme}; blank: inactive edge)")
        pngs.append(str(png))
    per_layer = []
    for l in range(len(model.layers)):
        g = [r["grid_max_abs_error"] for r in rows if r["layer"] == l and np.isfinite(r["grid_max_abs_error"])]
        t = [r["tab_error"] for r in rows if r["layer"] == l]
        per_layer.append({"layer": l, "edges": len(t), "max_tab_error": max(t, default=0.0),
                          "max_grid_error": max(g, default=0.0)})
    return {"csv": str(csv_path), "png": pngs, "per_layer": per_layer, "rows": len(rows)}


def model_for_edges(path: Path, kind: str, desc: dict, source: str | None):
    """The LUTModel and the SourceModel to compare. An .onnx file is recompiled from the source with
    the contract recorded in its metadata (compiling is deterministic, so the tables are the same)."""
    from lutkan.compiler import compile_model
    from lutkan.compiler.pykan import load_source
    from lutkan.contract import ContractOptions

    if kind == "lutkan":
        from lutkan.artifact import load

        model = load(path)
        prov = model.provenance
    else:
        model = None
        prov = desc["metadata"].get("provenance") or {}
    if source is None:
        source = _provenance_source(prov)
        if source is None:
            raise LutKanError(f"{path}: --edges needs --source SRC (the pykan checkpoint the model was compiled "
                              f"from); the model's provenance does not name a readable one")
    src = load_source(source)
    if model is None:
        contract = desc["metadata"].get("contract")
        if not isinstance(contract, dict):
            raise OnnxModelError(f"{path}: no lutkan.contract metadata; run --edges on the .lutkan artifact instead")
        model = compile_model(src, ContractOptions.from_dict(contract))
    return model, src


def _provenance_source(prov) -> str | None:
    if not isinstance(prov, dict):
        return None
    for key in ("source", "checkpoint", "source_path", "path"):
        v = prov.get(key)
        if isinstance(v, str) and v:
            p = Path(v)
            if p.exists() or p.with_name(p.name + "_state").exists():
                return v
    return None


__all__ = ["edge_errors", "model_for_edges", "write_edge_report"]
