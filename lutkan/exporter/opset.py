"""An exported file at another default-domain opset: ``convert_opset(proto, N)`` (``lutkan export --opset N``).

``onnx.version_converter`` drops model-local functions (the ``function`` form's bodies) and has no
down-adapters for the ops whose newer versions only added types (ConstantOfShape 20/21, IsNaN 20, Cast, Shape,
Reshape, Squeeze, Unsqueeze, Pad, Constant 21, Equal 19...). So:

1. a model with functions is inlined first (``onnx.inliner``): the result is the ``standard`` form (the
   ``lutkan.form`` metadata says so);
2. up (N > 21): ``onnx.version_converter.convert_version``;
3. down (N < 21): every default-domain node must mean the same at opset N (same inputs and outputs, N's
   attributes unchanged, none of the newer attributes set: the newer versions differ from N's in the types
   they admit), the opset is relabelled, and ``onnx.checker`` (full check: types against N's schemas) must pass.
   ReduceProd and Pad take their axes as an input from opset 18 on, so 18 is the lowest that works today.

The IR version becomes the one that introduced opset N (onnxruntime refuses IR versions newer than it knows),
``lutkan.*`` ``custom``-form nodes keep their own domain. The suite runs every converted opset in onnxruntime
against the NumPy reference (tests/test_portability.py).
"""

from __future__ import annotations

import onnx
import onnx.inliner
import onnx.version_converter
from onnx import defs, helper

from lutkan.errors import ExportError
from lutkan.exporter._versions import IR_VERSION, TARGET_OPSET

__all__ = ["MAX_OPSET", "MIN_OPSET", "convert_opset"]

MIN_OPSET = 18
"""Lowest opset ``convert_opset`` reaches on today's graphs (ReduceProd/Pad take axes as inputs from 18)."""
MAX_OPSET = defs.onnx_opset_version()
"""Newest opset the installed onnx knows."""


def _default_opset(proto: onnx.ModelProto) -> int:
    return next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))


def _io(schema) -> tuple:
    return (tuple((i.name, int(i.option)) for i in schema.inputs),
            tuple((o.name, int(o.option)) for o in schema.outputs))


def _attrs(schema) -> dict:
    return {n: (int(a.type), bool(a.required), a.default_value.SerializeToString())
            for n, a in schema.attributes.items()}


def _carries(node: onnx.NodeProto, old, new) -> bool:
    """Whether ``node`` (valid under schema ``new``) means the same under the older ``old``: identical inputs
    and outputs, every old attribute unchanged, and no attribute the newer version added set on the node (an
    added attribute's default is the old behaviour, ONNX's versioning rule, e.g. Cast 19's float8 ``saturate``)."""
    old_a, new_a = _attrs(old), _attrs(new)
    added = set(new_a) - set(old_a)
    return (_io(old) == _io(new) and all(new_a.get(n) == v for n, v in old_a.items())
            and not added & {a.name for a in node.attribute})


def _ir_for(opset: int) -> int:
    """The IR version of the onnx release that introduced ``opset`` (never above lutkan's own)."""
    irs = [row[1] for row in helper.VERSION_TABLE if row[2] == opset]
    return min(min(irs) if irs else IR_VERSION, IR_VERSION)


def _relabel_down(proto: onnx.ModelProto, current: int, target: int) -> None:
    for node in proto.graph.node:
        if node.domain not in ("", "ai.onnx"):
            continue
        new = defs.get_schema(node.op_type, current, "")
        try:
            old = defs.get_schema(node.op_type, target, "")
        except defs.SchemaError:
            raise ExportError(f"--opset {target}: {node.op_type} (node {node.name!r}) does not exist at opset "
                              f"{target}") from None
        if not _carries(node, old, new):
            raise ExportError(f"--opset {target}: {node.op_type} (node {node.name!r}) changed its inputs or "
                              f"attributes between opset {old.since_version} and {new.since_version}; the lowest "
                              f"opset lutkan can write is {MIN_OPSET}")
    for o in proto.opset_import:
        if o.domain in ("", "ai.onnx"):
            o.version = target


def convert_opset(proto: onnx.ModelProto, target: int) -> tuple[onnx.ModelProto, list[str]]:
    """``proto`` (any lutkan form) at default-domain opset ``target``, and notes on what changed.

    Raises:
        ExportError: ``target`` outside ``MIN_OPSET..MAX_OPSET``, an op that cannot be carried to it, or a
            result the ONNX checker refuses (the message names the op and the versions).
    """
    if isinstance(target, bool) or not isinstance(target, int) or not MIN_OPSET <= target <= MAX_OPSET:
        raise ExportError(f"--opset {target!r}: lutkan writes opsets {MIN_OPSET} to {MAX_OPSET} (default "
                          f"{TARGET_OPSET}; the installed onnx knows up to {MAX_OPSET})")
    current = _default_opset(proto)
    notes: list[str] = []
    if proto.functions:
        proto = onnx.inliner.inline_local_functions(proto)
        notes.append("model-local functions inlined (onnx.inliner): the file is the standard form; "
                     "the function form stays at opset 21")
        helper.set_model_props(proto, {**{p.key: p.value for p in proto.metadata_props}, "lutkan.form": "standard"})
    else:
        proto = onnx.ModelProto.FromString(proto.SerializeToString())
    if target > current:
        proto = onnx.version_converter.convert_version(proto, target)
    elif target < current:
        _relabel_down(proto, current, target)
    proto.ir_version = _ir_for(target)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise ExportError(f"--opset {target}: the converted model fails the ONNX checker: {e}") from None
    if target != current:
        notes.append(f"default-domain opset {current} -> {target}, IR version {proto.ir_version}")
    return proto, notes
