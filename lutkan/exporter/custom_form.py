"""``custom`` form: bare ``lutkan.LUTKanEdge`` nodes, no function body.

Graph: as the function form (``x -> kan0: LUTKanEdge -> ... -> y``) but without the FunctionProto, so
it runs only where a ``lutkan::LUTKanEdge`` kernel is registered: the onnxruntime plugin
(``lutkan.runtime_ext``) or ``onnx.reference.ReferenceEvaluator(model, new_ops=list(OPS))`` with
``lutkan.custom_ops.reference_op.LUTKanEdge``. Plain onnxruntime rejects it ("not a registered
function/op"), which is expected. Intermediate shapes are declared explicitly (no inference through
an unknown op).
"""

from __future__ import annotations

import onnx
from onnx import helper

from lutkan.artifact import LUTModel
from lutkan.custom_ops.schema import DOMAIN
from lutkan.exporter._graph import build_model
from lutkan.exporter._versions import DOMAIN_VERSION, TARGET_OPSET
from lutkan.exporter.function_form import op_node

OPTIONS: dict[str, tuple] = {}
DEFAULTS: dict[str, object] = {}


def build_custom_model(model: LUTModel, options: dict) -> onnx.ModelProto:
    """Build the ``custom`` form (no options)."""
    return build_model(
        model, form="custom", edge_nodes=lambda l, names, out: [op_node(model, l, names, out)], symbolic_as_op=True,
        opset_imports=[helper.make_opsetid("", TARGET_OPSET), helper.make_opsetid(DOMAIN, DOMAIN_VERSION)])
