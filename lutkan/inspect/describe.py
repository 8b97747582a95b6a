"""Describe a ``.lutkan`` artifact or an exported ``.onnx`` file: ``describe`` (a JSON-able dict) and
``format_text`` (what ``lutkan inspect`` prints).

For a ``.lutkan``: width, layers (inputs, outputs, segments, edges, L, scheme), contract, per-layer
table bytes and errors, provenance and compile notes. For an ``.onnx`` also the ``lutkan.*``
metadata, opset imports, node counts (``LUTKanEdge`` nodes, op types, domains), model-local functions
and the initializer bytes of each layer.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path

from lutkan.artifact import MAGIC, LUTModel
from lutkan.custom_ops.schema import DOMAIN, OP_TYPE
from lutkan.errors import LutKanError, OnnxModelError

META_PREFIX = DOMAIN + "."
"""The exporter writes its metadata_props as ``lutkan.*`` keys (``exporter._versions.METADATA_KEYS``)."""
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
    for entry, layer in zip(s["layers"], model.layers, strict=True):
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


def _lutkan_lines(d: dict) -> list[str]:
    c = d["contract"]
    lines = [
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
    return lines


def _onnx_graph_lines(d: dict) -> list[str]:
    ins = ", ".join(f"{i['name']} {i['shape']}" for i in d["inputs"])
    outs = ", ".join(f"{o['name']} {o['shape']}" for o in d["outputs"])
    lines = [
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
    return lines


def _onnx_metadata_lines(d: dict) -> list[str]:
    lines = []
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
    return lines


def _provenance_lines(d: dict) -> list[str]:
    lines = []
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
    return lines


def format_text(d: dict) -> str:
    """Human-readable rendering of ``describe``'s dict."""
    lines = [f"{d['path']}: {'lutkan artifact' if d['kind'] == 'lutkan' else 'ONNX model'}, {d['file_bytes']} bytes"]
    if d["kind"] == "lutkan":
        lines += _lutkan_lines(d)
    else:
        lines += _onnx_graph_lines(d) + _onnx_metadata_lines(d)
    return "\n".join(lines + _provenance_lines(d))


__all__ = ["describe", "format_text"]
