"""``function`` form (default): one ``lutkan.LUTKanEdge`` node per layer plus its model-local FunctionProto.

Graph: ``x -> [Gather input_id] -> kan0: LUTKanEdge -> [affine/mult ops] -> kan1: LUTKanEdge -> ... -> y``.
Inputs of each ``kan{l}`` node, in schema order: ``h``, ``kan{l}.knots``, ``kan{l}.bounds``,
``kan{l}.seg_scale``, ``kan{l}.base_weight``, ``kan{l}.edge_mask``, ``kan{l}.table`` (stored dtype),
``kan{l}.table_scale`` (int8/uint8), ``kan{l}.table_offset`` (uint8).

The FunctionProto (``lutkan.custom_ops.function_body``) is built from standard opset-21 ops only, so plain
onnxruntime, ``onnx.reference`` and ``onnx.inliner`` run the file; a registered ``lutkan::LUTKanEdge``
kernel (the onnxruntime plugin) takes precedence over the body.
"""

from __future__ import annotations

import onnx
from onnx import helper

from lutkan.artifact import LUTModel
from lutkan.custom_ops.function_body import BodySpec, build_function, search_steps
from lutkan.custom_ops.schema import DOMAIN, OP_TYPE, op_attributes
from lutkan.exporter._graph import build_model, node_inputs
from lutkan.exporter._versions import DOMAIN_VERSION, TARGET_OPSET

OPTIONS: dict[str, tuple] = {}
DEFAULTS: dict[str, object] = {}


def body_spec(model: LUTModel) -> BodySpec:
    """The BodySpec a model's LUTKanEdge nodes need: its contract, base function and table scheme, the search
    depth of its largest layer and, for ``poly``, the Bernstein degree."""
    c = model.contract
    return BodySpec(interp=c.interp, boundary=c.boundary, oob=c.oob, base_fun=model.base_fun, scheme=c.scheme,
                    n_steps=max(search_steps(layer.n_segments) for layer in model.layers),
                    degree=c.L - 1 if c.interp == "poly" else 0)


def op_node(model: LUTModel, l: int, names: dict[str, str | None], output: str) -> onnx.NodeProto:
    """The ``kan{l}`` LUTKanEdge node with every attribute set explicitly."""
    attrs = op_attributes(model.contract, model.base_fun)
    return helper.make_node(OP_TYPE, node_inputs(names), [output], name=f"kan{l}", domain=DOMAIN,
                            doc_string=f"KAN layer {l}: edge sums (steps 1-7 of docs/contract.md)", **attrs)


def function_model(model: LUTModel, spec: BodySpec) -> onnx.ModelProto:
    """The function-form model of ``model`` with the body described by ``spec``."""
    return build_model(
        model, form="function", edge_nodes=lambda l, names, out: [op_node(model, l, names, out)],
        opset_imports=[helper.make_opsetid("", TARGET_OPSET), helper.make_opsetid(DOMAIN, DOMAIN_VERSION)],
        functions=[build_function(spec, model.contract.L)])


def build_function_model(model: LUTModel, options: dict) -> onnx.ModelProto:
    """Build the ``function`` form (no options)."""
    return function_model(model, body_spec(model))
