"""pykan ``saveckpt`` checkpoints (untrusted input) -> :class:`~lutkan.source.SourceModel`.

A checkpoint is three files next to each other: ``ID_state`` (a ``torch.save`` state_dict),
``ID_config.yml`` (read by :mod:`.safe_yaml`) and optionally ``ID_cache_data``. This module locates
them (:func:`resolve_source`: a prefix ``DIR/ID``, one of its files, or a folder -> its latest id),
reads them with ``torch.load(..., map_location="cpu", weights_only=True)`` (so CUDA- and MPS-saved
files load on CPU and pickles with other objects are refused), checks the config against the state
(:func:`read_checkpoint`) and converts the result (:func:`checkpoint_source`). Nothing is written.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lutkan import budget
from lutkan.compiler.pykan.safe_yaml import parse_config
from lutkan.compiler.pykan.spec import (
    BASE_FUNS,
    ModelSpec,
    assemble_layer,
    check_mult_width,
    fmt_width,
    mult_groups,
    parse_width,
    per_layer,
    width_in,
)
from lutkan.compiler.pykan.tensors import (
    check_tensor_bytes,
    check_torch_file,
    dtype_name,
    pykan_version,
    to_f64,
    torch_module,
    widest_float,
)
from lutkan.errors import CheckpointError, UnsupportedModelError
from lutkan.source import SourceLayer, SourceModel

STATE, CONFIG, CACHE = "_state", "_config.yml", "_cache_data"

# ----------------------------------------------------------------------------- locating checkpoints

_VERSION = re.compile(r"^\d+(\.\d+)*$")


def _version_key(cid: str):
    return tuple(int(p) for p in cid.split(".")) if _VERSION.match(cid) else None


def _checkpoint_ids(folder: Path) -> list[str]:
    ids = set()
    for f in folder.iterdir():
        for suffix in (STATE, CONFIG):
            if f.name.endswith(suffix) and len(f.name) > len(suffix) and f.is_file():
                ids.add(f.name[: -len(suffix)])
    return sorted(ids, key=lambda c: (_version_key(c) is None, _version_key(c) or (), c))


def checkpoint_file(prefix: Path, suffix: str) -> Path:
    """The file ``<prefix><suffix>``, e.g. ``model/0.3`` + ``_state``."""
    return prefix.parent / (prefix.name + suffix)


def _resolve_id(p: Path, checkpoint_id) -> Path:
    cid = str(checkpoint_id)
    if not cid or "/" in cid or "\\" in cid or cid in (".", ".."):
        raise CheckpointError(f"checkpoint_id {cid!r} is not a checkpoint id such as '0.3'")
    if not p.is_dir():
        raise CheckpointError(f"{p}: checkpoint_id={cid!r} selects a checkpoint in a folder, but {p} is "
                              f"not a folder; pass the folder, or the prefix {p}/{cid} without checkpoint_id")
    prefix = p / cid
    if not (checkpoint_file(prefix, STATE).exists() or checkpoint_file(prefix, CONFIG).exists()):
        ids = _checkpoint_ids(p)
        raise CheckpointError(f"{p}: no checkpoint {cid!r} (no {cid}{STATE} / {cid}{CONFIG}); "
                              f"available: {', '.join(ids) if ids else 'none'}")
    return prefix.resolve()


def _resolve_latest(p: Path) -> tuple[Path, str]:
    ids = _checkpoint_ids(p)
    if not ids:
        raise CheckpointError(f"{p}: the folder holds no pykan checkpoint (no *{STATE} or *{CONFIG} "
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


def resolve_source(source, checkpoint_id) -> tuple[Path, str | None]:
    """The checkpoint prefix a path names, and the warning to give (or None).

    Args:
        source: a prefix ``DIR/ID``, one of its files, or a folder of checkpoints.
        checkpoint_id: the id to take from the folder ``source``, or None.

    Returns:
        (resolved prefix, message): for a folder without ``checkpoint_id`` the latest id in numeric
        version order (``0.10 > 0.9``) and a message naming it; otherwise the message is None.

    Raises:
        CheckpointError: no checkpoint there, a bad ``checkpoint_id``, or no way to tell the latest.
    """
    p = Path(os.fspath(source)).expanduser()
    if checkpoint_id is not None:
        return _resolve_id(p, checkpoint_id), None
    if p.is_dir():
        return _resolve_latest(p)
    if p.is_file():
        for suffix in (STATE, CONFIG, CACHE):
            if p.name.endswith(suffix) and len(p.name) > len(suffix):
                p = p.parent / p.name[: -len(suffix)]
                break
    if not (checkpoint_file(p, STATE).exists() or checkpoint_file(p, CONFIG).exists()):
        raise CheckpointError(f"no pykan checkpoint at {p}: expected {p}{STATE} and {p}{CONFIG} "
                              f"(written by pykan's saveckpt), or a folder of checkpoints")
    return p.resolve(), None


# ----------------------------------------------------------------------------- safe torch.load


def _torch_load(data: bytes, path: Path, what: str):
    """``torch.load`` of ``data`` on CPU with ``weights_only=True``; CheckpointError naming ``path``."""
    torch = torch_module()
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
    except Exception as e:  # noqa: BLE001 - corrupt zip, truncated file, wrong format: torch raises many types
        raise CheckpointError(f"{path}: cannot read the {what} file as a torch.save file: "
                              f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None


# ----------------------------------------------------------------------------- reading a checkpoint


@dataclass
class Checkpoint:
    """A checkpoint read and checked: the raw config/state/cache and the layers built from them."""

    prefix: Path
    config: dict
    state: dict
    cache: Any
    spec: ModelSpec
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


def _read_files(prefix: Path, cache_data: bool, max_bytes) -> tuple[dict[str, Path], dict[str, bytes], str | None]:
    """The three paths by suffix, the bytes of those present and needed (state and config must be; cache_data
    only if ``cache_data``), and the cache file's SHA-256 (streamed when it is not read), or None."""
    paths = {s: checkpoint_file(prefix, s) for s in (STATE, CONFIG, CACHE)}
    for s, what in ((CONFIG, "config"), (STATE, "state")):
        if not paths[s].is_file():
            present = [p.name for p in paths.values() if p.is_file()]
            raise CheckpointError(
                f"{prefix}: the checkpoint's {what} file {paths[s].name} is missing (found: "
                f"{', '.join(present) or 'nothing'}); pykan's saveckpt writes {prefix.name}{STATE}, "
                f"{prefix.name}{CONFIG} and {prefix.name}{CACHE} together: copy all three")
    blobs, cache_sha = {}, None
    for s, p in paths.items():
        if s == CACHE and not p.is_file():
            continue
        try:
            if s == CACHE and not cache_data:
                cache_sha = _file_sha256(p)
                continue
            budget.check(p.stat().st_size, "reading the file", limit=max_bytes, error=CheckpointError, where=str(p))
            blobs[s] = p.read_bytes()
        except OSError as e:
            raise CheckpointError(f"{p}: cannot read: {e.strerror or e}") from None
    if CACHE in blobs:
        cache_sha = _sha256(blobs[CACHE])
    return paths, blobs, cache_sha


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _load_state(data: bytes, path: Path, max_bytes) -> dict:
    check_torch_file(data, path, "state", max_bytes)
    state = _torch_load(data, path, "state")
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise CheckpointError(f"{path}: not a pykan state_dict (expected a dict of named tensors, "
                              f"got {type(state).__name__})")
    bad = [k for k, v in state.items() if not isinstance(v, torch_module().Tensor)]
    if bad:
        raise CheckpointError(f"{path}: entries {bad[:5]} are not tensors; not a pykan state_dict")
    check_tensor_bytes(state, path, max_bytes)
    return state


def _load_cache(data: bytes, path: Path, max_bytes):
    """The cache_data tensor, or None (with a warning) when it is not a 2-D real tensor."""
    check_torch_file(data, path, "cache_data", max_bytes)
    cache = _torch_load(data, path, "cache_data")
    if cache is not None and not (isinstance(cache, torch_module().Tensor) and cache.ndim == 2
                                  and not cache.is_complex()):
        warnings.warn(f"{path}: cache_data is not a 2-D real tensor "
                      f"({type(cache).__name__} {tuple(getattr(cache, 'shape', ()))}); ignored",
                      stacklevel=4)  # here -> read_checkpoint -> load_source/build_pykan_model -> user
        cache = None
    if cache is not None:
        check_tensor_bytes({"cache_data": cache}, path, max_bytes)
    return cache


def _config_width(cfg: dict, path: Path) -> list[list[int]]:
    if "width" not in cfg:
        raise CheckpointError(f"{path}: no 'width' key; not a pykan saveckpt config "
                              f"(keys: {sorted(map(str, cfg))[:10]})")
    return parse_width(cfg["width"], CheckpointError, str(path))


def _config_spec(cfg: dict, path: Path, width) -> tuple[ModelSpec, list[int] | None, list[int] | None]:
    """The structure the config states (``width`` already checked against the state), and its per-layer k and
    grid (None when absent)."""
    depth = len(width) - 1
    groups = mult_groups(width, cfg.get("mult_arity", 2), CheckpointError, str(path))
    ks = per_layer(cfg.get("k"), depth, "k", CheckpointError, str(path))
    gs = per_layer(cfg.get("grid"), depth, "grid", CheckpointError, str(path))
    base_fun = cfg.get("base_fun_name", "silu")
    if base_fun not in BASE_FUNS:
        raise UnsupportedModelError(f"{path}: base_fun_name {base_fun!r} is not supported; pykan's "
                                    f"MultKAN accepts silu, identity or zero")
    sym_enabled = cfg.get("symbolic_enabled", True)
    if not isinstance(sym_enabled, bool):
        raise CheckpointError(f"{path}: symbolic_enabled must be true/false, got {sym_enabled!r}")
    return ModelSpec(width=width, groups=groups, base_fun=base_fun, symbolic_enabled=sym_enabled), ks, gs


def _check_state_keys(state: dict, width, state_path: Path, cfg_path: Path) -> None:
    depth = len(width) - 1
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
                              f"{fmt_width(width)} in {cfg_path.name}; the config and state do not match")


def _read_layers(state: dict, cfg: dict, spec: ModelSpec, ks, gs, state_path: Path, cfg_path: Path):
    """(layers, k per layer, G per layer) built from the state tensors, checked against the config."""
    layers, kl, gl = [], [], []
    for l in range(len(spec.width) - 1):
        src = {"grid": f"act_fun.{l}.grid", "coef": f"act_fun.{l}.coef", "scale_base": f"act_fun.{l}.scale_base",
               "scale_sp": f"act_fun.{l}.scale_sp", "mask": f"act_fun.{l}.mask",
               "sym_mask": f"symbolic_fun.{l}.mask", "sym_affine": f"symbolic_fun.{l}.affine",
               "subnode_scale": f"subnode_scale_{l}", "subnode_bias": f"subnode_bias_{l}",
               "node_scale": f"node_scale_{l}", "node_bias": f"node_bias_{l}"}
        try:
            arrs = {f: to_f64(state[key]) for f, key in src.items()}
        except UnsupportedModelError as e:
            raise CheckpointError(f"{state_path}: layer {l}: {e}") from None
        label = {f: f"{state_path.name}: {key}" for f, key in src.items()}
        label["names"] = f"{cfg_path.name}: symbolic.funs_name.{l}"
        names = cfg.get(f"symbolic.funs_name.{l}")
        layer, k, G = assemble_layer(l, arrs, names, None if ks is None else ks[l],
                                     None if gs is None else gs[l], spec.width, spec.groups, CheckpointError,
                                     label)
        layers.append(layer)
        kl.append(k)
        gl.append(G)
    return layers, kl, gl


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _provenance(prefix: Path, blobs: dict[str, bytes], cache_sha: str | None, state: dict, cfg: dict, width) -> dict:
    """The JSON-able provenance: file hashes, dtypes, the device the config names, the width."""
    dtypes = sorted({dtype_name(v.dtype) for v in state.values()})
    prov = {
        "pykan_version": pykan_version(),
        "source": str(prefix),
        "checkpoint_id": prefix.name,
        "state_sha256": _sha256(blobs[STATE]),
        "config_sha256": _sha256(blobs[CONFIG]),
        "cache_data_sha256": cache_sha,
        "state_dtype": widest_float(v.dtype for v in state.values()),
        "device": None if cfg.get("device") is None else str(cfg.get("device")),
        "width": [list(w) for w in width],
    }
    if len(dtypes) > 1:
        prov["state_dtypes"] = dtypes
    return prov


def read_checkpoint(prefix: Path, *, cache_data: bool = True, max_bytes: int | None = None) -> Checkpoint:
    """Read and check the checkpoint at ``prefix`` (from :func:`resolve_source`); ``cache_data=False`` leaves the
    cache file unread (only hashed); every file and tensor is checked against the resource budget
    (``lutkan.budget``, ``max_bytes``) before it is read or copied.

    Raises:
        CheckpointError: a missing or unreadable file, a refused pickle or YAML tag, or a config that
            does not match the state (naming the file, tensor and layer).
        UnsupportedModelError: an unknown base_fun or symbolic function, or a multiplication arity < 2.
    """
    torch_module()  # without torch, fail before touching any file
    paths, blobs, cache_sha = _read_files(prefix, cache_data, max_bytes)
    cfg_path, state_path, cache_path = paths[CONFIG], paths[STATE], paths[CACHE]
    cfg = parse_config(blobs[CONFIG], cfg_path)
    state = _load_state(blobs[STATE], state_path, max_bytes)
    cache = _load_cache(blobs[CACHE], cache_path, max_bytes) if CACHE in blobs else None
    width = _config_width(cfg, cfg_path)
    _check_state_keys(state, width, state_path, cfg_path)
    check_mult_width(width, {k: tuple(v.shape) for k, v in state.items() if k.startswith("node_bias_")},
                     CheckpointError, str(cfg_path), state_path.name)
    spec, ks, gs = _config_spec(cfg, cfg_path, width)
    layers, kl, gl = _read_layers(state, cfg, spec, ks, gs, state_path, cfg_path)
    return Checkpoint(prefix=prefix, config=cfg, state=state, cache=cache, spec=spec, layers=layers,
                      ks=kl, grids=gl, provenance=_provenance(prefix, blobs, cache_sha, state, cfg, spec.width))


# ----------------------------------------------------------------------------- to a SourceModel


def cache_width_note(ck: Checkpoint, stacklevel: int) -> str | None:
    """Warn (and return the note) when cache_data does not have width_in[0] columns."""
    n_inputs = width_in(ck.spec.width)[0]
    if ck.cache is None or ck.cache.shape[1] == n_inputs:
        return None
    note = (f"cache_data has {ck.cache.shape[1]} columns but the model takes {n_inputs} inputs: the "
            f"checkpoint was probably saved right after prune_input, and checkpoints do not record "
            f"input_id, so which columns the model uses is unknown (pykan's loadckpt silently uses the "
            f"first {n_inputs}); pass your own inputs")
    warnings.warn(f"{ck.prefix}: {note}", stacklevel=stacklevel + 1)
    return note


def checkpoint_source(ck: Checkpoint) -> SourceModel:
    """The SourceModel of a checkpoint: ``input_id`` is ``arange(width_in[0])`` (checkpoints lose it)."""
    n_inputs = width_in(ck.spec.width)[0]
    cache = None if ck.cache is None else to_f64(ck.cache)
    prov = dict(ck.provenance)
    note = cache_width_note(ck, stacklevel=3)  # user -> load_source -> here
    if note:
        prov["cache_data_note"] = note
    return SourceModel(layers=tuple(ck.layers), input_id=np.arange(n_inputs, dtype=np.int64), n_inputs=n_inputs,
                       base_fun=ck.spec.base_fun, symbolic_enabled=ck.spec.symbolic_enabled, provenance=prov,
                       cache_data=cache)
