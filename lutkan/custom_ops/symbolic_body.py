"""Standard-op body of ``lutkan.KanSymbolic`` (exact symbolic edges), written with onnxscript.

``build_symbolic_function(sym)`` traces the body of one layer's ``KanSymbolic`` (its edges grouped by
function, ``schema.symbolic_op_edges``) into a FunctionProto with inputs ``X, Src, Affine``. It is never
shipped as a function: the ``function`` and ``standard`` forms inline it (``function_body.inline_body``,
values prefixed ``kan{l}.symbolic/``), the plugin inlines it in place of a ``custom``-form ``KanSymbolic``
node, so plain onnxruntime and every other runtime run it as standard ops::

    per function f (a contiguous slice e0:e1 of the edges), in float64:
        g_f = c * f(a * Cast<double>(Gather(X, Src[e0:e1], axis=1)) + b) + d      # [N, S_f]
    V = Concat(g_f ..., zero column)                                               # [N, S+1] double
    Y = Cast<float>(ReduceSum(Gather(V, Index, axis=1), axis=2))                   # [N, O]

``Index`` (O, M) lists each output's edges, padded with the zero column, so the sum never multiplies a
NaN or inf by 0 (a NaN term poisons only its own output, as pykan does). Each function is the float64
expression of ``SYMBOLIC_ONNX`` (onnxruntime has float64 kernels for all but Tan, Asin, Acos, Atan, Atanh:
tan = sin/cos and atanh = log((1+z)/(1-z))/2 in float64; asin, acos, atan in float32 on the rounded argument,
``lutkan.symbolic.FLOAT32_FUNCTIONS``), the same as ``lutkan.evaluators.symbolic_kernel``.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
from onnxscript import build_function as _trace_function

from lutkan.custom_ops.schema import DOMAIN, SYMBOLIC_OP, TARGET_OPSET
from lutkan.symbolic import SYMBOLIC_NAMES
from lutkan.tables import SymbolicEdges

__all__ = ["SYMBOLIC_ONNX", "build_symbolic_function", "gather_index"]


def _f32(op, fn):
    """``fn`` evaluated in float32 on a float64 argument (rounded), widened back."""
    return lambda x: op.Cast(fn(op.Cast(x, to=ir.DataType.FLOAT)), to=ir.DataType.DOUBLE)


def _pow(op, x, n: int):
    """x**n for n = 1..5 by repeated multiplication (x^4 = (x*x)^2, x^5 = (x*x)^2*x)."""
    if n == 1:
        return x
    x2 = op.Mul(x, x)
    return {2: x2, 3: op.Mul(x2, x), 4: op.Mul(x2, x2), 5: op.Mul(op.Mul(x2, x2), x)}[n]


SYMBOLIC_ONNX = {
    "x": lambda op, x: op.Identity(x),
    "x^2": lambda op, x: _pow(op, x, 2),
    "x^3": lambda op, x: _pow(op, x, 3),
    "x^4": lambda op, x: _pow(op, x, 4),
    "x^5": lambda op, x: _pow(op, x, 5),
    "1/x": lambda op, x: op.Reciprocal(x),
    "1/x^2": lambda op, x: op.Reciprocal(_pow(op, x, 2)),
    "1/x^3": lambda op, x: op.Reciprocal(_pow(op, x, 3)),
    "1/x^4": lambda op, x: op.Reciprocal(_pow(op, x, 4)),
    "1/x^5": lambda op, x: op.Reciprocal(_pow(op, x, 5)),
    "sqrt": lambda op, x: op.Sqrt(x),
    "x^0.5": lambda op, x: op.Sqrt(x),
    "x^1.5": lambda op, x: _pow(op, op.Sqrt(x), 3),
    "1/sqrt(x)": lambda op, x: op.Reciprocal(op.Sqrt(x)),
    "1/x^0.5": lambda op, x: op.Reciprocal(op.Sqrt(x)),
    "exp": lambda op, x: op.Exp(x),
    "log": lambda op, x: op.Log(x),
    "abs": lambda op, x: op.Abs(x),
    "sin": lambda op, x: op.Sin(x),
    "cos": lambda op, x: op.Cos(x),
    "tan": lambda op, x: op.Div(op.Sin(x), op.Cos(x)),
    "tanh": lambda op, x: op.Tanh(x),
    "sgn": lambda op, x: op.Sign(x),
    "arcsin": lambda op, x: _f32(op, op.Asin)(x),
    "arccos": lambda op, x: _f32(op, op.Acos)(x),
    "arctan": lambda op, x: _f32(op, op.Atan)(x),
    "arctanh": lambda op, x: op.Mul(op.Log(op.Div(op.Add(1.0, x), op.Sub(1.0, x))), 0.5),
    "0": lambda op, x: op.Mul(x, 0.0),
    "gaussian": lambda op, x: op.Exp(op.Neg(_pow(op, x, 2))),
}
"""Every ``lutkan.symbolic`` name as standard ONNX ops (opset 21), float64 in and out."""
assert set(SYMBOLIC_ONNX) == set(SYMBOLIC_NAMES), "every symbolic name needs its ONNX expression"


def gather_index(sym: SymbolicEdges) -> np.ndarray:
    """(O, M) int64: the positions of each output's edges in ``V`` (op order), padded with S (the zero column)."""
    S, O = sym.n_edges, sym.out_dim
    per = [np.nonzero(sym.dst == j)[0] for j in range(O)]
    M = max(1, max(len(p) for p in per))
    idx = np.full((O, M), S, dtype=np.int64)
    for j, p in enumerate(per):
        idx[j, : len(p)] = p
    return idx


def _groups(funs: tuple[str, ...]) -> list[tuple[str, int, int]]:
    """(function, e0, e1) of each contiguous run of equal names."""
    out, e0 = [], 0
    for e in range(1, len(funs) + 1):
        if e == len(funs) or funs[e] != funs[e0]:
            out.append((funs[e0], e0, e))
            e0 = e
    return out


def build_symbolic_function(sym: SymbolicEdges) -> onnx.FunctionProto:
    """The body of the ``KanSymbolic`` over ``sym`` (edges in op order: grouped by function)."""
    index = gather_index(sym)

    def trace(op, X, Src, Affine):
        terms = []
        for name, e0, e1 in _groups(sym.funs):
            tag = name.replace("/", "_over_").replace("^", "pow").replace("(", "").replace(")", "")
            src = op.Slice(Src, [e0], [e1], _outputs=[f"{tag}_src"])
            aff = op.Slice(Affine, [e0], [e1], _outputs=[f"{tag}_affine"])  # [S_f, 4]
            a, b, c, d = (op.Gather(aff, q, axis=1) for q in range(4))
            x64 = op.Cast(op.Gather(X, src, axis=1), to=ir.DataType.DOUBLE)
            arg = op.Add(op.Mul(x64, a), b, _outputs=[f"{tag}_arg"])
            terms.append(op.Add(op.Mul(SYMBOLIC_ONNX[name](op, arg), c), d, _outputs=[f"{tag}_terms"]))
        n = op.Slice(op.Shape(X), [0], [1])
        zero = op.ConstantOfShape(op.Concat(n, [1], axis=0), value=ir.tensor(np.zeros(1, np.float64)))
        V = op.Concat(*terms, zero, axis=1, _outputs=["terms"])  # [N, S+1]
        idx = op.Constant(value=ir.tensor(index, name="index"))
        total = op.ReduceSum(op.Gather(V, idx, axis=1), [2], keepdims=0, _outputs=["sums"])
        return op.Cast(total, to=ir.DataType.FLOAT, _outputs=["Y"])

    F = ir.TensorType(ir.DataType.FLOAT)
    inputs = [ir.Value(name="X", type=F), ir.Value(name="Src", type=ir.TensorType(ir.DataType.INT64)),
              ir.Value(name="Affine", type=ir.TensorType(ir.DataType.DOUBLE))]
    fn = _trace_function(trace, inputs, domain=DOMAIN, name=SYMBOLIC_OP, opset_imports={"": TARGET_OPSET})
    return ir.serde.serialize_function(fn)
