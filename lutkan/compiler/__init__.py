"""Compile a PyKAN model into a ``LUTModel``: read -> sample -> quantize -> pack.

``compile_model(source, options)`` accepts a ``SourceModel``, a live ``kan.MultKAN`` or a
checkpoint path (see ``lutkan.compiler.pykan.load_source``). Everything in the model
is compiled or refused with ``UnsupportedModelError`` naming the layer, edge and reason.
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from lutkan.artifact import LUTLayer, LUTModel
from lutkan.compiler.quantize import quantize
from lutkan.compiler.sampling import sample_points, tabulate_row
from lutkan.contract import ContractOptions
from lutkan.errors import UnsupportedModelError
from lutkan.source import SourceLayer, SourceModel
from lutkan.tables import dequantize

__all__ = ["compile_model", "as_source"]


def as_source(source, **kw) -> SourceModel:
    """Return ``source`` as a SourceModel (reading a live pykan model or checkpoint if needed)."""
    if isinstance(source, SourceModel):
        return source
    from lutkan.compiler.pykan import load_source  # torch/pykan only when needed

    return load_source(source, **kw)


def _check_knots(layer: SourceLayer, l: int) -> np.ndarray:
    knots32 = layer.grid.astype(np.float32)
    if not np.all(np.isfinite(knots32)):
        i = int(np.nonzero(~np.all(np.isfinite(knots32), axis=1))[0][0])
        raise UnsupportedModelError(f"layer {l}, input {i}: knots contain NaN/inf or overflow float32")
    bad = np.any(np.diff(knots32, axis=1) < 0, axis=1)
    if np.any(bad):
        i = int(np.nonzero(bad)[0][0])
        raise UnsupportedModelError(f"layer {l}, input {i}: knots are not sorted: {layer.grid[i].tolist()}")
    if layer.k < 1:
        raise UnsupportedModelError(f"layer {l}: spline order k={layer.k} is not supported (need k >= 1)")
    return knots32


def _compile_layer(src: SourceModel, l: int, opts: ContractOptions, notes: list[str]) -> LUTLayer:
    layer = src.layers[l]
    L = opts.L
    knots32 = _check_knots(layer, l)
    K = knots32.shape[1] - 1
    active = layer.edge_active(src.symbolic_enabled)
    edge_src, edge_dst = (a.astype(np.int32) for a in np.nonzero(active))
    E = edge_src.shape[0]
    f = np.zeros((E, K, L))
    f_mid = np.zeros((E, K, L - 1))
    row_of = {}
    for e, (i, j) in enumerate(zip(edge_src.tolist(), edge_dst.tolist(), strict=True)):
        row_of.setdefault(i, []).append((e, j))
    for i, pairs in row_of.items():
        xs = sample_points(knots32[i], L)
        mids = 0.5 * (xs[:, :-1] + xs[:, 1:])
        vals = tabulate_row(layer, i, xs, src.symbolic_enabled)
        vmid = tabulate_row(layer, i, mids, src.symbolic_enabled)
        es = [e for e, _ in pairs]
        js = [j for _, j in pairs]
        f[es] = np.moveaxis(vals[:, :, js], 2, 0)
        f_mid[es] = np.moveaxis(vmid[:, :, js], 2, 0)
    if not np.all(np.isfinite(f)):
        e = int(np.nonzero(~np.all(np.isfinite(f), axis=(1, 2)))[0][0])
        i, j = int(edge_src[e]), int(edge_dst[e])
        name = layer.sym_names[j][i] if src.symbolic_enabled and layer.sym_mask[j, i] else "spline"
        raise UnsupportedModelError(
            f"layer {l}, edge ({i}, {j}) [{name}]: the edge function is not finite on its domain "
            f"[{knots32[i, 0]:.6g}, {knots32[i, -1]:.6g}] (pykan's own forward gives NaN/inf there too); "
            f"fix the symbolic function or its affine with fix_symbolic before compiling")
    table, scale, offset = quantize(f, opts.scheme)
    base_weight = np.where(active, layer.mask * layer.scale_base, 0.0).astype(np.float32)
    if src.base_fun == "zero":
        base_weight[:] = 0
    lut = LUTLayer(
        knots=knots32, edge_src=edge_src, edge_dst=edge_dst, table=table, scale=scale, offset=offset,
        base_weight=base_weight,
        subnode_scale=layer.subnode_scale.astype(np.float32), subnode_bias=layer.subnode_bias.astype(np.float32),
        node_scale=layer.node_scale.astype(np.float32), node_bias=layer.node_bias.astype(np.float32),
        n_sum=int(layer.n_sum), mult_groups=tuple(int(g) for g in layer.mult_groups),
        tab_error=np.zeros(E, dtype=np.float32),
    )
    deq = dequantize(lut.table, lut.scale, lut.offset).astype(np.float64)
    pred_mid = deq[:, :, 1:] if opts.interp == "nearest" else 0.5 * (deq[:, :, :-1] + deq[:, :, 1:])
    err = np.maximum(np.abs(deq - f).max(axis=2, initial=0), np.abs(pred_mid - f_mid).max(axis=2, initial=0))
    object.__setattr__(lut, "tab_error", err.max(axis=1, initial=0).astype(np.float32))
    _note_symbolic(src, layer, l, opts, knots32, edge_src, edge_dst, notes)
    zero_rows = np.nonzero(knots32[:, -1] <= knots32[:, 0])[0]
    if zero_rows.size:
        notes.append(f"layer {l}: inputs {zero_rows.tolist()} have zero-width grids (constant feature in "
                     f"training); their spline term is 0 everywhere, as in pykan")
    return lut


def _note_symbolic(src, layer, l, opts, knots32, edge_src, edge_dst, notes) -> None:
    if not src.symbolic_enabled:
        return
    for i, j in zip(edge_src.tolist(), edge_dst.tolist(), strict=True):
        if layer.sym_mask[j, i]:
            notes.append(
                f"layer {l}, edge ({i}, {j}): symbolic {layer.sym_names[j][i]!r} is tabulated on "
                f"[{knots32[i, 0]:.6g}, {knots32[i, -1]:.6g}]; outside it the table follows oob={opts.oob!r} "
                f"while pykan keeps evaluating the formula")


def compile_model(source, options: ContractOptions | None = None, *, progress: bool = False,
                  **load_kw) -> LUTModel:
    """Compile ``source`` (SourceModel, live pykan model or checkpoint path) under ``options``."""
    opts = options or ContractOptions()
    src = as_source(source, **load_kw)
    notes: list[str] = []
    layers = []
    for l in tqdm(range(len(src.layers)), desc="compile", unit="layer", disable=not progress):
        layers.append(_compile_layer(src, l, opts, notes))
    prov = dict(src.provenance)
    prov.setdefault("compiled_by", _version())
    return LUTModel(layers=tuple(layers), contract=opts, base_fun=src.base_fun,
                    input_id=np.asarray(src.input_id, dtype=np.int64), n_inputs=int(src.n_inputs),
                    provenance=prov, notes=tuple(notes))


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"lutkan {version('lutkan')}"
    except PackageNotFoundError:
        return "lutkan (source tree)"
