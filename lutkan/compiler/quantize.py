"""Per-(edge, segment) quantization of sampled tables, from the samples alone (no calibration).

* ``int8`` symmetric: ``scale = max|f| / 127`` (1 if all zero), ``q = clip(rint(f/scale), -127, 127)``.
* ``uint8`` asymmetric: ``offset = min f``, ``scale = (max - min) / 255`` (1 if constant),
  ``q = clip(rint((f - offset)/scale), 0, 255)``.
* ``float16`` / ``float32``: the samples rounded to that dtype (no scale/offset).

Scales and offsets are stored in float32, and q is computed against those stored float32 values,
so dequantization (``offset + scale*q``) reproduces what the encoder assumed.
"""

from __future__ import annotations

import numpy as np

from lutkan.errors import UnsupportedModelError


def quantize(f: np.ndarray, scheme: str) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Quantize (E, K, L) float64 samples. Returns (table, scale (E, K) | None, offset (E, K) | None)."""
    if scheme == "float32":
        return _checked_float(f, np.float32), None, None
    if scheme == "float16":
        return _checked_float(f, np.float16), None, None
    if scheme == "int8":
        m = np.abs(f).max(axis=2)
        scale = (m / 127.0).astype(np.float32)
        scale[scale == 0] = 1
        q = np.clip(np.rint(f / scale.astype(np.float64)[..., None]), -127, 127).astype(np.int8)
        return q, _checked_scale(scale), None
    if scheme == "uint8":
        lo, hi = f.min(axis=2), f.max(axis=2)
        offset = lo.astype(np.float32)
        scale = ((hi - lo) / 255.0).astype(np.float32)
        scale[scale == 0] = 1
        q = np.clip(np.rint((f - offset.astype(np.float64)[..., None]) / scale.astype(np.float64)[..., None]),
                    0, 255).astype(np.uint8)
        return q, _checked_scale(scale), offset
    raise ValueError(f"unknown scheme {scheme!r}")


def _checked_float(f: np.ndarray, dtype) -> np.ndarray:
    with np.errstate(over="ignore"):
        t = f.astype(dtype)
    if not np.all(np.isfinite(t)):
        raise UnsupportedModelError(
            f"edge function values overflow {np.dtype(dtype).name} (max |f| = {np.abs(f).max():.3g}); "
            f"use --scheme float32, int8 or uint8")
    return t


def _checked_scale(scale: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(scale)):
        raise UnsupportedModelError("edge function values overflow float32 scales")
    return scale
