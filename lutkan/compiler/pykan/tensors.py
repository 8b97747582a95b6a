"""Torch-side helpers shared by the checkpoint and live readers.

torch is imported only when one of these is called (``torch_module``), never at import time, so
importing :mod:`lutkan.compiler.pykan` stays torch-free.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np

from lutkan import budget
from lutkan.errors import CheckpointError, UnsupportedModelError


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


def check_torch_file(data: bytes, path, what: str, max_bytes: int | None) -> None:
    """Refuse, before ``torch.load``, a ``what`` file that is not a torch zip archive or whose records would
    decompress to more than the resource budget (``lutkan.budget``).

    The legacy (pre-1.6) and raw-pickle formats are refused: their reader allocates the storage sizes the pickle
    declares before it checks them against the file. ``torch.save`` has written zip archives since torch 1.6.
    """
    if not data.startswith(b"PK\x03\x04"):
        raise CheckpointError(
            f"{path}: refused to unpickle the {what} file: it is not a torch zip archive, the only format lutkan "
            f"reads (with torch.load(weights_only)); the legacy (pre-1.6) and raw-pickle formats allocate the storage "
            f"sizes they declare before checking them. Re-save it with torch.save")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise CheckpointError(f"{path}: cannot read the {what} file as a torch.save file: {e}") from None
    total = sum(i.file_size for i in infos)
    budget.check(total, f"the {len(infos)} records of the {what} file (uncompressed)", limit=max_bytes,
                 error=CheckpointError, where=str(path))


def check_tensor_bytes(tensors: dict, path, max_bytes: int | None) -> None:
    """Refuse tensors whose float64 copies (what the reader makes of them) exceed the budget, before copying:
    a tensor stored with stride 0 (``expand``) declares far more elements than its file holds."""
    sizes = {k: int(v.numel()) * 8 for k, v in tensors.items()}
    if not sizes:
        return
    big = max(sizes, key=sizes.get)
    t = tensors[big]
    stored = int(t.untyped_storage().nbytes()) if t.layout == torch_module().strided and not t.is_meta else 0
    budget.check(sum(sizes.values()), f"copying {len(sizes)} tensors as float64 (the largest, {big!r}, has shape "
                 f"{tuple(t.shape)} and strides {tuple(t.stride()) if stored else '?'} over {stored} stored bytes)",
                 limit=max_bytes, error=CheckpointError, where=str(path))
