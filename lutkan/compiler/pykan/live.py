"""A live ``kan.MultKAN`` (also one wrapped by ``torch.compile``) -> :class:`~lutkan.source.SourceModel`.

The model's tensors are copied to float64 NumPy and checked with :mod:`.spec` like a checkpoint's. What
only a live model can get wrong is checked here: ``base_fun`` must behave as silu, identity or zero
(probed, not trusted by name), and every active symbolic edge must really run pykan's
``SYMBOLIC_LIB`` function of its name. ``input_id`` and ``cache_data`` are kept (a checkpoint loses
``input_id``) and the provenance records a SHA-256 of the state_dict contents.
"""

from __future__ import annotations

import hashlib
import sys
import warnings

import numpy as np

from lutkan.compiler.pykan.spec import assemble_layer, mult_groups, parse_width
from lutkan.compiler.pykan.tensors import dtype_name, pykan_version, to_f64, torch_module, widest_float
from lutkan.errors import UnsupportedModelError
from lutkan.source import SourceLayer, SourceModel, silu
from lutkan.symbolic import SYMBOLIC_FUNS

_WHERE = "live model"
_PROBE = (-6.0, -2.5, -1.0, -0.3, 0.0, 0.2, 0.9, 1.7, 3.1, 8.0)


def _multkan_class():
    mod = sys.modules.get("kan.MultKAN")
    return getattr(mod, "MultKAN", None) if mod is not None else None


def as_live(source):
    """The MultKAN behind ``source`` (unwrapping torch.compile), or None.

    Never imports pykan: a MultKAN can only exist once ``kan.MultKAN`` has been imported.
    """
    cls = _multkan_class()
    if cls is None:
        return None
    if isinstance(source, cls):
        return source
    inner = getattr(source, "_orig_mod", None)  # model.speed(compile=True)
    if inner is not None and isinstance(inner, cls):
        return inner
    return None


# ----------------------------------------------------------------------------- live-only checks


def _classify_base_fun(f) -> str | None:
    torch = torch_module()
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
    except Exception:  # noqa: BLE001 - an arbitrary user callable: failing to probe it means "unknown"
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
    torch = torch_module()
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
        except Exception:  # noqa: BLE001 - an arbitrary user callable: any failure means "not that function"
            ok = False
        if not ok:
            raise UnsupportedModelError(
                f"live model: layer {l}, edge ({i}, {j}) is named {name!r} but its function is not pykan's "
                f"SYMBOLIC_LIB[{name!r}]; set it with fix_symbolic({l}, {i}, {j}, {name!r})")


# ----------------------------------------------------------------------------- reading the model


def _live_structure(model) -> tuple[list[list[int]], list[tuple[int, ...]]]:
    """(width, mult groups), checked against the number of layers the model holds."""
    depth = len(model.act_fun)
    width = parse_width(model.width, UnsupportedModelError, _WHERE)
    if len(width) != depth + 1 or len(model.symbolic_fun) != depth:
        raise UnsupportedModelError(f"{_WHERE}: width {model.width} has {len(width) - 1} layers but the model "
                                    f"has {depth} act_fun and {len(model.symbolic_fun)} symbolic_fun layers")
    for attr in ("node_scale", "node_bias", "subnode_scale", "subnode_bias"):
        if len(getattr(model, attr)) != depth:
            raise UnsupportedModelError(f"{_WHERE}: model.{attr} has {len(getattr(model, attr))} entries for "
                                        f"{depth} layers")
    return width, mult_groups(width, model.mult_arity, UnsupportedModelError, _WHERE)


def _live_layer(model, l: int, width, groups) -> tuple[SourceLayer, set]:
    """Layer ``l`` as float64 arrays, and the dtypes of its tensors."""
    af, sf = model.act_fun[l], model.symbolic_fun[l]
    tens = {"grid": af.grid, "coef": af.coef, "scale_base": af.scale_base, "scale_sp": af.scale_sp,
            "mask": af.mask, "sym_mask": sf.mask, "sym_affine": sf.affine,
            "subnode_scale": model.subnode_scale[l], "subnode_bias": model.subnode_bias[l],
            "node_scale": model.node_scale[l], "node_bias": model.node_bias[l]}
    arrs = {f: to_f64(t) for f, t in tens.items()}
    label = {"grid": f"act_fun[{l}].grid", "coef": f"act_fun[{l}].coef",
             "scale_base": f"act_fun[{l}].scale_base", "scale_sp": f"act_fun[{l}].scale_sp",
             "mask": f"act_fun[{l}].mask", "sym_mask": f"symbolic_fun[{l}].mask",
             "sym_affine": f"symbolic_fun[{l}].affine", "subnode_scale": f"subnode_scale[{l}]",
             "subnode_bias": f"subnode_bias[{l}]", "node_scale": f"node_scale[{l}]",
             "node_bias": f"node_bias[{l}]", "names": f"symbolic_fun[{l}].funs_name"}
    label = {f: f"{_WHERE}: {v}" for f, v in label.items()}
    layer, _, _ = assemble_layer(l, arrs, sf.funs_name, int(af.k), None, width, groups,
                                 UnsupportedModelError, label)
    return layer, {t.dtype for t in tens.values()}


def _live_inputs(model):
    """(input_id, n_inputs, cache_data in the model's input space or None, provenance notes).

    pykan caches ``x[:, input_id]`` after a gather; those columns are put back where they came from.
    A cache_data that fits neither space is ignored with a warning.
    """
    input_id = np.asarray(model.input_id.detach().cpu().numpy() if hasattr(model.input_id, "detach")
                          else model.input_id, dtype=np.int64).reshape(-1)
    nid = len(input_id)
    need = int(input_id.max()) + 1 if nid else 0
    n_inputs = need
    cache = None
    notes = {}
    raw = getattr(model, "cache_data", None)
    if raw is not None and hasattr(raw, "detach") and raw.ndim == 2:
        c = to_f64(raw)
        w = c.shape[1]
        identity = np.array_equal(input_id, np.arange(nid))
        gathered = w == nid and not identity and (w < need or getattr(model, "acts", None) is not None)
        if gathered:
            cache = np.zeros((c.shape[0], need))
            cache[:, input_id] = c
            notes["cache_data_note"] = (f"model.cache_data holds the {nid} selected columns "
                                        f"(input_id {input_id.tolist()}); the other columns are 0")
        elif w >= need:
            cache, n_inputs = c, max(need, w)
        else:
            warnings.warn(f"live model: cache_data has {w} columns, which fits neither the {nid} selected "
                          f"inputs nor input_id {input_id.tolist()}; ignored",
                          stacklevel=4)  # here -> live_source -> load_source -> user
    return input_id, n_inputs, cache, notes


def _live_state_sha256(model) -> str:
    """SHA-256 of the live state_dict contents (names, dtypes, shapes, raw bytes) in key order."""
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        t = v.detach().cpu().contiguous()
        h.update(f"{k}|{dtype_name(t.dtype)}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch_module().uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _live_provenance(model, dtypes: set, width, notes: dict) -> dict:
    prov = {
        "pykan_version": pykan_version(),
        "source": "live",
        "checkpoint_id": None,
        "state_sha256": _live_state_sha256(model),
        "config_sha256": None,
        "cache_data_sha256": None,
        "state_dtype": widest_float(dtypes),
        "device": str(getattr(model, "device", model.act_fun[0].coef.device)),
        "width": [list(w) for w in width],
        **notes,
    }
    if len({dtype_name(d) for d in dtypes}) > 1:
        prov["state_dtypes"] = sorted({dtype_name(d) for d in dtypes})
    return prov


def live_source(model) -> SourceModel:
    """The SourceModel of a live MultKAN (unwrapped by :func:`as_live`).

    Raises:
        UnsupportedModelError: inconsistent layer lists, an unsupported base_fun, a symbolic edge whose
            function is not pykan's of its name, or any check of :func:`.spec.assemble_layer`.
    """
    width, groups = _live_structure(model)
    base_fun = _live_base_fun(model)
    sym_enabled = bool(model.symbolic_enabled)
    layers, dtypes = [], set()
    for l in range(len(width) - 1):
        layer, layer_dtypes = _live_layer(model, l, width, groups)
        dtypes |= layer_dtypes
        if sym_enabled:
            _check_live_symbolic(model, l, layer)
        layers.append(layer)
    input_id, n_inputs, cache, notes = _live_inputs(model)
    return SourceModel(layers=tuple(layers), input_id=input_id, n_inputs=n_inputs, base_fun=base_fun,
                       symbolic_enabled=sym_enabled, provenance=_live_provenance(model, dtypes, width, notes),
                       cache_data=cache)
