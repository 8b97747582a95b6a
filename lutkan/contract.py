"""The LUT inference contract: option names, legal values and numeric constants.

The math these options select is written down once in ``docs/contract.md`` and implemented by
``lutkan.evaluators.numpy_eval`` (the definition of correct); every other backend (Numba,
ONNX forms, the onnxruntime plugin) must agree with it within float32 rounding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from lutkan.errors import LutKanError

SCHEMES = ("int8", "uint8", "float16", "float32")
"""Table storage: int8 symmetric and uint8 asymmetric per (edge, segment), or float tables."""
INTERPS = ("linear", "nearest", "poly")
"""``linear``/``nearest``: L samples per segment; ``poly``: the segment's own polynomial (k+1 coefficients
in the local coordinate u = (x - t_k)/(t_{k+1} - t_k), Horner), exact to float rounding."""
SYMBOLIC_MODES = ("exact", "tabulate")
"""``exact``: symbolic edges are evaluated as pykan does, c*f(a*x+b)+d, in every backend (default);
``tabulate``: folded into the edge's table on the knot domain (for table-only targets)."""
POLY_SCHEMES = ("float16", "float32")
BOUNDARIES = ("closed", "half_open")
OOB_POLICIES = ("clip", "zero", "extrapolate")
BASE_FUNS = ("silu", "identity", "zero")

QUANTIZED_SCHEMES = ("int8", "uint8")
TABLE_DTYPES = {"int8": np.int8, "uint8": np.uint8, "float16": np.float16, "float32": np.float32}

FLT_MAX = np.float32(np.finfo(np.float32).max)
"""±inf inputs are replaced by ±FLT_MAX wherever the contract evaluates a line (base branch,
``extrapolate``); the tabulated term under ``clip``/``zero`` never sees them."""

VALUE_MAX = 1e30
"""Largest magnitude of any stored float32 value that enters the arithmetic: knots, dequantized table values
(``offset + scale*q``), base weights, node/subnode affines (``docs/contract.md`` §5). With ``|t| <= VALUE_MAX``,
``x - t`` is finite for every float32 ``x`` (VALUE_MAX is below half an ulp of FLT_MAX) and so is every knot
span; with ``|T| <= VALUE_MAX`` no slope ``T[r+1] - T[r]``, interpolated value or sum of up to 10**8 table terms
overflows, so no backend multiplies an inf by 0 where another selects 0. Larger values are refused by the
compiler, the artifact loader and the ONNX op validation. Equal to ``lutkan.metrics.HUGE``, the edge of float32's
overflow region."""

U_EXT = np.float32(2.0**16)
"""``interp="poly"`` with ``oob="extrapolate"`` evaluates the boundary polynomial at a local coordinate
clipped to +-U_EXT segment widths (every Bernstein basis value stays finite in float32 for L <= 8)."""

POLY_MAX_L = 8
"""Most coefficients per segment ``interp="poly"`` takes (spline order <= 7)."""

MIN_L = 2
MAX_L = 4096

DEFAULT_L = 64
DEFAULT_SCHEME = "int8"
DEFAULT_INTERP = "linear"
DEFAULT_BOUNDARY = "closed"
DEFAULT_OOB = "zero"
DEFAULT_SYMBOLIC = "exact"


def valid_combination(scheme: str, interp: str) -> bool:
    """Whether a table scheme can store an interpolation (``poly`` coefficients are float16/float32 only)."""
    return interp != "poly" or scheme in POLY_SCHEMES


OPTION_GRID = tuple((s, i, b, o) for s in SCHEMES for i in INTERPS for b in BOUNDARIES for o in OOB_POLICIES
                    if valid_combination(s, i))
"""Every valid (scheme, interp, boundary, oob) combination."""


def _check_choice(name: str, value: object, legal: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in legal:
        raise LutKanError(f"{name}={value!r} is not supported; choose one of {', '.join(legal)}")
    return value


@dataclass(frozen=True)
class ContractOptions:
    """How a compiled model samples, stores and evaluates its tables.

    Attributes:
        L: samples per knot interval, endpoints included (``L >= 2``); for ``interp="poly"`` the number
            of coefficients per segment, max spline order + 1, which the compiler sets (a given L is ignored).
        scheme: ``int8`` (symmetric), ``uint8`` (asymmetric), ``float16`` or ``float32`` tables
            (``poly``: float16 or float32 coefficients).
        interp: ``linear``, ``nearest`` (ties go to the right sample) or ``poly`` (exact polynomial pieces).
        boundary: ``closed`` ([lo, hi]) or ``half_open`` ([lo, hi)) domain membership.
        oob: ``clip`` (hold boundary value), ``zero`` (tabulated term 0 outside the domain),
            ``extrapolate`` (continue the boundary segment's line, or its polynomial for ``poly``).
        symbolic: ``exact`` (evaluate symbolic edges as pykan does, everywhere) or ``tabulate``
            (fold them into the tables on the knot domain; not with ``poly``).
    """

    L: int = DEFAULT_L
    scheme: str = DEFAULT_SCHEME
    interp: str = DEFAULT_INTERP
    boundary: str = DEFAULT_BOUNDARY
    oob: str = DEFAULT_OOB
    symbolic: str = DEFAULT_SYMBOLIC

    def __post_init__(self) -> None:
        if isinstance(self.L, bool) or not isinstance(self.L, (int, np.integer)):
            raise LutKanError(f"L={self.L!r} must be an integer >= {MIN_L}")
        if not MIN_L <= int(self.L) <= MAX_L:
            raise LutKanError(f"L={self.L!r} is out of range; use {MIN_L} <= L <= {MAX_L}")
        object.__setattr__(self, "L", int(self.L))
        _check_choice("scheme", self.scheme, SCHEMES)
        _check_choice("interp", self.interp, INTERPS)
        _check_choice("boundary", self.boundary, BOUNDARIES)
        _check_choice("oob", self.oob, OOB_POLICIES)
        _check_choice("symbolic", self.symbolic, SYMBOLIC_MODES)
        if not valid_combination(self.scheme, self.interp):
            raise LutKanError(f"interp='poly' stores polynomial coefficients as float16 or float32, not "
                              f"{self.scheme!r}; pass --scheme float32 (exact) or float16")
        if self.interp == "poly" and self.symbolic == "tabulate":
            raise LutKanError("interp='poly' holds the splines' own polynomials: symbolic edges cannot be "
                              "tabulated into it; use symbolic='exact' (the default)")

    @property
    def quantized(self) -> bool:
        return self.scheme in QUANTIZED_SCHEMES

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def seg_numerator(self) -> int:
        """Numerator of ``seg_scale``: ``L - 1`` (sample units) for tables, 1 (u in [0, 1]) for ``poly``."""
        return 1 if self.interp == "poly" else self.L - 1

    @classmethod
    def from_dict(cls, d: dict) -> ContractOptions:
        unknown = set(d) - {"L", "scheme", "interp", "boundary", "oob", "symbolic"}
        if unknown:
            raise LutKanError(f"unknown contract option(s): {sorted(unknown)}")
        return cls(**d)


VERIFY_TOL = {"poly": {"float32": 1e-4, "float16": 1e-2}, "linear": 2e-2, "nearest": 5e-2}
"""Default bound of ``lutkan verify`` on max abs error / max|pykan| per output (docs/contract.md §5).

``poly`` is exact up to float rounding of the stored coefficients: float32 measured <= 7.1e-6 and float16
<= 6.8e-3 on the bundled and real checkpoints. Tables add interpolation error: linear measured <= 9e-3 at
L=16 and 64 in every scheme on the bundled models and four of the six real checkpoints (logiknet_mult, whose
knots reach 1e9: up to 6.1e-2; torward_vlbi_deep, a deep model with a tiny output scale: up to 0.65), nearest
<= 1.9e-2 on the bundled models at L=16. A model over its default (e.g. a deep model with a tiny output scale at int8) is reported as a
failed verification: choose a wider scheme or larger L, or pass ``--tol`` to accept it."""


def verify_tolerance(options: ContractOptions) -> float:
    """The default ``lutkan verify`` tolerance for a model compiled under ``options`` (``VERIFY_TOL``)."""
    tol = VERIFY_TOL[options.interp]
    return float(tol[options.scheme] if isinstance(tol, dict) else tol)
