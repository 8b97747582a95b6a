"""Standard-op body of ``lutkan.LUTKanEdge`` (steps 1-7 of ``docs/contract.md`` §3), as ONNX nodes.

The same node list serves two uses: the model-local ``FunctionProto`` of the ``function`` export form
(``make_function``: formal input names from ``schema.INPUTS``) and the flat graph of the ``standard``
form (``emit_body`` with a layer's actual tensor names and a name prefix). One body serves every
layer of a model: ``I, K, L, O`` are read from ``Shape(Table)``.

Specialization. ONNX function bodies cannot branch on string attributes, and a model's contract
(``interp``, ``boundary``, ``oob``, table scheme) and ``base_fun`` are global to the model, so each
exported model carries exactly ONE ``LUTKanEdge`` FunctionProto whose body is built for the model's
attribute values (the node attributes repeat them; the FunctionProto's attribute defaults equal them).
Overloaded FunctionProtos (``overload`` field) were rejected: onnx's ``ReferenceEvaluator`` ignores the
overload and runs the wrong body (measured, onnx 1.23.2), while ORT 1.32 and ``onnx.inliner`` honour it.

Body (``X`` float32 (N, I), all other inputs initializers)::

    # folded by onnxruntime at session creation (inputs are initializers only):
    dense  = Reshape(offset + scale*Cast(Table), [I*K*L, O])        # dequantize first (lutkan/tables.py)
    VS     = [dense; 0-row; NaN-row_0..I-1] beside its in-segment slope T[r+1]-T[r]   -> [R, 2, O]
    # per call, on (N, I) tensors:
    x_s = Where(IsNaN(X), lo, X);  x_c = Min(Max(x_s, lo), hi_idx);  x_f = Clip(x_s, -+FLT_MAX)
    k   = ReduceSum(Cast(knots[:, 1:K]^T <= x_c[:, None, :]), axis=1)   # segment search, (N, K-1, I)
    t_k, s_k, row0 = GatherElements(knots[:, :K]^T | seg_scale^T | ((i*K + k)*L)^T, k)
    pos = Clip((x_c - t_k)*s_k, 0, L-1);  r0 = Min(Floor(pos), L-2);  w = pos - r0
    row = Clip(row0 + r0);  Where(x_s == x_c, row, 0-row) for oob=zero;  Where(IsNaN(X), NaN-row_i, row)
    Y   = MatMul([1, w] per input, Gather(VS, row)) + MatMul(base(x_f), BaseWeight)

``x_s == x_c`` is exactly domain membership (``lo <= x <= hi`` closed, ``lo <= x < hi`` half-open,
because ``hi_idx = nextafter(hi, -inf)`` there); the one exception, a zero-width half-open row at
``x == lo``, has an empty domain, so its table rows are zeroed for ``oob=zero``. The special rows
replace the elementwise ``Where`` on (N, I, O) tensors of the reference: the zero row gives exactly
``v = 0 + w*0 = 0``, and ``NaN-row_i`` (NaN on input ``i``'s active edges, 0 elsewhere) poisons exactly
the outputs step 7 poisons. Row indices are clamped before the Gather; ``k`` is a count, in range.
Arithmetic order is numpy_eval's except the edge sum (MatMul accumulation instead of ``v.sum``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from lutkan.contract import BASE_FUNS, BOUNDARIES, FLT_MAX, INTERPS, OOB_POLICIES, SCHEMES
from lutkan.custom_ops.schema import ATTRIBUTES, DOMAIN, INPUTS, OP_TYPE, OUTPUTS, TARGET_OPSET

_F = TensorProto.FLOAT
_I64 = TensorProto.INT64


@dataclass(frozen=True)
class BodySpec:
    """What one LUTKanEdge body is specialized for (the model's contract and base function)."""

    interp: str
    boundary: str
    oob: str
    base_fun: str
    scheme: str

    def __post_init__(self) -> None:
        for name, legal in (("interp", INTERPS), ("boundary", BOUNDARIES), ("oob", OOB_POLICIES),
                            ("base_fun", BASE_FUNS), ("scheme", SCHEMES)):
            if getattr(self, name) not in legal:
                raise ValueError(f"{name}={getattr(self, name)!r} is not one of {legal}")

    @property
    def attributes(self) -> dict[str, str]:
        """The string attributes of the op this body implements (``L`` is read from the table)."""
        return {"interp": self.interp, "boundary": self.boundary, "oob": self.oob, "base_fun": self.base_fun}

    @property
    def uses_line(self) -> bool:
        """Whether any input needs ``T[r0] + w*(T[r0+1] - T[r0])`` (else only single samples)."""
        return self.interp == "linear" or self.oob == "extrapolate"


class _Emitter:
    """Appends nodes; every produced value and node name is ``prefix + local name``."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.nodes: list[onnx.NodeProto] = []
        self._consts: dict[str, str] = {}

    def op(self, op_type: str, inputs: list[str], out: str, **attrs) -> str:
        name = self.prefix + out
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attrs))
        return name

    def const(self, value, dtype=np.float32) -> str:
        """A Constant node (emitted once per distinct value) holding a small tensor."""
        arr = np.asarray(value, dtype=dtype)
        kind = {np.dtype(np.float32): "f", np.dtype(np.int64): "i", np.dtype(np.bool_): "b"}[arr.dtype]
        flat = "_".join("nan" if v != v else f"{v:g}".replace("-", "m").replace("+", "")
                        for v in arr.reshape(-1).tolist())
        key = f"c{kind}{'' if arr.ndim == 0 else str(arr.ndim) + 'd'}_{flat}"
        if key not in self._consts:
            name = self.prefix + key
            self.nodes.append(helper.make_node("Constant", [], [name], name=name,
                                               value=numpy_helper.from_array(arr, name)))
            self._consts[key] = name
        return self._consts[key]

    def i64(self, *values: int) -> str:
        return self.const(list(values), np.int64)


def emit_body(spec: BodySpec, inputs: dict[str, str | None], output: str, prefix: str = "") -> list[onnx.NodeProto]:
    """Nodes computing ``output = LUTKanEdge(**inputs)`` for ``spec``.

    Args:
        spec: the attribute values and table scheme the body is specialized for.
        inputs: formal input name (``schema.INPUTS``) -> actual value name (None when absent).
        output: name of the produced ``Y``.
        prefix: prepended to every intermediate value and node name.
    """
    e = _Emitter(prefix)
    X, knots, bounds, seg_scale = inputs["X"], inputs["Knots"], inputs["Bounds"], inputs["SegScale"]
    base_weight, edge_mask, table = inputs["BaseWeight"], inputs["EdgeMask"], inputs["Table"]
    quantized = spec.scheme in ("int8", "uint8")
    if quantized and not inputs.get("TableScale"):
        raise ValueError(f"scheme {spec.scheme} needs the TableScale input")
    if spec.scheme == "uint8" and not inputs.get("TableOffset"):
        raise ValueError("scheme uint8 needs the TableOffset input")
    vs = spec.uses_line  # value+slope table

    # ================= derived tables: inputs are initializers only, folded at session creation =========
    shp = e.op("Shape", [table], "table_shape")  # [I, K, L, O]
    dim = {d: e.op("Slice", [shp, e.i64(j), e.i64(j + 1)], f"dim_{d}") for j, d in enumerate("IKLO")}
    L_f = e.op("Cast", [dim["L"]], "L_f", to=_F)
    Lm1 = e.op("Sub", [L_f, e.const(1)], "L_minus_1")
    Lm2 = e.op("Sub", [L_f, e.const(2)], "L_minus_2")
    lo = e.op("Gather", [bounds, e.const(0, np.int64)], "lo", axis=0)  # [I]
    hi = e.op("Gather", [bounds, e.const(1, np.int64)], "hi", axis=0)
    hi_idx = e.op("Gather", [bounds, e.const(2, np.int64)], "hi_idx", axis=0)

    # dequantized (I, K, L, O) float32 samples, exactly tables.dequantize: offset + scale*float(q)
    tab = table if spec.scheme == "float32" else e.op("Cast", [table], "table_f32", to=_F)
    if quantized:
        tab = e.op("Mul", [e.op("Unsqueeze", [inputs["TableScale"], e.i64(2)], "scale4"), tab], "table_scaled")
    if spec.scheme == "uint8":
        tab = e.op("Add", [e.op("Unsqueeze", [inputs["TableOffset"], e.i64(2)], "offset4"), tab], "table_deq")
    if spec.oob == "zero" and spec.boundary == "half_open":
        # a zero-width row has an empty half-open domain: its tabulated term is 0 everywhere
        zw = e.op("Reshape", [e.op("Equal", [lo, hi], "zero_width"), e.i64(-1, 1, 1, 1)], "zero_width4")
        tab = e.op("Where", [zw, e.const(0), tab], "table_dom")
    shape_rows = e.op("Concat", [e.i64(-1), dim["O"]], "shape_rows", axis=0)
    dense = e.op("Reshape", [tab, shape_rows], "dense")  # row (i*K + k)*L + r
    n_dense = e.op("Slice", [e.op("Shape", [dense], "dense_shape"), e.i64(0), e.i64(1)], "n_dense")  # [1] = I*K*L

    # special rows after `dense`: [zero row (oob=zero)] [NaN row of each input]
    specials, n_special = [], 0
    shape_1O = e.op("Concat", [e.i64(1), dim["O"]], "shape_1_O", axis=0)
    if spec.oob == "zero":
        zero_row = e.op("ConstantOfShape", [shape_1O], "zero_row",
                        value=numpy_helper.from_array(np.zeros(1, np.float32)))
        specials.append(zero_row)
        n_special += 1
    nan_rows = e.op("Where", [e.op("Equal", [edge_mask, e.const(0)], "inactive"), e.const(0), e.const(np.nan)],
                    "nan_rows")  # [I, O]: NaN on active edges
    specials.append(nan_rows)
    ar_I = e.op("Range", [e.const(0, np.int64), e.op("Squeeze", [dim["I"]], "I_scalar"), e.const(1, np.int64)],
                "arange_I")
    nan_row_idx = e.op("Add", [ar_I, e.op("Add", [n_dense, e.i64(n_special)], "nan_row_first")], "nan_row_idx")  # [I]
    values = e.op("Concat", [dense] + specials, "values", axis=0)  # [R, O]
    if vs:  # in-segment slope T[r+1] - T[r]; 0 at r = L-1 and on special rows
        shape_seg = e.op("Concat", [e.i64(-1), dim["L"], dim["O"]], "shape_seg", axis=0)
        seg = e.op("Reshape", [dense, shape_seg], "dense_seg")
        diff = e.op("Sub", [e.op("Slice", [seg, e.i64(1), e.i64(2**62), e.i64(1)], "seg_next"),
                            e.op("Slice", [seg, e.i64(0), e.i64(-1), e.i64(1)], "seg_prev")], "seg_slope")
        slopes = e.op("Reshape", [e.op("Pad", [diff, e.i64(0, 0, 0, 0, 1, 0), e.const(0)], "seg_slope_padded"),
                                  shape_rows], "slopes_dense")
        shape_special = e.op("Sub", [e.op("Shape", [values], "values_shape"),
                                     e.op("Shape", [dense], "dense_shape2")], "special_rows_shape")  # [n, 0]
        shape_special = e.op("Add", [shape_special, e.op("Concat", [e.i64(0), dim["O"]], "shape_0_O", axis=0)],
                             "special_shape")
        slopes = e.op("Concat", [slopes, e.op("ConstantOfShape", [shape_special], "special_slopes",
                                              value=numpy_helper.from_array(np.zeros(1, np.float32)))],
                      "slopes", axis=0)
        table_vs = e.op("Concat", [e.op("Unsqueeze", [values, e.i64(1)], "values3"),
                                   e.op("Unsqueeze", [slopes, e.i64(1)], "slopes3")], "value_slope", axis=1)  # [R,2,O]
    # per-input lookup tables, transposed to (K-1 | K, I) so the batch broadcasts over whole rows
    interior_t = e.op("Transpose", [e.op("Slice", [knots, e.i64(1), e.i64(-1), e.i64(1)], "knots_interior")],
                      "knots_interior_t", perm=[1, 0])  # [K-1, I]
    left_t = e.op("Transpose", [e.op("Slice", [knots, e.i64(0), e.i64(-1), e.i64(1)], "knots_left")], "knots_left_t",
                  perm=[1, 0])  # [K, I]
    scale_t = e.op("Transpose", [seg_scale], "seg_scale_t", perm=[1, 0])  # [K, I]
    seg_rows = e.op("Mul", [e.op("Reshape", [e.op("Range", [e.const(0, np.int64), e.op("Squeeze", [e.op(
        "Mul", [dim["I"], dim["K"]], "IK")], "IK_scalar"), e.const(1, np.int64)], "arange_IK"),
        e.op("Concat", [dim["I"], dim["K"]], "shape_I_K", axis=0)], "seg_ids"), dim["L"]], "seg_first_row")  # [I, K]
    seg_rows_t = e.op("Transpose", [seg_rows], "seg_first_row_t", perm=[1, 0])  # [K, I]: (i*K + k)*L
    # last legal row of `dense` (for `flat`, row + 1 <= I*K*L is the zero row after it)
    max_row = e.op("Squeeze", [e.op("Sub", [n_dense, e.i64(1)], "max_row1")], "max_row")

    # ================= per call: steps 1-3 on (N, I) tensors =================
    is_nan = e.op("IsNaN", [X], "is_nan")
    x_s = e.op("Where", [is_nan, lo, X], "x_s")
    x_c = e.op("Min", [e.op("Max", [x_s, lo], "x_lo"), hi_idx], "x_c")
    knot_le = e.op("LessOrEqual", [interior_t, e.op("Unsqueeze", [x_c, e.i64(1)], "x_c3")], "knot_le")  # [N,K-1,I]
    k_f = e.op("ReduceSum", [e.op("Cast", [knot_le], "knot_le_f", to=_F), e.i64(1)], "k_f", keepdims=0)
    k = e.op("Cast", [k_f], "k", to=_I64)  # segment, in [0, K-1]
    t_k = e.op("GatherElements", [left_t, k], "t_k", axis=0)
    s_k = e.op("GatherElements", [scale_t, k], "s_k", axis=0)
    pos = e.op("Clip", [e.op("Mul", [e.op("Sub", [x_c, t_k], "x_minus_t"), s_k], "pos_raw"), e.const(0), Lm1], "pos")
    r0 = e.op("Min", [e.op("Floor", [pos], "pos_floor"), Lm2], "r0")
    w = e.op("Sub", [pos, r0], "w")
    row = e.op("Add", [e.op("GatherElements", [seg_rows_t, k], "seg_row", axis=0),
                       e.op("Cast", [r0], "r0_i64", to=_I64)], "row_raw")

    # ================= step 5: domain membership (x_s == x_c is exactly lo <= x <= hi | lo <= x < hi) ======
    need_x_f = spec.oob == "extrapolate" or spec.base_fun != "zero"
    if need_x_f:
        x_f = e.op("Clip", [x_s, e.const(-FLT_MAX), e.const(FLT_MAX)], "x_f")
    in_dom = e.op("Equal", [x_s, x_c], "in_dom") if spec.oob != "clip" else None
    if spec.oob == "extrapolate":
        w_ext = e.op("Clip", [e.op("Sub", [e.op("Mul", [e.op("Sub", [x_f, t_k], "xf_minus_t"), s_k], "pos_line"), r0],
                                   "w_ext_raw"), e.const(-FLT_MAX), e.const(FLT_MAX)], "w_ext")
    coef = None  # weight of the slope per (n, i); None: single samples, no line
    if spec.interp == "nearest":
        up = e.op("Cast", [e.op("GreaterOrEqual", [w, e.const(0.5)], "w_ge_half")], "up", to=_I64)
        row_near = e.op("Add", [row, up], "row_nearest")
        if spec.oob == "extrapolate":  # outside: the boundary segment's line
            row = e.op("Where", [in_dom, row_near, row], "row_sel")
            coef = e.op("Where", [in_dom, e.const(0), w_ext], "w_line")
        else:
            row = row_near
    else:
        coef = e.op("Where", [in_dom, w, w_ext], "w_line") if spec.oob == "extrapolate" else w
    row = e.op("Clip", [row, e.const(0, np.int64), max_row], "row")  # guard: never index out of range
    if spec.oob == "zero":
        row = e.op("Where", [in_dom, row, e.op("Squeeze", [n_dense], "zero_row_idx")], "row_oob")
    row = e.op("Where", [is_nan, nan_row_idx, row], "row_final")

    # ================= step 4 + 6: tabulated terms summed over inputs =================
    if coef is None:
        edge_sum = e.op("ReduceSum", [e.op("Gather", [values, row], "v", axis=0), e.i64(1)], "edge_sum", keepdims=0)
    else:  # sum_i 1*value + w*slope as one (1 x 2I) @ (2I x O) product per sample
        g = e.op("Reshape", [e.op("Gather", [table_vs, row], "vs_rows", axis=0),
                             e.op("Concat", [e.i64(0, -1), dim["O"]], "shape_N_2I_O", axis=0)], "vs_rows_2I")
        w3 = e.op("Unsqueeze", [coef, e.i64(2)], "w3")
        ones = e.op("Clip", [w3, e.const(1), e.const(1)], "ones")  # w is finite: Clip(w, 1, 1) == 1
        one_w = e.op("Reshape", [e.op("Concat", [ones, w3], "one_w3", axis=2), e.i64(0, 1, -1)], "one_w")  # [N,1,2I]
        edge_sum = e.op("Reshape", [e.op("MatMul", [one_w, g], "edge_sum3"), e.i64(0, -1)], "edge_sum")

    # ================= step 6: base branch on x_f =================
    if spec.base_fun == "zero":
        y = edge_sum
    else:
        if spec.base_fun == "identity":
            base = x_f
        else:  # x * (1 / (1 + exp(-x))), as numpy_eval.base_branch (not Sigmoid: onnxruntime's is an approximation)
            sig = e.op("Reciprocal", [e.op("Add", [e.const(1), e.op("Exp", [e.op("Neg", [x_f], "neg_x_f")], "exp_neg")],
                                           "one_plus_exp")], "sigmoid")
            base = e.op("Mul", [x_f, sig], "silu")
        y = e.op("Add", [edge_sum, e.op("MatMul", [base, base_weight], "base_sum")], "y_sum")
    last = e.nodes[-1]
    assert list(last.output) == [y]
    last.output[0] = output
    return e.nodes


def make_function(spec: BodySpec, L: int) -> onnx.FunctionProto:
    """The model-local ``lutkan.LUTKanEdge`` FunctionProto specialized for ``spec``.

    Formal inputs/outputs are ``schema.INPUTS``/``OUTPUTS``; attribute defaults (``attribute_proto``)
    are the values the body implements (``L`` is informational: the body reads L from the table).
    """
    nodes = emit_body(spec, {n: n for n in INPUTS}, OUTPUTS[0])
    defaults = {"L": L, **spec.attributes}
    attr_protos = [helper.make_attribute(name, defaults[name]) for name in ATTRIBUTES]
    doc = (f"LUTKanEdge body specialized for interp={spec.interp}, boundary={spec.boundary}, oob={spec.oob}, "
           f"base_fun={spec.base_fun}, {spec.scheme} tables; other attribute values "
           f"need the lutkan onnxruntime plugin. See docs/op-schema.md.")
    return helper.make_function(DOMAIN, OP_TYPE, list(INPUTS), list(OUTPUTS), nodes,
                                [helper.make_opsetid("", TARGET_OPSET)], attribute_protos=attr_protos, doc_string=doc)
