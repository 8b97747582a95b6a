"""``make_session``, ``run`` and ``register``: onnxruntime sessions whose LUTKanEdge nodes run our kernel.

Two plugin backends run the same Numba kernel: the native op library (``native``: a C forwarder and Numba
``@cfunc``s, no Python per call) and, when that library is not available, the onnxruntime-extensions PyOp
(``pyop``), with one warning saying why. ``session_backend(session)`` tells which one a session uses.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
import weakref

import numpy as np
import onnx
import onnxruntime as ort

from lutkan import budget
from lutkan.custom_ops.schema import DOMAIN, OP_TYPE
from lutkan.errors import InputError, LutKanError, OnnxModelError
from lutkan.evaluators.inputs import check_input
from lutkan.runtime_ext import native, registry

__all__ = ["make_session", "run", "register", "session_options", "session_backend", "SESSION_OPTION_NAMES",
           "PluginKernelError", "BACKENDS"]

_REGISTERED_KEY = "lutkan.runtime_ext.registered"  # the PyOp (onnxruntime-extensions) library
BACKENDS = ("native", "pyop")
"""Plugin backends: ``make_session(..., plugin="native"|"pyop")``; ``plugin=True`` picks native if available."""

SESSION_OPTION_NAMES = tuple(sorted(n for n in dir(ort.SessionOptions)
                                    if not n.startswith("_") and isinstance(getattr(ort.SessionOptions, n), property)))
"""``onnxruntime.SessionOptions`` attributes that ``make_session`` accepts as keyword arguments."""

_SPECIAL = ("providers", "sess_options", "config", "kernel_threads")


class PluginKernelError(LutKanError):
    """The LUTKanEdge kernel failed inside onnxruntime (the native op returned an error status; the PyOp
    returned NaN instead of aborting)."""


# Per-session facts for run(): keys of its kernels, input name and width. Keyed weakly by session.
_INFO: weakref.WeakKeyDictionary[ort.InferenceSession, dict] = weakref.WeakKeyDictionary()


def register(so: ort.SessionOptions | None = None, backend: str | None = None) -> ort.SessionOptions:
    """Return ``so`` (or new SessionOptions) with a LUTKanEdge plugin library registered (idempotent).

    ``backend``: ``"native"`` (the native op library: after this, a plain ``InferenceSession`` runs
    unmodified custom- and function-form files), ``"pyop"`` (the onnxruntime-extensions library: its op
    takes the rewritten ``LUTKanEdge(X; kernel_key)`` that only ``make_session`` produces), or None for
    the one ``make_session(..., plugin=True)`` uses.
    """
    so = ort.SessionOptions() if so is None else so
    if not isinstance(so, ort.SessionOptions):
        raise TypeError(f"expected onnxruntime.SessionOptions, got {type(so).__name__}")
    backend = _backend(True) if backend is None else _backend(backend)
    if backend == "native":
        try:
            return native.register(so)
        except native.NativeUnavailableError:
            raise
        except Exception as e:  # noqa: BLE001 - ORT's Fail carries our registration message
            raise LutKanError(f"cannot register the native LUTKanEdge library: {e}") from None
    if not _is_registered(so):
        from lutkan.runtime_ext import pyop  # defines the PyOp: must precede register_custom_ops_library

        so.register_custom_ops_library(pyop.library_path())
        so.add_session_config_entry(_REGISTERED_KEY, "1")
    return so


_WARNED: list = []


def _backend(plugin) -> str:
    """``native`` or ``pyop`` for a ``plugin`` argument other than False (one warning on fallback)."""
    if plugin is True:
        reason = native.unavailable_reason()
        if reason is None:
            return "native"
        if not _WARNED:
            _WARNED.append(reason)
            warnings.warn(f"{reason}; lutkan.runtime_ext falls back to the onnxruntime-extensions PyOp (the same "
                          f"kernel behind a Python bridge: ~18 µs more per call at batch 1, Python processes "
                          f"only). session_backend(session) tells which backend a session uses.",
                          RuntimeWarning, stacklevel=3)
        return "pyop"
    if plugin == "native":
        native.library_path()  # NativeUnavailableError saying why
        return "native"
    if plugin == "pyop":
        return "pyop"
    raise TypeError(f"plugin={plugin!r}: use True (native if available, else the PyOp), False (a plain session), "
                    f"'native' or 'pyop'")


def session_backend(session: ort.InferenceSession) -> str | None:
    """``"native"`` or ``"pyop"`` for a plugin session from ``make_session``, None for a plain one."""
    info = _INFO.get(session)
    return None if info is None else info.get("backend")


def _is_registered(so: ort.SessionOptions) -> bool:
    try:
        return so.get_session_config_entry(_REGISTERED_KEY) == "1"
    except Exception:  # noqa: BLE001 - ORT raises RuntimeError when the entry is absent
        return False


def session_options(so: ort.SessionOptions | None = None, **options) -> ort.SessionOptions:
    """Set SessionOptions attributes from keyword arguments; unknown names raise a TypeError listing
    the valid ones (``SESSION_OPTION_NAMES``)."""
    so = ort.SessionOptions() if so is None else so
    for name, value in options.items():
        if name not in SESSION_OPTION_NAMES:
            raise TypeError(f"unknown session option {name!r}; valid keyword arguments are "
                            f"{', '.join(_SPECIAL + SESSION_OPTION_NAMES)}")
        try:
            setattr(so, name, value)
        except (TypeError, ValueError, RuntimeError) as e:
            raise TypeError(f"session option {name}={value!r} was rejected by onnxruntime: {e}") from None
    return so


def make_session(model, plugin: bool | str = True, *, providers=None, sess_options: ort.SessionOptions | None = None,
                 config: dict | None = None, kernel_threads: int = 1, max_bytes: int | None = None,
                 **options) -> ort.InferenceSession:
    """Create an ``onnxruntime.InferenceSession`` for a lutkan ONNX model.

    Args:
        model: path, serialized bytes or ``onnx.ModelProto`` (any export form).
        plugin: True -> every ``lutkan.LUTKanEdge`` node runs the Numba kernel (the model is read
            and validated here, the tables are loaded once and the in-memory graph is rewritten;
            the file is not modified), through the native op library if it is available, else
            through the onnxruntime-extensions PyOp (one RuntimeWarning says why); ``"native"`` or
            ``"pyop"`` choose the backend (``session_backend`` reads it back). False -> a plain
            session (function/standard forms run as-is; a custom-form file then fails with
            OnnxModelError).
        providers: ORT providers (default ``["CPUExecutionProvider"]``; the plugin is CPU-only).
        sess_options: SessionOptions to start from (modified: the plugin library is registered).
        config: ``add_session_config_entry`` key/values, e.g. ``{"session.intra_op.allow_spinning": "0"}``.
        kernel_threads: plugin only; > 1 lets the kernel use that many threads at large batch. The
            native op splits batches of >= 1024 rows over onnxruntime's intra-op pool, so this sets
            ``intra_op_num_threads`` (unless given); the PyOp splits batches of >= 256 rows over its
            own pool. Default 1: the kernel runs on the thread that called ``run``.
        max_bytes: the resource budget (``lutkan.budget``) the lutkan nodes' tables are checked against,
            from their declared dims, before the session is created (plain sessions: onnxruntime's folded
            copies of the function body's tables; plugin: the kernels' dense tables).
        **options: SessionOptions attributes, e.g. ``intra_op_num_threads=1``,
            ``graph_optimization_level=ort.GraphOptimizationLevel.ORT_ENABLE_ALL``.

    Raises ``OnnxModelError`` for an unreadable model or a malformed LUTKanEdge node (naming the
    node and the problem), ``TypeError`` for unknown options. Use ``run(session, x)`` for a
    validated call; ``session.run`` works too (a bad input then gives an onnxruntime error with
    the native op, NaN with the PyOp; never a crash).
    """
    if isinstance(kernel_threads, bool) or not isinstance(kernel_threads, int) or kernel_threads < 1:
        raise TypeError(f"kernel_threads={kernel_threads!r} must be an integer >= 1")
    backend = _backend(plugin) if plugin else None
    if backend == "native" and kernel_threads > 1 and "intra_op_num_threads" not in options:
        options = {**options, "intra_op_num_threads": kernel_threads}
    so = session_options(sess_options, **options)
    for k, v in (config or {}).items():
        so.add_session_config_entry(str(k), str(v))
    providers = list(providers) if providers is not None else ["CPUExecutionProvider"]

    if backend is None:
        if not isinstance(model, (str, os.PathLike, bytes, bytearray, memoryview, onnx.ModelProto)):
            raise TypeError(f"expected a path, bytes or onnx.ModelProto, got {type(model).__name__}")
        payload = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
        if isinstance(payload, os.PathLike):
            payload = os.fspath(payload)
        if isinstance(payload, (bytearray, memoryview)):
            payload = bytes(payload)
        try:
            _check_plain_size(model if isinstance(model, onnx.ModelProto) else payload, max_bytes)
        except OnnxModelError as e:
            raise _named(e, model) from None
        sess = _create(payload, so, providers, plugin=False)
        _INFO[sess] = {"keys": (), "nodes": 0}
        return sess

    if backend == "pyop" and so.execution_mode == ort.ExecutionMode.ORT_PARALLEL:
        warnings.warn("ExecutionMode.ORT_PARALLEL with the LUTKanEdge plugin is slower and has long latency "
                      "tails (PyOps serialize on the GIL); use ORT_SEQUENTIAL", RuntimeWarning, stacklevel=2)
    if so.optimized_model_filepath:
        raise TypeError("optimized_model_filepath cannot be used with plugin=True: the saved graph would be the "
                        "plugin-rewritten one, which has no tables; save the optimized model with plugin=False")

    from lutkan.runtime_ext.graph import prepare, read_model  # onnxscript (the op bodies): only when needed

    m = read_model(model)
    try:
        m, nodes = prepare(m, registry.new_key, max_bytes=max_bytes)
    except OnnxModelError as e:
        raise _named(e, model) from None
    keys: list[str] = []
    try:
        for p in nodes:
            keys.append(_add_kernel(p, backend, kernel_threads))
        sess = _create(m.SerializeToString(), register(so, backend), providers, plugin=backend)
    except BaseException:
        registry.release_kernels(keys)
        raise
    if backend == "native":  # onnxruntime holds its own copy now
        for key in keys:
            entry = registry.get_kernel(key)
            if entry is not None:
                registry.replace_kernel(key, dataclasses.replace(entry, tables=None))
    weakref.finalize(sess, registry.release_kernels, tuple(keys))
    _INFO[sess] = {"keys": tuple(keys), "nodes": len(nodes), "backend": backend}
    return sess


def _named(e: OnnxModelError, model) -> OnnxModelError:
    """``e`` with the file's path in front when the model was given as a path."""
    if isinstance(model, (str, os.PathLike)) and not str(e).startswith(os.fspath(model)):
        return OnnxModelError(f"{os.fspath(model)}: {e}")
    return e


PLAIN_BYTES_PER_CELL = 28
"""Besides ``dense_table_bytes``: what onnxruntime folds per table cell of a function/standard-form LUTKanEdge
(the float32 table, its scaled copy, the value rows, the slopes and their [value, slope] pairs)."""


def _check_plain_size(model, max_bytes: int | None) -> None:
    """Budget check of a plain session from the lutkan nodes' declared Table dims (the model is parsed without its
    external data); a model onnx cannot parse is left to onnxruntime's own error."""
    from lutkan.runtime_ext.model_checks import NODE_BYTES, declared_bytes, inlined_nodes  # onnxscript: lazily
    try:
        if isinstance(model, onnx.ModelProto):
            proto = model
        elif isinstance(model, bytes):
            proto = onnx.load_from_string(model)
        else:
            proto = onnx.load(model, load_external_data=False)
    except Exception:  # noqa: BLE001 - not parseable: onnxruntime reports it
        return
    budget.check(declared_bytes(proto.graph, PLAIN_BYTES_PER_CELL), "onnxruntime's folded LUTKanEdge tables "
                 "(declared by the Table initializers)", limit=max_bytes, error=OnnxModelError)
    cap = budget.max_bytes(max_bytes)
    n = inlined_nodes(proto, (cap or 1 << 62) // NODE_BYTES + 1)
    budget.check(n * NODE_BYTES, f"onnxruntime's inlining of the model-local functions ({n} nodes or more)",
                 limit=max_bytes, error=OnnxModelError)


def _add_kernel(p, backend: str, kernel_threads: int) -> str:
    """Register prepared node ``p``; returns its key. Native: the tables, from which onnxruntime's
    CreateKernelV2 builds the kernel block; PyOp: the warmed-up ``EdgeSumKernel``."""
    key = p.node.attribute[0].s.decode()
    if backend == "native":
        entry = registry.KernelEntry(kernel=None, in_dim=p.in_dim, out_dim=p.out_dim, where=p.where, tables=p.tables)
    else:
        entry = registry.KernelEntry(kernel=_build_kernel(p), in_dim=p.in_dim, out_dim=p.out_dim, where=p.where,
                                     threads=kernel_threads)
    registry.add_kernel(key, entry)
    return key


def _build_kernel(p):
    from lutkan.evaluators.numba_eval import EdgeSumKernel

    try:
        kernel = EdgeSumKernel(p.tables)
        # Warm up here (JIT compile / cache load, and any error) rather than inside onnxruntime.
        y = kernel(np.zeros((1, p.in_dim), dtype=np.float32))
    except Exception as e:  # noqa: BLE001
        raise OnnxModelError(f"{p.where}: cannot build the kernel: {type(e).__name__}: {e}") from None
    if y.shape != (1, p.out_dim) or y.dtype != np.float32:
        raise OnnxModelError(f"{p.where}: the kernel returned {y.dtype} {y.shape}, expected float32 (1, {p.out_dim})")
    return kernel


def _create(payload, so, providers, *, plugin) -> ort.InferenceSession:
    try:
        return ort.InferenceSession(payload, sess_options=so, providers=providers)
    except Exception as e:  # noqa: BLE001 - ORT raises Fail/InvalidGraph/InvalidArgument/NoSuchFile...
        msg = str(e)
        hint = ""
        if not plugin and f"{DOMAIN}:{OP_TYPE}" in msg:
            hint = (" (this is a custom-form model: plain onnxruntime cannot run LUTKanEdge without the plugin; "
                    "use make_session(..., plugin=True) or export form='function'/'standard')")
        if plugin and "Conflicting with a registered kernel" in msg:
            hint = (" (another LUTKanEdge library, the onnxruntime-extensions one or lutkan's native one, was "
                    "already registered on these SessionOptions by other code; pass SessionOptions without it, or "
                    "register with lutkan.runtime_ext.register)")
        elif plugin == "pyop" and f"{DOMAIN}:{OP_TYPE}" in msg:
            hint = (" (the onnxruntime-extensions library was registered on these SessionOptions before "
                    "lutkan.runtime_ext was imported, so it lacks the LUTKanEdge op; import lutkan.runtime_ext "
                    "first or pass fresh SessionOptions)")
        raise OnnxModelError(f"onnxruntime cannot load the model: {msg}{hint}") from None


def _input_spec(sess: ort.InferenceSession) -> tuple[str, int | None]:
    ins = sess.get_inputs()
    if len(ins) != 1:
        raise InputError(f"run() expects a model with one input (a lutkan export); this one has "
                         f"{[i.name for i in ins]}; call session.run yourself")
    shape = ins[0].shape
    width = shape[1] if len(shape) == 2 and isinstance(shape[1], int) else None
    return ins[0].name, width


def run(session: ort.InferenceSession, x, *, output_names=None) -> np.ndarray:
    """Validated inference: ``x`` (batch, n_inputs) -> first output as float32 numpy.

    Raises ``InputError`` (wrong rank/width/dtype, empty batch; float64 and integer arrays are
    converted) before onnxruntime sees the input, and ``PluginKernelError`` if a LUTKanEdge kernel
    of this session reported a failure during the call (it returns NaN instead of aborting).
    """
    info = _INFO.get(session)
    if info is None:
        if not isinstance(session, ort.InferenceSession):
            raise TypeError(f"run() expects an onnxruntime.InferenceSession (from make_session), got "
                            f"{type(session).__name__}")
        info = _INFO[session] = {"keys": (), "nodes": 0}
    spec = info.get("spec")
    if spec is None:
        spec = info["spec"] = _input_spec(session)
    name, width = spec
    if width is None:  # symbolic width: validate rank/dtype/batch only
        xa = x if isinstance(x, np.ndarray) else np.asarray(x)
        width = xa.shape[1] if xa.ndim == 2 else 1
    x = check_input(x, width)
    keys = info["keys"]
    before = registry.error_total()
    try:
        y = session.run(output_names, {name: x})
    except Exception as e:  # noqa: BLE001
        if info.get("backend") == "native" and f"{OP_TYPE} node" in str(e):
            raise PluginKernelError(f"the LUTKanEdge kernel failed: {e}") from None
        raise LutKanError(f"onnxruntime failed to run the model: {e}") from None
    if keys and registry.error_total() != before:
        recs = registry.kernel_errors(keys)
        seen = info.setdefault("counts", {})
        fresh = [r for k, r in recs.items() if r.count != seen.get(k, 0)]
        info["counts"] = {k: r.count for k, r in recs.items()}
        if fresh:
            if any(r.interrupt for r in fresh):
                raise KeyboardInterrupt
            raise PluginKernelError("; ".join(sorted({r.last for r in fresh})))
    return y[0]
