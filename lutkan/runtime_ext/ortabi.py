"""onnxruntime's C ABI as the native op uses it, without headers: ``OrtApi`` entry indices and ``OrtCustomOp``.

``OrtApi`` is a table of function pointers that only grows: each release appends entries, and
onnxruntime's ``onnxruntime_c_api.cc`` static_asserts the index of the last entry of every shipped version
(API 1 ends at 101, 14 at 238, 15 at 254, 17 at 275, 20 at 284). Each index below was counted in that
table and checked against those asserts; ``ENTRIES[name] = (index, API version that added it)``. Every
entry used exists since API 17 (onnxruntime 1.17), below the oldest onnxruntime pyproject allows (1.20).

Only this module knows indices and struct layouts; ``native`` calls entries through ``Api``.
"""

from __future__ import annotations

import ctypes

API_VERSION = 17
"""The ``OrtApi`` version requested and declared in ``OrtCustomOp.version``: CreateKernelV2/KernelComputeV2
are read from 16 on, GetStartVersion/GetEndVersion from 17 on, KernelContext_ParallelFor is API 17."""

ENTRIES = {
    "CreateStatus": (0, 1),
    "GetErrorCode": (1, 1),
    "GetErrorMessage": (2, 1),
    "CreateCustomOpDomain": (26, 1),
    "CustomOpDomain_Add": (27, 1),
    "AddCustomOpDomain": (28, 1),
    "IsTensor": (50, 1),
    "GetTensorMutableData": (51, 1),
    "GetTensorElementType": (60, 1),
    "GetDimensionsCount": (61, 1),
    "GetDimensions": (62, 1),
    "GetTensorTypeAndShape": (65, 1),
    "KernelInfoGetAttribute_float": (85, 1),
    "KernelInfoGetAttribute_int64": (86, 1),
    "KernelInfoGetAttribute_string": (87, 1),
    "KernelContext_GetInput": (90, 1),
    "KernelContext_GetOutput": (91, 1),
    "ReleaseStatus": (93, 1),
    "ReleaseTensorTypeAndShapeInfo": (99, 1),
    "KernelInfo_GetInputCount": (230, 14),
    "KernelInfo_GetOutputCount": (231, 14),
    "KernelInfo_GetInputName": (232, 14),
    "KernelInfo_GetOutputName": (233, 14),
    "KernelInfo_GetNodeName": (244, 15),
    "KernelInfoGetConstantInput_tensor": (249, 15),
    "KernelContext_ParallelFor": (274, 17),
}

# OrtErrorCode values
ORT_FAIL = 1
ORT_INVALID_ARGUMENT = 2
ORT_NOT_IMPLEMENTED = 9
ORT_INVALID_GRAPH = 10
# OrtCustomOpInputOutputCharacteristic values
REQUIRED, OPTIONAL = 0, 1
# ONNXTensorElementDataType values
UNDEFINED, FLOAT = 0, 1

VP = ctypes.c_void_p
_SIZE_P = ctypes.POINTER(ctypes.c_size_t)
_SIGNATURES = {  # name: (restype, argtypes) as the C header declares them
    "CreateStatus": (VP, (ctypes.c_int, ctypes.c_char_p)),
    "GetErrorMessage": (ctypes.c_char_p, (VP,)),
    "CreateCustomOpDomain": (VP, (ctypes.c_char_p, ctypes.POINTER(VP))),
    "CustomOpDomain_Add": (VP, (VP, VP)),
    "AddCustomOpDomain": (VP, (VP, VP)),
    "IsTensor": (VP, (VP, ctypes.POINTER(ctypes.c_int))),
    "GetTensorMutableData": (VP, (VP, ctypes.POINTER(VP))),
    "GetTensorElementType": (VP, (VP, ctypes.POINTER(ctypes.c_int))),
    "GetDimensionsCount": (VP, (VP, _SIZE_P)),
    "GetDimensions": (VP, (VP, ctypes.POINTER(ctypes.c_int64), ctypes.c_size_t)),
    "GetTensorTypeAndShape": (VP, (VP, ctypes.POINTER(VP))),
    "KernelInfoGetAttribute_float": (VP, (VP, ctypes.c_char_p, ctypes.POINTER(ctypes.c_float))),
    "KernelInfoGetAttribute_int64": (VP, (VP, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int64))),
    "KernelInfoGetAttribute_string": (VP, (VP, ctypes.c_char_p, ctypes.c_char_p, _SIZE_P)),
    "ReleaseStatus": (None, (VP,)),
    "ReleaseTensorTypeAndShapeInfo": (None, (VP,)),
    "KernelInfo_GetInputCount": (VP, (VP, _SIZE_P)),
    "KernelInfo_GetOutputCount": (VP, (VP, _SIZE_P)),
    "KernelInfo_GetInputName": (VP, (VP, ctypes.c_size_t, ctypes.c_char_p, _SIZE_P)),
    "KernelInfo_GetOutputName": (VP, (VP, ctypes.c_size_t, ctypes.c_char_p, _SIZE_P)),
    "KernelInfo_GetNodeName": (VP, (VP, ctypes.c_char_p, _SIZE_P)),
    "KernelInfoGetConstantInput_tensor": (VP, (VP, ctypes.c_size_t, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(VP))),
}

CUSTOM_OP_FIELDS = (
    "CreateKernel", "GetName", "GetExecutionProviderType", "GetInputType", "GetInputTypeCount", "GetOutputType",
    "GetOutputTypeCount", "KernelCompute", "KernelDestroy", "GetInputCharacteristic", "GetOutputCharacteristic",
    "GetInputMemoryType", "GetVariadicInputMinArity", "GetVariadicInputHomogeneity", "GetVariadicOutputMinArity",
    "GetVariadicOutputHomogeneity", "CreateKernelV2", "KernelComputeV2", "InferOutputShapeFn", "GetStartVersion",
    "GetEndVersion", "GetMayInplace", "ReleaseMayInplace", "GetAliasMap", "ReleaseAliasMap",
)
"""``OrtCustomOp`` after its ``uint32_t version``: 25 function pointers, every one filled (onnxruntime 1.30
was seen to crash when the later ones were left null, whatever the declared version)."""


class OrtCustomOp(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32)] + [(name, VP) for name in CUSTOM_OP_FIELDS]


class OrtError(Exception):
    """An onnxruntime C API call returned an error status (its message)."""


class Api:
    """The ``OrtApi`` table at ``address``: ``api.address_of(name)`` and typed ctypes calls ``api.call(name, ...)``
    that raise ``OrtError`` (the status released) when the entry returns an error status."""

    def __init__(self, address: int):
        self.address = int(address)
        table = ctypes.cast(self.address, ctypes.POINTER(VP))
        self._addr = {name: int(table[index]) for name, (index, _) in ENTRIES.items()}
        self._fn = {name: ctypes.CFUNCTYPE(res, *args)(self._addr[name]) for name, (res, args) in _SIGNATURES.items()}

    def address_of(self, name: str) -> int:
        return self._addr[name]

    def raw(self, name: str, *args):
        """The entry's return value as is (for statuses: 0 or an OrtStatus* the caller owns)."""
        return self._fn[name](*args)

    def call(self, name: str, *args) -> None:
        status = self._fn[name](*args)
        if status:
            raise OrtError(self.take_message(status))

    def take_message(self, status: int) -> str:
        """The message of ``status``, which is released."""
        msg = self._fn["GetErrorMessage"](status)
        self._fn["ReleaseStatus"](status)
        return (msg or b"").decode("utf-8", "replace")

    def status(self, code: int, message: str) -> int:
        """A new OrtStatus* (owned by onnxruntime once returned to it)."""
        return self._fn["CreateStatus"](int(code), message.encode("utf-8", "replace"))

    def string_out(self, name: str, *args) -> str:
        """Call a ``(..., char* out, size_t* size)`` entry twice (size query, then the copy)."""
        size = ctypes.c_size_t(0)
        self.call(name, *args, None, ctypes.byref(size))
        buf = ctypes.create_string_buffer(max(size.value, 1))
        self.call(name, *args, buf, ctypes.byref(size))
        return buf.value.decode("utf-8", "replace")


def get_api(api_base: int, version: int = API_VERSION) -> int:
    """``OrtApiBase.GetApi(version)`` (entry 0 of ``OrtApiBase``): the ``OrtApi*`` or 0 if unsupported."""
    get = ctypes.CFUNCTYPE(VP, ctypes.c_uint32)(ctypes.cast(api_base, ctypes.POINTER(VP))[0])
    return int(get(version) or 0)


def runtime_version(api_base: int) -> str:
    """``OrtApiBase.GetVersionString()`` (entry 1), e.g. ``"1.20.1"``."""
    get = ctypes.CFUNCTYPE(ctypes.c_char_p)(ctypes.cast(api_base, ctypes.POINTER(VP))[1])
    return (get() or b"?").decode()


def basic_status(api_base: int, code: int, message: str) -> int | None:
    """An OrtStatus* made through ``GetApi(1)`` (entry 0, CreateStatus), for runtimes too old for ``Api``."""
    address = get_api(api_base, 1)
    if not address:
        return None
    create = ctypes.CFUNCTYPE(VP, ctypes.c_int, ctypes.c_char_p)(ctypes.cast(address, ctypes.POINTER(VP))[0])
    return create(int(code), message.encode("utf-8", "replace"))
