"""The "what a user would pick instead" baseline: a PyKAN model exported with ``torch.onnx.export``.

A user who wants ONNX inference for a trained pykan model calls ``model.speed()`` (otherwise the
symbolic branch unrolls into tens of thousands of nodes) and exports it with torch's exporter.
This module does exactly that, on a deep copy so the caller's model is left untouched, and checks
the ONNX graph against the torch forward in onnxruntime.

- ``exporter="dynamo"`` (default): ``torch.onnx.export(..., dynamo=True, optimize=True)``,
  opset 20, the faster of the two graphs in onnxruntime.
- ``exporter="legacy"``: the TorchScript exporter, ``dynamo=False, opset_version=17``.

Both graphs take ``x`` of shape ``("batch", n_inputs)`` float32 and return ``y`` of shape
``("batch", n_outputs)``. Needs torch and pykan (the ``lutkan[pykan]`` extra).
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import warnings
from pathlib import Path
from typing import Literal

import numpy as np

Exporter = Literal["dynamo", "legacy"]

LEGACY_OPSET = 17
#: The relative check: max|ort - torch| <= rtol * max(1, max|torch|) on random inputs.
DEFAULT_RTOL = 1e-4
_CHECK_BATCHES = (1, 3, 64)
_MAX_BATCH = 1 << 20


class ExportMismatchError(RuntimeError):
    """The exported ONNX graph does not reproduce the torch forward."""


def _has_active_symbolic(model) -> bool:
    return any(bool((sf.mask != 0).any()) for sf in model.symbolic_fun)


def prepare_for_export(model):
    """A deep copy of ``model`` in inference form: ``speed()`` semantics, eval mode, no grads.

    ``speed()`` turns the symbolic branch off. If the model has active symbolic edges (set by
    ``fix_symbolic``/``auto_symbolic``), turning it off would change the function, so the copy
    keeps ``symbolic_enabled`` on and only drops ``save_act``/``auto_save`` (what ``speed()``
    does besides). ``copy.deepcopy`` is used because pykan's own ``model.copy()`` writes
    ``copy_temp_*`` files into the current directory.
    """
    m = copy.deepcopy(model)
    keep_symbolic = bool(getattr(m, "symbolic_enabled", False)) and _has_active_symbolic(m)
    m.speed()  # symbolic_enabled=False, save_act=False, auto_save=False
    if keep_symbolic:
        m.symbolic_enabled = True
    m.eval()
    for p in m.parameters():
        p.requires_grad_(False)
    return m


@contextlib.contextmanager
def _quiet():
    """Silence torch.onnx's warnings, log lines and progress prints for the duration."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, lvl in zip(loggers, levels, strict=True):
                lg.setLevel(lvl)


def export_pykan_onnx(
    model,
    path: str | Path,
    *,
    n_inputs: int | None = None,
    exporter: Exporter = "dynamo",
    verify: bool = True,
    rtol: float = DEFAULT_RTOL,
    seed: int = 0,
) -> Path:
    """Export a live pykan ``MultKAN`` to ONNX the way a user would (after ``speed()``).

    Args:
        model: a ``kan.MultKAN``. Not modified: the export runs on a deep copy.
        path: the ``.onnx`` file to write (parent directories are created).
        n_inputs: columns of the input ``x``. Default: ``model.width_in[0]`` (with a pruned
            ``input_id`` the model reads ``x[:, input_id]``, so pass the original column count).
        exporter: ``"dynamo"`` (torch.export based, opset 20, ``optimize=True``) or ``"legacy"``
            (TorchScript based, ``opset_version=17``).
        verify: run the graph in onnxruntime (1 thread) on seeded random inputs ``1.5*randn``
            (batches 1, 3 and 64, so out-of-grid values are included) and compare with the torch
            forward of the copy.
        rtol: the verification bound, relative to the output scale:
            ``max|ort - torch| <= rtol * max(1, max|torch|)``.
        seed: seed of the verification inputs.

    Returns:
        ``Path`` of the written file.

    Raises:
        ValueError: unknown exporter. ExportMismatchError: verification failed.
    """
    import torch

    if exporter not in ("dynamo", "legacy"):
        raise ValueError(f"exporter must be 'dynamo' or 'legacy', not {exporter!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    m = prepare_for_export(model)
    if n_inputs is None:
        n_inputs = int(m.width_in[0])
    example = (torch.randn(4, n_inputs, generator=torch.Generator().manual_seed(seed)),)

    with _quiet(), torch.no_grad():
        if exporter == "dynamo":
            batch = torch.export.Dim("batch", min=1, max=_MAX_BATCH)
            prog = torch.onnx.export(
                m,
                example,
                dynamo=True,
                dynamic_shapes=({0: batch},),
                input_names=["x"],
                output_names=["y"],
                optimize=True,
                verbose=False,
            )
            prog.save(str(path))
        else:
            torch.onnx.export(
                m,
                example,
                str(path),
                dynamo=False,
                opset_version=LEGACY_OPSET,
                input_names=["x"],
                output_names=["y"],
                dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
            )

    if verify:
        verify_pykan_onnx(m, path, n_inputs=n_inputs, rtol=rtol, seed=seed)
    return path


def verify_pykan_onnx(
    model,
    path: str | Path,
    *,
    n_inputs: int,
    rtol: float = DEFAULT_RTOL,
    seed: int = 0,
    batches: tuple[int, ...] = _CHECK_BATCHES,
) -> float:
    """Compare the ONNX graph with ``model``'s torch forward; return the worst scaled error.

    ``model`` should already be in inference form (see :func:`prepare_for_export`).
    Raises :class:`ExportMismatchError` if ``max|ort - torch| > rtol * max(1, max|torch|)``.
    """
    import torch

    sess = make_pykan_session(path, threads=1)
    rng = np.random.default_rng(seed)
    worst = 0.0
    for b in batches:
        x = (1.5 * rng.standard_normal((b, n_inputs))).astype(np.float32)
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        (got,) = sess.run(["y"], {"x": x})
        if got.shape != ref.shape:
            raise ExportMismatchError(f"{path}: output shape {got.shape} != torch {ref.shape} at batch {b}")
        scale = max(1.0, float(np.abs(ref).max()))
        err = float(np.abs(got.astype(np.float64) - ref).max()) / scale
        if not np.isfinite(err) or err > rtol:
            raise ExportMismatchError(
                f"{path}: onnxruntime differs from torch at batch {b}: max|diff|/max(1,|y|) = {err:.3g} > {rtol:g}"
            )
        worst = max(worst, err)
    return worst


def make_pykan_session(path: str | Path, threads: int = 1):
    """An onnxruntime CPU ``InferenceSession`` for an exported pykan graph.

    ``threads`` sets ``intra_op_num_threads`` (0 = onnxruntime's default, all cores);
    inter-op is 1 and graph optimization is ``ORT_ENABLE_ALL``.
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])


__all__ = [
    "ExportMismatchError",
    "export_pykan_onnx",
    "make_pykan_session",
    "prepare_for_export",
    "verify_pykan_onnx",
]
