"""The native ``lutkan.LUTKanEdge`` op for plain onnxruntime sessions (no graph rewrite, no PyOp bridge).

    import onnxruntime as ort
    from lutkan.runtime_ext import library_path
    so = ort.SessionOptions()
    so.register_custom_ops_library(library_path())
    sess = ort.InferenceSession("model.onnx", so)        # an unmodified custom- or function-form file

How it fits together (no onnxruntime headers are needed; ``ortabi`` holds the indices, checked against
onnxruntime 1.20):

* ``_native.c`` (built by the package's setuptools extension) exports ``RegisterCustomOps`` and forwards it
  to ``_register_custom_ops`` below, a ctypes callback set by ``library_path()``.
* Registration adds one ``lutkan`` domain (created once per process) with two ops. ``LUTKanEdge``: its
  ``CreateKernelV2`` (a ctypes callback, run while onnxruntime builds the session) reads the node through the
  C API: name, attributes and its constant inputs (``KernelInfoGetConstantInput_tensor``), validates them with
  ``lutkan.runtime_ext.graph``'s own node checks, builds the layer's ``EdgeSumKernel`` arrays once and copies
  them into a ``calloc``-ed block (``native_kernel.build_block``). A node prepared by ``make_session``
  (``LUTKanEdge(X)`` with a ``kernel_key``) takes its validated tables from ``registry`` instead. Any defect
  becomes an onnxruntime error naming the node; nothing is followed before it is checked.
  ``KernelComputeV2`` is the Numba ``@cfunc`` of ``native_kernel``; ``KernelDestroy`` is the forwarder's
  ``free``, so destroying a session never calls back into Python.
  ``KanSymbolic``: only reports that it needs ``make_session`` (the custom-op C API of onnxruntime 1.20 has
  no getter for its STRINGS attribute ``functions``).
* Kernels compute only in Numba code and hold no shared scratch: ``session.run`` may be called from many
  threads. The op runs registered ops before a model-local function of the same name, so function-form
  files run this kernel, not their standard-op body.

``LUTKAN_NATIVE=0`` hides the library (``make_session`` then uses the PyOp, as when it was not built);
``LUTKAN_NATIVE_LIBRARY=path`` uses another build of ``_native.c``.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import os
import threading
from pathlib import Path

from lutkan.errors import LutKanError, OnnxModelError
from lutkan.runtime_ext import ortabi

__all__ = ["NativeUnavailableError", "available", "unavailable_reason", "library_path", "register"]

_REGISTERED_KEY = "lutkan.runtime_ext.native"
VP = ortabi.VP


class NativeUnavailableError(LutKanError):
    """The native op library cannot be used in this process (the message says why)."""


def _locate() -> tuple[str | None, str]:
    if os.environ.get("LUTKAN_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None, "LUTKAN_NATIVE=0 disables it"
    explicit = os.environ.get("LUTKAN_NATIVE_LIBRARY")
    if explicit:
        return (explicit, "") if os.path.isfile(explicit) else (None, f"LUTKAN_NATIVE_LIBRARY={explicit} is not a file")
    here = Path(__file__).resolve().parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        p = here / f"_native{suffix}"
        if p.is_file():
            return str(p), ""
    return None, ("lutkan/runtime_ext/_native*.so was not built (no C compiler when lutkan was installed; in a "
                  "source checkout run `python setup.py build_ext --inplace`)")


_STATE: dict = {}  # "lib": ctypes.CDLL, "path", "error"
_LOCK = threading.Lock()


def _load() -> ctypes.CDLL:
    with _LOCK:
        if "lib" in _STATE:
            return _STATE["lib"]
        if "error" in _STATE:
            raise NativeUnavailableError(_STATE["error"])
        path, why = _locate()
        try:
            if path is None:
                raise OSError(why)
            lib = ctypes.CDLL(path)
            lib.lutkan_set_register.argtypes = [VP]
            lib.lutkan_alloc.restype = VP
            lib.lutkan_alloc.argtypes = [ctypes.c_size_t]
            lib.lutkan_set_register(ctypes.cast(_REGISTER_CB, VP))
        except (OSError, AttributeError) as e:
            _STATE["error"] = f"the native LUTKanEdge library is not available: {e}"
            raise NativeUnavailableError(_STATE["error"]) from None
        _STATE.update(lib=lib, path=path, free=ctypes.cast(lib.lutkan_free, VP).value)
        return lib


def available() -> bool:
    """Whether ``library_path()`` works in this process."""
    try:
        _load()
        return True
    except NativeUnavailableError:
        return False


def unavailable_reason() -> str | None:
    """Why the native library cannot be used, or None if it can."""
    try:
        _load()
        return None
    except NativeUnavailableError as e:
        return str(e)


def library_path() -> str:
    """Path of the native op library for ``SessionOptions.register_custom_ops_library`` (loads it here first).

    Raises ``NativeUnavailableError`` (saying why) when it was not built or is disabled.
    """
    _load()
    return _STATE["path"]


def register(so):
    """``so`` with the native library registered once (idempotent through a session config entry)."""
    try:
        done = so.get_session_config_entry(_REGISTERED_KEY) == "1"
    except Exception:  # noqa: BLE001 - ORT raises when the entry is absent
        done = False
    if not done:
        so.register_custom_ops_library(library_path())
        so.add_session_config_entry(_REGISTERED_KEY, "1")
    return so


# ---------------------------------------------------------------------------------------------
# Registration: one domain per onnxruntime (OrtApi table) in the process, never released (onnxruntime
# keeps pointers to it and to the ops for as long as any session lives).

_APIS: dict[int, ortabi.Api] = {}
_DOMAINS: dict[int, int] = {}
_KEEP: list = []  # ctypes callbacks and names referenced from the op structs (for the process lifetime)


def _api(address: int) -> ortabi.Api:
    api = _APIS.get(address)
    if api is None:
        api = _APIS[address] = ortabi.Api(address)
    return api


def _register_custom_ops(options, api_base):
    try:
        address = ortabi.get_api(api_base)
        if not address:
            return ortabi.basic_status(api_base, ortabi.ORT_FAIL, (
                f"lutkan's native op needs onnxruntime >= 1.{ortabi.API_VERSION} (OrtApi version "
                f"{ortabi.API_VERSION}); this process runs onnxruntime {ortabi.runtime_version(api_base)}"))
        api = _api(address)
        with _LOCK:
            if address not in _DOMAINS:
                _DOMAINS[address] = _make_domain(api)
        status = api.raw("AddCustomOpDomain", options, _DOMAINS[address])
        return status or None
    except BaseException as e:  # noqa: BLE001 - an exception must not escape a ctypes callback
        try:
            return _api(ortabi.get_api(api_base)).status(
                ortabi.ORT_FAIL, f"lutkan native op library: registration failed: {type(e).__name__}: {e}")
        except BaseException:  # noqa: BLE001
            return None


_REGISTER_CB = ctypes.CFUNCTYPE(VP, VP, VP)(_register_custom_ops)


def _make_domain(api: ortabi.Api) -> int:
    from lutkan.custom_ops.schema import DOMAIN, INPUTS, OP_TYPE, READABLE_OP_VERSIONS, SYMBOLIC_INPUTS, SYMBOLIC_OP
    from lutkan.runtime_ext import native_kernel

    compute, _ = native_kernel.compiled()
    domain = VP()
    api.call("CreateCustomOpDomain", DOMAIN.encode(), ctypes.byref(domain))
    versions = (min(READABLE_OP_VERSIONS), max(READABLE_OP_VERSIONS))
    # LUTKanEdge: X float32, then the tables: any type (validated at kernel creation, with lutkan's messages);
    # all optional, so the make_session form LUTKanEdge(X; kernel_key) fits the same op.
    edge = _make_op(OP_TYPE, len(INPUTS), optional_from=1, create=_create_edge, compute=compute, versions=versions)
    sym = _make_op(SYMBOLIC_OP, len(SYMBOLIC_INPUTS), optional_from=len(SYMBOLIC_INPUTS), create=_create_symbolic,
                   compute=compute, versions=versions)
    for op in (edge, sym):
        api.call("CustomOpDomain_Add", domain, op)
    return domain.value


def _make_op(name: str, n_inputs: int, *, optional_from: int, create, compute: int, versions) -> int:
    """A never-freed ``OrtCustomOp`` (every field filled); its address."""
    C = ctypes.CFUNCTYPE
    i32, size = ctypes.c_int, ctypes.c_size_t
    name_buf = ctypes.create_string_buffer(name.encode())
    ptrs = ctypes.POINTER(VP)

    def null_out(a, b):
        for p in (a, b):
            if p:
                p[0] = None
        return 0

    fns = {
        "CreateKernel": C(VP, VP, VP, VP)(lambda op, api, info: None),  # V1 entries: unused (version >= 16)
        "GetName": C(VP, VP)(lambda op: ctypes.addressof(name_buf)),
        "GetExecutionProviderType": C(VP, VP)(lambda op: None),  # CPU
        "GetInputType": C(i32, VP, size)(lambda op, i: ortabi.FLOAT if i == 0 else ortabi.UNDEFINED),
        "GetInputTypeCount": C(size, VP)(lambda op: n_inputs),
        "GetOutputType": C(i32, VP, size)(lambda op, i: ortabi.FLOAT),
        "GetOutputTypeCount": C(size, VP)(lambda op: 1),
        "KernelCompute": C(None, VP, VP)(lambda kernel, ctx: None),
        "GetInputCharacteristic": C(i32, VP, size)(
            lambda op, i: ortabi.OPTIONAL if i >= optional_from else ortabi.REQUIRED),
        "GetOutputCharacteristic": C(i32, VP, size)(lambda op, i: ortabi.REQUIRED),
        "GetInputMemoryType": C(i32, VP, size)(lambda op, i: 0),  # OrtMemTypeDefault
        "GetVariadicInputMinArity": C(i32, VP)(lambda op: 1),
        "GetVariadicInputHomogeneity": C(i32, VP)(lambda op: 1),
        "GetVariadicOutputMinArity": C(i32, VP)(lambda op: 1),
        "GetVariadicOutputHomogeneity": C(i32, VP)(lambda op: 1),
        "CreateKernelV2": C(VP, VP, VP, VP, ptrs)(create),
        "InferOutputShapeFn": C(VP, VP, VP)(lambda op, ctx: None),
        "GetStartVersion": C(i32, VP)(lambda op: versions[0]),
        "GetEndVersion": C(i32, VP)(lambda op: versions[1]),
        "GetMayInplace": C(size, ptrs, ptrs)(null_out),
        "ReleaseMayInplace": C(None, VP, VP)(lambda a, b: None),
        "GetAliasMap": C(size, ptrs, ptrs)(null_out),
        "ReleaseAliasMap": C(None, VP, VP)(lambda a, b: None),
    }
    lib = _STATE["lib"]
    address = lib.lutkan_alloc(ctypes.sizeof(ortabi.OrtCustomOp))
    if not address:
        raise MemoryError("cannot allocate the OrtCustomOp struct")
    op = ortabi.OrtCustomOp.from_address(address)
    op.version = ortabi.API_VERSION
    for field, fn in fns.items():
        setattr(op, field, ctypes.cast(fn, VP).value)
    op.KernelComputeV2 = compute
    op.KernelDestroy = _STATE["free"]
    missing = [f for f in ortabi.CUSTOM_OP_FIELDS if not getattr(op, f)]
    if missing:
        raise RuntimeError(f"OrtCustomOp {name}: fields left null: {missing}")
    _KEEP.append((fns, name_buf))
    return address


# ---------------------------------------------------------------------------------------------
# Kernel creation (ctypes callbacks run by onnxruntime while it builds a session).

def _create_edge(op, api_address, info, out):
    api = _api(api_address)
    try:
        from lutkan.runtime_ext import native_kernel
        from lutkan.runtime_ext.native_node import edge_kernel

        kernel, where = edge_kernel(api, info)
        message = f"{where}: input X must be a float32 (batch, {kernel.in_dim}) tensor; got ".encode()
        failure = f"{where}: the native LUTKanEdge kernel failed (out of memory for its scratch?)".encode()
        out[0] = native_kernel.build_block(_STATE["lib"].lutkan_alloc, api, kernel, message, failure)
        return None
    except OnnxModelError as e:
        return api.status(ortabi.ORT_INVALID_GRAPH, str(e))
    except BaseException as e:  # noqa: BLE001 - an exception must not escape a ctypes callback
        return api.status(ortabi.ORT_FAIL, f"lutkan native LUTKanEdge: cannot build the kernel: "
                                           f"{type(e).__name__}: {e}")


def _create_symbolic(op, api_address, info, out):
    api = _api(api_address)
    try:
        name = api.string_out("KernelInfo_GetNodeName", info)
    except BaseException:  # noqa: BLE001
        name = "?"
    return api.status(ortabi.ORT_NOT_IMPLEMENTED, (
        f"KanSymbolic node {name!r}: the native lutkan op library cannot run exact symbolic edges (the custom-op "
        f"C API of onnxruntime 1.20 has no getter for the node's STRINGS attribute 'functions'); "
        f"run this custom-form file with lutkan.runtime_ext.make_session (it inlines them as standard ops), or "
        f"export the function or standard form"))
