"""``standard`` form: the function form with every LUTKanEdge body inlined; default domain only.

Graph: ``x -> [Gather input_id] -> kan0/...(body nodes) -> kan0.edges -> [affine/mult ops] -> ... -> y``.
The body nodes of layer ``l`` are those of ``lutkan.custom_ops.function_body`` with their values and
names prefixed ``kan{l}/``; the initializers are the same ``kan{l}.*`` tensors as in the function form
(int8/uint8 tables stay int8/uint8: the dequantization ops act on initializers only and onnxruntime
folds them when the session is created). For runtimes and tools without model-local functions.

Bounded memory: the bodies have no row chunks of their own; the whole network runs once on the first R rows and
in one ``Scan`` over row chunks past them, behind the model's single ``If`` (``lutkan.exporter._rows``; tract
cannot translate a model with two ``If`` nodes).
"""

from __future__ import annotations

from dataclasses import replace

import onnx
from onnx import helper

from lutkan.artifact import LUTModel
from lutkan.custom_ops.function_body import BodySpec, build_function, inline_body
from lutkan.exporter._graph import build_model
from lutkan.exporter._versions import TARGET_OPSET
from lutkan.exporter.function_form import DEFAULTS, OPTIONS, body_spec

__all__ = ["OPTIONS", "DEFAULTS", "build_standard_model", "standard_model"]


def standard_model(model: LUTModel, spec: BodySpec) -> onnx.ModelProto:
    """The standard-op model of ``model`` with the body described by ``spec`` (the function form's body
    instantiated once per layer)."""
    body = build_function(replace(spec, chunk_floats=None), model.contract.L)
    return build_model(model, form="standard",
                       edge_nodes=lambda l, names, out: inline_body(
                           body, {f: n for f, n in names.items() if n}, out, prefix=f"kan{l}/"),
                       opset_imports=[helper.make_opsetid("", TARGET_OPSET)], chunk_floats=spec.chunk_floats)


def build_standard_model(model: LUTModel, options: dict) -> onnx.ModelProto:
    """Build the ``standard`` form (no options)."""
    return standard_model(model, body_spec(model))
