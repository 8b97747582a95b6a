"""Validation of a ``LUTKanEdge`` / ``KanSymbolic`` node's inputs against the schema and the node's attributes.

One check for every consumer of untrusted op inputs: the onnxruntime plugin (``lutkan.runtime_ext.graph``, once per
node when the session is created) and the ``onnx.reference`` OpRuns (``reference_op``, per call). It accepts
exactly what lutkan's exporter writes for a valid model, so that no file can make the plugin compute numbers the
op's standard-op body (plain onnxruntime) or the NumPy reference would not:

* presence by table dtype: int8 needs ``TableScale`` and no ``TableOffset``; uint8 needs both; float16/float32
  neither (``poly``: float tables only, at most ``POLY_MAX_L`` coefficients);
* dtypes and shapes ``(I, K, L, O)`` with ``L`` the node's attribute, ``I, K, O >= 1``;
* values: every float finite; knots sorted with ``|t| <= VALUE_MAX``; ``Bounds`` and ``SegScale`` equal to what
  the knots and the attributes define (``tables.index_hi``, ``tables.segment_scales``); ``EdgeMask`` 0/1 with
  ``BaseWeight`` and ``Table`` zero off it; scales >= 0, int8 codes in [-127, 127]; every dequantized table value
  and base weight within ``VALUE_MAX`` (``docs/contract.md`` §5).
"""

from __future__ import annotations

import numpy as np

from lutkan.artifact_checks import dequantized_extent
from lutkan.contract import POLY_MAX_L, VALUE_MAX
from lutkan.errors import OnnxModelError
from lutkan.symbolic import SYMBOLIC_CODES
from lutkan.tables import index_hi, segment_scales

__all__ = ["check_edge_inputs", "check_symbolic_inputs", "required_inputs"]

_TABLE_DTYPES = ("int8", "uint8", "float16", "float32")


def required_inputs(table_dtype: str) -> tuple[bool, bool]:
    """(TableScale, TableOffset) presence the schema requires for a table of ``table_dtype``."""
    return table_dtype in ("int8", "uint8"), table_dtype == "uint8"


def _fail(where: str, msg: str) -> OnnxModelError:
    return OnnxModelError(f"{where}: {msg}")


def _bounded(where: str, role: str, a: np.ndarray) -> None:
    if a.size and not np.all(np.isfinite(a)):
        idx = tuple(int(v) for v in np.argwhere(~np.isfinite(a))[0])
        raise _fail(where, f"{role} contains NaN/inf (at {idx})")
    if a.size and float(np.abs(a).max()) > VALUE_MAX:
        raise _fail(where, f"{role} holds |value| = {float(np.abs(a).max()):.4g} > {VALUE_MAX:g} "
                           f"(lutkan.contract.VALUE_MAX)")


def _presence(where: str, arrs: dict, attrs: dict) -> str:
    tb = arrs.get("Table")
    if tb is None:
        raise _fail(where, "required input Table is missing")
    dt = np.dtype(tb.dtype).name
    if dt not in _TABLE_DTYPES:
        raise _fail(where, f"Table must be int8, uint8, float16 or float32, got {dt}")
    need_scale, need_offset = required_inputs(dt)
    for role, need in (("TableScale", need_scale), ("TableOffset", need_offset)):
        given = arrs.get(role) is not None
        if need and not given:
            raise _fail(where, f"a {dt} Table needs input {role} (the schema: int8 -> TableScale; uint8 -> "
                               f"TableScale and TableOffset), but it is missing or empty")
        if given and not need:
            raise _fail(where, f"a {dt} Table takes no {role} input, but one is given (the standard-op body of a "
                               f"{dt} table ignores it, so the file would be read two ways)")
    if attrs["interp"] == "poly" and (tb.dtype.kind != "f" or attrs["L"] > POLY_MAX_L):
        raise _fail(where, f"interp='poly' needs a float16/float32 Table with L <= {POLY_MAX_L} coefficients, got "
                           f"{dt} L={attrs['L']}")
    return dt


def _shapes(where: str, arrs: dict, L: int) -> tuple[int, int, int]:
    kn, bw = arrs["Knots"], arrs["BaseWeight"]
    if kn.ndim != 2 or kn.shape[0] < 1 or kn.shape[1] < 2:
        raise _fail(where, f"Knots must be a float32 (I, K+1) array with I >= 1, K >= 1, got {kn.dtype} "
                           f"{tuple(kn.shape)}")
    if bw.ndim != 2 or bw.shape[1] < 1:
        raise _fail(where, f"BaseWeight must be a float32 (I, O) array with O >= 1, got shape {tuple(bw.shape)}")
    I, K, O = int(kn.shape[0]), int(kn.shape[1]) - 1, int(bw.shape[1])
    tdt = arrs["Table"].dtype
    want = {"Knots": (np.float32, (I, K + 1)), "Bounds": (np.float32, (3, I)), "SegScale": (np.float32, (I, K)),
            "BaseWeight": (np.float32, (I, O)), "EdgeMask": (np.float32, (I, O)), "Table": (tdt, (I, K, L, O)),
            "TableScale": (np.float32, (I, K, O)), "TableOffset": (np.float32, (I, K, O))}
    for role, (dtype, shape) in want.items():
        a = arrs.get(role)
        if a is None:
            continue
        if a.dtype != np.dtype(dtype):
            raise _fail(where, f"{role} must be {np.dtype(dtype).name}, got {a.dtype}")
        if tuple(a.shape) != shape:
            raise _fail(where, f"{role} has shape {tuple(a.shape)}, expected {shape} (I={I} inputs, K={K} segments, "
                               f"L={L} samples, O={O} outputs)")
    return I, K, O


def _knot_values(where: str, arrs: dict, attrs: dict) -> None:
    kn = arrs["Knots"]
    _bounded(where, "Knots", kn)
    bad = np.any(np.diff(kn, axis=1) < 0, axis=1)
    if np.any(bad):
        raise _fail(where, f"Knots row {int(np.nonzero(bad)[0][0])} is not nondecreasing")
    b = arrs["Bounds"]
    _bounded(where, "Bounds", b)
    if not np.all(np.isfinite(arrs["SegScale"])) or np.any(arrs["SegScale"] < 0):
        raise _fail(where, "SegScale must be finite and >= 0")
    if not (np.array_equal(b[0], kn[:, 0]) and np.array_equal(b[1], kn[:, -1])):
        raise _fail(where, "Bounds rows 0/1 must equal the first/last knot of each input")
    if not np.array_equal(b[2], index_hi(kn, attrs["boundary"])):
        raise _fail(where, f"Bounds row 2 (hi_idx) must be the indexing bound of boundary={attrs['boundary']!r} "
                           f"(the last knot, or the float32 below it for half_open)")
    numerator = 1 if attrs["interp"] == "poly" else attrs["L"] - 1
    if not np.array_equal(arrs["SegScale"], segment_scales(kn, numerator)):
        raise _fail(where, f"SegScale must be float32({numerator}) / (t[k+1] - t[k]) per segment (0 for a "
                           f"zero-width segment), as the schema defines it from Knots")


def _table_values(where: str, arrs: dict, dt: str) -> None:
    em, bw, tb = arrs["EdgeMask"], arrs["BaseWeight"], arrs["Table"]
    if not np.all((em == 0) | (em == 1)):
        raise _fail(where, "EdgeMask must hold 0 (inactive) or 1 (active edge) only")
    off = em == 0
    _bounded(where, "BaseWeight", bw)
    if np.any(bw[off] != 0):
        raise _fail(where, "BaseWeight is nonzero on an inactive edge (EdgeMask 0)")
    if dt in ("float16", "float32") and not np.all(np.isfinite(tb)):
        raise _fail(where, "Table contains NaN/inf")
    if np.any((tb != 0) & off[:, None, None, :]):
        raise _fail(where, "Table is nonzero on an inactive edge (EdgeMask 0)")
    if dt == "int8" and tb.size and tb.min() < -127:
        raise _fail(where, "int8 Table codes must lie in [-127, 127] (symmetric)")
    scale, offset = arrs.get("TableScale"), arrs.get("TableOffset")
    for role, a in (("TableScale", scale), ("TableOffset", offset)):
        if a is not None and not np.all(np.isfinite(a)):
            raise _fail(where, f"{role} contains NaN/inf")
    if scale is not None and np.any(scale < 0):
        raise _fail(where, "TableScale must be >= 0")
    ext = dequantized_extent(tb, scale, offset, axis=2)
    if ext.size and not np.all(ext <= VALUE_MAX):
        i, k, j = (int(v) for v in np.argwhere(~(ext <= VALUE_MAX))[0])
        raise _fail(where, f"edge ({i}, {j}), segment {k}: dequantized Table value of magnitude {ext[i, k, j]:.4g} > "
                           f"{VALUE_MAX:g} (lutkan.contract.VALUE_MAX)")


def check_edge_inputs(where: str, arrs: dict, attrs: dict) -> tuple[int, int]:
    """Validate a LUTKanEdge node's inputs (formal name -> array, None for an absent optional input; X excluded)
    against the schema and its attributes (``L``, ``interp``, ``boundary``, ...). Returns (I, O); raises
    OnnxModelError naming ``where`` and the input."""
    dt = _presence(where, arrs, attrs)
    for role in ("Knots", "Bounds", "SegScale", "BaseWeight", "EdgeMask"):
        if arrs.get(role) is None:
            raise _fail(where, f"required input {role} is missing")
    I, _, O = _shapes(where, arrs, attrs["L"])
    _knot_values(where, arrs, attrs)
    _table_values(where, arrs, dt)
    return I, O


def check_symbolic_inputs(where: str, arrs: dict, funs: list[str], n_outputs: int) -> None:
    """Validate a KanSymbolic node's Src, Dst, Affine against its ``functions`` and ``n_outputs`` attributes."""
    S = len(funs)
    for role, dtype, shape in (("Src", np.int64, (S,)), ("Dst", np.int64, (S,)), ("Affine", np.float64, (S, 4))):
        a = arrs.get(role)
        if a is None or a.dtype != np.dtype(dtype) or tuple(a.shape) != shape:
            raise _fail(where, f"{role} must be {np.dtype(dtype).name} {shape} ({S} functions), got "
                               f"{getattr(a, 'dtype', None)} {tuple(getattr(a, 'shape', ()))}")
    unknown = sorted({f for f in funs if f not in SYMBOLIC_CODES})
    if unknown or n_outputs < 1 or S < 1:
        raise _fail(where, f"unknown symbolic function(s) {unknown}, or n_outputs={n_outputs} / {S} edges < 1")
    if np.any(arrs["Src"] < 0) or np.any(arrs["Dst"] < 0) or np.any(arrs["Dst"] >= n_outputs):
        raise _fail(where, f"Src must be >= 0 and Dst in [0, {n_outputs})")
    if not np.all(np.isfinite(arrs["Affine"])):
        raise _fail(where, "Affine contains NaN or inf")
