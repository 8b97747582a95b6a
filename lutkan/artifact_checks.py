"""The checks behind ``lutkan.artifact``: one compiled layer's arrays, and the header of a ``.lutkan`` container.

``validate_layer`` is ``LUTLayer.validate`` (shapes, dtypes, edge order, and every value the arithmetic reads:
finite, within ``VALUE_MAX``, ``docs/contract.md`` §5); ``check_entries`` validates the header's array table
before any array is read (dtype allow-list, shape, byte count, inside the file, no two arrays sharing bytes: one
sort, O(n log n) in the number of arrays); ``declared_dense_bytes`` is what evaluating the declared layers will
allocate (``lutkan.budget``); ``layer_meta`` and ``check_references`` type-check the layer objects and the array
references (each declared, none twice); ``unparsable_hint`` names the field of a number JSON cannot convert.
Every failure raises ``ArtifactError`` naming the layer/array and the value.
"""

from __future__ import annotations

import math
import re

import numpy as np

from lutkan.budget import dense_table_bytes
from lutkan.contract import TABLE_DTYPES, VALUE_MAX, ContractOptions
from lutkan.errors import ArtifactError
from lutkan.symbolic import SYMBOLIC_CODES

__all__ = ["ALLOWED_DTYPES", "ARRAY_DTYPES", "LAYER_ARRAYS", "check_entries", "check_references", "declared_dense_bytes",
           "dequantized_extent", "layer_meta", "unparsable_hint", "validate_layer"]

ALLOWED_DTYPES = {"int8", "uint8", "int32", "int64", "float16", "float32", "float64"}
ARRAY_DTYPES = {"table": {"int8", "uint8", "float16", "float32"}, "edge_src": {"int32"}, "edge_dst": {"int32"},
                "sym_src": {"int32"}, "sym_dst": {"int32"}, "sym_affine": {"float64"}, "input_id": {"int64"}}
"""The dtypes each array may declare (the rest are float32); checked before anything is read."""
_SHA = re.compile(r"^[0-9a-f]{64}$")
LAYER_ARRAYS = ("knots", "edge_src", "edge_dst", "table", "scale", "offset", "base_weight",
                "subnode_scale", "subnode_bias", "node_scale", "node_bias", "tab_error",
                "sym_src", "sym_dst", "sym_affine")
"""The arrays of one layer, in container order (``LUTLayer`` fields)."""
_BOUNDED = ("base_weight", "subnode_scale", "subnode_bias", "node_scale", "node_bias")


def _err(where: str, msg: str) -> ArtifactError:
    return ArtifactError(f"{where}: {msg}")


def _inconsistent(where: str, msg: str) -> ArtifactError:
    return ArtifactError(f"{where}: header is inconsistent: {msg}")


def dequantized_extent(table: np.ndarray, scale: np.ndarray | None, offset: np.ndarray | None,
                       axis: int) -> np.ndarray:
    """float64 ``max |offset + scale*q|`` over the sample axis ``axis`` (the table without that axis), computed
    from the extreme codes: the dequantized table is never built."""
    out_shape = table.shape[:axis] + table.shape[axis + 1:]
    if table.size == 0:
        return np.zeros(out_shape)
    if table.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            return np.abs(table).max(axis=axis).astype(np.float64)
    lo, hi = table.min(axis=axis).astype(np.float64), table.max(axis=axis).astype(np.float64)
    s = np.ones(out_shape) if scale is None else scale.astype(np.float64)
    o = np.zeros(out_shape) if offset is None else offset.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.maximum(np.abs(o + s * lo), np.abs(o + s * hi))


def _need(where, name, arr, dtype, shape):
    if arr is None:
        raise _err(where, f"array {name!r} is missing")
    if not isinstance(arr, np.ndarray) or arr.dtype != np.dtype(dtype):
        raise _err(where, f"{name} must be {np.dtype(dtype).name}, got {getattr(arr, 'dtype', type(arr).__name__)}")
    if tuple(arr.shape) != tuple(shape):
        raise _err(where, f"{name} has shape {tuple(arr.shape)}, expected {tuple(shape)}")


def _bounded(where: str, name: str, arr: np.ndarray) -> None:
    """``arr`` finite with every |value| <= VALUE_MAX."""
    if arr.size == 0:
        return
    if not np.all(np.isfinite(arr)):
        raise _err(where, f"{name} {'contain' if name == 'knots' else 'contains'} NaN or inf")
    m = float(np.abs(arr).max())
    if m > VALUE_MAX:
        raise _err(where, f"{name} holds |value| = {m:.4g} > {VALUE_MAX:g} (lutkan.contract.VALUE_MAX): float32 "
                          f"arithmetic on it could overflow differently in different backends")


def _shapes(layer, where: str, opts: ContractOptions) -> tuple[int, int, int, int]:
    """Dtypes and shapes of every table array; returns (I, K, O, E)."""
    if not isinstance(layer.knots, np.ndarray) or layer.knots.ndim != 2 or layer.knots.shape[1] < 2:
        raise _err(where, f"knots must be a 2-D float32 array (I, K+1) with K >= 1, got "
                          f"{getattr(layer.knots, 'shape', None)}")
    if not isinstance(layer.base_weight, np.ndarray) or layer.base_weight.ndim != 2:
        raise _err(where, "base_weight must be a 2-D float32 array (I, O)")
    if not isinstance(layer.edge_src, np.ndarray) or layer.edge_src.ndim != 1:
        raise _err(where, f"edge_src must be a 1-D int32 array (E,), got {getattr(layer.edge_src, 'shape', None)}")
    I, K1 = layer.knots.shape
    K, O, E, L = K1 - 1, layer.base_weight.shape[1], int(layer.edge_src.shape[0]), opts.L
    if I < 1 or O < 1:
        raise _err(where, f"the layer has {I} inputs and {O} outputs: a layer needs at least one of each (a model "
                          f"with no inputs or no outputs computes nothing)")
    _need(where, "knots", layer.knots, np.float32, (I, K1))
    _need(where, "base_weight", layer.base_weight, np.float32, (I, O))
    _need(where, "edge_src", layer.edge_src, np.int32, (E,))
    _need(where, "edge_dst", layer.edge_dst, np.int32, (E,))
    _need(where, "table", layer.table, TABLE_DTYPES[opts.scheme], (E, K, L))
    if opts.quantized:
        _need(where, "scale", layer.scale, np.float32, (E, K))
    elif layer.scale is not None:
        raise _err(where, f"scheme {opts.scheme} tables carry no scale array")
    if opts.scheme == "uint8":
        _need(where, "offset", layer.offset, np.float32, (E, K))
    elif layer.offset is not None:
        raise _err(where, f"scheme {opts.scheme} tables carry no offset array")
    _need(where, "subnode_scale", layer.subnode_scale, np.float32, (O,))
    _need(where, "subnode_bias", layer.subnode_bias, np.float32, (O,))
    if isinstance(layer.n_sum, bool) or not isinstance(layer.n_sum, int) or layer.n_sum < 0:
        raise _err(where, f"n_sum={layer.n_sum!r} must be a non-negative int")
    if any(isinstance(g, bool) or not isinstance(g, int) or g < 1 for g in layer.mult_groups):
        raise _err(where, f"mult_groups={layer.mult_groups!r} must be positive ints")
    if layer.n_sum + sum(layer.mult_groups) != O:
        raise _err(where, f"n_sum {layer.n_sum} + mult_groups {list(layer.mult_groups)} != {O} subnodes")
    _need(where, "node_scale", layer.node_scale, np.float32, (layer.n_nodes,))
    _need(where, "node_bias", layer.node_bias, np.float32, (layer.n_nodes,))
    _need(where, "tab_error", layer.tab_error, np.float32, (E,))
    return I, K, O, E


def validate_layer(layer, where: str, opts: ContractOptions) -> None:
    """Raise ArtifactError unless every array of ``layer`` (a ``LUTLayer``) has the dtype, shape and values the
    contract needs: knots sorted with |t| <= VALUE_MAX, edges in range and in-major, dequantized table values and
    float32 parameters finite with |v| <= VALUE_MAX, base weights only on edges, the symbolic edges consistent."""
    I, K, O, E = _shapes(layer, where, opts)
    _bounded(where, "knots", layer.knots)
    bad = np.any(np.diff(layer.knots, axis=1) < 0, axis=1)
    if np.any(bad):
        raise _err(where, f"knots of input {int(np.nonzero(bad)[0][0])} are not sorted")
    if E:
        if layer.edge_src.min() < 0 or layer.edge_src.max() >= I:
            raise _err(where, f"edge_src out of range [0, {I})")
        if layer.edge_dst.min() < 0 or layer.edge_dst.max() >= O:
            raise _err(where, f"edge_dst out of range [0, {O})")
        key = layer.edge_src.astype(np.int64) * O + layer.edge_dst
        if np.any(np.diff(key) <= 0):
            raise _err(where, "edges must be unique and sorted in-major (src, then dst)")
    for name in _BOUNDED:
        _bounded(where, name, getattr(layer, name))
    _check_table_values(layer, where, opts, E)
    if not np.all(np.isfinite(layer.tab_error)) or np.any(layer.tab_error < 0):
        raise _err(where, "tab_error must be finite and >= 0")
    active = np.zeros((I, O), dtype=bool)
    active[layer.edge_src, layer.edge_dst] = True
    if np.any(layer.base_weight[~active] != 0):
        raise _err(where, "base_weight is nonzero on an edge that is not in the edge list")
    _validate_symbolic(layer, where, opts, I, O)


def _check_table_values(layer, where: str, opts: ContractOptions, E: int) -> None:
    if opts.scheme in ("float16", "float32") and not np.all(np.isfinite(layer.table)):
        raise _err(where, "table contains NaN or inf")
    for name in ("scale", "offset"):
        arr = getattr(layer, name)
        if arr is not None and not np.all(np.isfinite(arr)):
            raise _err(where, f"{name} contains NaN or inf")
    if layer.scale is not None and np.any(layer.scale < 0):
        raise _err(where, "scale must be >= 0")
    if opts.scheme == "int8" and E and layer.table.min() < -127:
        raise _err(where, "int8 symmetric codes must lie in [-127, 127]")
    ext = dequantized_extent(layer.table, layer.scale, layer.offset, axis=2)
    if ext.size and not np.all(ext <= VALUE_MAX):
        e, k = (int(v) for v in np.argwhere(~(ext <= VALUE_MAX))[0])
        raise _err(where, f"edge ({int(layer.edge_src[e])}, {int(layer.edge_dst[e])}), segment {k}: dequantized table "
                          f"value of magnitude {ext[e, k]:.4g} > {VALUE_MAX:g} (lutkan.contract.VALUE_MAX): the "
                          f"backends' float32 arithmetic could overflow differently")


def _validate_symbolic(layer, where: str, opts: ContractOptions, I: int, O: int) -> None:
    S = len(layer.sym_funs) if isinstance(layer.sym_funs, tuple) else -1
    arrays = (layer.sym_src, layer.sym_dst, layer.sym_affine)
    if S == 0 and all(a is None for a in arrays):
        return
    if S < 0 or any(not isinstance(n, str) for n in layer.sym_funs):
        raise _err(where, "sym_funs must be a tuple of symbolic function names")
    if opts.symbolic != "exact":
        raise _err(where, f"symbolic edges are stored, but the contract says symbolic={opts.symbolic!r}")
    for name, arr, dtype, shape in (("sym_src", layer.sym_src, np.int32, (S,)), ("sym_dst", layer.sym_dst, np.int32, (S,)),
                                     ("sym_affine", layer.sym_affine, np.float64, (S, 4))):
        if not isinstance(arr, np.ndarray) or arr.dtype != np.dtype(dtype) or tuple(arr.shape) != shape:
            raise _err(where, f"{name} must be a {np.dtype(dtype).name} array of shape {shape} ({S} symbolic "
                              f"edges), got {getattr(arr, 'dtype', type(arr).__name__)} {getattr(arr, 'shape', '')}")
    unknown = sorted({n for n in layer.sym_funs if n not in SYMBOLIC_CODES})
    if unknown:
        raise _err(where, f"unknown symbolic function(s) {unknown}")
    if S:
        if layer.sym_src.min() < 0 or layer.sym_src.max() >= I or layer.sym_dst.min() < 0 or layer.sym_dst.max() >= O:
            raise _err(where, f"symbolic edge out of range for {I} inputs and {O} outputs")
        key = layer.sym_src.astype(np.int64) * O + layer.sym_dst
        if np.any(np.diff(key) <= 0):
            raise _err(where, "symbolic edges must be unique and sorted in-major (src, then dst)")
    if not np.all(np.isfinite(layer.sym_affine)):
        raise _err(where, "sym_affine contains NaN or inf")


# ------------------------------------------------------------------------------------------ the header's array table


def _entry(where: str, key, e, data_len: int) -> tuple[str, list[int], int, int, str]:
    if not isinstance(e, dict):
        raise _inconsistent(where, f"arrays[{key!r}] must be an object with dtype, shape, offset, nbytes, sha256")
    missing = [f for f in ("dtype", "shape", "offset", "nbytes", "sha256") if f not in e]
    if missing:
        raise _inconsistent(where, f"arrays[{key!r}] misses field(s) {missing}")
    dt, shape, off, nb, sha = e["dtype"], e["shape"], e["offset"], e["nbytes"], e["sha256"]
    if not isinstance(dt, str):
        raise _inconsistent(where, f"arrays[{key!r}].dtype must be a dtype name, got {dt!r}")
    allowed = ARRAY_DTYPES.get(key.rsplit(".", 1)[-1], {"float32"})
    if dt not in ALLOWED_DTYPES or dt not in allowed:
        raise _err(where, f"array {key!r} has disallowed dtype {dt!r} (allowed: {', '.join(sorted(allowed))})")
    if (not isinstance(shape, list) or len(shape) > 4
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in shape)):
        raise _err(where, f"array {key!r} has an invalid shape {shape!r}")
    want = math.prod(shape) * np.dtype(dt).itemsize
    if any(isinstance(v, bool) or not isinstance(v, int) for v in (off, nb)) or nb != want:
        raise _err(where, f"array {key!r} declares {nb!r} bytes at offset {off!r} but shape {shape} x {dt} needs "
                          f"{want} (offset and nbytes are integers)")
    if off < 0 or off + nb > data_len:
        raise _err(where, f"array {key!r} ({nb} bytes at {off}) lies outside the file")
    if not isinstance(sha, str) or not _SHA.match(sha):
        raise _err(where, f"array {key!r}: sha256 must be 64 lowercase hex digits")
    return dt, shape, off, nb, sha


def check_entries(entries, where: str, data_len: int) -> dict[str, tuple[str, list[int], int, int, str]]:
    """The header's ``arrays`` table, every entry checked, as ``{key: (dtype, shape, offset, nbytes, sha256)}``.

    Checks each entry's fields, that its bytes lie in the ``data_len``-byte data region, and that no two
    non-empty arrays overlap (sorted by offset: O(n log n)). Nothing is read.
    """
    if not isinstance(entries, dict):
        raise _inconsistent(where, "'arrays' must be an object (name -> array description)")
    out = {key: _entry(where, key, e, data_len) for key, e in entries.items()}
    spans = sorted((off, off + nb, key) for key, (_, _, off, nb, _) in out.items() if nb)
    spans.sort(key=lambda s: s[2], reverse=True)  # ties at one offset: name the later key first (stable below)
    spans.sort(key=lambda s: s[0])
    for (a0, a1, a), (b0, _, b) in zip(spans, spans[1:], strict=False):
        if b0 < a1:
            raise _err(where, f"array {b!r} overlaps array {a!r} in the file (bytes {a0}..{a1} and {b0}..): each "
                              f"array must have its own bytes")
    return out


def declared_dense_bytes(layers_meta, entries: dict, contract: ContractOptions) -> int:
    """Bytes the runtime layout of the declared layers needs (``lutkan.budget.dense_table_bytes`` per layer),
    from the shapes in the header alone; layers whose shapes are malformed count 0 (validation refuses them)."""
    total = 0
    itemsize = np.dtype(TABLE_DTYPES[contract.scheme]).itemsize
    n_scale = {"int8": 1, "uint8": 2}.get(contract.scheme, 0)
    for meta in layers_meta if isinstance(layers_meta, list) else ():
        names = meta.get("arrays") if isinstance(meta, dict) else None
        if not isinstance(names, dict):
            continue
        kn, bw = (entries.get(k) if isinstance(k, str) else None for k in (names.get("knots"), names.get("base_weight")))
        if kn is None or bw is None or len(kn[1]) != 2 or len(bw[1]) != 2 or kn[1][1] < 2:
            continue
        total += dense_table_bytes(kn[1][0], kn[1][1] - 1, contract.L, bw[1][1], itemsize, n_scale)
    return total


_LONG_NUMBER = re.compile(rb"\d{4000,}")
_KEY = re.compile(rb'"((?:[^"\\]|\\.){1,200})"\s*:')


def unparsable_hint(raw: bytes) -> str:
    """Where in the raw header JSON the first over-long number sits: ``field 'name' holds a 5000-digit number at
    byte N``, or ``holds a value``."""
    m = _LONG_NUMBER.search(raw)
    if m is None:
        return "holds a value"
    keys = list(_KEY.finditer(raw, 0, m.start()))
    name = keys[-1].group(1).decode("utf-8", "replace") if keys else "?"
    return f"field {name!r} holds a {m.end() - m.start()}-digit number (at byte {m.start()}) that"


def layer_meta(meta, l: int, where: str) -> tuple[dict, int, tuple, tuple]:
    """(array references, n_sum, mult_groups, sym_funs) of ``layers[l]``, with their JSON types checked."""
    if not isinstance(meta, dict):
        raise _inconsistent(where, f"layers[{l}] must be an object, got {type(meta).__name__}")
    for name in ("arrays", "n_sum", "mult_groups"):
        if name not in meta:
            raise _inconsistent(where, f"layers[{l}] has no field {name!r}")
    names = meta["arrays"]
    if not isinstance(names, dict) or set(names) - set(LAYER_ARRAYS):
        raise ArtifactError(f"{where}: layer {l} lists unknown arrays")
    if not all(isinstance(v, str) for v in names.values()):
        raise _inconsistent(where, f"layers[{l}].arrays must map array roles to array names (strings)")
    groups = meta["mult_groups"]
    if not isinstance(groups, list):
        raise _inconsistent(where, f"layers[{l}].mult_groups={groups!r} must be positive ints (a list)")
    funs = meta.get("sym_funs", [])
    if not isinstance(funs, list) or not all(isinstance(f, str) for f in funs):
        raise ArtifactError(f"{where}: layer {l}: sym_funs must be a list of names")
    return names, meta["n_sum"], tuple(groups), tuple(funs)


def check_references(layers: list, header: dict, entries: dict, where: str) -> None:
    """Every array reference names a declared array, and no array is referenced twice (one set: O(n))."""
    seen: set[str] = set()
    refs = [name for names, *_ in layers for name in names.values()] + [header.get("input_id")]
    for key in refs:
        if not isinstance(key, str) or key not in entries:
            raise ArtifactError(f"{where}: array {key!r} is missing")
        if key in seen:
            raise ArtifactError(f"{where}: array {key!r} is referenced more than once")
        seen.add(key)
