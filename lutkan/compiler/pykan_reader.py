"""Read a trained PyKAN 0.2.8 model (live object or ``saveckpt`` checkpoint) into a ``SourceModel``.

Three public functions:

* :func:`load_source` turns a live ``kan.MultKAN`` or a checkpoint (prefix ``DIR/ID`` or a folder of
  checkpoints) into a torch-free :class:`lutkan.source.SourceModel` of float64 NumPy arrays. It does
  not build a pykan model for a checkpoint: the files are read directly.
* :func:`build_pykan_model` returns a live pykan model equal to the source, to run pykan's own forward.
* :func:`pykan_forward` runs that forward under ``torch.no_grad()`` without lasting side effects.

Checkpoints are untrusted input. Tensors are read with ``torch.load(..., map_location="cpu",
weights_only=True)`` (so CUDA- and MPS-saved files load on CPU). The YAML config is read with a
``yaml.SafeLoader`` subclass that understands exactly the few Python tags pykan's ``saveckpt`` really
writes: NumPy scalars (decoded from their dtype string and raw bytes, never by calling a constructor),
``!!python/tuple``, and the ``nn.SiLU``/``nn.Identity`` objects (and the ``zero`` lambda) that
``prune_input`` leaks into ``base_fun_name``. Every other ``!!python/...`` tag is refused with
:class:`~lutkan.errors.CheckpointError`. Nothing is written to disk, nothing is printed, and the
global torch/NumPy/``random`` RNG states are restored after pykan's constructor reseeds them.
"""

from __future__ import annotations

import copy
import hashlib
import io
import os
import pickle
import random
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from lutkan.errors import CheckpointError, InputError, UnsupportedModelError
from lutkan.source import SourceLayer, SourceModel, silu
from lutkan.symbolic import SYMBOLIC_FUNS

__all__ = ["load_source", "build_pykan_model", "pykan_forward", "read_checkpoint_config"]

_STATE, _CONFIG, _CACHE = "_state", "_config.yml", "_cache_data"
_BASE_FUNS = ("silu", "identity", "zero")

# ----------------------------------------------------------------------------- small helpers


def _torch():
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("reading pykan models needs torch; install lutkan[pykan]") from e
    return torch


def _pykan_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pykan")
    except PackageNotFoundError:
        return None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _f64(t) -> np.ndarray:
    """A float64 NumPy copy of a tensor/array (exact for float16/32/64 inputs)."""
    if hasattr(t, "detach"):
        if t.layout != _torch().strided or t.is_meta:  # sparse / meta tensors have no plain data to read
            raise UnsupportedModelError(f"tensor of shape {tuple(t.shape)} has layout {t.layout} on device "
                                        f"{t.device}; only dense tensors with data are supported")
        t = t.detach().cpu()
        if t.is_complex():
            raise UnsupportedModelError(f"complex tensor of shape {tuple(t.shape)} is not supported")
        if not t.is_floating_point():
            t = t.to(_torch().float64)
        elif t.dtype == _torch().bfloat16:
            t = t.float()
        t = t.numpy()
    return np.array(t, dtype=np.float64, copy=True)


def _dtype_name(dt) -> str:
    return str(dt).replace("torch.", "")


def _widest_float(dtypes) -> str | None:
    order = ["float64", "float32", "bfloat16", "float16"]
    names = {_dtype_name(d) for d in dtypes}
    for name in order:
        if name in names:
            return name
    return None


_MISSING = object()


class _RngGuard:
    """Save and restore the global torch / NumPy / ``random`` RNG states (pykan reseeds all three)."""

    def __enter__(self):
        torch = _torch()
        self._torch = torch.random.get_rng_state()
        self._cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        self._np = np.random.get_state()
        self._py = random.getstate()
        return self

    def __exit__(self, *exc):
        torch = _torch()
        torch.random.set_rng_state(self._torch)
        if self._cuda is not None:
            torch.cuda.set_rng_state_all(self._cuda)
        np.random.set_state(self._np)
        random.setstate(self._py)
        return False


# ----------------------------------------------------------------------------- safe YAML

_YAML_PY = "tag:yaml.org,2002:python/"
_NUMPY_SCALAR_TAGS = (
    _YAML_PY + "object/apply:numpy.core.multiarray.scalar",
    _YAML_PY + "object/apply:numpy._core.multiarray.scalar",
)
_NUMPY_DTYPE_TAG = _YAML_PY + "object/apply:numpy.dtype"
_TUPLE_TAG = _YAML_PY + "tuple"
# prune_input passes the base_fun *object* to MultKAN, so saveckpt dumps it as an object/name tag.
# These nodes are mapped to the pykan name without constructing anything (children are ignored).
_BASE_FUN_TAGS = {
    _YAML_PY + "object:torch.nn.modules.activation.SiLU": "silu",
    _YAML_PY + "object:torch.nn.modules.linear.Identity": "identity",
    _YAML_PY + "name:kan.MultKAN.<lambda>": "zero",  # base_fun='zero' is a lambda in MultKAN.__init__
    _YAML_PY + "name:kan.MultKAN.%3Clambda%3E": "zero",
}
_DTYPE_STR = re.compile(r"^[<>|=]?[biufc]\d{1,2}$")


class _YamlRefused(Exception):
    """Raised inside the YAML loader; re-raised as CheckpointError naming the file."""


@dataclass(frozen=True)
class _DecodedDtype:
    dtype: np.dtype


class _CheckpointYamlLoader(yaml.SafeLoader):
    """SafeLoader + the numpy-scalar / tuple / base_fun tags pykan writes; refuses other python tags."""

    def compose_node(self, parent, index):
        # An alias of a list/mapping shares it: nested, they expand exponentially in any repr or walk
        # ("billion laughs"). yaml.dump only aliases the numpy dtype shared by numpy scalars (a leaf
        # once constructed), so every other alias of a list/mapping is refused.
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            node = self.anchors.get(event.anchor)
            if isinstance(node, (yaml.SequenceNode, yaml.MappingNode)) and node.tag != _NUMPY_DTYPE_TAG:
                raise _YamlRefused(f"refused YAML alias *{event.anchor} of a list/mapping at line "
                                   f"{event.start_mark.line + 1} (pykan configs have none)")
        return super().compose_node(parent, index)


def _yaml_tuple(loader, node):
    if not isinstance(node, yaml.SequenceNode):
        raise _YamlRefused(f"malformed !!python/tuple at line {node.start_mark.line + 1}")
    return tuple(loader.construct_sequence(node, deep=True))


def _yaml_numpy_dtype(loader, node):
    where = f"line {node.start_mark.line + 1}"
    if isinstance(node, yaml.MappingNode):
        d = loader.construct_mapping(node, deep=True)
        args, state = d.get("args"), d.get("state")
    elif isinstance(node, yaml.SequenceNode):
        args, state = loader.construct_sequence(node, deep=True), None
    else:
        raise _YamlRefused(f"malformed numpy dtype tag at {where}")
    if not isinstance(args, (list, tuple)) or not args or not isinstance(args[0], str):
        raise _YamlRefused(f"malformed numpy dtype arguments at {where}: {args!r}")
    spec = args[0]
    if not _DTYPE_STR.match(spec):
        raise _YamlRefused(f"refused numpy dtype {spec!r} at {where}: only bool/int/uint/float/complex "
                           f"scalars are decoded")
    dt = np.dtype(spec)
    if isinstance(state, (list, tuple)) and len(state) > 1 and state[1] in ("<", ">"):
        dt = dt.newbyteorder(state[1])
    return _DecodedDtype(dt)


def _yaml_numpy_scalar(loader, node):
    where = f"line {node.start_mark.line + 1}"
    if not isinstance(node, yaml.SequenceNode):
        raise _YamlRefused(f"malformed numpy scalar at {where}")
    args = loader.construct_sequence(node, deep=True)
    if len(args) != 2 or not isinstance(args[0], _DecodedDtype) or not isinstance(args[1], bytes):
        raise _YamlRefused(f"malformed numpy scalar at {where}: expected [dtype, bytes]")
    dt = args[0].dtype
    if len(args[1]) != dt.itemsize:
        raise _YamlRefused(f"numpy scalar at {where}: {len(args[1])} bytes for dtype {dt.str}")
    return np.frombuffer(args[1], dtype=dt, count=1)[0].item()  # a plain Python bool/int/float/complex


def _yaml_refuse(loader, suffix, node):
    raise _YamlRefused(f"refused YAML tag !!python/{suffix} at line {node.start_mark.line + 1} "
                       f"(only numpy scalars, tuples and pykan's base_fun objects are allowed)")


for _tag in _NUMPY_SCALAR_TAGS:
    _CheckpointYamlLoader.add_constructor(_tag, _yaml_numpy_scalar)
_CheckpointYamlLoader.add_constructor(_NUMPY_DTYPE_TAG, _yaml_numpy_dtype)
_CheckpointYamlLoader.add_constructor(_TUPLE_TAG, _yaml_tuple)
for _tag, _name in _BASE_FUN_TAGS.items():
    _CheckpointYamlLoader.add_constructor(_tag, lambda loader, node, _n=_name: _n)
_CheckpointYamlLoader.add_multi_constructor(_YAML_PY, _yaml_refuse)


def _parse_yaml(data: bytes, path: Path) -> dict:
    try:
        loader = _CheckpointYamlLoader(data)  # the reader decodes and checks the first bytes already
    except yaml.YAMLError as e:
        raise CheckpointError(f"{path}: not valid YAML: {e}") from None
    try:
        cfg = loader.get_single_data()
    except _YamlRefused as e:
        raise CheckpointError(f"{path}: {e}; the config is not a plain pykan saveckpt file") from None
    except yaml.constructor.ConstructorError as e:
        raise CheckpointError(f"{path}: refused YAML content: {e.problem} "
                              f"(line {e.problem_mark.line + 1 if e.problem_mark else '?'})") from None
    except yaml.YAMLError as e:
        raise CheckpointError(f"{path}: not valid YAML: {e}") from None
    except RecursionError:
        raise CheckpointError(f"{path}: not valid YAML: nested too deeply") from None
    finally:
        loader.dispose()
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{path}: expected a YAML mapping (pykan saveckpt config), got {type(cfg).__name__}")
    return cfg


def read_checkpoint_config(path: str | os.PathLike) -> dict:
    """Read a pykan ``*_config.yml`` safely (see the module docstring for the accepted tags).

    Args:
        path: the ``ID_config.yml`` file.
    Returns:
        The config as plain Python data (NumPy scalars become Python numbers).
    Raises:
        CheckpointError: unreadable file, invalid YAML or a refused tag (named in the message).
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{p}: cannot read the config file: {e.strerror or e}") from None
    return _parse_yaml(data, p)


# ----------------------------------------------------------------------------- safe torch.load


def _torch_load(data: bytes, path: Path, what: str):
    torch = _torch()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*pickle protocol.*")
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        msg = str(e)
        m = re.search(r"WeightsUnpickler error:\s*(.*?)\s*(Check the documentation|$)", msg, re.S)
        detail = " ".join((m.group(1) if m else msg.splitlines()[0] if msg else "").split())
        raise CheckpointError(
            f"{path}: refused to unpickle the {what} file (weights_only): it holds objects other than "
            f"tensors ({detail[:200]}); lutkan never loads such files. Re-save the checkpoint with "
            f"pykan's saveckpt from a trusted model") from None
    except Exception as e:  # corrupt zip, truncated file, wrong format
        raise CheckpointError(f"{path}: cannot read the {what} file as a torch.save file: "
                              f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None


# ----------------------------------------------------------------------------- locating checkpoints

_VERSION = re.compile(r"^\d+(\.\d+)*$")


def _version_key(cid: str):
    return tuple(int(p) for p in cid.split(".")) if _VERSION.match(cid) else None


def _checkpoint_ids(folder: Path) -> list[str]:
    ids = set()
    for f in folder.iterdir():
        for suffix in (_STATE, _CONFIG):
            if f.name.endswith(suffix) and len(f.name) > len(suffix) and f.is_file():
                ids.add(f.name[: -len(suffix)])
    return sorted(ids, key=lambda c: (_version_key(c) is None, _version_key(c) or (), c))


def _file(prefix: Path, suffix: str) -> Path:
    return prefix.parent / (prefix.name + suffix)


def _resolve(source, checkpoint_id) -> tuple[Path, str | None]:
    """(checkpoint prefix, warning message or None) for a path source."""
    p = Path(os.fspath(source)).expanduser()
    if checkpoint_id is not None:
        cid = str(checkpoint_id)
        if not cid or "/" in cid or "\\" in cid or cid in (".", ".."):
            raise CheckpointError(f"checkpoint_id {cid!r} is not a checkpoint id such as '0.3'")
        if not p.is_dir():
            raise CheckpointError(f"{p}: checkpoint_id={cid!r} selects a checkpoint in a folder, but {p} is "
                                  f"not a folder; pass the folder, or the prefix {p}/{cid} without checkpoint_id")
        prefix = p / cid
        if not (_file(prefix, _STATE).exists() or _file(prefix, _CONFIG).exists()):
            ids = _checkpoint_ids(p)
            raise CheckpointError(f"{p}: no checkpoint {cid!r} (no {cid}{_STATE} / {cid}{_CONFIG}); "
                                  f"available: {', '.join(ids) if ids else 'none'}")
        return prefix.resolve(), None
    if p.is_dir():
        ids = _checkpoint_ids(p)
        if not ids:
            raise CheckpointError(f"{p}: the folder holds no pykan checkpoint (no *{_STATE} or *{_CONFIG} "
                                  f"files); pass a checkpoint prefix such as {p}/0.3")
        numeric = [c for c in ids if _version_key(c) is not None]
        if numeric:
            best = max(numeric, key=_version_key)
        elif len(ids) == 1:
            best = ids[0]
        else:
            raise CheckpointError(f"{p}: cannot tell which checkpoint is the latest among {ids}; "
                                  f"pass checkpoint_id")
        msg = (f"{p}: using checkpoint {best} (latest of {len(ids)} checkpoint(s) in the folder: "
               f"{', '.join(ids)}); pass checkpoint_id to choose another")
        return (p / best).resolve(), msg
    if p.is_file():
        for suffix in (_STATE, _CONFIG, _CACHE):
            if p.name.endswith(suffix) and len(p.name) > len(suffix):
                p = p.parent / p.name[: -len(suffix)]
                break
    if not (_file(p, _STATE).exists() or _file(p, _CONFIG).exists()):
        raise CheckpointError(f"no pykan checkpoint at {p}: expected {p}{_STATE} and {p}{_CONFIG} "
                              f"(written by pykan's saveckpt), or a folder of checkpoints")
    return p.resolve(), None


# ----------------------------------------------------------------------------- model spec


@dataclass
class _Spec:
    width: list[list[int]]
    groups: list[tuple[int, ...]]  # per layer l: the mult groups of its output nodes
    base_fun: str
    symbolic_enabled: bool


def _as_count(v, what: str, err, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < 0:
        raise err(f"{where}: {what} must be a non-negative integer, got {v!r}")
    return int(v)


def _parse_width(width, err, where: str) -> list[list[int]]:
    if not isinstance(width, (list, tuple)) or len(width) < 2:
        raise err(f"{where}: width must be a list of at least 2 layer sizes, got {width!r}")
    out = []
    for l, w in enumerate(width):
        if isinstance(w, (list, tuple)):
            if len(w) != 2:
                raise err(f"{where}: width[{l}] must be n or [n_sum, n_mult], got {w!r}")
            out.append([_as_count(w[0], f"width[{l}][0]", err, where), _as_count(w[1], f"width[{l}][1]", err, where)])
        else:
            out.append([_as_count(w, f"width[{l}]", err, where), 0])
    return out


def _mult_groups(width: list[list[int]], mult_arity, err, where: str) -> list[tuple[int, ...]]:
    """Per layer l (0-based), the arities of the multiplication nodes of width[l+1] (pykan forward)."""
    groups = []
    homo = isinstance(mult_arity, (int, np.integer)) and not isinstance(mult_arity, bool)
    if not homo:
        if not isinstance(mult_arity, (list, tuple)) or len(mult_arity) != len(width):
            raise err(f"{where}: mult_arity must be an int or one list of arities per width entry "
                      f"({len(width)} lists), got {mult_arity!r}")
    for l in range(1, len(width)):
        n_mult = width[l][1]
        if homo:
            g = (int(mult_arity),) * n_mult
        else:
            a = mult_arity[l]
            if not isinstance(a, (list, tuple)) or len(a) != n_mult:
                raise err(f"{where}: mult_arity[{l}] = {a!r} must list one arity per multiplication node "
                          f"of width[{l}] ({n_mult} nodes)")
            g = tuple(_as_count(x, f"mult_arity[{l}]", err, where) for x in a)
        if any(x < 2 for x in g):
            raise UnsupportedModelError(f"{where}: layer {l - 1} has a multiplication node of arity < 2 "
                                        f"({g}); pykan's forward does not support it")
        groups.append(g)
    return groups


def _width_in(width) -> list[int]:
    return [n + m for n, m in width]


def _per_layer(value, depth: int, name: str, err, where: str) -> list[int] | None:
    if value is None:
        return None
    vals = list(value) if isinstance(value, (list, tuple)) else [value] * depth
    if len(vals) != depth:
        raise err(f"{where}: {name} lists {len(vals)} values for {depth} layers")
    return [_as_count(v, name, err, where) for v in vals]


# ----------------------------------------------------------------------------- assembling layers

_LAYER_FIELDS = ("grid", "coef", "scale_base", "scale_sp", "mask", "sym_mask", "sym_affine",
                 "subnode_scale", "subnode_bias", "node_scale", "node_bias")


def _assemble_layer(l: int, arrs: dict, names, k_cfg: int | None, g_cfg: int | None, width, groups,
                    err, label: dict) -> tuple[SourceLayer, int, int]:
    """Check shapes against ``width`` and build layer ``l``. ``label`` maps field -> display name."""
    win = _width_in(width)
    I = win[l]
    n_sum = width[l + 1][0]
    O = n_sum + sum(groups[l])
    n_nodes = win[l + 1]

    def need(field, shape_ok, want):
        got = tuple(arrs[field].shape)
        if not shape_ok(got):
            raise err(f"{label[field]} has shape {got} but the width {_fmt_width(width)} needs {want}; "
                      f"the config and the state do not belong to the same model")

    grid = arrs["grid"]
    need("grid", lambda s: len(s) == 2 and s[0] == I, f"({I}, G+2k+1) ({I} rows = inputs of layer {l})")
    coef = arrs["coef"]
    need("coef", lambda s: len(s) == 3 and s[:2] == (I, O), f"({I}, {O}, G+k)")
    k = grid.shape[1] - coef.shape[2] - 1
    G = grid.shape[1] - 1 - 2 * k
    if k < 0 or G < 1:
        raise err(f"{label['grid']} has {grid.shape[1]} knots per row and {label['coef']} {coef.shape[2]} "
                  f"coefficients per edge: not a B-spline of any order k >= 0 with G >= 1 intervals")
    if k_cfg is not None and k_cfg != k:
        raise err(f"layer {l}: the config says k={k_cfg} but the tensors have k={k} "
                  f"({label['grid']}: {grid.shape[1]} knots, {label['coef']}: {coef.shape[2]} coefficients)")
    if g_cfg is not None and g_cfg != G:
        raise err(f"layer {l}: the config says grid={g_cfg} but {label['grid']} has G={G} intervals "
                  f"({grid.shape[1]} knots with k={k})")
    for field in ("scale_base", "scale_sp", "mask"):
        need(field, lambda s: s == (I, O), f"({I}, {O})")
    need("sym_mask", lambda s: s == (O, I), f"({O}, {I})")
    need("sym_affine", lambda s: s == (O, I, 4), f"({O}, {I}, 4)")
    need("subnode_scale", lambda s: s == (O,), f"({O},)")
    need("subnode_bias", lambda s: s == (O,), f"({O},)")
    need("node_scale", lambda s: s == (n_nodes,), f"({n_nodes},)")
    need("node_bias", lambda s: s == (n_nodes,), f"({n_nodes},)")
    sym_names = _check_names(l, names, O, I, arrs["sym_mask"], err, label["names"])
    layer = SourceLayer(
        grid=grid, coef=coef, k=int(k), scale_base=arrs["scale_base"], scale_sp=arrs["scale_sp"],
        mask=arrs["mask"], sym_mask=arrs["sym_mask"], sym_affine=arrs["sym_affine"], sym_names=sym_names,
        subnode_scale=arrs["subnode_scale"], subnode_bias=arrs["subnode_bias"],
        node_scale=arrs["node_scale"], node_bias=arrs["node_bias"], n_sum=int(n_sum),
        mult_groups=tuple(int(g) for g in groups[l]))
    return layer, int(k), int(G)


def _check_names(l, names, O, I, sym_mask, err, where) -> tuple[tuple[str, ...], ...]:
    if names is None:
        if np.any(sym_mask != 0):
            j, i = (int(v) for v in np.argwhere(sym_mask != 0)[0])
            raise err(f"{where}: no symbolic function names for layer {l}, but edge ({i}, {j}) is symbolic")
        return tuple(("0",) * I for _ in range(O))
    if (not isinstance(names, (list, tuple)) or len(names) != O
            or any(not isinstance(r, (list, tuple)) or len(r) != I for r in names)):
        raise err(f"{where}: symbolic names of layer {l} must be a [{O}][{I}] list ([out][in])")
    out = []
    for j, row in enumerate(names):
        for i, name in enumerate(row):
            if not isinstance(name, str) or name not in SYMBOLIC_FUNS:
                active = "an active" if sym_mask[j, i] != 0 else "an inactive"
                raise UnsupportedModelError(
                    f"{where}: layer {l}, edge ({i}, {j}) ({active} symbolic edge) uses symbolic function "
                    f"{name!r}, which is not in pykan's SYMBOLIC_LIB as lutkan knows it (known: "
                    f"{', '.join(sorted(SYMBOLIC_FUNS))}); fix_symbolic it with a known name or "
                    f"unfix_symbolic it")
        out.append(tuple(row))
    return tuple(out)


def _fmt_width(width) -> str:
    return "[" + ", ".join(str(n) if m == 0 else f"[{n}, {m}]" for n, m in width) + "]"


# ----------------------------------------------------------------------------- checkpoints


@dataclass
class _Checkpoint:
    prefix: Path
    config: dict
    state: dict
    cache: Any
    spec: _Spec
    layers: list[SourceLayer]
    ks: list[int]
    grids: list[int]
    provenance: dict


def _state_keys(depth: int) -> list[str]:
    keys = []
    for l in range(depth):
        keys += [f"node_bias_{l}", f"node_scale_{l}", f"subnode_bias_{l}", f"subnode_scale_{l}"]
    for l in range(depth):
        keys += [f"act_fun.{l}.{n}" for n in ("grid", "coef", "mask", "scale_base", "scale_sp")]
    for l in range(depth):
        keys += [f"symbolic_fun.{l}.mask", f"symbolic_fun.{l}.affine"]
    return keys


def _read_checkpoint(prefix: Path) -> _Checkpoint:
    torch = _torch()
    paths = {s: _file(prefix, s) for s in (_STATE, _CONFIG, _CACHE)}
    for s, what in ((_CONFIG, "config"), (_STATE, "state")):
        if not paths[s].is_file():
            present = [p.name for p in paths.values() if p.is_file()]
            raise CheckpointError(
                f"{prefix}: the checkpoint's {what} file {paths[s].name} is missing (found: "
                f"{', '.join(present) or 'nothing'}); pykan's saveckpt writes {prefix.name}{_STATE}, "
                f"{prefix.name}{_CONFIG} and {prefix.name}{_CACHE} together: copy all three")
    blobs = {}
    for s, p in paths.items():
        if s == _CACHE and not p.is_file():
            continue
        try:
            blobs[s] = p.read_bytes()
        except OSError as e:
            raise CheckpointError(f"{p}: cannot read: {e.strerror or e}") from None

    cfg_path, state_path, cache_path = paths[_CONFIG], paths[_STATE], paths[_CACHE]
    cfg = _parse_yaml(blobs[_CONFIG], cfg_path)
    state = _torch_load(blobs[_STATE], state_path, "state")
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise CheckpointError(f"{state_path}: not a pykan state_dict (expected a dict of named tensors, "
                              f"got {type(state).__name__})")
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{state_path}: entries {bad[:5]} are not tensors; not a pykan state_dict")

    cache = None
    if _CACHE in blobs:
        cache = _torch_load(blobs[_CACHE], cache_path, "cache_data")
        if cache is not None and not (isinstance(cache, torch.Tensor) and cache.ndim == 2
                                      and not cache.is_complex()):
            warnings.warn(f"{cache_path}: cache_data is not a 2-D real tensor "
                          f"({type(cache).__name__} {tuple(getattr(cache, 'shape', ()))}); ignored",
                          stacklevel=3)
            cache = None

    # --- config
    if "width" not in cfg:
        raise CheckpointError(f"{cfg_path}: no 'width' key; not a pykan saveckpt config "
                              f"(keys: {sorted(map(str, cfg))[:10]})")
    width = _parse_width(cfg["width"], CheckpointError, str(cfg_path))
    depth = len(width) - 1
    groups = _mult_groups(width, cfg.get("mult_arity", 2), CheckpointError, str(cfg_path))
    ks = _per_layer(cfg.get("k"), depth, "k", CheckpointError, str(cfg_path))
    gs = _per_layer(cfg.get("grid"), depth, "grid", CheckpointError, str(cfg_path))
    base_fun = cfg.get("base_fun_name", "silu")
    if base_fun not in _BASE_FUNS:
        raise UnsupportedModelError(f"{cfg_path}: base_fun_name {base_fun!r} is not supported; pykan's "
                                    f"MultKAN accepts silu, identity or zero")
    sym_enabled = cfg.get("symbolic_enabled", True)
    if not isinstance(sym_enabled, bool):
        raise CheckpointError(f"{cfg_path}: symbolic_enabled must be true/false, got {sym_enabled!r}")
    spec = _Spec(width=width, groups=groups, base_fun=base_fun, symbolic_enabled=sym_enabled)

    # --- state keys
    want = _state_keys(depth)
    missing = [k for k in want if k not in state]
    unexpected = [k for k in state if k not in set(want)]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:8]}{' ...' if len(missing) > 8 else ''}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}")
        raise CheckpointError(f"{state_path}: {'; '.join(parts)} for the {depth}-layer width "
                              f"{_fmt_width(width)} in {cfg_path.name}; the config and state do not match")

    layers, kl, gl = [], [], []
    for l in range(depth):
        src = {"grid": f"act_fun.{l}.grid", "coef": f"act_fun.{l}.coef", "scale_base": f"act_fun.{l}.scale_base",
               "scale_sp": f"act_fun.{l}.scale_sp", "mask": f"act_fun.{l}.mask",
               "sym_mask": f"symbolic_fun.{l}.mask", "sym_affine": f"symbolic_fun.{l}.affine",
               "subnode_scale": f"subnode_scale_{l}", "subnode_bias": f"subnode_bias_{l}",
               "node_scale": f"node_scale_{l}", "node_bias": f"node_bias_{l}"}
        try:
            arrs = {f: _f64(state[key]) for f, key in src.items()}
        except UnsupportedModelError as e:
            raise CheckpointError(f"{state_path}: layer {l}: {e}") from None
        label = {f: f"{state_path.name}: {key}" for f, key in src.items()}
        label["names"] = f"{cfg_path.name}: symbolic.funs_name.{l}"
        names = cfg.get(f"symbolic.funs_name.{l}")
        layer, k, G = _assemble_layer(l, arrs, names, None if ks is None else ks[l],
                                      None if gs is None else gs[l], width, groups, CheckpointError, label)
        layers.append(layer)
        kl.append(k)
        gl.append(G)

    dtypes = sorted({_dtype_name(v.dtype) for v in state.values()})
    prov = {
        "pykan_version": _pykan_version(),
        "source": str(prefix),
        "checkpoint_id": prefix.name,
        "state_sha256": _sha256(blobs[_STATE]),
        "config_sha256": _sha256(blobs[_CONFIG]),
        "cache_data_sha256": _sha256(blobs[_CACHE]) if _CACHE in blobs else None,
        "state_dtype": _widest_float(v.dtype for v in state.values()),
        "device": None if cfg.get("device") is None else str(cfg.get("device")),
        "width": [list(w) for w in width],
    }
    if len(dtypes) > 1:
        prov["state_dtypes"] = dtypes
    return _Checkpoint(prefix=prefix, config=cfg, state=state, cache=cache, spec=spec, layers=layers,
                       ks=kl, grids=gl, provenance=prov)


def _cache_width_note(ck: _Checkpoint, stacklevel: int) -> str | None:
    """Warn (and return the note) when cache_data does not have width_in[0] columns."""
    n_inputs = _width_in(ck.spec.width)[0]
    if ck.cache is None or ck.cache.shape[1] == n_inputs:
        return None
    note = (f"cache_data has {ck.cache.shape[1]} columns but the model takes {n_inputs} inputs: the "
            f"checkpoint was probably saved right after prune_input, and checkpoints do not record "
            f"input_id, so which columns the model uses is unknown (pykan's loadckpt silently uses the "
            f"first {n_inputs}); pass your own inputs")
    warnings.warn(f"{ck.prefix}: {note}", stacklevel=stacklevel + 1)
    return note


def _checkpoint_source(ck: _Checkpoint) -> SourceModel:
    n_inputs = _width_in(ck.spec.width)[0]
    cache = None if ck.cache is None else _f64(ck.cache)
    prov = dict(ck.provenance)
    note = _cache_width_note(ck, stacklevel=3)  # user -> load_source -> here
    if note:
        prov["cache_data_note"] = note
    return SourceModel(layers=tuple(ck.layers), input_id=np.arange(n_inputs, dtype=np.int64), n_inputs=n_inputs,
                       base_fun=ck.spec.base_fun, symbolic_enabled=ck.spec.symbolic_enabled, provenance=prov,
                       cache_data=cache)


# ----------------------------------------------------------------------------- live models


def _multkan_class():
    mod = sys.modules.get("kan.MultKAN")
    return getattr(mod, "MultKAN", None) if mod is not None else None


def _as_live(source):
    """The MultKAN behind ``source`` (unwrapping torch.compile), or None."""
    cls = _multkan_class()
    if cls is None:
        return None
    if isinstance(source, cls):
        return source
    inner = getattr(source, "_orig_mod", None)  # model.speed(compile=True)
    if inner is not None and isinstance(inner, cls):
        return inner
    return None


_PROBE = (-6.0, -2.5, -1.0, -0.3, 0.0, 0.2, 0.9, 1.7, 3.1, 8.0)


def _classify_base_fun(f) -> str | None:
    torch = _torch()
    if isinstance(f, torch.nn.SiLU):
        return "silu"
    if isinstance(f, torch.nn.Identity):
        return "identity"
    if isinstance(f, torch.nn.Module) or not callable(f):
        return None
    x = torch.tensor(_PROBE, dtype=torch.float64)
    try:
        with torch.no_grad():
            y = f(x)
        y = np.asarray(y.detach().cpu().numpy() if hasattr(y, "detach") else y, dtype=np.float64)
    except Exception:
        return None
    xs = np.asarray(_PROBE)
    if y.shape != xs.shape:
        return None
    if np.array_equal(y, np.zeros_like(xs)):
        return "zero"
    if np.array_equal(y, xs):
        return "identity"
    if np.allclose(y, silu(xs), rtol=1e-12, atol=1e-15):
        return "silu"
    return None


def _live_base_fun(model) -> str:
    name = _classify_base_fun(model.base_fun)
    if name is None:
        raise UnsupportedModelError(f"live model: base_fun {model.base_fun!r} is not supported; use "
                                    f"MultKAN(base_fun='silu' | 'identity' | 'zero')")
    for l, layer in enumerate(model.act_fun):
        other = _classify_base_fun(getattr(layer, "base_fun", model.base_fun))
        if other != name:
            raise UnsupportedModelError(f"live model: act_fun[{l}].base_fun ({layer.base_fun!r}) differs from "
                                        f"the model's base_fun ({name}); lutkan needs one base_fun")
    return name


def _check_live_symbolic(model, l: int, layer: SourceLayer) -> None:
    """Active symbolic edges must really use pykan's SYMBOLIC_LIB function of their name."""
    torch = _torch()
    x = torch.tensor(_PROBE, dtype=torch.float64)
    funs = model.symbolic_fun[l].funs
    for j, i in np.argwhere(layer.sym_mask != 0):
        j, i = int(j), int(i)
        name = layer.sym_names[j][i]
        ok = False
        try:
            with torch.no_grad(), np.errstate(all="ignore"):
                y = funs[j][i](x)
                y = np.asarray(y.detach().cpu().numpy() if hasattr(y, "detach") else y, dtype=np.float64)
            ok = y.shape == x.shape and np.allclose(y, SYMBOLIC_FUNS[name](np.asarray(_PROBE)),
                                                    rtol=1e-9, atol=1e-12, equal_nan=True)
        except Exception:
            ok = False
        if not ok:
            raise UnsupportedModelError(
                f"live model: layer {l}, edge ({i}, {j}) is named {name!r} but its function is not pykan's "
                f"SYMBOLIC_LIB[{name!r}]; set it with fix_symbolic({l}, {i}, {j}, {name!r})")


def _live_source(model) -> SourceModel:
    depth = len(model.act_fun)
    where = "live model"
    width = _parse_width(model.width, UnsupportedModelError, where)
    if len(width) != depth + 1 or len(model.symbolic_fun) != depth:
        raise UnsupportedModelError(f"{where}: width {model.width} has {len(width) - 1} layers but the model has "
                                    f"{depth} act_fun and {len(model.symbolic_fun)} symbolic_fun layers")
    for attr in ("node_scale", "node_bias", "subnode_scale", "subnode_bias"):
        if len(getattr(model, attr)) != depth:
            raise UnsupportedModelError(f"{where}: model.{attr} has {len(getattr(model, attr))} entries for "
                                        f"{depth} layers")
    groups = _mult_groups(width, model.mult_arity, UnsupportedModelError, where)
    base_fun = _live_base_fun(model)
    sym_enabled = bool(model.symbolic_enabled)
    layers = []
    dtypes = set()
    for l in range(depth):
        af, sf = model.act_fun[l], model.symbolic_fun[l]
        tens = {"grid": af.grid, "coef": af.coef, "scale_base": af.scale_base, "scale_sp": af.scale_sp,
                "mask": af.mask, "sym_mask": sf.mask, "sym_affine": sf.affine,
                "subnode_scale": model.subnode_scale[l], "subnode_bias": model.subnode_bias[l],
                "node_scale": model.node_scale[l], "node_bias": model.node_bias[l]}
        dtypes |= {t.dtype for t in tens.values()}
        arrs = {f: _f64(t) for f, t in tens.items()}
        label = {"grid": f"act_fun[{l}].grid", "coef": f"act_fun[{l}].coef",
                 "scale_base": f"act_fun[{l}].scale_base", "scale_sp": f"act_fun[{l}].scale_sp",
                 "mask": f"act_fun[{l}].mask", "sym_mask": f"symbolic_fun[{l}].mask",
                 "sym_affine": f"symbolic_fun[{l}].affine", "subnode_scale": f"subnode_scale[{l}]",
                 "subnode_bias": f"subnode_bias[{l}]", "node_scale": f"node_scale[{l}]",
                 "node_bias": f"node_bias[{l}]", "names": f"symbolic_fun[{l}].funs_name"}
        label = {f: f"{where}: {v}" for f, v in label.items()}
        layer, _, _ = _assemble_layer(l, arrs, sf.funs_name, int(af.k), None, width, groups,
                                      UnsupportedModelError, label)
        if sym_enabled:
            _check_live_symbolic(model, l, layer)
        layers.append(layer)

    input_id = np.asarray(model.input_id.detach().cpu().numpy() if hasattr(model.input_id, "detach")
                          else model.input_id, dtype=np.int64).reshape(-1)
    nid = len(input_id)
    need = int(input_id.max()) + 1 if nid else 0
    n_inputs = need
    cache = None
    prov_notes = {}
    raw = getattr(model, "cache_data", None)
    if raw is not None and hasattr(raw, "detach") and raw.ndim == 2:
        c = _f64(raw)
        w = c.shape[1]
        identity = np.array_equal(input_id, np.arange(nid))
        gathered = w == nid and not identity and (w < need or getattr(model, "acts", None) is not None)
        if gathered:
            # pykan caches x[:, input_id] (after the gather): put the columns back where they came from
            cache = np.zeros((c.shape[0], need))
            cache[:, input_id] = c
            prov_notes["cache_data_note"] = (f"model.cache_data holds the {nid} selected columns "
                                             f"(input_id {input_id.tolist()}); the other columns are 0")
        elif w >= need:
            cache, n_inputs = c, max(need, w)
        else:
            warnings.warn(f"live model: cache_data has {w} columns, which fits neither the {nid} selected "
                          f"inputs nor input_id {input_id.tolist()}; ignored", stacklevel=3)
    prov = {
        "pykan_version": _pykan_version(),
        "source": "live",
        "checkpoint_id": None,
        "state_sha256": _live_state_sha256(model),
        "config_sha256": None,
        "cache_data_sha256": None,
        "state_dtype": _widest_float(dtypes),
        "device": str(getattr(model, "device", model.act_fun[0].coef.device)),
        "width": [list(w) for w in width],
        **prov_notes,
    }
    if len({_dtype_name(d) for d in dtypes}) > 1:
        prov["state_dtypes"] = sorted({_dtype_name(d) for d in dtypes})
    return SourceModel(layers=tuple(layers), input_id=input_id, n_inputs=n_inputs, base_fun=base_fun,
                       symbolic_enabled=sym_enabled, provenance=prov, cache_data=cache)


def _live_state_sha256(model) -> str:
    """SHA-256 of the live state_dict contents (names, dtypes, shapes, raw bytes) in key order."""
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        t = v.detach().cpu().contiguous()
        h.update(f"{k}|{_dtype_name(t.dtype)}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(_torch().uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


# ----------------------------------------------------------------------------- public API


def load_source(source, *, checkpoint_id: str | None = None) -> SourceModel:
    """Read a trained pykan model into a torch-free float64 :class:`SourceModel`.

    Args:
        source: a live ``kan.MultKAN``/``kan.KAN`` (also one wrapped by ``torch.compile``), a
            :class:`SourceModel` (returned as is), or a path: a checkpoint prefix ``DIR/ID`` (files
            ``ID_state``, ``ID_config.yml`` and optionally ``ID_cache_data``, as written by
            ``saveckpt``; one of those files may be given instead), or a folder of checkpoints. For a
            folder the latest id in numeric version order is used (``0.10 > 0.9``, ``1.6 > 0.6``) and a
            ``UserWarning`` names it, unless ``checkpoint_id`` selects one.
        checkpoint_id: the checkpoint id (e.g. ``"0.3"``) to read from the folder ``source``.

    Returns:
        The model as float64 arrays: per-layer grid, coef, k, scales, masks, symbolic masks, affines and
        names, node/subnode affines, multiplication groups; ``input_id`` (a checkpoint does not record it,
        so ``arange``); ``n_inputs`` (checkpoint: ``width_in[0]``; live: ``max(input_id)+1``, or the
        ``cache_data`` width when wider); ``base_fun``; ``symbolic_enabled``; ``cache_data`` as float64
        in the model's input space, or None; and a JSON-able ``provenance`` dict (``pykan_version``,
        ``source`` = ``"live"`` or the resolved prefix, ``checkpoint_id``, ``state_sha256``,
        ``config_sha256``, ``cache_data_sha256``, ``state_dtype``, ``device`` the checkpoint was saved on,
        ``width``; ``state_dtypes`` when the state mixes dtypes). float32 states are upcast exactly,
        float64 states keep full precision.

    Raises:
        CheckpointError: a missing state/config file (named), an unreadable or refused file (pickles
            with non-tensor objects, YAML with python tags other than numpy scalars and pykan's
            base_fun objects), or a config that does not match the state (naming file, tensor, layer).
        UnsupportedModelError: not a pykan model; unknown base_fun or symbolic function (naming the
            layer and edge); multiplication arity < 2.

    Loading has no side effects: no files are written, nothing is printed, no model is constructed.
    """
    if isinstance(source, SourceModel):
        if checkpoint_id is not None:
            raise CheckpointError("checkpoint_id applies to a folder of checkpoints, not to a SourceModel")
        return source
    live = _as_live(source)
    if live is not None:
        if checkpoint_id is not None:
            raise CheckpointError("checkpoint_id applies to a folder of checkpoints, not to a live model")
        return _live_source(live)
    if not isinstance(source, (str, os.PathLike)):
        raise UnsupportedModelError(f"{type(source).__module__}.{type(source).__qualname__} is not a pykan "
                                    f"model: pass a kan.MultKAN, a checkpoint prefix such as model/0.3, or "
                                    f"a folder of checkpoints")
    prefix, msg = _resolve(source, checkpoint_id)
    if msg:
        warnings.warn(msg, stacklevel=2)
    return _checkpoint_source(_read_checkpoint(prefix))


def build_pykan_model(source, *, checkpoint_id: str | None = None):
    """A live pykan ``MultKAN`` equal to ``source``, for running pykan's own forward.

    Args:
        source: a live model (returned as is) or a checkpoint path / folder, as for :func:`load_source`.
        checkpoint_id: the checkpoint id to use from a folder.

    Returns:
        ``kan.MultKAN`` built with ``auto_save=False`` on CPU, in float64 when the state holds float64
        tensors, with the state loaded strictly (after the same safe reading and checks as
        :func:`load_source`), pykan's symbolic functions bound by name from ``kan.utils.SYMBOLIC_LIB``
        and ``cache_data`` set. ``input_id`` is ``arange`` (checkpoints do not record it).

    Raises:
        CheckpointError, UnsupportedModelError: as :func:`load_source`.

    No ``./model`` folder is created, nothing is printed, and the global torch/NumPy/``random`` RNG
    states are restored after pykan's constructor reseeds them.
    """
    live = _as_live(source)
    if live is not None:
        if checkpoint_id is not None:
            raise CheckpointError("checkpoint_id applies to a folder of checkpoints, not to a live model")
        return source
    if not isinstance(source, (str, os.PathLike)):
        raise UnsupportedModelError(f"{type(source).__module__}.{type(source).__qualname__} is not a pykan "
                                    f"model or checkpoint path")
    prefix, msg = _resolve(source, checkpoint_id)
    if msg:
        warnings.warn(msg, stacklevel=2)
    ck = _read_checkpoint(prefix)
    torch = _torch()
    _cache_width_note(ck, stacklevel=2)
    from kan.MultKAN import MultKAN
    from kan.utils import SYMBOLIC_LIB

    cfg, spec = ck.config, ck.spec

    def opt(key, default, ok):
        v = cfg.get(key, default)
        return v if ok(v) else default

    num = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    grid_arg = ck.grids[0] if len(set(ck.grids)) == 1 else list(ck.grids)
    k_arg = ck.ks[0] if len(set(ck.ks)) == 1 else list(ck.ks)
    mult_arity = cfg.get("mult_arity", 2)
    with _RngGuard():
        model = MultKAN(
            width=copy.deepcopy(spec.width), grid=grid_arg, k=k_arg, mult_arity=copy.deepcopy(mult_arity),
            base_fun=spec.base_fun, symbolic_enabled=spec.symbolic_enabled,
            affine_trainable=opt("affine_trainable", False, lambda v: isinstance(v, bool)),
            grid_eps=opt("grid_eps", 0.02, num),
            grid_range=opt("grid_range", [-1, 1], lambda v: isinstance(v, list) and len(v) == 2
                           and all(num(x) for x in v)),
            sp_trainable=opt("sp_trainable", True, lambda v: isinstance(v, bool)),
            sb_trainable=opt("sb_trainable", True, lambda v: isinstance(v, bool)),
            state_id=opt("state_id", 0, lambda v: isinstance(v, int)),
            round=opt("round", 0, lambda v: isinstance(v, int)),
            seed=0, auto_save=False, first_init=False, device="cpu")
    dtype = ck.provenance["state_dtype"]
    if dtype in ("float64", "float16", "bfloat16"):
        # Module._apply casts in place; MultKAN.to() would treat a dtype as a device
        {"float64": model.double, "float16": model.half, "bfloat16": model.bfloat16}[dtype]()
    try:
        model.load_state_dict(ck.state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{_file(prefix, _STATE)}: pykan refused the state: {e}") from None
    for l, layer in enumerate(ck.layers):
        sf = model.symbolic_fun[l]
        for j, row in enumerate(layer.sym_names):
            for i, name in enumerate(row):
                sf.funs_name[j][i] = name
                sf.funs[j][i] = SYMBOLIC_LIB[name][0]
                sf.funs_sympy[j][i] = SYMBOLIC_LIB[name][1]
                sf.funs_avoid_singularity[j][i] = SYMBOLIC_LIB[name][3]
    model.cache_data = ck.cache
    return model


# Attributes MultKAN.forward assigns; pykan_forward puts them back afterwards.
_FORWARD_ATTRS = ("cache_data", "acts", "acts_premult", "spline_preacts", "spline_postsplines",
                  "spline_postacts", "acts_scale", "acts_scale_spline", "subnode_actscale", "edge_actscale")


def pykan_forward(model, x: np.ndarray) -> np.ndarray:
    """Run pykan's own forward on ``x`` and return float64 NumPy.

    Args:
        model: a live ``kan.MultKAN`` (e.g. from :func:`build_pykan_model`).
        x: (N, n_inputs) inputs in the model's input space (the model gathers ``x[:, input_id]``).
            They are converted to the model's dtype (float32 or float64) before the forward.

    Returns:
        (N, n_outputs) float64 outputs of ``model(x)`` under ``torch.no_grad()`` (default
        ``singularity_avoiding=False``; the symbolic branch as the model has it).

    Raises:
        InputError: ``x`` is not 2-D or too narrow for ``input_id``.
        UnsupportedModelError: ``model`` is not a pykan model.

    ``save_act`` is turned off during the call, and ``save_act``, ``cache_data`` and the activation
    caches the forward overwrites are restored afterwards; nothing is written to disk.
    """
    torch = _torch()
    m = _as_live(model)
    if m is None:
        raise UnsupportedModelError(f"{type(model).__qualname__} is not a pykan model")
    x = np.asarray(x)
    if x.ndim != 2:
        raise InputError(f"pykan_forward needs a 2-D (batch, inputs) array, got shape {x.shape}")
    ids = m.input_id.detach().cpu().numpy() if hasattr(m.input_id, "detach") else np.asarray(m.input_id)
    if ids.size and x.shape[1] <= int(ids.max()):
        raise InputError(f"x has {x.shape[1]} columns but the model reads input columns {ids.tolist()}")
    ref = m.act_fun[0].coef
    saved = {a: m.__dict__.get(a, _MISSING) for a in _FORWARD_ATTRS}
    save_act = m.save_act
    try:
        m.save_act = False
        with torch.no_grad():
            y = model(torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=ref.dtype, device=ref.device))
        return y.detach().cpu().to(torch.float64).numpy()
    finally:
        m.save_act = save_act
        for a, v in saved.items():
            if v is _MISSING:
                m.__dict__.pop(a, None)
            else:
                m.__dict__[a] = v
