"""Class 1: values that pass a naive check and still break float32 arithmetic.

Rejected everywhere they can enter (artifact loader, compiler): knots whose span overflows float32 (the ±3e38
case that made the Numba kernel index out of bounds), knots, dequantized table values and float32 parameters
beyond ``VALUE_MAX``. Accepted values at the bound are evaluated by every backend of the oracle (NumPy, Numba,
onnxruntime function/standard forms, the plugin on function/custom forms, onnx.reference) on adversarial inputs
and must agree (``identical``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from lutkan.artifact import LUTModel, from_bytes
from lutkan.contract import VALUE_MAX, ContractOptions
from lutkan.errors import ArtifactError, UnsupportedModelError
from lutkan.tables import dequantize
from lutkan.testing.attacks.crafting import FILE, identical, reject, with_arrays
from lutkan.testing.inputs import adversarial_inputs, single_value_rows
from lutkan.testing.models import random_model, random_source

WIDTH = (3, 3, 2)


def _model(scheme="int8", oob="zero", interp="linear", boundary="closed", seed=0, width=WIDTH) -> LUTModel:
    opts = ContractOptions(L=8 if interp != "poly" else 4, scheme=scheme, oob=oob, interp=interp, boundary=boundary)
    return random_model(list(width), opts, seed=seed, masked=0.2, knots=("uniform", "nonuniform", "repeated"))


def _load(blob: bytes):
    return from_bytes(blob, source=FILE)


def _loader_case(scheme: str, key: str, edit, *needles: str):
    def case(info):
        m = _model(scheme)
        arr = np.array(getattr(m.layers[0], key.rsplit(".", 1)[-1]))
        return reject(lambda: _load(with_arrays(m, {key: edit(arr)})), ArtifactError, FILE, *needles)
    return case


def _span_overflow(k):
    n = k.shape[1]
    k[0] = np.where(np.arange(n) < n // 2, -3e38, 3e38).astype(np.float32)
    return k


def _scaled_knots(k, top):
    return (k * np.float32(top / np.abs(k).max())).astype(np.float32)


def _set(value, idx=(0, 0)):
    def edit(a):
        a[idx] = value
        return a
    return edit


def _compiler_case(edit, *needles):
    def case(info):
        from lutkan.compiler import compile_model

        src = random_source(list(WIDTH), G=4, k=3, seed=1)
        layers = list(src.layers)
        layers[0] = edit(layers[0])
        src = replace(src, layers=tuple(layers))
        return reject(lambda: compile_model(src, ContractOptions(L=8)), UnsupportedModelError, *needles)
    return case


def _grid_span(layer):
    g = layer.grid.copy()
    g[1] = np.linspace(-3e38, 3e38, g.shape[1])
    return replace(layer, grid=g)


def _coef_huge(layer):
    return replace(layer, coef=layer.coef * 1e31)


def _at_limit(m: LUTModel, which: str) -> LUTModel:
    """``m`` with its last layer's dequantized tables (``tables``) or its first layer's knots (``knots``) scaled to
    just inside ``VALUE_MAX``."""
    layers = list(m.layers)
    if which == "knots":
        layers[0] = replace(layers[0], knots=_scaled_knots(np.array(layers[0].knots), 0.99 * VALUE_MAX))
    else:
        last = layers[-1]
        top = 60000.0 if last.table.dtype == np.float16 else 0.99 * VALUE_MAX
        deq = np.abs(dequantize(last.table, last.scale, last.offset)).max()
        f = top / float(deq)
        if last.scale is None:
            layers[-1] = replace(last, table=(last.table.astype(np.float64) * f).astype(last.table.dtype))
        else:
            layers[-1] = replace(last, scale=(last.scale * np.float32(f)).astype(np.float32),
                                 offset=None if last.offset is None else (last.offset * np.float32(f)).astype(np.float32))
    return replace(m, layers=tuple(layers))


def _sawtooth(m: LUTModel) -> LUTModel:
    """``m`` (one layer) with every stored sample alternating between +-0.99 VALUE_MAX (float16: +-60000): the
    largest slopes ``T[r+1] - T[r]`` the bound allows, where an unbounded table overflows to inf and a backend
    that multiplies by a 0/1 mask gets NaN where another selects 0."""
    (layer,) = m.layers
    E, K, L = layer.table.shape
    sign = np.where(np.arange(L) % 2 == 0, 1.0, -1.0)[None, None, :] * np.ones((E, K, 1))
    top = 0.99 * VALUE_MAX
    scheme = m.contract.scheme
    if scheme == "int8":
        new = {"table": (sign * 127).astype(np.int8), "scale": np.full((E, K), top / 127, np.float32)}
    elif scheme == "uint8":
        new = {"table": np.where(sign > 0, 255, 0).astype(np.uint8), "scale": np.full((E, K), 2 * top / 255, np.float32),
               "offset": np.full((E, K), -top, np.float32)}
    else:
        new = {"table": (sign * (60000.0 if scheme == "float16" else top)).astype(layer.table.dtype)}
    return replace(m, layers=(replace(layer, **new),))


def _limit_case(which: str, **opts):
    def case(info):
        if which == "sawtooth":
            m = _sawtooth(_model(width=(3, 2), **opts))
        else:
            m = _at_limit(_model(**opts), which)
        x = np.concatenate([single_value_rows(m), adversarial_inputs(m, 48, seed=3)])
        with np.errstate(all="ignore"):
            info["max_abs_output"] = float(np.nanmax(np.abs(np.where(np.isfinite(x), x, 0))))
        return identical(m, x, what=f"{which} at VALUE_MAX, {opts}")
    return case


CASES = [
    ("loader: knots spanning +-3e38", _loader_case("int8", "layers.0.knots", _span_overflow, "knots")),
    ("loader: knots at 2e30", _loader_case("int8", "layers.0.knots", lambda k: _scaled_knots(k, 2e30), "knots")),
    ("loader: int8 scale 3e38/127", _loader_case("int8", "layers.0.scale", _set(3e38 / 127), "dequantized table")),
    ("loader: uint8 offset -3e38", _loader_case("uint8", "layers.0.offset", _set(-3e38), "dequantized table")),
    ("loader: uint8 scale 1e36", _loader_case("uint8", "layers.0.scale", _set(1e36), "dequantized table")),
    ("loader: float32 table 3e38", _loader_case("float32", "layers.0.table", _set(3e38, (0, 0, 0)),
                                                "dequantized table")),
    ("loader: base_weight 3e38", _loader_case("int8", "layers.0.base_weight", lambda a: np.where(a != 0, 3e38, a)
                                              .astype(np.float32), "base_weight")),
    ("loader: node_scale 1e38", _loader_case("int8", "layers.0.node_scale", _set(1e38, 0), "node_scale")),
    ("loader: subnode_bias -1e31", _loader_case("int8", "layers.0.subnode_bias", _set(-1e31, 0), "subnode_bias")),
    ("compiler: grid spanning +-3e38", _compiler_case(_grid_span, "layer 0, input 1")),
    ("compiler: edge values 1e31", _compiler_case(_coef_huge, "layer 0, edge", "VALUE_MAX")),
]
CASES += [(f"limit: tables at VALUE_MAX, {s}, oob={o}", _limit_case("tables", scheme=s, oob=o))
          for s in ("int8", "uint8", "float32") for o in ("zero", "clip", "extrapolate")]
CASES += [(f"limit: knots at VALUE_MAX, oob={o}", _limit_case("knots", oob=o)) for o in ("zero", "clip", "extrapolate")]
CASES += [(f"limit: samples alternating +-VALUE_MAX, {s}, {i}, oob={o}", _limit_case("sawtooth", scheme=s, oob=o,
                                                                                     interp=i))
          for s in ("int8", "uint8", "float32") for o in ("zero", "clip", "extrapolate") for i in ("linear", "nearest")]
CASES += [
    ("limit: float16 tables at 6e4, extrapolate", _limit_case("tables", scheme="float16", oob="extrapolate")),
    ("limit: nearest int8 tables, zero", _limit_case("tables", interp="nearest")),
    ("limit: half_open uint8 tables, zero", _limit_case("tables", scheme="uint8", boundary="half_open")),
    ("limit: poly float32 tables, extrapolate", _limit_case("tables", scheme="float32", interp="poly",
                                                            oob="extrapolate")),
]
