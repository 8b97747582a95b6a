"""Run lutkan ONNX exports in onnxruntime with the LUTKanEdge kernel.

    from lutkan.runtime_ext import make_session, run
    sess = make_session("m.onnx", intra_op_num_threads=1)    # an ordinary onnxruntime.InferenceSession
    y = run(sess, x)                                         # validated; or sess.run(None, {"x": x})

or, with any onnxruntime code (no lutkan call per session):

    so = onnxruntime.SessionOptions()
    so.register_custom_ops_library(lutkan.runtime_ext.library_path())
    sess = onnxruntime.InferenceSession("m.onnx", so)        # custom or function form, as exported

See ``docs/runtime-ext.md`` for how it works, the fallback, threading and limits.
"""

from __future__ import annotations

from lutkan.runtime_ext.native import NativeUnavailableError, library_path
from lutkan.runtime_ext.native import available as native_available
from lutkan.runtime_ext.native import unavailable_reason as native_unavailable_reason
from lutkan.runtime_ext.registry import kernel_errors, live_kernels
from lutkan.runtime_ext.session import (
    BACKENDS,
    SESSION_OPTION_NAMES,
    PluginKernelError,
    make_session,
    register,
    run,
    session_backend,
    session_options,
)


def inline_symbolic(model):
    """A copy of ``model`` with its ``KanSymbolic`` nodes inlined as standard ops (``lutkan.runtime_ext.inline``)."""
    from lutkan.runtime_ext.inline import inline_symbolic as inline

    return inline(model)


__all__ = ["BACKENDS", "SESSION_OPTION_NAMES", "NativeUnavailableError", "PluginKernelError", "inline_symbolic",
           "kernel_errors", "library_path", "live_kernels", "make_session", "native_available",
           "native_unavailable_reason", "register", "run", "session_backend", "session_options"]
