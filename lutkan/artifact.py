"""The compiled model (``LUTModel``) and its single-file, pickle-free ``.lutkan`` container.

A ``LUTModel`` is a frozen, self-checking record: every layer's shapes, edge order (active edges,
in-major ``(src, dst)``), per-input knots, quantized tables with per-(edge, segment) scale/offset,
base-branch weights, node/subnode affines, multiplication-node wiring, the contract options,
provenance and compile notes. Construction validates all of it (``ArtifactError`` naming the
layer and field), so a model that exists is consistent.

File layout (little-endian)::

    b"LUTKAN\\x00\\x01" | u64 header_len | header JSON (utf-8) | pad to 64 | arrays (64-aligned) |
    sha256(all preceding bytes) (32 bytes)

The header lists every array with dtype, shape, offset, nbytes and its own sha256. The loader
checks magic, sizes (before allocating anything), the trailer checksum, ``format_version``,
dtypes against an allow-list and every shape relation; it never unpickles.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from lutkan.contract import BASE_FUNS, FLT_MAX, TABLE_DTYPES, ContractOptions
from lutkan.errors import ArtifactError, LutKanError
from lutkan.nodes import NodeStep
from lutkan.symbolic import SYMBOLIC_CODES

FORMAT_NAME = "lutkan"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
"""Version 1 (lutkan 0.1) has no symbolic arrays: its symbolic edges are tabulated (``symbolic="tabulate"``)."""
MAGIC = b"LUTKAN\x00\x01"
MAX_HEADER_BYTES = 64 << 20
_ALIGN = 64
_ALLOWED_DTYPES = {"int8", "uint8", "int32", "int64", "float16", "float32", "float64"}
_ARRAY_DTYPES = {"table": {"int8", "uint8", "float16", "float32"}, "edge_src": {"int32"}, "edge_dst": {"int32"},
                 "sym_src": {"int32"}, "sym_dst": {"int32"}, "sym_affine": {"float64"}, "input_id": {"int64"}}
"""The dtypes each array may declare (the rest are float32); checked before anything is read."""

_LAYER_ARRAYS = ("knots", "edge_src", "edge_dst", "table", "scale", "offset", "base_weight",
                 "subnode_scale", "subnode_bias", "node_scale", "node_bias", "tab_error",
                 "sym_src", "sym_dst", "sym_affine")


def _err(where: str, msg: str) -> ArtifactError:
    return ArtifactError(f"{where}: {msg}")


@dataclass(frozen=True, eq=False)
class LUTLayer:
    """One compiled KAN layer.

    Shapes (I inputs, O subnodes, E active edges, K segments, L samples):
        knots float32 (I, K+1), nondecreasing per row; edge_src/edge_dst int32 (E,), sorted
        in-major, unique; table (E, K, L) int8/uint8/float16/float32; scale float32 (E, K) for
        int8/uint8 (else None); offset float32 (E, K) for uint8 (else None); base_weight float32
        (I, O) = mask*scale_base (0 for inactive edges); subnode_scale/bias float32 (O,);
        node_scale/bias float32 (n_sum + len(mult_groups),); tab_error float32 (E,) = max abs
        error of the stored table vs the exact edge function (compile-time, float64).
    Symbolic edges evaluated exactly (``symbolic="exact"``; S of them, absent when S = 0): sym_src/sym_dst
    int32 (S,), sorted in-major and unique; sym_affine float64 (S, 4) = (a, b, m*c, m*d) with the symbolic
    mask m folded in; sym_funs, S pykan names. The table edges are then the edges with a spline.
    """

    knots: np.ndarray
    edge_src: np.ndarray
    edge_dst: np.ndarray
    table: np.ndarray
    scale: np.ndarray | None
    offset: np.ndarray | None
    base_weight: np.ndarray
    subnode_scale: np.ndarray
    subnode_bias: np.ndarray
    node_scale: np.ndarray
    node_bias: np.ndarray
    n_sum: int
    mult_groups: tuple[int, ...]
    tab_error: np.ndarray
    sym_src: np.ndarray | None = None
    sym_dst: np.ndarray | None = None
    sym_affine: np.ndarray | None = None
    sym_funs: tuple[str, ...] = ()

    @property
    def n_symbolic(self) -> int:
        return len(self.sym_funs)

    @property
    def in_dim(self) -> int:
        return int(self.knots.shape[0])

    @property
    def out_dim(self) -> int:
        return int(self.base_weight.shape[1])

    @property
    def n_segments(self) -> int:
        return int(self.knots.shape[1]) - 1

    @property
    def n_edges(self) -> int:
        return int(self.edge_src.shape[0])

    @property
    def n_nodes(self) -> int:
        return self.n_sum + len(self.mult_groups)

    def validate(self, where: str, opts: ContractOptions) -> None:
        """Raise ArtifactError unless every array has the dtype/shape/values the contract needs."""
        def need(name, arr, dtype, shape):
            if arr is None:
                raise _err(where, f"array {name!r} is missing")
            if not isinstance(arr, np.ndarray) or arr.dtype != np.dtype(dtype):
                raise _err(where, f"{name} must be {np.dtype(dtype).name}, got "
                                  f"{getattr(arr, 'dtype', type(arr).__name__)}")
            if tuple(arr.shape) != tuple(shape):
                raise _err(where, f"{name} has shape {tuple(arr.shape)}, expected {tuple(shape)}")

        if not isinstance(self.knots, np.ndarray) or self.knots.ndim != 2 or self.knots.shape[1] < 2:
            raise _err(where, f"knots must be a 2-D float32 array (I, K+1) with K >= 1, got "
                              f"{getattr(self.knots, 'shape', None)}")
        if not isinstance(self.base_weight, np.ndarray) or self.base_weight.ndim != 2:
            raise _err(where, "base_weight must be a 2-D float32 array (I, O)")
        if not isinstance(self.edge_src, np.ndarray) or self.edge_src.ndim != 1:
            raise _err(where, f"edge_src must be a 1-D int32 array (E,), got {getattr(self.edge_src, 'shape', None)}")
        I, K1 = self.knots.shape
        K, O, E, L = K1 - 1, self.base_weight.shape[1], int(self.edge_src.shape[0]), opts.L
        need("knots", self.knots, np.float32, (I, K1))
        need("base_weight", self.base_weight, np.float32, (I, O))
        need("edge_src", self.edge_src, np.int32, (E,))
        need("edge_dst", self.edge_dst, np.int32, (E,))
        need("table", self.table, TABLE_DTYPES[opts.scheme], (E, K, L))
        if opts.quantized:
            need("scale", self.scale, np.float32, (E, K))
        elif self.scale is not None:
            raise _err(where, f"scheme {opts.scheme} tables carry no scale array")
        if opts.scheme == "uint8":
            need("offset", self.offset, np.float32, (E, K))
        elif self.offset is not None:
            raise _err(where, f"scheme {opts.scheme} tables carry no offset array")
        need("subnode_scale", self.subnode_scale, np.float32, (O,))
        need("subnode_bias", self.subnode_bias, np.float32, (O,))
        if isinstance(self.n_sum, bool) or not isinstance(self.n_sum, int) or self.n_sum < 0:
            raise _err(where, f"n_sum={self.n_sum!r} must be a non-negative int")
        if any(isinstance(g, bool) or not isinstance(g, int) or g < 1 for g in self.mult_groups):
            raise _err(where, f"mult_groups={self.mult_groups!r} must be positive ints")
        if self.n_sum + sum(self.mult_groups) != O:
            raise _err(where, f"n_sum {self.n_sum} + mult_groups {list(self.mult_groups)} != {O} subnodes")
        need("node_scale", self.node_scale, np.float32, (self.n_nodes,))
        need("node_bias", self.node_bias, np.float32, (self.n_nodes,))
        need("tab_error", self.tab_error, np.float32, (E,))
        if not np.all(np.isfinite(self.knots)):
            raise _err(where, "knots contain NaN or inf")
        if np.any(np.diff(self.knots, axis=1) < 0):
            row = int(np.nonzero(np.any(np.diff(self.knots, axis=1) < 0, axis=1))[0][0])
            raise _err(where, f"knots of input {row} are not sorted")
        if E:
            if self.edge_src.min() < 0 or self.edge_src.max() >= I:
                raise _err(where, f"edge_src out of range [0, {I})")
            if self.edge_dst.min() < 0 or self.edge_dst.max() >= O:
                raise _err(where, f"edge_dst out of range [0, {O})")
            key = self.edge_src.astype(np.int64) * O + self.edge_dst
            if np.any(np.diff(key) <= 0):
                raise _err(where, "edges must be unique and sorted in-major (src, then dst)")
        for name in ("base_weight", "subnode_scale", "subnode_bias", "node_scale", "node_bias"):
            if not np.all(np.isfinite(getattr(self, name))):
                raise _err(where, f"{name} contains NaN or inf")
        if opts.scheme in ("float16", "float32") and not np.all(np.isfinite(self.table)):
            raise _err(where, "table contains NaN or inf")
        for name in ("scale", "offset"):
            arr = getattr(self, name)
            if arr is not None and not np.all(np.isfinite(arr)):
                raise _err(where, f"{name} contains NaN or inf")
        if self.scale is not None and np.any(self.scale < 0):
            raise _err(where, "scale must be >= 0")
        if opts.scheme == "int8" and E and self.table.min() < -127:
            raise _err(where, "int8 symmetric codes must lie in [-127, 127]")
        # Base weights may only sit on active edges.
        active = np.zeros((I, O), dtype=bool)
        active[self.edge_src, self.edge_dst] = True
        if np.any(self.base_weight[~active] != 0):
            raise _err(where, "base_weight is nonzero on an edge that is not in the edge list")
        self._validate_symbolic(where, opts, I, O)

    def _validate_symbolic(self, where: str, opts: ContractOptions, I: int, O: int) -> None:
        S = len(self.sym_funs) if isinstance(self.sym_funs, tuple) else -1
        arrays = (self.sym_src, self.sym_dst, self.sym_affine)
        if S == 0 and all(a is None for a in arrays):
            return
        if S < 0 or any(not isinstance(n, str) for n in self.sym_funs):
            raise _err(where, "sym_funs must be a tuple of symbolic function names")
        if opts.symbolic != "exact":
            raise _err(where, f"symbolic edges are stored, but the contract says symbolic={opts.symbolic!r}")
        for name, arr, dtype, shape in (("sym_src", self.sym_src, np.int32, (S,)), ("sym_dst", self.sym_dst, np.int32, (S,)),
                                         ("sym_affine", self.sym_affine, np.float64, (S, 4))):
            if not isinstance(arr, np.ndarray) or arr.dtype != np.dtype(dtype) or tuple(arr.shape) != shape:
                raise _err(where, f"{name} must be a {np.dtype(dtype).name} array of shape {shape} "
                                  f"({S} symbolic edges), got {getattr(arr, 'dtype', type(arr).__name__)} "
                                  f"{getattr(arr, 'shape', '')}")
        unknown = sorted({n for n in self.sym_funs if n not in SYMBOLIC_CODES})
        if unknown:
            raise _err(where, f"unknown symbolic function(s) {unknown}")
        if S:
            if self.sym_src.min() < 0 or self.sym_src.max() >= I or self.sym_dst.min() < 0 or self.sym_dst.max() >= O:
                raise _err(where, f"symbolic edge out of range for {I} inputs and {O} outputs")
            key = self.sym_src.astype(np.int64) * O + self.sym_dst
            if np.any(np.diff(key) <= 0):
                raise _err(where, "symbolic edges must be unique and sorted in-major (src, then dst)")
        if not np.all(np.isfinite(self.sym_affine)):
            raise _err(where, "sym_affine contains NaN or inf")

    # ----- derived views used by every evaluator (computed once, read-only) -----

    @property
    def node_step(self) -> NodeStep:
        """Subnode affine -> multiplication groups -> node affine of this layer."""
        return NodeStep(self.subnode_scale, self.subnode_bias, self.node_scale, self.node_bias, self.n_sum,
                        tuple(self.mult_groups))

    @cached_property
    def active(self) -> np.ndarray:
        """(I, O) bool adjacency of active edges."""
        a = np.zeros((self.in_dim, self.out_dim), dtype=bool)
        a[self.edge_src, self.edge_dst] = True
        a.setflags(write=False)
        return a


@dataclass(frozen=True, eq=False)
class LUTModel:
    """A compiled KAN: layers + contract + wiring + provenance. See ``docs/contract.md``."""

    layers: tuple[LUTLayer, ...]
    contract: ContractOptions
    base_fun: str
    input_id: np.ndarray
    n_inputs: int
    provenance: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.contract, ContractOptions):
            raise ArtifactError("contract must be a ContractOptions")
        if not self.layers:
            raise ArtifactError("model has no layers")
        if self.base_fun not in BASE_FUNS:
            raise ArtifactError(f"base_fun {self.base_fun!r} is not one of {BASE_FUNS}")
        if isinstance(self.n_inputs, bool) or not isinstance(self.n_inputs, int) or self.n_inputs < 1:
            raise ArtifactError(f"n_inputs={self.n_inputs!r} must be a positive int")
        ii = self.input_id
        if not isinstance(ii, np.ndarray) or ii.dtype != np.int64 or ii.ndim != 1:
            raise ArtifactError("input_id must be a 1-D int64 array")
        for l, layer in enumerate(self.layers):
            layer.validate(f"layer {l}", self.contract)
        if ii.shape[0] != self.layers[0].in_dim:
            raise ArtifactError(f"input_id has {ii.shape[0]} entries but layer 0 has {self.layers[0].in_dim} inputs")
        if ii.size and (ii.min() < 0 or ii.max() >= self.n_inputs):
            raise ArtifactError(f"input_id out of range for {self.n_inputs} model inputs")
        for l in range(1, len(self.layers)):
            if self.layers[l - 1].n_nodes != self.layers[l].in_dim:
                raise ArtifactError(f"layer {l - 1} has {self.layers[l - 1].n_nodes} nodes but layer {l} "
                                    f"has {self.layers[l].in_dim} inputs")

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].n_nodes

    @property
    def width(self) -> list[int]:
        return [self.layers[0].in_dim] + [layer.n_nodes for layer in self.layers]

    def table_bytes(self) -> list[int]:
        """Stored LUT bytes per layer: tables + scales/offsets + knots."""
        out = []
        for layer in self.layers:
            b = layer.table.nbytes + layer.knots.nbytes
            b += 0 if layer.scale is None else layer.scale.nbytes
            b += 0 if layer.offset is None else layer.offset.nbytes
            out.append(int(b))
        return out

    def summary(self) -> dict:
        """JSON-able description: shapes, contract, bytes, provenance (used by inspect)."""
        return {
            "format_version": FORMAT_VERSION,
            "contract": self.contract.to_dict(),
            "base_fun": self.base_fun,
            "n_inputs": self.n_inputs,
            "width": self.width,
            "layers": [
                {"in": L.in_dim, "out_subnodes": L.out_dim, "nodes": L.n_nodes, "segments": L.n_segments,
                 "edges": L.n_edges, "symbolic_edges": L.n_symbolic, "n_sum": L.n_sum,
                 "mult_groups": list(L.mult_groups),
                 "table_bytes": b, "max_tab_error": float(L.tab_error.max()) if L.n_edges else 0.0}
                for L, b in zip(self.layers, self.table_bytes(), strict=True)
            ],
            "provenance": self.provenance,
            "notes": list(self.notes),
        }


# ------------------------------------------------------------------ persistence


def _to_json_value(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, dict):
        return {str(k): _to_json_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_to_json_value(x) for x in v]
    return v


def to_bytes(model: LUTModel) -> bytes:
    """Serialize a LUTModel into the ``.lutkan`` container (deterministic bytes)."""
    arrays: dict[str, np.ndarray] = {"input_id": model.input_id}
    layer_meta = []
    for l, layer in enumerate(model.layers):
        names = {}
        for name in _LAYER_ARRAYS:
            arr = getattr(layer, name)
            if arr is not None:
                key = f"layers.{l}.{name}"
                arrays[key] = arr
                names[name] = key
        layer_meta.append({"n_sum": layer.n_sum, "mult_groups": list(layer.mult_groups), "arrays": names,
                           "sym_funs": list(layer.sym_funs)})
    entries, blobs, offset = {}, [], 0
    for key, arr in arrays.items():
        data = np.ascontiguousarray(arr).tobytes()
        pad = (-offset) % _ALIGN
        offset += pad
        blobs.append(b"\x00" * pad)
        entries[key] = {"dtype": arr.dtype.name, "shape": list(arr.shape), "offset": offset,
                        "nbytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        blobs.append(data)
        offset += len(data)
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "contract": model.contract.to_dict(),
        "base_fun": model.base_fun,
        "n_inputs": model.n_inputs,
        "input_id": "input_id",
        "layers": layer_meta,
        "provenance": _to_json_value(model.provenance),
        "notes": list(model.notes),
        "arrays": entries,
    }
    hjson = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    head = MAGIC + struct.pack("<Q", len(hjson)) + hjson
    head += b"\x00" * ((-len(head)) % _ALIGN)
    body = head + b"".join(blobs)
    return body + hashlib.sha256(body).digest()


def save(model: LUTModel, path: str | Path) -> Path:
    """Write ``model`` to ``path`` (conventionally ``*.lutkan``) atomically; returns the path."""
    path = Path(path)
    data = to_bytes(model)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def from_bytes(data: bytes, *, source: str = "<bytes>") -> LUTModel:
    """Parse and fully validate a ``.lutkan`` container. Raises ArtifactError on any defect."""
    where = f"{source}"
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ArtifactError(f"{where}: expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < len(MAGIC) + 8 + 32:
        raise ArtifactError(f"{where}: file is truncated ({len(data)} bytes) or not a .lutkan file")
    if data[: len(MAGIC)] != MAGIC:
        raise ArtifactError(f"{where}: not a .lutkan file (bad magic {data[:8]!r})")
    (hlen,) = struct.unpack("<Q", data[8:16])
    if hlen > MAX_HEADER_BYTES or 16 + hlen > len(data) - 32:
        raise ArtifactError(f"{where}: header length {hlen} does not fit in a {len(data)}-byte file (truncated?)")
    if hashlib.sha256(data[:-32]).digest() != data[-32:]:
        raise ArtifactError(f"{where}: checksum mismatch: the file is truncated or was modified after writing")
    try:
        header = json.loads(data[16 : 16 + hlen].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ArtifactError(f"{where}: header is not valid JSON ({e})") from None
    except RecursionError:
        raise ArtifactError(f"{where}: header is not valid JSON (too deeply nested)") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise ArtifactError(f"{where}: header does not describe a lutkan model")
    version = header.get("format_version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        raise ArtifactError(f"{where}: format_version {version!r} is not supported by this lutkan "
                            f"(reads versions {', '.join(map(str, READABLE_VERSIONS))}); recompile the model "
                            f"with this version")
    data_start = 16 + hlen + ((-(16 + hlen)) % _ALIGN)
    data_len = len(data) - 32 - data_start
    used: list[tuple[int, int, str]] = []  # byte ranges already read: arrays may not overlap
    try:
        entries = header["arrays"]
        if not isinstance(entries, dict):
            raise TypeError("arrays")

        def arr(key: str) -> np.ndarray:
            if not isinstance(key, str) or key not in entries:
                raise ArtifactError(f"{where}: array {key!r} is missing")
            e = entries[key]
            dt, shape, off, nb = e["dtype"], e["shape"], e["offset"], e["nbytes"]
            allowed = _ARRAY_DTYPES.get(key.rsplit(".", 1)[-1], {"float32"})
            if dt not in _ALLOWED_DTYPES or dt not in allowed:
                raise ArtifactError(f"{where}: array {key!r} has disallowed dtype {dt!r} (allowed: "
                                    f"{', '.join(sorted(allowed))})")
            if (not isinstance(shape, list) or len(shape) > 4
                    or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in shape)):
                raise ArtifactError(f"{where}: array {key!r} has an invalid shape {shape!r}")
            want = math.prod(shape) * np.dtype(dt).itemsize
            if not (isinstance(off, int) and isinstance(nb, int)) or nb != want:
                raise ArtifactError(f"{where}: array {key!r} declares {nb} bytes but shape {shape} x {dt} "
                                    f"needs {want}")
            if off < 0 or off + nb > data_len:
                raise ArtifactError(f"{where}: array {key!r} ({nb} bytes at {off}) lies outside the file")
            for u0, u1, other in used:
                if other == key:
                    raise ArtifactError(f"{where}: array {key!r} is referenced more than once")
                if nb and off < u1 and u0 < off + nb:
                    raise ArtifactError(f"{where}: array {key!r} overlaps array {other!r} in the file "
                                        f"(each array must have its own bytes)")
            used.append((off, off + nb, key))
            raw = data[data_start + off : data_start + off + nb]
            if hashlib.sha256(raw).hexdigest() != e["sha256"]:
                raise ArtifactError(f"{where}: checksum of array {key!r} does not match")
            out = np.frombuffer(raw, dtype=dt).reshape(shape).copy()
            out.setflags(write=False)
            return out

        if not isinstance(header.get("contract"), dict):
            raise ArtifactError(f"{where}: contract must be a JSON object of contract options")
        cdict = dict(header["contract"])
        if version == 1:  # version 1 tabulated every symbolic edge
            cdict.setdefault("symbolic", "tabulate")
        missing = {"L", "scheme", "interp", "boundary", "oob", "symbolic"} - set(cdict)
        if missing:
            raise ArtifactError(f"{where}: contract misses option(s) {sorted(missing)}")
        contract = ContractOptions.from_dict(cdict)
        layers = []
        for l, meta in enumerate(header["layers"]):
            names = meta["arrays"]
            if not isinstance(names, dict) or set(names) - set(_LAYER_ARRAYS):
                raise ArtifactError(f"{where}: layer {l} lists unknown arrays")
            funs = meta.get("sym_funs", [])
            if not isinstance(funs, list) or not all(isinstance(f, str) for f in funs):
                raise ArtifactError(f"{where}: layer {l}: sym_funs must be a list of names")
            get = {n: (arr(names[n]) if n in names else None) for n in _LAYER_ARRAYS}
            layers.append(LUTLayer(n_sum=meta["n_sum"], mult_groups=tuple(meta["mult_groups"]),
                                   sym_funs=tuple(funs), **get))
        provenance = header.get("provenance", {})
        notes = header.get("notes", [])
        if not isinstance(provenance, dict) or not isinstance(notes, list):
            raise ArtifactError(f"{where}: provenance/notes malformed")
        return LUTModel(layers=tuple(layers), contract=contract, base_fun=header["base_fun"],
                        input_id=arr(header["input_id"]), n_inputs=header["n_inputs"],
                        provenance=provenance, notes=tuple(str(n) for n in notes))
    except ArtifactError:
        raise
    except LutKanError as e:
        raise ArtifactError(f"{where}: {e}") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as e:
        raise ArtifactError(f"{where}: header is inconsistent ({type(e).__name__}: {e})") from None


def load(path: str | Path) -> LUTModel:
    """Read and validate a ``.lutkan`` file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ArtifactError(f"cannot read {path}: {e.strerror or e}") from None
    return from_bytes(data, source=str(path))


__all__ = ["FORMAT_VERSION", "LUTLayer", "LUTModel", "save", "load", "to_bytes", "from_bytes", "FLT_MAX"]
