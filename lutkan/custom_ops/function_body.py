"""Standard-op body of ``lutkan.LUTKanEdge`` (``docs/contract.md`` §3 steps 1-7), written with onnxscript.

``build_function(spec)`` traces ``_body`` with onnxscript's ``GraphBuilder`` into the model-local
``FunctionProto`` of the ``function`` form; ``inline_body`` instantiates the same FunctionProto as plain
nodes (values prefixed ``kan{l}/``) for the ``standard`` form, so one definition serves both. ONNX function
bodies cannot branch on attributes, so the body is specialized by Python at trace time for what is global to
a model (``BodySpec``: interp, boundary, oob, base function, table scheme, binary-search depth, polynomial
degree); the node attributes repeat the contract's values and the FunctionProto's attribute defaults equal
them. One body serves every layer of a model: ``I, K, L, O`` are read from ``Shape(Table)``.

Body (``X`` float32 (N, I); every other input is an initializer, so onnxruntime folds the first part when the
session is created)::

    # derived tables
    dense  = Reshape(offset + scale*Cast(Table), [I*K*L, O])      # dequantize first (tables.dequantize)
    values = [dense; zero row | zero block (oob=zero); NaN row | NaN block of each input]
    VS     = [values, slope T[r+1]-T[r]] per row: [R, 2, O]      (linear / extrapolate)
    T      = knots t_1..t_{K-1} of each input padded with +inf to 2**n_steps columns, flattened
    # per call, on (N, I) tensors: O(N*I) memory for the segment search
    x_s = Where(IsNaN(X), lo, X);  x_c = Min(Max(x_s, lo), hi_idx)
    k   = #{m in 1..K-1: t_m <= x_c}                              (counting, K <= COUNT_MAX_K)
          or branch-free binary search: for step = 2**(n-1) .. 1: k += step if T[k + step] <= x_c
    t_k, s_k = Split(Gather([knots[:, :K], seg_scale] pairs, i*K + k))  (one Gather: its cost is per index)
    linear/nearest: pos = Clip((x_c - t_k)*s_k, 0, L-1); r0 = Min(Floor(pos), L-2); w = pos - r0
                    Y = MatMul([1, w], Gather(VS, (i*K + k)*L + r0))           (sum over inputs)
    poly:           u = Clip((x_c - t_k)*s_k, 0, 1);  Y = MatMul(Bernstein(u), Gather(values, rows))
    out of domain (x_s != x_c): zero row/block (oob=zero), boundary line/polynomial (extrapolate)
    NaN input: its NaN row/block (NaN on the active edges only); Y += MatMul(base(x_f), BaseWeight)
    rows: If(N > max_rows(), then: a Scan over row chunks of max_rows() // 8 rows, else: one pass), so that
          no per-call tensor exceeds CHUNK_ELEMENTS floats at any batch size

The special rows replace elementwise ``Where`` on (N, I, O) tensors: the zero row gives exactly 0, the NaN
row of input i poisons exactly the outputs step 7 poisons. The search is exact (right-continuous at a knot:
``t_m <= x`` moves to segment m) in every runtime; it uses only ``Gather`` on flat tables, no
``GatherElements``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from math import comb

import numpy as np
import onnx
import onnx_ir as ir
from onnxscript import build_function as _trace_function
from onnxscript import build_graph as _trace_graph

from lutkan.contract import BASE_FUNS, BOUNDARIES, FLT_MAX, INTERPS, OOB_POLICIES, SCHEMES, U_EXT
from lutkan.custom_ops.schema import ATTRIBUTES, DOMAIN, INPUTS, OP_TYPE, OUTPUTS, TARGET_OPSET

__all__ = ["BodySpec", "build_function", "inline_body", "search_steps"]

_F = ir.DataType.FLOAT
_FLT_MAX = float(FLT_MAX)
_I64 = ir.DataType.INT64
_TABLE_TYPES = {"int8": ir.DataType.INT8, "uint8": ir.DataType.UINT8, "float16": ir.DataType.FLOAT16,
                "float32": ir.DataType.FLOAT}


COUNT_MAX_K = 32
"""Largest segment count (rounded up to a power of two) searched by counting instead of bisection."""
CHUNK_ELEMENTS = 1 << 25
"""Most floats one chunk of rows gathers (N_chunk * I * rows per input * O; 128 MB): bounds the body's memory.
ids78 (78 x 32 outputs) takes 6,721 rows per chunk, so batches up to that need no Scan iteration."""


def search_steps(n_segments: int) -> int:
    """Binary-search depth for ``n_segments`` segments: the smallest n with 2**n >= K."""
    return max(0, math.ceil(math.log2(max(1, n_segments))))


@dataclass(frozen=True)
class BodySpec:
    """What one LUTKanEdge body is specialized for (global to a model).

    ``n_steps``: binary-search depth (2**n_steps >= K of every layer); ``degree``: Bernstein degree L-1 of
    ``poly`` tables (0 otherwise); ``chunk_floats``: most floats one row chunk may gather (``CHUNK_ELEMENTS``),
    or None for a body without row chunks (the ``standard`` form chunks the whole network once instead).
    """

    interp: str
    boundary: str
    oob: str
    base_fun: str
    scheme: str
    n_steps: int
    degree: int = 0
    chunk_floats: int | None = CHUNK_ELEMENTS

    def __post_init__(self) -> None:
        for name, legal in (("interp", INTERPS), ("boundary", BOUNDARIES), ("oob", OOB_POLICIES),
                            ("base_fun", BASE_FUNS), ("scheme", SCHEMES)):
            if getattr(self, name) not in legal:
                raise ValueError(f"{name}={getattr(self, name)!r} is not one of {legal}")
        if (self.interp == "poly") != (self.degree > 0):
            raise ValueError("degree > 0 exactly for interp='poly'")

    @property
    def counts(self) -> bool:
        """Segment search by counting the knots <= x (fast in onnxruntime for few knots) or, above
        ``COUNT_MAX_K`` segments, by a binary search (memory and time grow with log K, not K)."""
        return 2**self.n_steps <= COUNT_MAX_K

    @property
    def formals(self) -> tuple[str, ...]:
        """The inputs the body reads, in schema order (the optional ones only when the scheme has them)."""
        n = {"int8": 8, "uint8": 9}.get(self.scheme, 7)
        return INPUTS[:n]

    @property
    def uses_line(self) -> bool:
        """Whether any input needs ``T[r0] + w*(T[r0+1] - T[r0])`` (else single samples)."""
        return self.interp == "linear" or self.oob == "extrapolate"


def _c(op, value, dtype=_F):
    """A small constant tensor."""
    return op.Constant(value=ir.tensor(np.asarray(value, dtype=ir.DataType(dtype).numpy())))


class _Body:
    """The traced body: ``tables`` builds the derived (folded) values, ``segment`` steps 1-2, ``lut``/``poly``
    steps 3-5 and the edge sum, ``base`` step 6."""

    def __init__(self, op, spec: BodySpec):
        self.op, self.s = op, spec

    def on(self, op) -> _Body:
        """A view of this body (its derived tables) that emits nodes with ``op`` (a subgraph's builder)."""
        c = _Body.__new__(_Body)
        c.__dict__.update(self.__dict__)
        c.op = op
        return c

    def max_rows(self):
        """Rows whose gathered tensors hold at most ``CHUNK_ELEMENTS`` floats (at least 1)."""
        op, d = self.op, self.d
        per_row = op.Mul(op.Mul(d["I"], d["O"]), (self.s.degree + 1) if self.s.interp == "poly" else 2)
        if self.s.counts:  # the knot comparison holds (K-1) x I per row
            per_row = op.Max(per_row, op.Mul(d["I"], d["K"]))
        return op.Max(op.Div(_c(op, [self.s.chunk_floats], _I64), per_row), [1], _outputs=["chunk_max_rows"])

    def rows(self, X, per_call):
        """``per_call`` on every row of ``X`` with peak memory O(N*I) at any batch: a batch of at most
        ``max_rows()`` rows in one pass, a larger one in a ``Scan`` over chunks of an eighth of that; one
        ``If`` chooses (three nodes of overhead for a small batch)."""
        op = self.op
        cap = self.max_rows()
        more = op.Greater(op.Shape(X, start=0, end=1), cap, _outputs=["more_rows"])

        def in_chunks(o):
            o.builder.push_module("chunks")
            return self.on(o).chunked(X, per_call, cap)

        def one_pass(o):
            return per_call(o, X, "all")

        branches = {name: _trace_graph(fn, [], [_value(f"y_{name}", _F)], opset_imports={"": TARGET_OPSET},
                                       parent=op.builder, name=name)
                    for name, fn in (("chunks", in_chunks), ("one_pass", one_pass))}
        return op.If(more, then_branch=branches["chunks"], else_branch=branches["one_pass"], _outputs=["Y"])

    def chunked(self, X, per_call, cap):
        """``per_call`` over row chunks of ``X`` with a ``Scan``: ceil(N / C) chunks of C = max(1, cap // 8) rows
        (the padding of the last one, < C rows, sliced off: at most 1/8 of the work when N > cap). Every
        division is by this constant, so symbolic-shape runtimes (tract) can analyse the graph."""
        op, d = self.op, self.d
        n = op.Shape(X, start=0, end=1, _outputs=["rows_all"])
        rows = op.Max(op.Div(cap, 8), [1], _outputs=["chunk_rows"])
        count = op.Div(op.Sub(op.Add(n, rows), 1), rows, _outputs=["chunk_count"])
        total = op.Squeeze(op.Mul(count, rows), _outputs=["rows_padded"])
        last = op.Squeeze(op.Sub(n, 1), _outputs=["row_last"])
        # padded by repeating the last row (sliced off below): a Gather, not Pad, whose pads tract needs concrete
        xp = op.Gather(X, op.Min(op.Range(0, total, 1), last), axis=0, _outputs=["x_padded"])
        xs = op.Reshape(xp, op.Concat(count, rows, op.Shape(X, start=1, end=2), axis=0), _outputs=["x_chunks"])
        body = _trace_graph(lambda o, x: per_call(o, x, "chunk"), [_value("x_chunk", _F)], [_value("y_chunk", _F)],
                            opset_imports={"": TARGET_OPSET}, parent=op.builder, name="rows")
        ys = op.Scan(xs, body=body, num_scan_inputs=1, _outputs=["y_chunks"])
        y = op.Reshape(ys, op.Concat(op.Mul(count, rows), d["O"], axis=0), _outputs=["y_padded"])
        return op.Slice(y, [0], n, _outputs=["y_chunked"])

    def dims(self, table):
        op = self.op
        shp = op.Shape(table, _outputs=["table_shape"])
        return {d: op.Slice(shp, [j], [j + 1], _outputs=[f"dim_{d}"]) for j, d in enumerate("IKLO")}

    def dequantized(self, table, scale, offset, lo, hi):
        op, s = self.op, self.s
        tab = table if s.scheme == "float32" else op.Cast(table, to=_F, _outputs=["table_f32"])
        if scale is not None:
            tab = op.Mul(op.Unsqueeze(scale, [2]), tab, _outputs=["table_scaled"])
        if offset is not None:
            tab = op.Add(op.Unsqueeze(offset, [2]), tab, _outputs=["table_deq"])
        if s.oob == "zero" and s.boundary == "half_open":
            # a zero-width row has an empty half-open domain: its tabulated term is 0 everywhere
            zw = op.Reshape(op.Equal(lo, hi), [-1, 1, 1, 1], _outputs=["zero_width"])
            tab = op.Where(zw, 0.0, tab, _outputs=["table_dom"])
        return tab

    def tables(self, knots, bounds, seg_scale, edge_mask, table, scale, offset):
        """Derived tables (inputs are initializers: folded at session creation)."""
        op, s = self.op, self.s
        d = self.d = self.dims(table)
        self.lo = op.Gather(bounds, 0, axis=0, _outputs=["lo"])
        self.hi_idx = op.Gather(bounds, 2, axis=0, _outputs=["hi_idx"])
        hi = op.Gather(bounds, 1, axis=0, _outputs=["hi"])
        tab = self.dequantized(table, scale, offset, self.lo, hi)
        rows_O = op.Concat([-1], d["O"], axis=0, _outputs=["shape_rows"])
        dense = op.Reshape(tab, rows_O, _outputs=["dense"])  # row (i*K + k)*L + r
        n_dense = op.Slice(op.Shape(dense), [0], [1], _outputs=["n_dense"])
        I_scalar = op.Squeeze(d["I"], _outputs=["I_scalar"])
        self.ar_I = op.Range(0, I_scalar, 1, _outputs=["arange_I"])
        block = d["L"] if s.interp == "poly" else _c(op, [1], _I64)  # rows per special entry
        nan_rows = op.Where(op.Equal(edge_mask, 0.0), 0.0, float("nan"), _outputs=["nan_rows"])  # [I, O]
        parts, first_nan = [dense], n_dense
        if s.oob == "zero":
            self.zero_row = op.Squeeze(n_dense, _outputs=["zero_row_index"])
            parts.append(op.ConstantOfShape(op.Concat(block, d["O"], axis=0), value=ir.tensor(np.zeros(1, np.float32)),
                                            _outputs=["zero_rows"]))
            first_nan = op.Add(n_dense, block, _outputs=["first_nan_row"])
        if s.interp == "poly":  # a block of L NaN rows per input
            nan_rows = op.Reshape(op.Expand(op.Unsqueeze(nan_rows, [1]), op.Concat(d["I"], d["L"], d["O"], axis=0)),
                                  rows_O, _outputs=["nan_blocks"])
        parts.append(nan_rows)
        self.nan_row = op.Add(op.Mul(self.ar_I, block), first_nan, _outputs=["nan_row_index"])  # [I]
        self.values = op.Concat(*parts, axis=0, _outputs=["values"])  # [R, O]
        if s.interp != "poly" and s.uses_line:  # in-segment slope T[r+1] - T[r]; 0 at r = L-1 and special rows
            seg = op.Reshape(dense, op.Concat([-1], d["L"], d["O"], axis=0))
            diff = op.Sub(op.Slice(seg, [1], [2**62], [1]), op.Slice(seg, [0], [-1], [1]), _outputs=["seg_slope"])
            slopes = op.Reshape(op.Pad(diff, [0, 0, 0, 0, 1, 0], 0.0), rows_O)
            n_special = op.Sub(op.Shape(self.values), op.Shape(dense))  # [n, 0]
            zeros = op.ConstantOfShape(op.Max(n_special, op.Concat([0], d["O"], axis=0)),
                                       value=ir.tensor(np.zeros(1, np.float32)))
            slopes = op.Concat(slopes, zeros, axis=0, _outputs=["slopes"])
            self.vs = op.Concat(op.Unsqueeze(self.values, [1]), op.Unsqueeze(slopes, [1]), axis=1,
                                _outputs=["value_slope"])  # [R, 2, O]
        interior = op.Slice(knots, [1], [-1], [1], _outputs=["knots_interior"])  # [I, K-1]
        if s.counts:  # the interior knots as (K-1, I): compared with every x at once
            self.interior_t = op.Transpose(interior, perm=[1, 0], _outputs=["knots_interior_t"])
        else:  # knots t_1..t_{K-1} of input i at i*P + m (m = 1..K-1), +inf at m = 0 and m >= K
            P = 2 ** s.n_steps
            pads = op.Concat([0, 1, 0], op.Sub(_c(op, [P], _I64), d["K"]), axis=0)
            self.search = op.Reshape(op.Pad(interior, pads, float("inf")), [-1], _outputs=["search_table"])
            self.search_base = op.Mul(self.ar_I, P, _outputs=["search_base"])  # [I]
        knots_left = op.Reshape(op.Slice(knots, [0], [-1], [1]), [-1, 1])  # t_k at row i*K + k
        # [t_k, s_k] pairs: one Gather per call fetches both (onnxruntime's Gather costs per index, not per byte)
        self.seg_params = op.Concat(knots_left, op.Reshape(seg_scale, [-1, 1]), axis=1, _outputs=["seg_params"])
        self.seg_base = op.Mul(self.ar_I, d["K"], _outputs=["seg_base"])

    def segment(self, X):
        """Steps 1-2: NaN and clamp, then the exact segment search (counting few knots, else branch-free
        bisection)."""
        op, s = self.op, self.s
        self.is_nan = op.IsNaN(X, _outputs=["is_nan"])
        self.x_s = op.Where(self.is_nan, self.lo, X, _outputs=["x_s"])
        self.x_c = op.Min(op.Max(self.x_s, self.lo), self.hi_idx, _outputs=["x_c"])
        if s.counts:  # k = #{m in 1..K-1: t_m <= x_c}: a (N, K-1, I) compare per chunk, K <= COUNT_MAX_K
            le = op.LessOrEqual(self.interior_t, op.Unsqueeze(self.x_c, [1]), _outputs=["knot_le"])
            k = op.Cast(op.ReduceSum(op.Cast(le, to=_F), [1], keepdims=0), to=_I64, _outputs=["k"])
        else:  # branch-free binary search over the padded knots: n_steps gathers of (N, I)
            j = op.Expand(self.search_base, op.Shape(X), _outputs=["search_pos"])  # i*P + k, k = 0
            for q in range(s.n_steps - 1, -1, -1):
                cand = op.Add(j, 2**q, _outputs=[f"search_cand{q}"])
                j = op.Where(op.LessOrEqual(op.Gather(self.search, cand), self.x_c), cand, j,
                             _outputs=[f"search_pos{q}"])
            k = op.Sub(j, self.search_base, _outputs=["k"])  # segment, in [0, K-1]
        self.seg = op.Add(self.seg_base, k, _outputs=["seg"])  # i*K + k
        t_k, s_k = op.Split(op.Gather(self.seg_params, self.seg), axis=2, num_outputs=2, _outputs=["t_k3", "s_k3"])
        self.t_k = op.Squeeze(t_k, [2], _outputs=["t_k"])
        self.s_k = op.Squeeze(s_k, [2], _outputs=["s_k"])
        need_x_f = s.oob == "extrapolate" or s.base_fun != "zero"
        self.x_f = op.Clip(self.x_s, -_FLT_MAX, _FLT_MAX, _outputs=["x_f"]) if need_x_f else None
        self.in_dom = op.Equal(self.x_s, self.x_c, _outputs=["in_domain"]) if s.oob != "clip" else None

    def special_rows(self, row):
        """Out-of-domain rows to the zero row/block (oob=zero), NaN inputs to their NaN row/block."""
        op = self.op
        if self.s.oob == "zero":
            row = op.Where(self.in_dom, row, self.zero_row, _outputs=["row_oob"])
        return op.Where(self.is_nan, self.nan_row, row, _outputs=["row_final"])

    def lut(self):
        """Steps 3-5 for ``linear``/``nearest`` tables and the edge sum over inputs."""
        op, s, d = self.op, self.s, self.d
        L_f = op.Cast(d["L"], to=_F)
        pos = op.Clip(op.Mul(op.Sub(self.x_c, self.t_k), self.s_k), 0.0, op.Sub(L_f, 1.0), _outputs=["pos"])
        r0 = op.Min(op.Floor(pos), op.Sub(L_f, 2.0), _outputs=["r0"])
        w = op.Sub(pos, r0, _outputs=["w"])
        row = op.Add(op.Mul(self.seg, d["L"]), op.Cast(r0, to=_I64), _outputs=["row_raw"])
        if s.oob == "extrapolate":
            w_ext = op.Clip(op.Sub(op.Mul(op.Sub(self.x_f, self.t_k), self.s_k), r0), -_FLT_MAX, _FLT_MAX,
                            _outputs=["w_ext"])
        coef = None  # weight of the slope per (n, i); None: single samples, no line
        if s.interp == "nearest":
            row_near = op.Add(row, op.Cast(op.GreaterOrEqual(w, 0.5), to=_I64), _outputs=["row_nearest"])
            if s.oob == "extrapolate":  # outside: the boundary segment's line
                row = op.Where(self.in_dom, row_near, row, _outputs=["row_sel"])
                coef = op.Where(self.in_dom, 0.0, w_ext, _outputs=["w_line"])
            else:
                row = row_near
        else:
            coef = op.Where(self.in_dom, w, w_ext, _outputs=["w_line"]) if s.oob == "extrapolate" else w
        max_row = op.Sub(op.Squeeze(op.Mul(op.Mul(d["I"], d["K"]), d["L"])), 1)
        row = self.special_rows(op.Clip(row, 0, max_row, _outputs=["row"]))  # guard: never index out of range
        if coef is None:
            return op.ReduceSum(op.Gather(self.values, row, axis=0), [1], keepdims=0, _outputs=["edge_sum"])
        # sum_i 1*value + w*slope as one (1 x 2I) @ (2I x O) product per sample
        g = op.Reshape(op.Gather(self.vs, row, axis=0), op.Concat([0, -1], d["O"], axis=0), _outputs=["vs_rows"])
        w3 = op.Unsqueeze(coef, [2])
        ones = op.Clip(w3, 1.0, 1.0)  # w is finite: Clip(w, 1, 1) == 1
        one_w = op.Reshape(op.Concat(ones, w3, axis=2), [0, 1, -1], _outputs=["one_w"])  # [N, 1, 2I]
        return op.Reshape(op.MatMul(one_w, g), [0, -1], _outputs=["edge_sum"])

    def poly(self):
        """Steps 3-5 for ``poly`` tables: the Bernstein basis of u times the L control-point rows."""
        op, s, d = self.op, self.s, self.d
        u = op.Clip(op.Mul(op.Sub(self.x_c, self.t_k), self.s_k), 0.0, 1.0, _outputs=["u"])
        if s.oob == "extrapolate":
            u_ext = op.Clip(op.Mul(op.Sub(self.x_f, self.t_k), self.s_k), -float(U_EXT), float(U_EXT))
            u = op.Where(self.in_dom, u, u_ext, _outputs=["u_line"])
        n = s.degree
        v = op.Sub(1.0, u, _outputs=["one_minus_u"])
        up, vp = [None, u], [None, v]
        for _ in range(2, n + 1):  # powers by repeated multiplication (tables.bernstein_basis's order)
            up.append(op.Mul(up[-1], u))
            vp.append(op.Mul(vp[-1], v))
        terms = []
        for m in range(n + 1):
            a, b = up[m], vp[n - m]
            prod = a if b is None else (b if a is None else op.Mul(a, b))
            terms.append(op.Unsqueeze(op.Mul(float(comb(n, m)), prod), [2]))
        basis = op.Reshape(op.Concat(*terms, axis=2), [0, 1, -1], _outputs=["bernstein"])  # [N, 1, I*L]
        row = self.special_rows(op.Mul(self.seg, d["L"]))
        rows = op.Add(op.Unsqueeze(row, [2]), op.Range(0, op.Squeeze(d["L"]), 1), _outputs=["coef_rows"])
        g = op.Reshape(op.Gather(self.values, rows, axis=0), op.Concat([0, -1], d["O"], axis=0),
                       _outputs=["coef_rows_2d"])  # [N, I*L, O]
        return op.Reshape(op.MatMul(basis, g), [0, -1], _outputs=["edge_sum"])

    def base(self, edge_sum, base_weight):
        """Step 6: ``+ base(x_f) @ BaseWeight``; silu = x * (1 / (1 + exp(-x))) as numpy_eval.base_branch (not
        Sigmoid: onnxruntime's is an approximation)."""
        op, s = self.op, self.s
        if s.base_fun == "zero":
            return op.Identity(edge_sum, _outputs=["y_rows"])
        base = self.x_f
        if s.base_fun == "silu":
            base = op.Mul(self.x_f, op.Reciprocal(op.Add(1.0, op.Exp(op.Neg(self.x_f)))), _outputs=["silu"])
        return op.Add(edge_sum, op.MatMul(base, base_weight), _outputs=["y_rows"])


def _value(name: str, dtype) -> ir.Value:
    return ir.Value(name=name, type=ir.TensorType(dtype))


def build_function(spec: BodySpec, L: int) -> onnx.FunctionProto:
    """The model-local ``lutkan.LUTKanEdge`` FunctionProto specialized for ``spec``.

    Formal inputs are ``spec.formals``; attribute defaults are the values the body implements (``L`` is
    informational: the body reads L from the table).
    """
    def trace(op, X, Knots, Bounds, SegScale, BaseWeight, EdgeMask, Table, TableScale=None, TableOffset=None):
        b = _Body(op, spec)
        b.tables(Knots, Bounds, SegScale, EdgeMask, Table, TableScale, TableOffset)

        def per_call(o, x, scope):  # steps 1-7 on some rows; names v_{scope}.* (a graph and its subgraphs are SSA)
            o.builder.push_module(scope)
            c = b.on(o)
            c.segment(x)
            y = c.base(c.poly() if spec.interp == "poly" else c.lut(), BaseWeight)
            o.builder.pop_module()
            return y

        return b.rows(X, per_call) if spec.chunk_floats else per_call(op, X, "all")

    types = {"X": _F, "Table": _TABLE_TYPES[spec.scheme]}
    inputs = [_value(n, types.get(n, _F)) for n in spec.formals]
    attrs = {"L": L, "interp": spec.interp, "boundary": spec.boundary, "oob": spec.oob, "base_fun": spec.base_fun}
    fn = _trace_function(trace, inputs, domain=DOMAIN, name=OP_TYPE, opset_imports={"": TARGET_OPSET},
                         attributes=[ir.Attr(name, ir.AttributeType.INT if ATTRIBUTES[name] is int else
                                             ir.AttributeType.STRING, attrs[name]) for name in ATTRIBUTES])
    fp = _rename_output(ir.serde.serialize_function(fn), OUTPUTS[0])
    fp.doc_string = (f"LUTKanEdge body specialized for interp={spec.interp}, boundary={spec.boundary}, "
                     f"oob={spec.oob}, base_fun={spec.base_fun}, {spec.scheme} tables, {spec.n_steps} search steps; "
                     f"other attribute values need the lutkan onnxruntime plugin. See docs/op-schema.md.")
    return fp


def _rename_output(fp: onnx.FunctionProto, name: str) -> onnx.FunctionProto:
    """``fp`` with its (single) output value called ``name``."""
    old = fp.output[0]
    for node in fp.node:
        for q, o in enumerate(node.output):
            if o == old:
                node.output[q] = name
        for q, i in enumerate(node.input):
            if i == old:
                node.input[q] = name
    fp.output[0] = name
    return fp


def _rename_nodes(nodes, rename: dict[str, str], prefix: str) -> None:
    """In place: every value name ``rename``d or prefixed, node names prefixed, through subgraphs too."""
    def name(v: str) -> str:
        return rename.get(v, prefix + v) if v else v

    for n in nodes:
        n.input[:] = [name(v) for v in n.input]
        n.output[:] = [name(v) for v in n.output]
        n.name = prefix + (n.name or (n.output[0] if n.output else n.op_type))
        for a in n.attribute:
            for g in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
                for vi in list(g.input) + list(g.output) + list(g.value_info):
                    vi.name = name(vi.name)
                _rename_nodes(g.node, rename, prefix)


def inline_body(fp: onnx.FunctionProto, actuals: dict[str, str], output: str, prefix: str) -> list[onnx.NodeProto]:
    """The nodes of ``fp`` instantiated in a graph: formal inputs renamed to ``actuals``, its output to
    ``output``, every other value and node name prefixed with ``prefix`` (the ``standard`` form)."""
    rename = {f: actuals[f] for f in fp.input}
    rename[fp.output[0]] = output
    nodes = []
    for node in fp.node:
        n = onnx.NodeProto()
        n.CopyFrom(node)
        nodes.append(n)
    _rename_nodes(nodes, rename, prefix)
    return nodes
