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
import struct
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from lutkan import budget
from lutkan.artifact_checks import LAYER_ARRAYS as _LAYER_ARRAYS
from lutkan.artifact_checks import (
    check_entries,
    check_references,
    declared_dense_bytes,
    layer_meta,
    unparsable_hint,
    validate_layer,
)
from lutkan.contract import BASE_FUNS, FLT_MAX, ContractOptions
from lutkan.errors import ArtifactError, LutKanError
from lutkan.nodes import NodeStep

FORMAT_NAME = "lutkan"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
"""Version 1 (lutkan 0.1) has no symbolic arrays: its symbolic edges are tabulated (``symbolic="tabulate"``)."""
MAGIC = b"LUTKAN\x00\x01"
MAX_HEADER_BYTES = 64 << 20
_ALIGN = 64


class KnotShape:
    """``in_dim``, ``out_dim`` and ``n_segments`` of a layer that holds ``knots`` (I, K+1) and ``base_weight``
    (I, O): the stored layer (``LUTLayer``) and its runtime layout (``lutkan.tables.LayerTables``)."""

    knots: np.ndarray
    base_weight: np.ndarray

    @property
    def in_dim(self) -> int:
        return int(self.knots.shape[0])

    @property
    def out_dim(self) -> int:
        return int(self.base_weight.shape[1])

    @property
    def n_segments(self) -> int:
        return int(self.knots.shape[1]) - 1


@dataclass(frozen=True, eq=False)
class LUTLayer(KnotShape):
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
    def n_edges(self) -> int:
        return int(self.edge_src.shape[0])

    @property
    def n_nodes(self) -> int:
        return self.n_sum + len(self.mult_groups)

    def validate(self, where: str, opts: ContractOptions) -> None:
        """Raise ArtifactError unless every array has the dtype/shape/values the contract needs
        (``lutkan.artifact_checks.validate_layer``)."""
        validate_layer(self, where, opts)

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


def _inconsistent(where: str, msg: str) -> ArtifactError:
    return ArtifactError(f"{where}: header is inconsistent: {msg}")


def _parse_header(data: bytes, where: str) -> tuple[dict, int]:
    """Magic, header length, trailer checksum and JSON; returns (header, start of the data region)."""
    if len(data) < len(MAGIC) + 8 + 32:
        raise ArtifactError(f"{where}: file is truncated ({len(data)} bytes) or not a .lutkan file")
    if data[: len(MAGIC)] != MAGIC:
        raise ArtifactError(f"{where}: not a .lutkan file (bad magic {data[:8]!r})")
    (hlen,) = struct.unpack("<Q", data[8:16])
    if hlen > MAX_HEADER_BYTES or 16 + hlen > len(data) - 32:
        raise ArtifactError(f"{where}: header length {hlen} does not fit in a {len(data)}-byte file (truncated?)")
    if hashlib.sha256(memoryview(data)[:-32]).digest() != data[-32:]:
        raise ArtifactError(f"{where}: checksum mismatch: the file is truncated or was modified after writing")
    try:
        header = json.loads(data[16 : 16 + hlen].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ArtifactError(f"{where}: header is not valid JSON ({e})") from None
    except RecursionError:
        raise ArtifactError(f"{where}: header is not valid JSON (too deeply nested)") from None
    except ValueError as e:  # e.g. an integer of more digits than Python converts (sys.get_int_max_str_digits)
        raise ArtifactError(f"{where}: header {unparsable_hint(data[16 : 16 + hlen])} Python refuses to parse ({e})") \
            from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise ArtifactError(f"{where}: header does not describe a lutkan model")
    version = header.get("format_version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        raise ArtifactError(f"{where}: format_version {version!r} is not supported by this lutkan "
                            f"(reads versions {', '.join(map(str, READABLE_VERSIONS))}); recompile the model "
                            f"with this version")
    return header, 16 + hlen + ((-(16 + hlen)) % _ALIGN)


def _contract(header: dict, where: str) -> ContractOptions:
    if not isinstance(header.get("contract"), dict):
        raise ArtifactError(f"{where}: contract must be a JSON object of contract options")
    cdict = dict(header["contract"])
    if header["format_version"] == 1:  # version 1 tabulated every symbolic edge
        cdict.setdefault("symbolic", "tabulate")
    missing = {"L", "scheme", "interp", "boundary", "oob", "symbolic"} - set(cdict)
    if missing:
        raise ArtifactError(f"{where}: contract misses option(s) {sorted(missing)}")
    try:
        return ContractOptions.from_dict(cdict)
    except LutKanError as e:
        raise ArtifactError(f"{where}: contract: {e}") from None


def from_bytes(data: bytes, *, source: str = "<bytes>", max_bytes: int | None = None) -> LUTModel:
    """Parse and fully validate a ``.lutkan`` container. Raises ArtifactError (naming ``source`` and the field)
    on any defect, before allocating anything the declared shapes would make larger than the resource budget
    (``lutkan.budget``; ``max_bytes`` overrides ``LUTKAN_MAX_BYTES``)."""
    where = f"{source}"
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ArtifactError(f"{where}: expected bytes, got {type(data).__name__}")
    data = bytes(data)
    header, data_start = _parse_header(data, where)
    data_len = len(data) - 32 - data_start
    try:
        if "arrays" not in header:
            raise _inconsistent(where, "no 'arrays' table")
        entries = check_entries(header["arrays"], where, data_len)
        contract = _contract(header, where)
        if not isinstance(header.get("layers"), list):
            raise _inconsistent(where, "'layers' must be a list of layer objects")
        metas = [layer_meta(meta, l, where) for l, meta in enumerate(header["layers"])]
        check_references(metas, header, entries, where)
        budget.check(declared_dense_bytes(header["layers"], entries, contract), "the runtime tables of the "
                     f"{len(metas)} declared layers (dense I*K*L*O per layer)", limit=max_bytes, error=ArtifactError,
                     where=where)

        def arr(key: str) -> np.ndarray:
            dt, shape, off, nb, sha = entries[key]
            raw = memoryview(data)[data_start + off : data_start + off + nb]
            if hashlib.sha256(raw).hexdigest() != sha:
                raise ArtifactError(f"{where}: checksum of array {key!r} does not match")
            out = np.frombuffer(raw, dtype=dt).reshape(shape).copy()
            out.setflags(write=False)
            return out

        layers = []
        for names, n_sum, groups, funs in metas:
            get = {n: (arr(names[n]) if n in names else None) for n in _LAYER_ARRAYS}
            layers.append(LUTLayer(n_sum=n_sum, mult_groups=groups, sym_funs=funs, **get))
        for name in ("base_fun", "n_inputs"):
            if name not in header:
                raise _inconsistent(where, f"no field {name!r}")
        provenance = header.get("provenance", {})
        notes = header.get("notes", [])
        if not isinstance(provenance, dict) or not isinstance(notes, list):
            raise ArtifactError(f"{where}: provenance/notes malformed")
        return LUTModel(layers=tuple(layers), contract=contract, base_fun=header["base_fun"],
                        input_id=arr(header["input_id"]), n_inputs=header["n_inputs"],
                        provenance=provenance, notes=tuple(str(n) for n in notes))
    except ArtifactError as e:
        msg = str(e)
        raise ArtifactError(msg if msg.startswith(f"{where}: ") else f"{where}: {msg}") from None
    except LutKanError as e:
        raise ArtifactError(f"{where}: {e}") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError, RecursionError) as e:
        raise _inconsistent(where, f"{type(e).__name__}: {e}") from None


def load(path: str | Path, *, max_bytes: int | None = None) -> LUTModel:
    """Read and validate a ``.lutkan`` file (``from_bytes``); a file larger than half the resource budget is
    refused before it is read (the loader holds the file and a copy of its arrays)."""
    path = Path(path)
    try:
        size = path.stat().st_size if path.is_file() else 0
        budget.check(2 * size, f"reading the {size}-byte file", limit=max_bytes, error=ArtifactError,
                     where=str(path))
        data = path.read_bytes()
    except OSError as e:
        raise ArtifactError(f"cannot read {path}: {e.strerror or e}") from None
    return from_bytes(data, source=str(path), max_bytes=max_bytes)


__all__ = ["FORMAT_VERSION", "LUTLayer", "LUTModel", "save", "load", "to_bytes", "from_bytes", "FLT_MAX"]
