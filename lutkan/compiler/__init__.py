"""Compile a PyKAN model into a ``LUTModel``: read -> sample -> quantize -> pack.

``compile_model(source, options)`` accepts a ``SourceModel``, a live ``kan.MultKAN`` or a
checkpoint path (see ``lutkan.compiler.pykan.load_source``). Everything in the model
is compiled or refused with ``UnsupportedModelError`` naming the layer, edge and reason.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from tqdm.auto import tqdm

from lutkan import budget
from lutkan.artifact import LUTLayer, LUTModel
from lutkan.compiler.poly import poly_coefficients, poly_values
from lutkan.compiler.quantize import quantize
from lutkan.compiler.sampling import sample_points, tabulate_row
from lutkan.contract import VALUE_MAX, ContractOptions
from lutkan.errors import ArtifactError, UnsupportedModelError
from lutkan.source import SourceLayer, SourceModel, portable_provenance
from lutkan.symbolic import symbolic_function
from lutkan.tables import dequantize

__all__ = ["compile_model", "as_source"]


def as_source(source, **kw) -> SourceModel:
    """Return ``source`` as a SourceModel (reading a live pykan model or checkpoint if needed)."""
    if isinstance(source, SourceModel):
        return source
    from lutkan.compiler.pykan import load_source  # torch/pykan only when needed

    return load_source(source, **kw)


_COMPILE_BYTES_PER_SAMPLE = 56
"""Working set of the compiler per sampled table entry (E*K*L): float64 samples and midpoints, the quantizer's
and the error estimate's temporaries (peak RSS measured at 49-53 bytes per sample, int8 and float32, L=4096)."""


def _check_knots(layer: SourceLayer, l: int) -> np.ndarray:
    with np.errstate(over="ignore"):
        knots32 = layer.grid.astype(np.float32)
    if not np.all(np.isfinite(knots32)):
        i = int(np.nonzero(~np.all(np.isfinite(knots32), axis=1))[0][0])
        raise UnsupportedModelError(f"layer {l}, input {i}: knots contain NaN/inf or overflow float32")
    big = np.abs(knots32) > VALUE_MAX
    if np.any(big):
        i, m = (int(v) for v in np.argwhere(big)[0])
        raise UnsupportedModelError(
            f"layer {l}, input {i}: knot {m} = {float(knots32[i, m]):.4g} exceeds +-{VALUE_MAX:g} "
            f"(lutkan.contract.VALUE_MAX): float32 cannot evaluate such a grid consistently (a knot span would "
            f"overflow); rescale that input (pykan's update_grid on standardized data)")
    bad = np.any(np.diff(knots32, axis=1) < 0, axis=1)
    if np.any(bad):
        i = int(np.nonzero(bad)[0][0])
        raise UnsupportedModelError(f"layer {l}, input {i}: knots are not sorted: {layer.grid[i].tolist()}")
    if layer.k < 1:
        raise UnsupportedModelError(f"layer {l}: spline order k={layer.k} is not supported (need k >= 1)")
    return knots32


def _table_edges(src: SourceModel, layer: SourceLayer, opts: ContractOptions) -> tuple[np.ndarray, np.ndarray]:
    """(edge_src, edge_dst) int32 of the edges with a table, in-major: every active edge when symbolic edges
    are tabulated, else the edges with a spline (numeric mask != 0)."""
    if opts.symbolic == "tabulate":
        active = layer.edge_active(src.symbolic_enabled)
    else:
        active = layer.mask != 0
    return tuple(a.astype(np.int32) for a in np.nonzero(active))


def _rows(edge_src: np.ndarray, edge_dst: np.ndarray) -> dict[int, tuple[list[int], list[int]]]:
    """input row -> (edge indices, destination outputs) of the edges leaving it."""
    rows: dict[int, tuple[list[int], list[int]]] = {}
    for e, (i, j) in enumerate(zip(edge_src.tolist(), edge_dst.tolist(), strict=True)):
        es, js = rows.setdefault(i, ([], []))
        es.append(e)
        js.append(j)
    return rows


def _sampled_tables(layer: SourceLayer, l: int, opts: ContractOptions, knots32, edge_src, edge_dst, tab_sym: bool):
    """LUT tables: stored (table, scale, offset) and the per-edge compile-time error ``tab_error``."""
    E, K, L = edge_src.shape[0], knots32.shape[1] - 1, opts.L
    f, f_mid = np.zeros((E, K, L)), np.zeros((E, K, L - 1))
    for i, (es, js) in _rows(edge_src, edge_dst).items():
        xs = sample_points(knots32[i], L)
        f[es] = np.moveaxis(tabulate_row(layer, i, xs, tab_sym)[:, :, js], 2, 0)
        f_mid[es] = np.moveaxis(tabulate_row(layer, i, 0.5 * (xs[:, :-1] + xs[:, 1:]), tab_sym)[:, :, js], 2, 0)
    if not np.all(np.isfinite(f)):
        e = int(np.nonzero(~np.all(np.isfinite(f), axis=(1, 2)))[0][0])
        i, j = int(edge_src[e]), int(edge_dst[e])
        name = layer.sym_names[j][i] if tab_sym and layer.sym_mask[j, i] else "spline"
        raise UnsupportedModelError(
            f"layer {l}, edge ({i}, {j}) [{name}]: the edge function is not finite on its domain "
            f"[{knots32[i, 0]:.6g}, {knots32[i, -1]:.6g}] (pykan's own forward gives NaN/inf there too), so it "
            f"cannot be tabulated; compile with symbolic='exact' (the default) to evaluate the formula instead")
    _check_values(f, l, edge_src, edge_dst, "the edge function")
    table, scale, offset = quantize(f, opts.scheme)
    deq = dequantize(table, scale, offset).astype(np.float64)
    pred_mid = deq[:, :, 1:] if opts.interp == "nearest" else 0.5 * (deq[:, :, :-1] + deq[:, :, 1:])
    err = np.maximum(np.abs(deq - f).max(axis=2, initial=0), np.abs(pred_mid - f_mid).max(axis=2, initial=0))
    return table, scale, offset, err.max(axis=1, initial=0)


def _check_values(f: np.ndarray, l: int, edge_src, edge_dst, what: str) -> None:
    """Refuse (E, K, L) table values beyond ``VALUE_MAX`` (naming the first edge)."""
    big = np.abs(f).max(axis=(1, 2), initial=0) > VALUE_MAX
    if np.any(big):
        e = int(np.nonzero(big)[0][0])
        raise UnsupportedModelError(
            f"layer {l}, edge ({int(edge_src[e])}, {int(edge_dst[e])}): {what} reaches |f| = "
            f"{float(np.abs(f[e]).max()):.4g} on the knot domain, beyond {VALUE_MAX:g} (lutkan.contract.VALUE_MAX): "
            f"float32 tables of such values overflow differently in different backends")


_POLY_CHECK_POINTS = np.linspace(0.0, 1.0, 9)


def _poly_tables(layer: SourceLayer, l: int, opts: ContractOptions, knots32, edge_src, edge_dst):
    """``poly`` tables: stored coefficients (E, K, L) and ``tab_error`` measured at 9 points per segment."""
    E, K, L = edge_src.shape[0], knots32.shape[1] - 1, opts.L
    coef = np.zeros((E, K, L))
    err = np.zeros(E)
    for i, (es, js) in _rows(edge_src, edge_dst).items():
        c = poly_coefficients(layer, i, knots32[i], L)[:, :, js]  # (K, L, E_i)
        coef[es] = np.moveaxis(c, 2, 0)
        t = knots32[i].astype(np.float64)
        xs = t[:-1, None] + (t[1:] - t[:-1])[:, None] * _POLY_CHECK_POINTS[None, :]
        exact = tabulate_row(layer, i, xs, False)[:, :, js]  # (K, M, E_i)
        stored = poly_values(np.moveaxis(coef[es].astype(opts.scheme).astype(np.float64), 0, 2),
                             _POLY_CHECK_POINTS)
        flat = (t[1:] - t[:-1]) <= 0  # zero-width segment: only u = 0 is ever evaluated
        d = np.abs(stored - exact)
        d[flat, 1:, :] = 0
        err[es] = d.max(axis=(0, 1), initial=0)
    _check_values(coef, l, edge_src, edge_dst, "a polynomial coefficient")
    table, _, _ = quantize(coef, opts.scheme)
    return table, err


def _symbolic_edges(src: SourceModel, layer: SourceLayer, l: int, opts: ContractOptions):
    """Exact symbolic edges (``symbolic="exact"``): (sym_src, sym_dst, sym_affine, names) or all None."""
    if opts.symbolic != "exact" or not src.symbolic_enabled or not np.any(layer.sym_mask):
        return None, None, None, ()
    idx = np.nonzero(layer.sym_mask.T != 0)  # (i, j), in-major
    names, aff = [], []
    for i, j in zip(*idx, strict=True):
        name = layer.sym_names[j][i]
        symbolic_function(name, where=f"layer {l}, edge ({i}, {j}): ")
        a, b, c, d = (float(v) for v in layer.sym_affine[j, i])
        m = float(layer.sym_mask[j, i])
        row = np.array([a, b, m * c, m * d])
        if not np.all(np.isfinite(row)):
            raise UnsupportedModelError(f"layer {l}, edge ({i}, {j}) [{name}]: symbolic affine (a, b, c, d) = "
                                        f"({a:g}, {b:g}, {c:g}, {d:g}) x mask {m:g} is not finite")
        names.append(name)
        aff.append(row)
    return (idx[0].astype(np.int32), idx[1].astype(np.int32), np.asarray(aff, dtype=np.float64), tuple(names))


def _compile_layer(src: SourceModel, l: int, opts: ContractOptions, notes: list[str], max_bytes) -> LUTLayer:
    layer = src.layers[l]
    knots32 = _check_knots(layer, l)
    edge_src, edge_dst = _table_edges(src, layer, opts)
    budget.check(edge_src.size * (knots32.shape[1] - 1) * opts.L * _COMPILE_BYTES_PER_SAMPLE,
                 f"sampling {edge_src.size} edges x {knots32.shape[1] - 1} segments x {opts.L} samples",
                 limit=max_bytes, where=f"compiling layer {l}")
    if opts.interp == "poly":
        table, tab_err = _poly_tables(layer, l, opts, knots32, edge_src, edge_dst)
        scale = offset = None
    else:
        tab_sym = opts.symbolic == "tabulate" and src.symbolic_enabled
        table, scale, offset, tab_err = _sampled_tables(layer, l, opts, knots32, edge_src, edge_dst, tab_sym)
    base_weight = np.zeros((layer.in_dim, layer.out_dim), dtype=np.float32)
    if src.base_fun != "zero":
        base_weight[edge_src, edge_dst] = (layer.mask * layer.scale_base)[edge_src, edge_dst]
    sym_src, sym_dst, sym_affine, sym_funs = _symbolic_edges(src, layer, l, opts)
    lut = LUTLayer(
        knots=knots32, edge_src=edge_src, edge_dst=edge_dst, table=table, scale=scale, offset=offset,
        base_weight=base_weight,
        subnode_scale=layer.subnode_scale.astype(np.float32), subnode_bias=layer.subnode_bias.astype(np.float32),
        node_scale=layer.node_scale.astype(np.float32), node_bias=layer.node_bias.astype(np.float32),
        n_sum=int(layer.n_sum), mult_groups=tuple(int(g) for g in layer.mult_groups),
        tab_error=tab_err.astype(np.float32), sym_src=sym_src, sym_dst=sym_dst, sym_affine=sym_affine,
        sym_funs=sym_funs,
    )
    _note_symbolic(src, layer, l, opts, knots32, notes)
    zero_rows = np.nonzero(knots32[:, -1] <= knots32[:, 0])[0]
    if zero_rows.size:
        notes.append(f"layer {l}: inputs {zero_rows.tolist()} have zero-width grids (constant feature in "
                     f"training); their spline term is 0 everywhere, as in pykan")
    return lut


def _note_symbolic(src, layer, l, opts, knots32, notes) -> None:
    if not src.symbolic_enabled or opts.symbolic != "tabulate":
        return
    for i, j in zip(*np.nonzero(layer.sym_mask.T != 0), strict=True):
        notes.append(
            f"layer {l}, edge ({i}, {j}): symbolic {layer.sym_names[j][i]!r} is tabulated on "
            f"[{knots32[i, 0]:.6g}, {knots32[i, -1]:.6g}]; outside it the table follows oob={opts.oob!r} "
            f"while pykan keeps evaluating the formula")


def compile_model(source, options: ContractOptions | None = None, *, progress: bool = False,
                  max_bytes: int | None = None, **load_kw) -> LUTModel:
    """Compile ``source`` (SourceModel, live pykan model or checkpoint path) under ``options``.

    A checkpoint's ``cache_data`` is not read (compiling does not use it) unless ``cache_data=True`` is passed.
    ``max_bytes`` overrides the resource budget (``lutkan.budget``) of reading and sampling.
    Raises UnsupportedModelError for anything the compiled model cannot represent (naming layer and edge).
    """
    opts = options or ContractOptions()
    if not isinstance(source, SourceModel):
        load_kw.setdefault("cache_data", False)
        load_kw.setdefault("max_bytes", max_bytes)
    src = as_source(source, **load_kw)
    if opts.interp == "poly":  # L = coefficients per segment: the largest spline order + 1
        opts = replace(opts, L=max(int(layer.k) for layer in src.layers) + 1)
    notes: list[str] = []
    layers = []
    for l in tqdm(range(len(src.layers)), desc="compile", unit="layer", disable=not progress):
        layers.append(_compile_layer(src, l, opts, notes, max_bytes))
    prov = portable_provenance(src.provenance)  # file name, checkpoint id, SHA-256: no build-machine paths
    prov.setdefault("compiled_by", _version())
    try:
        return LUTModel(layers=tuple(layers), contract=opts, base_fun=src.base_fun,
                        input_id=np.asarray(src.input_id, dtype=np.int64), n_inputs=int(src.n_inputs),
                        provenance=prov, notes=tuple(notes))
    except ArtifactError as e:  # a value the contract cannot hold (e.g. a node scale beyond VALUE_MAX), no width
        raise UnsupportedModelError(f"the compiled model would not be valid: {e}") from None


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"lutkan {version('lutkan')}"
    except PackageNotFoundError:
        return "lutkan (source tree)"
