"""lutkan: compile trained PyKAN models into segment-wise LUT artifacts and deploy them via ONNX.

Data flow (one module per stage)::

    pykan model / checkpoint --compiler--> LUTModel (.lutkan) --exporter--> .onnx --runtime_ext--> onnxruntime
                                              |-- evaluators (NumPy reference, Numba fast path)

Public API (torch/pykan are imported only when a pykan model is read; onnx/onnxruntime only
when exporting or running ONNX)::

    model = lutkan.compile_model("model/0.3", lutkan.ContractOptions(L=64, scheme="int8"))
    lutkan.save(model, "m.lutkan"); model = lutkan.load("m.lutkan")
    y = lutkan.evaluate(model, x, backend="numba")
    onnx_model = lutkan.export(model, form="function")
    pred = lutkan.Predictor("m.lutkan", batch_size=65536, threads=1)   # picklable; numpy in, numpy out
"""

from __future__ import annotations

from lutkan._version import version as _read_version
from lutkan.artifact import LUTLayer, LUTModel, load, save
from lutkan.contract import ContractOptions
from lutkan.errors import (
    ArtifactError,
    CheckpointError,
    ExportError,
    InputError,
    LutKanError,
    OnnxModelError,
    UnsupportedModelError,
)

__version__ = _read_version()


def compile_model(source, options: ContractOptions | None = None, **kw) -> LUTModel:
    """Compile a SourceModel, live pykan model or checkpoint path (see ``lutkan.compiler``)."""
    from lutkan.compiler import compile_model as _compile

    return _compile(source, options, **kw)


def evaluate(model: LUTModel, x, *, backend: str = "numba"):
    """Evaluate a compiled model on ``x`` (N, n_inputs) with the ``numpy`` or ``numba`` backend."""
    from lutkan.evaluators import evaluator

    return evaluator(model, backend)(x)


def export(model: LUTModel, form: str = "function", **options):
    """Lower a compiled model to an ``onnx.ModelProto`` (see ``lutkan.exporter``)."""
    from lutkan.exporter import export as _export

    return _export(model, form=form, **options)


def __getattr__(name: str):
    """Lazy exports: ``Predictor`` loads ``lutkan.score.predictor`` on first use (``import lutkan`` stays light)."""
    if name == "Predictor":
        from lutkan.score.predictor import Predictor

        return Predictor
    raise AttributeError(f"module 'lutkan' has no attribute {name!r}")


__all__ = [
    "ArtifactError", "CheckpointError", "ContractOptions", "ExportError", "InputError", "LUTLayer", "LUTModel",
    "LutKanError", "OnnxModelError", "Predictor", "UnsupportedModelError", "compile_model", "evaluate", "export", "load",
    "save",
]
