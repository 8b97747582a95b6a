"""Where the demo's model and inputs come from.

Model: the bundled ``models/breast_cancer`` by default, else ``--model PATH`` (a checkpoint prefix
``DIR/ID`` or a folder). Inputs: ``--data X.npz`` (``X_test`` and optional ``y_test``; a plain ``.npy``
is inputs only), else a ``test_data.npz`` beside the checkpoint, else the checkpoint's ``cache_data``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lutkan.demo.config import DEFAULT_MODEL_NAME, DemoData, default_model_path
from lutkan.errors import InputError, LutKanError


def resolve_model(path: str | None) -> tuple[str, str]:
    """(source path for ``load_source``, display name) of ``--model`` (None: the bundled default)."""
    if path is None:
        p = default_model_path()
        if not p.with_name(p.name + "_state").is_file():
            raise LutKanError(f"the bundled default model is not at {p.parent} (lutkan installed without the "
                              f"source tree?); pass --model PATH to a pykan checkpoint")
        return str(p), DEFAULT_MODEL_NAME
    p = Path(path)
    if p.is_dir():
        name = p.resolve().name
    else:
        name = f"{p.parent.resolve().name}/{p.name}"
    return str(path), name


def _find_test_data(source: str, data: str | None) -> Path | None:
    if data is not None:
        return Path(data)
    p = Path(source)
    folder = p if p.is_dir() else p.parent
    cand = folder / "test_data.npz"
    return cand if cand.is_file() else None


def _load_data(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(X, y or None) from an .npz with X_test [y_test], or a plain .npy of inputs."""
    try:
        f = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read --data {str(path)!r}: {e}") from None
    if isinstance(f, np.ndarray):  # a plain .npy: inputs only
        return f, None
    with f:
        keys = list(f.keys())
        xk = next((k for k in ("X_test", "X", "x") if k in keys), None)
        if xk is None:
            raise InputError(f"{path}: no X_test array (found {keys}); pass an .npz with X_test and "
                             f"optionally y_test")
        yk = next((k for k in ("y_test", "y") if k in keys), None)
        return np.asarray(f[xk]), (None if yk is None else np.asarray(f[yk]))


def _is_class_labels(y: np.ndarray, n_classes: int) -> bool:
    """Whether ``y`` holds class indices of a model with ``n_classes`` classes (integers in range, one per row)."""
    if y.ndim > 1 and not (y.ndim == 2 and y.shape[1] == 1):
        return False
    if y.dtype.kind in "iub":
        return bool(y.size) and y.min() >= 0 and y.max() < n_classes
    if y.dtype.kind != "f" or not np.isfinite(y).all():
        return False
    return bool(np.all(y == np.round(y))) and y.min() >= 0 and y.max() < n_classes


def _task(task: str, y_true: np.ndarray | None, n_classes: int) -> str:
    """The resolved task of ``--task`` (see ``config.TASKS``)."""
    if task != "auto":
        return task
    if y_true is None:
        return "regression"
    return "classification" if _is_class_labels(y_true, n_classes) else "regression"


def _labels(y_true: np.ndarray, task: str, n: int, n_out: int, n_classes: int) -> np.ndarray:
    """Class indices (N,) int64 or regression targets (N, n_out) float64, checked against the rows."""
    if task == "classification":
        if not _is_class_labels(y_true, n_classes) or y_true.reshape(-1).shape[0] != n:
            raise InputError(f"y_test must hold {n} class indices in [0, {n_classes}) for a model with {n_out} "
                             f"output(s) (got shape {y_true.shape}, dtype {y_true.dtype}); pass --task regression "
                             f"if they are targets")
        return y_true.astype(np.int64).reshape(-1)
    y = np.asarray(y_true, dtype=np.float64)
    y = y.reshape(-1, 1) if y.ndim == 1 else y
    if y.shape != (n, n_out):
        raise InputError(f"y_test has shape {y_true.shape}; regression targets for {n} rows of a model with "
                         f"{n_out} output(s) must be ({n}, {n_out})" + (f" or ({n},)" if n_out == 1 else ""))
    return y


def load_inputs(source: str, src, data: str | None, task: str = "auto") -> DemoData:
    """The demo's inputs for the model ``src`` read from ``source``, checked against its width, and the task.

    Raises:
        InputError: unreadable data, inputs of the wrong width, an empty batch, labels that do not
            match the rows or (classification) lie outside the model's classes.
        LutKanError: no inputs at all (no ``--data``, no ``test_data.npz``, no ``cache_data``).
    """
    data_path = _find_test_data(source, data)
    if data_path is not None:
        x, y_true = _load_data(data_path)
        desc = f"{data_path} ({'labelled' if y_true is not None else 'no labels'})"
    elif src.cache_data is not None:
        x, y_true = np.asarray(src.cache_data), None
        desc = "the checkpoint's cache_data (no labels)"
    else:
        raise LutKanError(f"{source}: no test data: the checkpoint has no cache_data and no test_data.npz is "
                          f"beside it; pass --data X.npz with X_test (and optionally y_test)")
    if x.ndim != 2 or x.shape[1] != src.n_inputs:
        raise InputError(f"the demo inputs have shape {x.shape}; the model expects (batch, {src.n_inputs})")
    if x.shape[0] == 0:
        raise InputError("the demo inputs are an empty batch")
    x = np.ascontiguousarray(x, dtype=np.float32)
    n, n_out = int(x.shape[0]), src.width[-1]
    n_classes = 2 if n_out == 1 else n_out
    resolved = _task(task, None if y_true is None else np.asarray(y_true), n_classes)
    if y_true is not None:
        y_true = np.asarray(y_true)
        if y_true.shape[0] != n:
            raise InputError(f"y_test has {y_true.shape[0]} labels for {n} input rows")
        y_true = _labels(y_true, resolved, n, n_out, n_classes)
    return DemoData(x=x, y_true=y_true, n_classes=n_classes, desc=desc, task=resolved)


__all__ = ["load_inputs", "resolve_model"]
