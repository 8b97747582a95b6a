"""``lutkan inspect``: describe a ``.lutkan`` artifact or an exported ``.onnx`` file.

Text (or ``--json``) report: width, layers (inputs, outputs, segments, edges, L, scheme), contract,
per-layer table bytes, provenance and compile notes. For ``.onnx`` also the ``lutkan.*`` metadata,
opset imports, node counts (``LUTKanEdge`` nodes, op types, domains), model-local functions and the
initializer bytes of each layer.

``--edges`` adds a per-edge error report against the source pykan model: for every active edge
``(i, j)`` of every layer, the compile-time table error recorded in the artifact (``tab_error``: the
stored table vs the exact edge function at the samples and midpoints) and an error measured here on a
dense grid over the input's domain ``[t_0, t_K)``, comparing the compiled edge (table lookup plus base
branch, evaluated by the NumPy reference) with the source's float64 edge function
(``mask*(scale_base*base(x) + scale_sp*spline(x))`` plus the symbolic term). Written as
``edges.csv`` and one heatmap PNG per layer.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from lutkan.artifact import MAGIC, LUTModel
from lutkan.errors import LutKanError, OnnxModelError

__all__ = ["describe", "edge_errors", "inspect_main", "write_edge_report"]

DOMAIN = "lutkan"
OP_TYPE = "LUTKanEdge"
META_PREFIX = "lutkan."
MAX_NOTES = 12
_LAYER_RE = re.compile(r"^(?:layer|kan|l)_?(\d+)(?:[._/:]|$)")


# ----------------------------------------------------------------------------- loading


def _kind(path: Path) -> str:
    if not path.exists():
        raise LutKanError(f"{path}: no such file (expected a .lutkan artifact or an .onnx model)")
    if not path.is_file():
        raise LutKanError(f"{path}: is not a file (expected a .lutkan artifact or an .onnx model)")
    with path.open("rb") as f:
        head = f.read(len(MAGIC))
    if head == MAGIC or path.suffix == ".lutkan":
        return "lutkan"
    return "onnx"


def _load_onnx(path: Path):
    try:
        import onnx
    except ImportError:  # pragma: no cover - onnx is a core dependency
        raise LutKanError("reading .onnx files needs the 'onnx' package") from None
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001 - protobuf raises many types for a non-ONNX file
        raise OnnxModelError(f"{path}: neither a .lutkan artifact nor a readable ONNX model "
                             f"({type(e).__name__}: {e})") from None
    if proto.ir_version <= 0 or not proto.graph.node:
        raise OnnxModelError(f"{path}: not an ONNX model (no IR version or no graph nodes); expected an .onnx "
                             f"file written by 'lutkan export' or a .lutkan artifact")
    return proto


def _meta_value(v: str):
    try:
        return json.loads(v)
    except (json.JSONDecodeError, TypeError):
        return v


# ----------------------------------------------------------------------------- description


def _describe_lutkan(model: LUTModel) -> dict:
    s = model.summary()
    s["n_outputs"] = model.n_outputs
    s["total_table_bytes"] = int(sum(model.table_bytes()))
    for entry, layer in zip(s["layers"], model.layers):
        entry["L"] = model.contract.L
        entry["scheme"] = model.contract.scheme
        entry["table_dtype"] = layer.table.dtype.name
        entry["mean_tab_error"] = float(layer.tab_error.mean()) if layer.n_edges else 0.0
    return s


def _layer_of_initializer(name: str, consumers: dict[str, set[int]]) -> str:
    m = _LAYER_RE.match(name)
    if m:
        return m.group(1)
    layers = consumers.get(name)
    if layers and len(layers) == 1:
        return str(next(iter(layers)))
    return "shared"


def _describe_onnx(proto) -> dict:
    from onnx import helper, numpy_helper

    g = proto.graph
    meta = {p.key: _meta_value(p.value) for p in proto.metadata_props}
    lut_nodes = [n for n in g.node if n.domain == DOMAIN and n.op_type == OP_TYPE]
    # Which layer consumes an initializer: LUTKanEdge nodes in graph order are layers 0, 1, ...
    consumers: dict[str, set[int]] = defaultdict(set)
    for l, n in enumerate(lut_nodes):
        for inp in n.input:
            consumers[inp].add(l)
    per_layer: dict[str, dict] = {}
    total = 0
    for init in g.initializer:
        nbytes = int(numpy_helper.to_array(init).nbytes)
        total += nbytes
        key = _layer_of_initializer(init.name, consumers)
        entry = per_layer.setdefault(key, {"initializer_bytes": 0, "initializers": {}})
        entry["initializer_bytes"] += nbytes
        entry["initializers"][init.name] = {"dtype": helper.tensor_dtype_to_np_dtype(init.data_type).name,
                                            "shape": list(init.dims), "bytes": nbytes}

    def order(k: str):
        return (0, int(k)) if k.isdigit() else (1, k)

    lut_desc = []
    for n in lut_nodes:
        attrs = {}
        for a in n.attribute:
            v = helper.get_attribute_value(a)
            attrs[a.name] = v.decode() if isinstance(v, bytes) else v
        lut_desc.append({"name": n.name, "inputs": list(n.input), "outputs": list(n.output), "attributes": attrs})

    def dims(vi):
        t = vi.type.tensor_type
        return [d.dim_param or d.dim_value for d in t.shape.dim]

    lutkan_meta = {k[len(META_PREFIX):]: v for k, v in meta.items() if k.startswith(META_PREFIX)}
    return {
        "ir_version": int(proto.ir_version),
        "producer": f"{proto.producer_name} {proto.producer_version}".strip(),
        "opset_imports": {(o.domain or "ai.onnx"): int(o.version) for o in proto.opset_import},
        "graph": g.name,
        "inputs": [{"name": i.name, "shape": dims(i)} for i in g.input],
        "outputs": [{"name": o.name, "shape": dims(o)} for o in g.output],
        "nodes": len(g.node),
        "lutkan_edge_nodes": len(lut_nodes),
        "op_types": dict(Counter(f"{n.domain + '.' if n.domain else ''}{n.op_type}" for n in g.node).most_common()),
        "domains": sorted({n.domain or "ai.onnx" for n in g.node}),
        "functions": [{"name": f"{f.domain}.{f.name}", "body_nodes": len(f.node), "inputs": list(f.input)}
                      for f in proto.functions],
        "lutkan_nodes": lut_desc,
        "initializer_bytes": total,
        "initializers_per_layer": {k: per_layer[k] for k in sorted(per_layer, key=order)},
        "metadata": lutkan_meta,
        "other_metadata": {k: v for k, v in meta.items() if not k.startswith(META_PREFIX)},
    }


def describe(path: str | Path) -> dict:
    """A JSON-able description of a ``.lutkan`` or ``.onnx`` file (what ``lutkan inspect`` prints)."""
    path = Path(path)
    kind = _kind(path)
    out: dict = {"path": str(path), "kind": kind, "file_bytes": path.stat().st_size}
    if kind == "lutkan":
        from lutkan.artifact import load

        out.update(_describe_lutkan(load(path)))
    else:
        out.update(_describe_onnx(_load_onnx(path)))
    return out


def _fmt(v) -> str:
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    return str(v)


def format_text(d: dict) -> str:
    """Human-readable rendering of ``describe``'s dict."""
    lines = [f"{d['path']}: {'lutkan artifact' if d['kind'] == 'lutkan' else 'ONNX model'}, {d['file_bytes']} bytes"]
    if d["kind"] == "lutkan":
        c = d["contract"]
        lines += [
            f"format_version: {d['format_version']}",
            f"width: {d['width']}  (inputs {d['n_inputs']}, outputs {d['n_outputs']}), base_fun {d['base_fun']}",
            "contract: " + ", ".join(f"{k}={v}" for k, v in c.items()),
            "layers:",
            f"  {'layer':>5} {'in':>5} {'out':>5} {'nodes':>5} {'K':>4} {'L':>5} {'scheme':>7} {'edges':>6} "
            f"{'table_bytes':>12} {'max_tab_error':>14} {'mean_tab_error':>14}",
        ]
        for l, e in enumerate(d["layers"]):
            mult = f"  mult_groups {e['mult_groups']}" if e["mult_groups"] else ""
            lines.append(f"  {l:>5} {e['in']:>5} {e['out_subnodes']:>5} {e['nodes']:>5} {e['segments']:>4} "
                         f"{e['L']:>5} {e['scheme']:>7} {e['edges']:>6} {e['table_bytes']:>12} "
                         f"{e['max_tab_error']:>14.4g} {e['mean_tab_error']:>14.4g}{mult}")
        lines.append(f"  total table bytes: {d['total_table_bytes']}")
    else:
        ins = ", ".join(f"{i['name']} {i['shape']}" for i in d["inputs"])
        outs = ", ".join(f"{o['name']} {o['shape']}" for o in d["outputs"])
        lines += [
            f"ir_version {d['ir_version']}, producer {d['producer'] or '-'}, opsets "
            + ", ".join(f"{k} {v}" for k, v in d["opset_imports"].items()),
            f"inputs: {ins}",
            f"outputs: {outs}",
            f"nodes: {d['nodes']} ({d['lutkan_edge_nodes']} {DOMAIN}.{OP_TYPE}), domains: {', '.join(d['domains'])}",
            "op types: " + ", ".join(f"{k} x{v}" for k, v in d["op_types"].items()),
        ]
        for f in d["functions"]:
            lines.append(f"function {f['name']}: {f['body_nodes']} body nodes, inputs {', '.join(f['inputs'])}")
        for n in d["lutkan_nodes"]:
            lines.append(f"  node {n['name'] or '?'}: " + ", ".join(f"{k}={v}" for k, v in n["attributes"].items()))
        lines.append(f"initializer bytes: {d['initializer_bytes']}")
        for k, e in d["initializers_per_layer"].items():
            label = f"layer {k}" if k.isdigit() else k
            parts = ", ".join(f"{n} {v['dtype']}{v['shape']}" for n, v in e["initializers"].items())
            lines.append(f"  {label}: {e['initializer_bytes']} bytes  ({parts})")
        meta = d["metadata"]
        contract, layers = meta.get("contract"), meta.get("layers")
        if isinstance(contract, dict):
            lines.append("contract: " + ", ".join(f"{k}={v}" for k, v in contract.items())
                         + (f", base_fun={meta['base_fun']}" if "base_fun" in meta else ""))
        if isinstance(layers, list) and layers and all(isinstance(e, dict) for e in layers):
            init = d["initializers_per_layer"]
            L = contract.get("L", "?") if isinstance(contract, dict) else "?"
            scheme = contract.get("scheme", "?") if isinstance(contract, dict) else "?"
            lines += ["layers (lutkan.layers metadata; onnx_bytes: the layer's initializers in this file):",
                      f"  {'layer':>5} {'in':>5} {'out':>5} {'nodes':>5} {'K':>4} {'L':>5} {'scheme':>7} {'edges':>6} "
                      f"{'table_bytes':>12} {'onnx_bytes':>11} {'max_tab_error':>14}"]
            for l, e in enumerate(layers):
                ob = init.get(str(l), {}).get("initializer_bytes", "-")
                err = e.get("max_tab_error")
                lines.append(f"  {l:>5} {e.get('in', '?'):>5} {e.get('out_subnodes', '?'):>5} {e.get('nodes', '?'):>5} "
                             f"{e.get('segments', '?'):>4} {L:>5} {scheme:>7} {e.get('edges', '?'):>6} "
                             f"{e.get('table_bytes', '?'):>12} {ob:>11} "
                             f"{(f'{err:.4g}' if isinstance(err, (int, float)) else '?'):>14}")
        rest = {k: v for k, v in meta.items() if k not in ("provenance", "notes", "contract", "layers", "base_fun")}
        if rest:
            lines.append("metadata (lutkan.*):")
            lines += [f"  {k}: {_fmt(v)}" for k, v in rest.items()]
        if d["other_metadata"]:
            lines.append("other metadata: " + ", ".join(f"{k}={v}" for k, v in d["other_metadata"].items()))
    prov = d.get("provenance") if d["kind"] == "lutkan" else d["metadata"].get("provenance")
    notes = d.get("notes") if d["kind"] == "lutkan" else d["metadata"].get("notes")
    if prov:
        lines.append("provenance:")
        if isinstance(prov, dict):
            lines += [f"  {k}: {_fmt(v)}" for k, v in prov.items()]
        else:
            lines.append(f"  {prov}")
    if notes:
        notes = notes if isinstance(notes, list) else [notes]
        lines.append(f"notes ({len(notes)}):")
        lines += [f"  - {n}" for n in notes[:MAX_NOTES]]
        if len(notes) > MAX_NOTES:
            lines.append(f"  ... {len(notes) - MAX_NOTES} more (--json lists all)")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- per-edge errors


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
    from lutkan.tables import model_tables
    from lutkan.source import base_function, bspline_basis

    if len(src.layers) != len(model.layers):
        raise LutKanError(f"the source has {len(src.layers)} layers but the model has {len(model.layers)}: "
                          f"--source is not the model this artifact was compiled from")
    rows = []
    for l, (layer, p, sl) in enumerate(zip(model.layers, model_tables(model), src.layers)):
        if (sl.in_dim, sl.out_dim) != (layer.in_dim, layer.out_dim):
            raise LutKanError(f"layer {l}: source is {sl.in_dim}x{sl.out_dim} but the model is "
                              f"{layer.in_dim}x{layer.out_dim}: --source does not match the model")
        L = p.L
        tab_err = {(int(i), int(j)): float(e) for i, j, e in zip(layer.edge_src, layer.edge_dst, layer.tab_error)}
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
                 f"{label}layer {l}: compiled edge vs source edge, max abs error\non a dense grid (L={c.L}, {c.scheme}; blank: inactive edge)")
        pngs.append(str(png))
    per_layer = []
    for l in range(len(model.layers)):
        g = [r["grid_max_abs_error"] for r in rows if r["layer"] == l and np.isfinite(r["grid_max_abs_error"])]
        t = [r["tab_error"] for r in rows if r["layer"] == l]
        per_layer.append({"layer": l, "edges": len(t), "max_tab_error": max(t, default=0.0),
                          "max_grid_error": max(g, default=0.0)})
    return {"csv": str(csv_path), "png": pngs, "per_layer": per_layer, "rows": len(rows)}


def _model_for_edges(path: Path, kind: str, desc: dict, source: str | None):
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


# ----------------------------------------------------------------------------- CLI entry


def inspect_main(a) -> int:
    """Entry point of ``lutkan inspect`` (args: model, json, edges, source, out, quiet)."""
    path = Path(a.model)
    d = describe(path)
    if getattr(a, "edges", False):
        model, src = _model_for_edges(path, d["kind"], d, getattr(a, "source", None))
        d["edge_report"] = write_edge_report(model, src, getattr(a, "out", None) or "inspect-out",
                                             label=f"{path.name}: ")
    if getattr(a, "json", False):
        print(json.dumps(d, indent=2, default=str))
        return 0
    print(format_text(d))
    if "edge_report" in d:
        r = d["edge_report"]
        print(f"edge report: {r['rows']} edges -> {r['csv']}, heatmaps {', '.join(r['png'])}")
        print(f"  {'layer':>5} {'edges':>6} {'max_tab_error':>14} {'max_grid_error':>15}")
        for e in r["per_layer"]:
            print(f"  {e['layer']:>5} {e['edges']:>6} {e['max_tab_error']:>14.4g} {e['max_grid_error']:>15.4g}")
    return 0
