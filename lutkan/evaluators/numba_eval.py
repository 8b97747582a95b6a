"""The Numba evaluator: a whole model in one call of one fused kernel (the fast path).

``NumbaEvaluator(model, threads=1)(x)`` runs ``network_kernel`` over one flat float32 buffer holding every layer's
arrays (``pack_network``): per layer the edge sums (``lutkan.evaluators.lut_kernel``, the float32 arithmetic of
``lutkan.evaluators.numpy_eval``, the definition of correct), the exact symbolic edges (float64,
``symbolic_kernel``) and the node step (``node_kernel``), with no Python between layers (the batch-1 latency is
mostly per-call overhead). ``EdgeSumKernel`` is one layer's edge sums alone (the ``LUTKanEdge`` op; the
onnxruntime plugin runs it). Kernels are ``nogil``: ``threads > 1`` evaluates row blocks of a large batch
concurrently (``row_blocks``), bitwise equal to one call.
"""

from __future__ import annotations

import numba
import numpy as np

from lutkan import budget
from lutkan.artifact import LUTModel
from lutkan.evaluators.inputs import check_input
from lutkan.evaluators.jit_cache import flush_stale
from lutkan.evaluators.lut_kernel import lut_layer_kernel
from lutkan.evaluators.node_kernel import apply_nodes, combine_kernel
from lutkan.evaluators.row_blocks import SPLIT_MIN_ROWS, run_in_blocks
from lutkan.evaluators.symbolic_kernel import SymbolicKernel, symbolic_kernel
from lutkan.tables import LayerTables, model_tables

INTERP_CODES = {"linear": 0, "nearest": 1, "poly": 2}
OOB_CODES = {"clip": 0, "zero": 1, "extrapolate": 2}
BASE_CODES = {"silu": 0, "identity": 1, "zero": 2}

class EdgeSumKernel:
    """The LUTKanEdge op itself (edge sums of one layer, no node step) over a ``LayerTables``:
    ``EdgeSumKernel(tables)(x) -> (N, O)`` float32. Used by ``NumbaEvaluator``, the onnxruntime plugin and
    benchmarks; never raises on float32 input of the right width (callers validate shapes/dtypes first)."""

    def __init__(self, tables: LayerTables, arrays: dict[str, np.ndarray] | None = None):
        """``arrays``: views of the edge arrays to use instead of ``tables``' own (``pack_network``)."""
        o = tables.options
        a = arrays if arrays is not None else {name: getattr(tables, name) for name in _EDGE_ARRAYS}
        self.knots, self.bounds, self.seg_scale = a["knots"], a["bounds"], a["seg_scale"]
        self.dense, self.base_weight, self.edge_mask = a["dense"], a["base_weight"], a["edge_mask"]
        self.in_dim, self.out_dim = tables.in_dim, tables.out_dim
        self.flags = (o.L, INTERP_CODES[o.interp], o.boundary == "closed", OOB_CODES[o.oob], BASE_CODES[tables.base_fun])

    def __call__(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        if out is None:
            out = np.empty((x.shape[0], self.out_dim), dtype=np.float32)
        lut_layer_kernel(x, self.knots, self.bounds, self.seg_scale, self.dense, self.base_weight, self.edge_mask,
                         *self.flags, out)
        return out


# ``network_kernel``'s ``meta`` array: a 2-entry header (n_layers, permute_input), then one record of
# ``_R`` int64 per layer, field f of layer l at ``2 + l*_R + f``: shapes, contract flags, offsets into
# ``params`` (edge arrays at M_OFF_EDGE, node vectors at M_OFF_NODES), ``dparams`` (float64 symbolic affines at
# M_OFF_SYM) and
# into ``ints`` (multiplication groups at M_OFF_GROUPS; symbolic src, dst, codes at M_OFF_SYM_INTS).
_META = ("I", "O", "K", "L", "interp", "closed", "oob", "base", "off_edge", "has_nodes", "n_sum", "n_nodes",
         "n_groups", "off_groups", "off_nodes", "n_sym", "off_sym", "off_sym_ints")
_R = len(_META)
(M_I, M_O, M_K, M_L, M_INTERP, M_CLOSED, M_OOB, M_BASE, M_OFF_EDGE, M_HAS_NODES, M_N_SUM, M_N_NODES, M_N_GROUPS,
 M_OFF_GROUPS, M_OFF_NODES, M_N_SYM, M_OFF_SYM, M_OFF_SYM_INTS) = range(_R)
_EDGE_ARRAYS = ("knots", "bounds", "seg_scale", "dense", "base_weight", "edge_mask")  # order in ``params``


@numba.njit(cache=True, nogil=True, fastmath=False)
def _layer(h, params, meta, ints, dparams, l):
    """One layer of ``network_kernel``: edge sums (``lut_layer_kernel``), then the node step if any."""
    m = meta[2 + l * _R: 2 + (l + 1) * _R]
    I, O, K, L = m[M_I], m[M_O], m[M_K], m[M_L]
    N = h.shape[0]
    o = m[M_OFF_EDGE]
    knots = params[o:o + I * (K + 1)].reshape((I, K + 1))
    o += I * (K + 1)
    bounds = params[o:o + 3 * I].reshape((3, I))
    o += 3 * I
    seg_scale = params[o:o + I * K].reshape((I, K))
    o += I * K
    dense = params[o:o + I * K * L * O].reshape((I * K * L, O))
    o += I * K * L * O
    base_w = params[o:o + I * O].reshape((I, O))
    o += I * O
    edge_mask = params[o:o + I * O].reshape((I, O))
    s = np.empty((N, O), np.float32)
    lut_layer_kernel(h, knots, bounds, seg_scale, dense, base_w, edge_mask, L, m[M_INTERP], m[M_CLOSED] != 0,
                     m[M_OOB], m[M_BASE], s)
    S = m[M_N_SYM]
    if S > 0:
        q, f = m[M_OFF_SYM_INTS], m[M_OFF_SYM]
        symbolic_kernel(h, ints[q:q + S], ints[q + S:q + 2 * S], ints[q + 2 * S:q + 3 * S],
                        dparams[f:f + 4 * S].reshape((S, 4)), s, np.empty(O, np.float64))
    if m[M_HAS_NODES] == 0:
        return s
    n_sum, n_nodes, og, on = m[M_N_SUM], m[M_N_NODES], m[M_OFF_GROUPS], m[M_OFF_NODES]
    out = np.empty((N, n_nodes), np.float32)
    combine_kernel(s, params[on:on + O], params[on + O:on + 2 * O], n_sum, ints[og:og + m[M_N_GROUPS]],
                   params[on + 2 * O:on + 2 * O + n_nodes], params[on + 2 * O + n_nodes:on + 2 * O + 2 * n_nodes], out)
    return out


@numba.njit(cache=True, nogil=True, fastmath=False)
def network_kernel(x, input_id, params, meta, ints, dparams):
    """The whole network in one call: exactly the per-layer kernels of ``NumbaEvaluator`` in the same
    order (bit-identical), without a Python round trip per layer. ``x`` (N, n_inputs) float32 C-contiguous;
    ``params``/``meta``/``ints``/``dparams`` are built by ``pack_network`` (see ``_META``)."""
    N = x.shape[0]
    if meta[1] != 0:
        I0 = input_id.shape[0]
        x0 = np.empty((N, I0), np.float32)
        for n in range(N):
            for i in range(I0):
                x0[n, i] = x[n, input_id[i]]
        h = _layer(x0, params, meta, ints, dparams, 0)
    else:
        h = _layer(x, params, meta, ints, dparams, 0)
    for l in range(1, meta[0]):
        h = _layer(h, params, meta, ints, dparams, l)
    return h


flush_stale((_layer.py_func, network_kernel.py_func))  # they call kernels defined in other files


def pack_network(tables: tuple[LayerTables, ...], permute_input: bool):
    """``network_kernel``'s flat buffers ``(params float32, meta int64, ints int64, dparams float64)`` and, per
    layer, the
    views of ``params`` holding its edge arrays (so the dequantized tables exist once)."""
    chunks: list[np.ndarray] = []
    placed: list[list[tuple[str, int, tuple]]] = []
    meta = [len(tables), int(permute_input)]
    ints: list[int] = []
    dchunks: list[np.ndarray] = []
    doff = 0
    off = 0
    for t in tables:
        o = t.options
        rec = dict(I=t.in_dim, O=t.out_dim, K=t.n_segments, L=o.L, interp=INTERP_CODES[o.interp],
                   closed=int(o.boundary == "closed"), oob=OOB_CODES[o.oob], base=BASE_CODES[t.base_fun], off_edge=off,
                   has_nodes=0, n_sum=0, n_nodes=0, n_groups=0, off_groups=0, off_nodes=0, n_sym=0, off_sym=0,
                   off_sym_ints=0)
        placed.append([])
        for name in _EDGE_ARRAYS:
            a = t.dequantized() if name == "dense" else getattr(t, name)  # not cached on t: one copy
            placed[-1].append((name, off, a.shape))
            chunks.append(a.ravel())
            off += a.size
        if t.nodes is not None:
            st = t.nodes
            rec.update(has_nodes=1, n_sum=st.n_sum, n_nodes=st.n_nodes, n_groups=len(st.mult_groups),
                       off_groups=len(ints), off_nodes=off)
            ints += list(st.mult_groups)
            for a in (st.subnode_scale, st.subnode_bias, st.node_scale, st.node_bias):
                chunks.append(np.ravel(a))
                off += a.size
        if t.symbolic is not None:
            sy = t.symbolic
            rec.update(n_sym=sy.n_edges, off_sym=doff, off_sym_ints=len(ints))
            ints += sy.src.tolist() + sy.dst.tolist() + sy.codes.tolist()
            dchunks.append(np.ravel(sy.affine))
            doff += sy.affine.size
        meta += [int(rec[k]) for k in _META]
    params = np.ascontiguousarray(np.concatenate(chunks), dtype=np.float32)
    views = [{name: params[o:o + int(np.prod(shape))].reshape(shape) for name, o, shape in layer} for layer in placed]
    dparams = np.ascontiguousarray(np.concatenate(dchunks) if dchunks else np.zeros(1), dtype=np.float64)
    return params, np.asarray(meta, dtype=np.int64), np.asarray(ints if ints else [0], dtype=np.int64), dparams, views


class NumbaEvaluator:
    """Evaluate a ``LUTModel`` with the Numba kernel (``__call__(x) -> (N, outputs)``); thread-safe.

    A full forward is one call of ``network_kernel`` over one flat float32 buffer holding every layer's
    arrays (``pack_network``); ``upto`` (the first layers only) and ``forward_layers`` run the same kernels
    layer by layer from Python (``EdgeSumKernel`` + the node kernel), bitwise equal. ``threads > 1`` runs a
    batch of at least ``row_blocks.SPLIT_MIN_ROWS`` rows as that many concurrent row blocks (bitwise equal).
    """

    def __init__(self, model: LUTModel, threads: int = 1, *, max_bytes: int | None = None):
        """The stored tables, their dequantized copy in the packed buffer and its transient per-layer chunks are
        checked against the resource budget first (``lutkan.budget``; ``max_bytes``)."""
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads={threads!r} must be an integer >= 1")
        self.threads = threads
        self.model = model
        self.max_bytes = max_bytes
        self.tables = model_tables(model, max_bytes=max_bytes, extra_per_cell=4,
                                   what="the Numba evaluator's tables (stored, packed and transient copies)")
        self._width = max(layer.out_dim + layer.n_nodes for layer in model.layers)
        self._input_id = np.asarray(model.input_id, dtype=np.int64)
        self._identity_input = bool(np.array_equal(self._input_id, np.arange(model.n_inputs)))
        self._params, self._meta, self._ints, self._dparams, views = pack_network(self.tables,
                                                                                  not self._identity_input)
        self.kernels = [EdgeSumKernel(t, v) for t, v in zip(self.tables, views, strict=True)]
        self.symbolic = [None if t.symbolic is None else SymbolicKernel(t.symbolic) for t in self.tables]

    def __call__(self, x: np.ndarray, *, upto: int | None = None) -> np.ndarray:
        """Outputs of the whole model (or of its first ``upto`` layers) for ``x`` (N, n_inputs)."""
        h = check_input(x, self.model.n_inputs)
        N = h.shape[0]
        budget.check(N * (4 * (self._width + self.model.n_inputs) + 56), f"evaluating a batch of {N} rows (hidden "
                     f"values of width up to {self._width})", limit=self.max_bytes)
        if upto is None or upto >= len(self.kernels):
            if self.threads == 1 or N < SPLIT_MIN_ROWS:  # a small batch is not split: no hand-off, no copy
                return self._network(h)
            out = np.empty((N, self.model.n_outputs), dtype=np.float32)
            run_in_blocks(self._network_into, h, out, self.threads)
            return out
        return self.forward_layers(x, upto)

    def _network(self, h: np.ndarray) -> np.ndarray:
        return network_kernel(h, self._input_id, self._params, self._meta, self._ints, self._dparams)

    def _network_into(self, h: np.ndarray, out: np.ndarray) -> None:
        out[...] = self._network(h)

    def forward_layers(self, x: np.ndarray, upto: int | None = None) -> np.ndarray:
        """The same kernels called one layer at a time from Python (bitwise equal to ``__call__``)."""
        h = check_input(x, self.model.n_inputs)
        if not self._identity_input:
            h = np.ascontiguousarray(h[:, self._input_id])
        for kern, sym, t in zip(self.kernels[:upto], self.symbolic[:upto], self.tables[:upto], strict=True):
            s = kern(h)
            if sym is not None:
                sym.add_to(h, s)
            h = s if t.nodes is None else apply_nodes(t.nodes, s)
        return h
