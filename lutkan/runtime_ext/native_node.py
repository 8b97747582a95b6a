"""A ``LUTKanEdge`` node as onnxruntime shows it to a custom op's ``CreateKernelV2``, validated like a file.

``edge_kernel(api, info)`` reads the node through the C API (``ortabi``): its name, inputs and outputs, the
attributes of the schema (each tried as INT, STRING and FLOAT, so a wrong type is reported as such) and the
tensors of its constant inputs (``KernelInfoGetConstantInput_tensor``; an input that is computed, fed at run
time or an overridable initializer is not constant and is left out). It rebuilds the node and its
initializers as ONNX protos and hands them to ``lutkan.runtime_ext.graph._prepare_node``, the very checks
``make_session`` applies to a file (counts, attributes, dtypes, shapes, the values indices are derived
from), so a bad file gives the same ``OnnxModelError`` text, naming the node, before any array is used.
What the C API cannot show is not checked here: attributes outside the schema (they are ignored).

A node ``make_session`` prepared (``LUTKanEdge(X)`` with a ``kernel_key`` attribute) takes its already
validated tables from ``lutkan.runtime_ext.registry``.
"""

from __future__ import annotations

import ctypes
import math

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from lutkan.custom_ops.schema import ATTRIBUTES, DOMAIN, INPUTS, OP_TYPE
from lutkan.errors import OnnxModelError
from lutkan.runtime_ext import graph, registry
from lutkan.runtime_ext.ortabi import VP, Api

__all__ = ["edge_kernel"]

_NUMPY = {TensorProto.FLOAT: np.float32, TensorProto.UINT8: np.uint8, TensorProto.INT8: np.int8,
          TensorProto.UINT16: np.uint16, TensorProto.INT16: np.int16, TensorProto.INT32: np.int32,
          TensorProto.INT64: np.int64, TensorProto.BOOL: np.bool_, TensorProto.FLOAT16: np.float16,
          TensorProto.DOUBLE: np.float64, TensorProto.UINT32: np.uint32, TensorProto.UINT64: np.uint64}
"""Element types read from memory as is; others (strings, bfloat16, float8, complex, ...) are reported."""
_KEY = "kernel_key"


def edge_kernel(api: Api, info: int):
    """``(EdgeSumKernel, where)`` for the node behind ``info`` (an ``OrtKernelInfo*``).

    Raises ``OnnxModelError`` naming the node for anything the plugin would reject in a file.
    """
    from lutkan.evaluators.numba_eval import EdgeSumKernel

    name = api.string_out("KernelInfo_GetNodeName", info)
    inputs = [api.string_out("KernelInfo_GetInputName", info, i) for i in range(_count(api, info, "Input"))]
    outputs = [api.string_out("KernelInfo_GetOutputName", info, i) for i in range(_count(api, info, "Output"))]
    key = _attribute(api, info, _KEY)
    if key is not None and len(inputs) == 1:  # prepared by make_session
        k = key.s.decode("utf-8", "replace")
        entry = registry.get_kernel(k)
        if entry is None or entry.tables is None:
            raise OnnxModelError(f"LUTKanEdge node {name!r}: no prepared tables under kernel_key={k!r} (the graph "
                                 f"was not prepared by lutkan.runtime_ext.make_session in this process, or its "
                                 f"session was already created)")
        return EdgeSumKernel(entry.tables), entry.where
    where = f"LUTKanEdge node {name!r}" if name else f"LUTKanEdge node with output {outputs[:1]}"
    node = helper.make_node(OP_TYPE, inputs, outputs, name=name, domain=DOMAIN)
    for attr in [_attribute(api, info, a) for a in ATTRIBUTES] + [key]:
        if attr is not None:
            node.attribute.append(attr)
    scope = {}
    for i, input_name in enumerate(inputs[1:], start=1):
        if input_name and input_name not in scope:
            role = INPUTS[i] if i < len(INPUTS) else f"#{i}"
            value = _constant_input(api, info, i)
            if value is not None:
                scope[input_name] = numpy_helper.from_array(_read_tensor(api, value, where, role), input_name)
    tables, _, _, _ = graph._prepare_node(node, where, scope, set())
    return EdgeSumKernel(tables), where


def _count(api: Api, info: int, what: str) -> int:
    n = ctypes.c_size_t(0)
    api.call(f"KernelInfo_Get{what}Count", info, ctypes.byref(n))
    return int(n.value)


def _attribute(api: Api, info: int, name: str):
    """The node's attribute ``name`` as an AttributeProto (INT, STRING or FLOAT), or None if absent/other."""
    key = name.encode()
    i = ctypes.c_int64(0)
    status = api.raw("KernelInfoGetAttribute_int64", info, key, ctypes.byref(i))
    if not status:
        return helper.make_attribute(name, int(i.value))
    api.take_message(status)
    size = ctypes.c_size_t(0)
    status = api.raw("KernelInfoGetAttribute_string", info, key, None, ctypes.byref(size))
    if not status:
        buf = ctypes.create_string_buffer(max(size.value, 1))
        api.call("KernelInfoGetAttribute_string", info, key, buf, ctypes.byref(size))
        return helper.make_attribute(name, buf.raw[:max(size.value - 1, 0)])
    api.take_message(status)
    f = ctypes.c_float(0)
    status = api.raw("KernelInfoGetAttribute_float", info, key, ctypes.byref(f))
    if not status:
        return helper.make_attribute(name, float(f.value))
    api.take_message(status)
    return None


def _constant_input(api: Api, info: int, index: int) -> int | None:
    """The OrtValue* of input ``index`` if onnxruntime knows it as a constant (owned by onnxruntime)."""
    is_constant = ctypes.c_int(0)
    value = VP()
    api.call("KernelInfoGetConstantInput_tensor", info, index, ctypes.byref(is_constant), ctypes.byref(value))
    return value.value if is_constant.value and value.value else None


def _read_tensor(api: Api, value: int, where: str, role: str) -> np.ndarray:
    """A copy of the tensor ``value`` (type and shape checked before its memory is read)."""
    flag = ctypes.c_int(0)
    api.call("IsTensor", value, ctypes.byref(flag))
    if not flag.value:
        raise OnnxModelError(f"{where}: input {role} is not a tensor")
    info = VP()
    api.call("GetTensorTypeAndShape", value, ctypes.byref(info))
    try:
        elem = ctypes.c_int(0)
        api.call("GetTensorElementType", info, ctypes.byref(elem))
        nd = ctypes.c_size_t(0)
        api.call("GetDimensionsCount", info, ctypes.byref(nd))
        dims = (ctypes.c_int64 * max(nd.value, 1))()
        api.call("GetDimensions", info, dims, nd.value)
    finally:
        api.raw("ReleaseTensorTypeAndShapeInfo", info)
    shape = tuple(int(d) for d in dims[:nd.value])
    dtype = _NUMPY.get(elem.value)
    if dtype is None:
        kind = TensorProto.DataType.Name(elem.value) if elem.value in TensorProto.DataType.values() else elem.value
        raise OnnxModelError(f"{where}: input {role} has element type {kind}, which no LUTKanEdge input has (the "
                             f"tables are float32, except Table: int8, uint8, float16 or float32)")
    if any(d < 0 for d in shape):
        raise OnnxModelError(f"{where}: input {role} has shape {shape}")
    n = math.prod(shape)
    if n == 0:
        return np.zeros(shape, dtype)
    data = VP()
    api.call("GetTensorMutableData", value, ctypes.byref(data))
    raw = (ctypes.c_char * (n * np.dtype(dtype).itemsize)).from_address(data.value)
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
