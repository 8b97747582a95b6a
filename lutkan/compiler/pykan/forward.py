"""pykan's own forward, the model lutkan is checked against.

:func:`build_pykan_model` builds a live ``kan.MultKAN`` from a checkpoint after the same safe reading
as :func:`lutkan.compiler.pykan.load_source` (no ``./model`` folder is written, nothing is printed,
the global RNG states pykan's constructor reseeds are restored); :func:`pykan_forward` runs it under
``torch.no_grad()`` and puts back every attribute the forward overwrites.
"""

from __future__ import annotations

import copy
import os
import random
import warnings

import numpy as np

from lutkan.compiler.pykan.checkpoint import (
    STATE,
    Checkpoint,
    cache_width_note,
    checkpoint_file,
    read_checkpoint,
    resolve_source,
)
from lutkan.compiler.pykan.live import as_live
from lutkan.compiler.pykan.tensors import torch_module
from lutkan.errors import CheckpointError, InputError, UnsupportedModelError

_MISSING = object()

# Attributes MultKAN.forward assigns; pykan_forward puts them back afterwards.
_FORWARD_ATTRS = ("cache_data", "acts", "acts_premult", "spline_preacts", "spline_postsplines",
                  "spline_postacts", "acts_scale", "acts_scale_spline", "subnode_actscale", "edge_actscale")


class _RngGuard:
    """Save and restore the global torch / NumPy / ``random`` RNG states (pykan reseeds all three)."""

    def __enter__(self):
        torch = torch_module()
        self._torch = torch.random.get_rng_state()
        self._cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        self._np = np.random.get_state()
        self._py = random.getstate()
        return self

    def __exit__(self, *exc):
        torch = torch_module()
        torch.random.set_rng_state(self._torch)
        if self._cuda is not None:
            torch.cuda.set_rng_state_all(self._cuda)
        np.random.set_state(self._np)
        random.setstate(self._py)
        return False


def _construct(ck: Checkpoint):
    """An untrained ``MultKAN`` with the checkpoint's structure and (well-typed) config options, on CPU."""
    from kan.MultKAN import MultKAN

    cfg, spec = ck.config, ck.spec

    def opt(key, default, ok):
        v = cfg.get(key, default)
        return v if ok(v) else default

    num = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
    grid_arg = ck.grids[0] if len(set(ck.grids)) == 1 else list(ck.grids)
    k_arg = ck.ks[0] if len(set(ck.ks)) == 1 else list(ck.ks)
    mult_arity = cfg.get("mult_arity", 2)
    with _RngGuard():
        return MultKAN(
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


def _load_checkpoint_into(model, ck: Checkpoint) -> None:
    """Cast ``model`` to the state's dtype, load the state strictly, bind symbolic functions, set cache_data."""
    from kan.utils import SYMBOLIC_LIB

    dtype = ck.provenance["state_dtype"]
    if dtype in ("float64", "float16", "bfloat16"):
        # Module._apply casts in place; MultKAN.to() would treat a dtype as a device
        {"float64": model.double, "float16": model.half, "bfloat16": model.bfloat16}[dtype]()
    try:
        model.load_state_dict(ck.state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{checkpoint_file(ck.prefix, STATE)}: pykan refused the state: {e}") from None
    for l, layer in enumerate(ck.layers):
        sf = model.symbolic_fun[l]
        for j, row in enumerate(layer.sym_names):
            for i, name in enumerate(row):
                sf.funs_name[j][i] = name
                sf.funs[j][i] = SYMBOLIC_LIB[name][0]
                sf.funs_sympy[j][i] = SYMBOLIC_LIB[name][1]
                sf.funs_avoid_singularity[j][i] = SYMBOLIC_LIB[name][3]
    model.cache_data = ck.cache


def build_pykan_model(source, *, checkpoint_id: str | None = None):
    """A live pykan ``MultKAN`` equal to ``source``, for running pykan's own forward.

    Args:
        source: a live model (returned as is) or a checkpoint path / folder, as for
            :func:`lutkan.compiler.pykan.load_source`.
        checkpoint_id: the checkpoint id to use from a folder.

    Returns:
        ``kan.MultKAN`` built with ``auto_save=False`` on CPU, in float64 when the state holds float64
        tensors, with the state loaded strictly (after the same safe reading and checks as
        ``load_source``), pykan's symbolic functions bound by name from ``kan.utils.SYMBOLIC_LIB``
        and ``cache_data`` set. ``input_id`` is ``arange`` (checkpoints do not record it).

    Raises:
        CheckpointError, UnsupportedModelError: as ``load_source``.

    No ``./model`` folder is created, nothing is printed, and the global torch/NumPy/``random`` RNG
    states are restored after pykan's constructor reseeds them.
    """
    live = as_live(source)
    if live is not None:
        if checkpoint_id is not None:
            raise CheckpointError("checkpoint_id applies to a folder of checkpoints, not to a live model")
        return source
    if not isinstance(source, (str, os.PathLike)):
        raise UnsupportedModelError(f"{type(source).__module__}.{type(source).__qualname__} is not a pykan "
                                    f"model or checkpoint path")
    prefix, msg = resolve_source(source, checkpoint_id)
    if msg:
        warnings.warn(msg, stacklevel=2)
    ck = read_checkpoint(prefix)
    cache_width_note(ck, stacklevel=2)
    model = _construct(ck)
    _load_checkpoint_into(model, ck)
    return model


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
    torch = torch_module()
    m = as_live(model)
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
