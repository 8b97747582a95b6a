"""Lower a compiled ``LUTModel`` to an ``onnx.ModelProto`` in one of three forms.

``export(model, form="function", **options)``; ``FORMS`` maps each form to its builder
(``build_*(model, options) -> onnx.ModelProto``), ``FORM_OPTIONS`` to its legal options:

* ``function`` (default): one ``lutkan.LUTKanEdge`` node per layer + a model-local FunctionProto made of
  standard ops. Runs in plain onnxruntime; the plugin's kernel replaces the body when registered.
* ``standard``: the same graph inlined, default ONNX domain only.
* ``custom``: bare ``LUTKanEdge`` nodes (needs the plugin or the ``onnx.reference`` OpRun).

Every form pins opset 21 / IR 10 (``_versions``), names the batch dimension ``batch``, stores tables in
their compiled dtype and carries ``lutkan.*`` metadata. ``save_onnx`` writes a ModelProto to disk.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx

from lutkan import budget
from lutkan.artifact import LUTModel
from lutkan.errors import ExportError
from lutkan.exporter import custom_form, function_form, standard_form
from lutkan.exporter.custom_form import build_custom_model
from lutkan.exporter.function_form import build_function_model
from lutkan.exporter.standard_form import build_standard_model
from lutkan.tables import layout_bytes

__all__ = ["FORMS", "FORM_OPTIONS", "PROTOBUF_LIMIT", "export", "save_onnx"]

PROTOBUF_LIMIT = (2 << 30) - 1
"""Largest serialized ModelProto protobuf can write (2 GiB - 1): the tables of one self-contained file."""

FORMS = {"function": build_function_model, "standard": build_standard_model, "custom": build_custom_model}
FORM_OPTIONS = {
    "function": (function_form.OPTIONS, function_form.DEFAULTS),
    "standard": (standard_form.OPTIONS, standard_form.DEFAULTS),
    "custom": (custom_form.OPTIONS, custom_form.DEFAULTS),
}


def export(model: LUTModel, form: str = "function", *, max_bytes: int | None = None, **options) -> onnx.ModelProto:
    """Lower ``model`` to ONNX.

    Args:
        model: a compiled ``LUTModel``.
        form: ``function`` (default), ``standard`` or ``custom``.
        max_bytes: the resource budget (``lutkan.budget``) the dense initializers and their copies (protobuf
            tensors, serialization, shape inference) are checked against before they are built.
        **options: form options (``FORM_OPTIONS``; none of the forms takes any today).

    Raises:
        ExportError: unknown form, unknown option or illegal option value (the message lists the legal ones);
            tables beyond protobuf's 2 GiB or the resource budget.
    """
    if not isinstance(model, LUTModel):
        raise ExportError(f"export() needs a compiled LUTModel, got {type(model).__name__}; "
                          f"compile it with lutkan.compile_model first")
    if form not in FORMS:
        raise ExportError(f"form={form!r} is not supported; choose one of {', '.join(FORMS)}")
    legal, defaults = FORM_OPTIONS[form]
    for key, value in options.items():
        if key not in legal:
            known = ", ".join(legal) if legal else "none"
            raise ExportError(f"option {key!r} is not supported by form {form!r} (options: {known})")
        if value not in legal[key]:
            raise ExportError(f"{key}={value!r} is not supported by form {form!r}; choose one of "
                              f"{', '.join(map(str, legal[key]))}")
    _check_size(model, max_bytes)
    return FORMS[form](model, {**defaults, **options})


def _check_size(model: LUTModel, max_bytes: int | None) -> None:
    """Refuse, before building anything, tables that protobuf cannot serialize or the budget does not allow."""
    itemsize = np.dtype(model.layers[0].table.dtype).itemsize
    n_scale = {"int8": 1, "uint8": 2}.get(model.contract.scheme, 0)
    L = model.contract.L
    stored = sum(layer.in_dim * layer.n_segments * layer.out_dim * (L * itemsize + 4 * n_scale)
                 for layer in model.layers)
    if stored > PROTOBUF_LIMIT:
        raise ExportError(f"the model's dense tables take {budget.fmt_bytes(stored)} as ONNX initializers, over "
                          f"protobuf's 2 GiB limit for one file; compile with a smaller L or an 8-bit scheme")
    budget.check(layout_bytes(model, extra_per_cell=4 * itemsize), f"exporting the model {model.width} (dense "
                 f"initializers and their serialized copies)", limit=max_bytes, error=ExportError)


def save_onnx(model_proto: onnx.ModelProto, path: str | os.PathLike) -> Path:
    """Write ``model_proto`` to ``path`` atomically (tables stay inline: one self-contained file)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(model_proto.SerializeToString())
    except ValueError as e:  # protobuf's 2 GiB limit
        raise ExportError(f"cannot serialize the model to {path}: {e}") from None
    except OSError as e:
        raise ExportError(f"cannot write {path}: {e.strerror or e}") from None
    tmp.replace(path)
    return path
