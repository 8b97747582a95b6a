"""Read a trained PyKAN 0.2.8 model (live object or ``saveckpt`` checkpoint) into a ``SourceModel``.

Data flow (modules of this package)::

    path --checkpoint.resolve_source--> prefix DIR/ID (a folder: its latest id, with a warning)
         --checkpoint.read_checkpoint--> Checkpoint, reading
               ID_config.yml              with safe_yaml.parse_config (restricted YAML)
               ID_state, ID_cache_data    with torch.load(weights_only=True, map_location="cpu")
               and checking them          with spec (width, mult groups, per-layer k/G, shapes, names)
         --checkpoint.checkpoint_source--> SourceModel
    kan.MultKAN --live.live_source (spec + base_fun and symbolic probes)--> SourceModel
    path --forward.build_pykan_model (read_checkpoint, then MultKAN)--> kan.MultKAN
    kan.MultKAN --forward.pykan_forward--> float64 outputs (pykan's own forward)

tensors holds the torch-side helpers (lazy torch import, tensor -> float64 NumPy, dtype names).

Public functions:

* :func:`load_source` turns a live ``kan.MultKAN`` or a checkpoint (prefix ``DIR/ID`` or a folder of
  checkpoints) into a torch-free :class:`lutkan.source.SourceModel` of float64 NumPy arrays. It does
  not build a pykan model for a checkpoint: the files are read directly.
* :func:`build_pykan_model` returns a live pykan model equal to the source, to run pykan's own forward.
* :func:`pykan_forward` runs that forward under ``torch.no_grad()`` without lasting side effects.
* :func:`read_checkpoint_config` reads one ``*_config.yml`` with the restricted loader.

Checkpoints are untrusted input: tensors are read with ``torch.load(..., map_location="cpu",
weights_only=True)``, the YAML config with the restricted loader of :mod:`.safe_yaml` (NumPy scalars,
tuples and pykan's base_fun objects only; every other ``!!python/...`` tag is refused with
:class:`~lutkan.errors.CheckpointError`). Nothing is written to disk, nothing is printed, and the
global torch/NumPy/``random`` RNG states are restored after pykan's constructor reseeds them.
Importing this package imports neither torch nor pykan; they are imported when a function needs them.
"""

from __future__ import annotations

import os
import warnings

from lutkan.compiler.pykan.checkpoint import checkpoint_source, read_checkpoint, resolve_source
from lutkan.compiler.pykan.forward import build_pykan_model, pykan_forward
from lutkan.compiler.pykan.live import as_live, live_source
from lutkan.compiler.pykan.safe_yaml import read_checkpoint_config
from lutkan.errors import CheckpointError, UnsupportedModelError
from lutkan.source import SourceModel

__all__ = ["load_source", "build_pykan_model", "pykan_forward", "read_checkpoint_config"]


def load_source(source, *, checkpoint_id: str | None = None, cache_data: bool = True,
                max_bytes: int | None = None) -> SourceModel:
    """Read a trained pykan model into a torch-free float64 :class:`SourceModel`.

    Args:
        source: a live ``kan.MultKAN``/``kan.KAN`` (also one wrapped by ``torch.compile``), a
            :class:`SourceModel` (returned as is), or a path: a checkpoint prefix ``DIR/ID`` (files
            ``ID_state``, ``ID_config.yml`` and optionally ``ID_cache_data``, as written by
            ``saveckpt``; one of those files may be given instead), or a folder of checkpoints. For a
            folder the latest id in numeric version order is used (``0.10 > 0.9``, ``1.6 > 0.6``) and a
            ``UserWarning`` names it, unless ``checkpoint_id`` selects one.
        checkpoint_id: the checkpoint id (e.g. ``"0.3"``) to read from the folder ``source``.
        cache_data: read a checkpoint's ``ID_cache_data`` (default); False leaves it unread (only its SHA-256 is
            recorded) and ``cache_data`` None: ``compile_model`` does not need it. A live model keeps its own.
        max_bytes: the resource budget (``lutkan.budget``; default ``LUTKAN_MAX_BYTES`` or 4 GiB) that file sizes,
            zip records and the float64 copies of the tensors (stride-0 ``expand`` ones included) are checked
            against before anything is read or copied.

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
            with non-tensor objects, legacy non-zip torch files, YAML with python tags other than numpy scalars
            and pykan's base_fun objects), a config that does not match the state (naming file, tensor, layer),
            or a file/tensor beyond the resource budget.
        UnsupportedModelError: not a pykan model; unknown base_fun or symbolic function (naming the
            layer and edge); multiplication arity < 2.

    Loading has no side effects: no files are written, nothing is printed, no model is constructed.
    """
    if isinstance(source, SourceModel):
        if checkpoint_id is not None:
            raise CheckpointError("checkpoint_id applies to a folder of checkpoints, not to a SourceModel")
        return source
    live = as_live(source)
    if live is not None:
        if checkpoint_id is not None:
            raise CheckpointError("checkpoint_id applies to a folder of checkpoints, not to a live model")
        return live_source(live)
    if not isinstance(source, (str, os.PathLike)):
        raise UnsupportedModelError(f"{type(source).__module__}.{type(source).__qualname__} is not a pykan "
                                    f"model: pass a kan.MultKAN, a checkpoint prefix such as model/0.3, or "
                                    f"a folder of checkpoints")
    prefix, msg = resolve_source(source, checkpoint_id)
    if msg:
        warnings.warn(msg, stacklevel=2)
    return checkpoint_source(read_checkpoint(prefix, cache_data=cache_data, max_bytes=max_bytes))
