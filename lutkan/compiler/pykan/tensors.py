"""Torch-side helpers shared by the checkpoint and live readers.

torch is imported only when one of these is called (``torch_module``), never at import time, so
importing :mod:`lutkan.compiler.pykan` stays torch-free.
"""

from __future__ import annotations

import numpy as np

from lutkan.errors import UnsupportedModelError


def torch_module():
    """The ``torch`` module, imported on first use.

    Raises:
        ImportError: torch is not installed (naming the ``lutkan[pykan]`` extra).
    """
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("reading pykan models needs torch; install lutkan[pykan]") from e
    return torch


def pykan_version() -> str | None:
    """The installed pykan distribution's version, or None (recorded in provenance)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pykan")
    except PackageNotFoundError:
        return None


def to_f64(t) -> np.ndarray:
    """A float64 NumPy copy of a tensor/array (exact for float16/32/64 inputs).

    Raises:
        UnsupportedModelError: a sparse, meta or complex tensor.
    """
    if hasattr(t, "detach"):
        torch = torch_module()
        if t.layout != torch.strided or t.is_meta:  # sparse / meta tensors have no plain data to read
            raise UnsupportedModelError(f"tensor of shape {tuple(t.shape)} has layout {t.layout} on device "
                                        f"{t.device}; only dense tensors with data are supported")
        t = t.detach().cpu()
        if t.is_complex():
            raise UnsupportedModelError(f"complex tensor of shape {tuple(t.shape)} is not supported")
        if not t.is_floating_point():
            t = t.to(torch.float64)
        elif t.dtype == torch.bfloat16:
            t = t.float()
        t = t.numpy()
    return np.array(t, dtype=np.float64, copy=True)


def dtype_name(dt) -> str:
    """``torch.float32`` -> ``"float32"`` (NumPy dtypes pass through ``str``)."""
    return str(dt).replace("torch.", "")


def widest_float(dtypes) -> str | None:
    """The widest floating dtype name among ``dtypes`` (float64 > float32 > bfloat16 > float16), or None."""
    order = ["float64", "float32", "bfloat16", "float16"]
    names = {dtype_name(d) for d in dtypes}
    for name in order:
        if name in names:
            return name
    return None
