"""Validation of inference inputs, shared by every backend's front door."""

from __future__ import annotations

import numpy as np

from lutkan.errors import InputError


def check_input(x: object, n_inputs: int, *, name: str = "x", dtype=np.float32) -> np.ndarray:
    """Return ``x`` as a C-contiguous ``dtype`` (float32 unless told) (N, n_inputs) array, or raise InputError.

    Accepted: any real floating or integer array of shape (N, n_inputs) with N >= 1 (cast to
    ``dtype``). Rejected with a message naming the input and the expected shape/dtype: other ranks,
    widths, an empty batch, bool/complex/object/string dtypes.
    """
    if (type(x) is np.ndarray and x.dtype == dtype and x.ndim == 2 and x.shape[1] == n_inputs
            and x.shape[0] > 0 and x.flags.c_contiguous):
        return x  # fast path: already what every kernel wants
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except Exception as e:  # noqa: BLE001 - anything array-unlike is a user error
            raise InputError(f"input {name!r} is not array-like: {e}") from None
    if x.dtype.kind not in "fiu":  # real floats and integers only (bool, complex, timedelta64 ... are not data)
        raise InputError(f"input {name!r} has dtype {x.dtype}; expected float32 (float64 and integer "
                         f"arrays are converted) with shape (batch, {n_inputs})")
    if x.ndim != 2:
        raise InputError(f"input {name!r} has rank {x.ndim} (shape {x.shape}); expected a 2-D array "
                         f"of shape (batch, {n_inputs})")
    if x.shape[1] != n_inputs:
        raise InputError(f"input {name!r} has {x.shape[1]} columns; the model expects {n_inputs} "
                         f"(shape (batch, {n_inputs}))")
    if x.shape[0] == 0:
        raise InputError(f"input {name!r} is an empty batch (shape {x.shape}); pass at least one row")
    return np.ascontiguousarray(x, dtype=dtype)
