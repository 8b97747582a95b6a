"""Run lutkan ONNX exports in onnxruntime with the LUTKanEdge plugin kernel (onnxruntime-extensions PyOp).

    from lutkan.runtime_ext import make_session, run
    sess = make_session("m.onnx", intra_op_num_threads=1)    # an ordinary onnxruntime.InferenceSession
    y = run(sess, x)                                         # validated; or sess.run(None, {"x": x})

See ``docs/runtime-ext.md`` for how it works, threading and limits.
"""

from __future__ import annotations

from lutkan.runtime_ext.pyop import kernel_errors, live_kernels
from lutkan.runtime_ext.session import (
    SESSION_OPTION_NAMES,
    PluginKernelError,
    make_session,
    register,
    run,
    session_options,
)

__all__ = ["SESSION_OPTION_NAMES", "PluginKernelError", "kernel_errors", "live_kernels", "make_session",
           "register", "run", "session_options"]
