"""The oracle: every backend that runs a compiled model, and one check that they all agree.

``backends(model)`` maps each name of ``BACKENDS`` to a callable ``f(x) -> y`` (float32
(batch, n_outputs)); every one validates ``x`` like lutkan's front doors (``check_input``: float64
and integer arrays are converted, a bad shape/dtype raises ``InputError``):

==================  ====================================================================
``numpy``           ``NumpyEvaluator``: the reference (the definition of correct)
``numba``           ``NumbaEvaluator``
``ort-function``    the ``function`` ONNX form in plain onnxruntime (the op's standard-op body)
``ort-standard``    the ``standard`` (inlined, default-domain) form in plain onnxruntime
``plugin-function`` the ``function`` form with the plugin (``make_session(..., plugin=True)``: the native op
                    when its library is built, else the PyOp)
``plugin-custom``   the ``custom`` form with the plugin
``native-function`` the ``function`` form, unmodified, in a plain ``onnxruntime.InferenceSession`` with
                    ``lutkan.runtime_ext.library_path()`` registered (the registered op, not the body, runs)
``native-custom``   the ``custom`` form likewise (``KanSymbolic`` nodes, which the native library cannot run,
                    are first inlined with ``lutkan.runtime_ext.inline_symbolic``)
``pyop-custom``     the ``custom`` form with the onnxruntime-extensions PyOp (``make_session(..., plugin="pyop")``,
                    the fallback when the native library is not built)
``onnxref-function`` ``onnx.reference.ReferenceEvaluator`` on the ``function`` form (the body)
``onnxref-custom``  ``ReferenceEvaluator(custom form, new_ops=OPS)`` (the OpRuns)
==================  ====================================================================

``assert_backends_agree(model, x)`` compares each against the reference with ``compare_outputs``
semantics and raises an ``AssertionError`` naming the backend. onnx, onnxruntime and the evaluators
are imported on first use, so ``import lutkan.testing`` stays light. Sessions use one thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from lutkan.metrics import assert_outputs_close

__all__ = ["BACKENDS", "ENGINES", "ONNX_BACKENDS", "rounding_allowance", "assert_backends_agree", "backends", "onnx_runner"]

BACKENDS = ("numpy", "numba", "ort-function", "ort-standard", "plugin-function", "plugin-custom",
            "native-function", "native-custom", "pyop-custom", "onnxref-function", "onnxref-custom")

ONNX_BACKENDS = {  # backend -> (export form, engine of onnx_runner)
    "ort-function": ("function", "ort"), "ort-standard": ("standard", "ort"),
    "plugin-function": ("function", "plugin"), "plugin-custom": ("custom", "plugin"),
    "native-function": ("function", "native"), "native-custom": ("custom", "native"),
    "pyop-custom": ("custom", "pyop"),
    "onnxref-function": ("function", "onnxref"), "onnxref-custom": ("custom", "onnxref+op"),
}
ENGINES = ("ort", "plugin", "native", "pyop", "onnxref", "onnxref+op")


def onnx_runner(proto, engine: str = "ort") -> Callable[[np.ndarray], np.ndarray]:
    """``f(x) -> y`` running an ONNX model (ModelProto, bytes or path) with one input ``x``
    (onnxruntime engines: ``f.session`` is the session).

    Args:
        engine: ``ort`` (plain onnxruntime, no lutkan code in the session), ``plugin`` (``make_session``'s
            LUTKanEdge plugin: native if built, else the PyOp), ``pyop`` (the PyOp plugin), ``native`` (a
            plain ``onnxruntime.InferenceSession`` of the unmodified file with ``library_path()`` registered;
            ``KanSymbolic`` nodes inlined first), ``onnxref`` (``onnx.reference``: standard ops and
            model-local functions) or ``onnxref+op`` (``onnx.reference`` with the LUTKanEdge OpRun).
    """
    if engine in ("ort", "plugin", "pyop"):
        from lutkan.runtime_ext import make_session

        plugin = {"ort": False, "plugin": True, "pyop": "pyop"}[engine]
        return _SessionRunner(make_session(proto, plugin=plugin, intra_op_num_threads=1))
    if engine == "native":
        return _SessionRunner(_native_session(proto))
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    import onnx
    from onnx.reference import ReferenceEvaluator

    from lutkan.custom_ops.reference_op import OPS
    from lutkan.evaluators.inputs import check_input

    if not isinstance(proto, onnx.ModelProto):
        proto = onnx.load_from_string(proto) if isinstance(proto, bytes) else onnx.load(proto)
    (inp,) = proto.graph.input
    width = inp.type.tensor_type.shape.dim[1].dim_value  # lutkan exports declare (batch, n_inputs)
    ev = ReferenceEvaluator(proto, new_ops=list(OPS) if engine == "onnxref+op" else None)

    def f(x):
        x = check_input(x, width)
        with np.errstate(all="ignore"):
            return ev.run(None, {inp.name: x})[0]

    return f


def _native_session(proto):
    """A plain onnxruntime session of ``proto`` with lutkan's native op library registered (one thread)."""
    import onnxruntime as ort

    from lutkan.runtime_ext import inline_symbolic, library_path

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.register_custom_ops_library(library_path())
    data = inline_symbolic(proto).SerializeToString()
    return ort.InferenceSession(data, sess_options=so, providers=["CPUExecutionProvider"])


class _SessionRunner:
    """``lutkan.runtime_ext.run(session, x)``; the onnxruntime session is ``.session``."""

    def __init__(self, session):
        self.session = session

    def __call__(self, x):
        from lutkan.runtime_ext import run

        return run(self.session, x)


def backends(model, *, include: Iterable[str] | None = None) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """``{name: f}`` for the named backends of a compiled ``LUTModel`` (default: all of ``BACKENDS``)."""
    names = _names(include)
    out: dict[str, Callable] = {}
    if "numpy" in names:
        from lutkan.evaluators.numpy_eval import NumpyEvaluator

        out["numpy"] = NumpyEvaluator(model)
    if "numba" in names:
        from lutkan.evaluators.numba_eval import NumbaEvaluator

        out["numba"] = NumbaEvaluator(model)
    protos: dict[str, object] = {}
    for name in names:
        if name in ONNX_BACKENDS:
            form, engine = ONNX_BACKENDS[name]
            if form not in protos:
                from lutkan.exporter import export

                protos[form] = export(model, form=form)
            out[name] = onnx_runner(protos[form], engine)
    return out


def _names(include: Iterable[str] | None) -> tuple[str, ...]:
    names = BACKENDS if include is None else tuple(include)
    unknown = [n for n in names if n not in BACKENDS]
    if unknown:
        raise ValueError(f"unknown backend(s) {unknown}; choose from {', '.join(BACKENDS)}")
    return names


def assert_backends_agree(model, x, *, include: Iterable[str] | None = None, rel: float = 1e-5,
                          abs_floor: float = 0.0, reference: np.ndarray | None = None,
                          runners: dict[str, Callable] | None = None, what: str = "",
                          dtype=np.float32, allowance: bool = True) -> dict[str, dict]:
    """Run ``x`` through every backend and compare each with the NumPy reference.

    Agreement is ``assert_outputs_close``: ``|y - ref| <= rel * max(max|ref|, 1) + abs_floor (+ the
    rounding allowance)`` where both are ordinary, and NaN/inf/huge (> ``HUGE``) at the same positions.
    Every output must be a float32 array of the reference's shape.

    Args:
        include: backend names (default all; ``numpy`` is compared too when ``reference`` is given).
        reference: the expected output (default: ``NumpyEvaluator(model)(x)``).
        runners: prebuilt ``backends(model, ...)`` to reuse (``include`` then selects among them).
        what: context for the failure message.
        dtype: the dtype every output must have (None: any float dtype, for non-lutkan contenders).
        allowance: add ``rounding_allowance(model, x)`` per entry (what other summation orders of the hidden
            layers may do downstream, ``docs/contract.md`` §5); needs ``model``.

    Returns:
        {backend: compare_outputs stats} of the backends compared.

    Raises:
        AssertionError: naming the first backend that disagrees and the figures.
    """
    runners = backends(model, include=include) if runners is None else {
        n: f for n, f in runners.items() if include is None or n in set(include)}
    if reference is None:
        ref_fn = runners["numpy"] if "numpy" in runners else backends(model, include=("numpy",))["numpy"]
        with np.errstate(all="ignore"):
            reference = ref_fn(x)
        runners = {n: f for n, f in runners.items() if n != "numpy"}
    if allowance and model is not None and len(model.layers) > 1:
        abs_floor = abs_floor + rounding_allowance(model, x)
    stats = {}
    for name, f in runners.items():
        label = f"backend {name!r}" + (f" ({what})" if what else "")
        with np.errstate(all="ignore"):
            y = f(x)
        ok_dtype = isinstance(y, np.ndarray) and (y.dtype == dtype if dtype is not None else y.dtype.kind == "f")
        if not (ok_dtype and y.shape == reference.shape):
            raise AssertionError(f"{label}: returned {type(y).__name__} {getattr(y, 'dtype', '')} "
                                 f"{getattr(y, 'shape', '')}, expected {np.dtype(dtype or np.float64).name} "
                                 f"{reference.shape}")
        with np.errstate(all="ignore"):
            stats[name] = assert_outputs_close(y, reference, rel=rel, abs_floor=abs_floor,
                                               what=f"{label} vs the NumPy reference")
    return stats


ROUNDING_FACTOR = 16
"""How many float32 epsilons of an edge sum's magnitude a backend's summation order may move it by."""


def rounding_allowance(model, x, *, factor: float = ROUNDING_FACTOR) -> np.ndarray:
    """(N, n_outputs) float64: how far the outputs may move when backends sum the hidden layers' terms in
    another order (``docs/contract.md`` §5).

    Every hidden layer's outputs are perturbed by ``+-factor * eps32 * magnitude`` (``eval_layer(...,
    magnitude=True)``: the absolute terms behind each value, through the node step) and the rest of the
    network is re-run with the NumPy reference; the largest output change is the allowance. It is what a
    steep downstream edge (e.g. an exact symbolic ``cos`` fed a large hidden value, or a multiplication node)
    makes of a rounding difference that is itself within float32 precision. The last layer's own rounding is
    covered by the comparison's relative tolerance. Entries whose perturbed run is NaN/inf get ``inf``.
    """
    from lutkan.evaluators.inputs import check_input
    from lutkan.evaluators.numpy_eval import eval_layer
    from lutkan.tables import model_tables

    tables = model_tables(model)
    h = check_input(x, model.n_inputs)[:, model.input_id]
    hidden = []
    with np.errstate(all="ignore"):
        for p in tables:
            h, mag = eval_layer(p, h, magnitude=True)
            hidden.append((h, mag))
        ref = hidden[-1][0].astype(np.float64)
        allow = np.zeros(ref.shape)
        eps = float(np.finfo(np.float32).eps)
        for l in range(len(tables) - 1):
            base, mag = hidden[l]
            for sign in (1.0, -1.0):
                g = (base.astype(np.float64) + sign * factor * eps * np.nan_to_num(mag)).astype(np.float32)
                for p in tables[l + 1:]:
                    g = eval_layer(p, g)
                d = np.abs(g.astype(np.float64) - ref)
                d[np.isnan(d) & np.isfinite(ref)] = np.inf
                allow = np.fmax(allow, d)
    return allow
