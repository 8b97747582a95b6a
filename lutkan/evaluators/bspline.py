"""B-spline baselines of the *source* model (no tables): what the LUT evaluators are benchmarked against.

``BSplineModel(source, dtype=np.float32)`` evaluates a :class:`~lutkan.source.SourceModel` with
pykan 0.2.8's exact forward semantics (``SourceModel.forward`` is the reference) in one of four
ways, ``forward(x, backend="numpy"|"numba", method="naive"|"strong")``:

``naive`` - the LUT-KAN paper's *matched* baseline (lutkan-reference.md §5.1): for every edge
    (i, j) independently, the full Cox-de Boor recursion over *all* K intervals of row i's
    extended grid (half-open order-0 indicator, ``nan_to_num`` after every level exactly as
    pykan's ``B_batch``), then a dot product with ``coef[i, j]``. The basis is recomputed for
    every output edge although it depends only on the input (that is the point). Edges with
    ``mask == 0`` skip the spline (as the paper's kernels do) but keep the base term.
    NumPy: a Python loop over edges, vectorized over the batch. Numba: sample -> input -> edge.

``strong`` - a standard local de Boor kernel (lutkan-reference.md §8.3): per (sample, input) a
    binary search on that input's own (non-uniform) knots finds the span ``t_mu <= x < t_mu+1``;
    the k+1 non-zero basis values are computed ONCE with the triangular recursion (NURBS book
    A2.2) and shared by all O outputs (coef laid out (I, K+k, O) so the inner loop over outputs
    is contiguous). NumPy: the span by a vectorized count of knots <= x (an exact vectorized
    ``searchsorted(side="right")``), the recursion vectorized over (N, I), and the contraction as
    one GEMM of the scattered (N, I*(K+k)) basis matrix with the stacked coefficients (in row
    chunks of at most ``_NUMPY_STRONG_CHUNK`` matrix elements). Numba: loops
    sample -> input -> (k+1 basis rows) -> outputs.

Both are single-threaded by design (no ``prange``; the NumPy GEMMs follow the BLAS thread
setting, so benchmarks pin ``OPENBLAS_NUM_THREADS=1``). The Numba kernels are
``njit(cache=True, fastmath=False, nogil=True, error_model="numpy")`` (IEEE inf/NaN on x/0, as the
naive recursion divides by zero-width intervals exactly like pykan) and allocate nothing per
sample (scratch buffers once per call). Arithmetic is done in ``dtype``
(float32 for the benchmark, float64 for bit-for-bit-semantics checks against the reference).

Semantics reproduced (all four paths):

* spline = 0 outside ``[t_0, t_K)`` (half-open: ``x == t_K`` gives 0), for NaN and for +-inf;
* degenerate rows (all knots equal) contribute 0 for every x;
* pykan's ``nan_to_num`` after each recursion level: a basis function ``B_{m,p}`` whose
  ``t_{m+p} == t_m`` or ``t_{m+p+1} == t_{m+1}`` is 0 (its 0/0 or inf*0 term is NaN, and NaN
  wipes the *whole* sum, not just that term). Inside the local de Boor window all knot
  differences are > 0, so only the two window-edge functions can be hit; the strong kernels
  test exactly those two conditions;
* the base term ``(mask*scale_base)[i, j] * base(x_i)`` is added for *every* edge, also masked
  ones, so ``0 * NaN``/``0 * inf`` poison outputs exactly like the reference (NaN in input i ->
  NaN in every subnode of that layer with silu/identity base; ``silu(-inf) = NaN``, ``silu(+inf) =
  +inf``). ``base_fun="zero"`` gives exactly 0 like the reference's ``np.zeros_like`` (note: pykan
  itself uses ``x*0.``, which is NaN for NaN/inf inputs; we follow the reference);
* subnode affine -> multiplication groups -> node affine, as ``lutkan.nodes.NodeStep`` (NumPy) and
  ``lutkan.evaluators.node_kernel`` (Numba).

Symbolic edges (``source.symbolic_enabled`` and a non-zero symbolic mask) are evaluated with
``SourceLayer.symbolic_term`` in float64 NumPy *outside* the kernels and added to the edge sums
before the node combination (in both backends; the Numba kernel then only covers splines and
the base branch).

One known deviation: pykan also wipes ``B_{m,p}`` when ``(x - t_m)/(t_{m+p} - t_m)`` overflows
to inf for an x outside that function's support (knot spacings ~1e-300 in float64, ~1e-38 in
float32); the strong kernels do not compute those ratios. The naive kernels do (in ``dtype``).
"""

from __future__ import annotations

import numpy as np

from lutkan import budget
from lutkan.errors import InputError, LutKanError, UnsupportedModelError
from lutkan.evaluators.bspline_kernels import naive_layer_kernel, strong_layer_kernel
from lutkan.evaluators.inputs import check_input
from lutkan.evaluators.node_kernel import apply_nodes
from lutkan.source import SourceLayer, SourceModel, base_function, bspline_basis
from lutkan.symbolic import symbolic_function

BACKENDS = ("numpy", "numba")
METHODS = ("naive", "strong")
BASE_CODES = {"silu": 0, "identity": 1, "zero": 2}

_NUMPY_STRONG_CHUNK = 1 << 22  # elements of the (rows, I*(K+k)) basis matrix per NumPy chunk (16 MB f32)


class _Layer:
    """Flat per-layer arrays in the evaluation dtype (built once)."""

    def __init__(self, layer: SourceLayer, dtype: np.dtype, symbolic_enabled: bool, base_fun: str):
        self.src = layer
        I, O = layer.in_dim, layer.out_dim
        k = int(layer.k)
        K = layer.grid.shape[1] - 1
        if K - k < 1:
            raise UnsupportedModelError(f"layer has {K + 1} knots per row for k={k}; need at least k+2")
        self.I, self.O, self.k, self.K = I, O, k, K
        grid = np.asarray(layer.grid, dtype=np.float64)
        d = np.diff(grid, axis=1)
        if np.any(d < 0) or not np.all(np.isfinite(grid)):
            raise UnsupportedModelError("knot rows must be finite and non-decreasing")
        self.knots = np.ascontiguousarray(grid.astype(dtype))
        self.knotsp = np.ascontiguousarray(np.concatenate(
            [np.repeat(self.knots[:, :1], k, axis=1), self.knots, np.repeat(self.knots[:, -1:], k, axis=1)],
            axis=1))
        mask = np.asarray(layer.mask, dtype=np.float64)
        coef = np.asarray(layer.coef, dtype=np.float64) * (mask * layer.scale_sp)[:, :, None]  # (I, O, nb)
        self.coef = np.ascontiguousarray(coef.astype(dtype))
        nb = K - k
        coefp = np.zeros((I, K + k, O), dtype=dtype)  # row m + k holds basis m
        coefp[:, k : k + nb, :] = coef.transpose(0, 2, 1)
        self.coefp = coefp
        self.coefp_flat = coefp.reshape(I * (K + k), O)
        self.wb = np.ascontiguousarray((mask * layer.scale_base).astype(dtype))
        self.active = np.ascontiguousarray((mask != 0).astype(np.uint8))
        step = layer.node_step
        self.nodes = None if step.is_identity else step.astype(dtype)
        self.n_nodes = layer.n_nodes
        self.sym_edges: list[tuple[int, int]] = []
        if symbolic_enabled:
            for j, i in zip(*np.nonzero(layer.sym_mask), strict=True):
                symbolic_function(layer.sym_names[j][i], where=f"edge ({i}, {j}): ")  # fail early
                self.sym_edges.append((int(i), int(j)))
        self.base_code = BASE_CODES[base_fun]
        self.base_fun = base_fun
        self.cols = np.arange(I)

    # -- edge sums (N, I) -> (N, O) -------------------------------------------------------------

    def edges_numba_naive(self, h: np.ndarray) -> np.ndarray:
        s = np.empty((h.shape[0], self.O), dtype=h.dtype)
        naive_layer_kernel(h, self.knots, self.coef, self.wb, self.active, self.k, self.base_code, s)
        return s

    def edges_numba_strong(self, h: np.ndarray) -> np.ndarray:
        s = np.empty((h.shape[0], self.O), dtype=h.dtype)
        strong_layer_kernel(h, self.knotsp, self.coefp, self.wb, self.k, self.base_code, s)
        return s

    def edges_numpy_naive(self, h: np.ndarray) -> np.ndarray:
        N = h.shape[0]
        s = np.zeros((N, self.O), dtype=h.dtype)
        base = base_function(self.base_fun, h)
        with np.errstate(invalid="ignore", over="ignore"):
            for i in range(self.I):
                xi = h[:, i]
                bi = base[:, i]
                for j in range(self.O):
                    s[:, j] += self.wb[i, j] * bi
                    if self.active[i, j]:
                        B = bspline_basis(xi, self.knots[i], self.k)  # per edge, on purpose
                        s[:, j] += B @ self.coef[i, j]
        return s

    def edges_numpy_strong(self, h: np.ndarray) -> np.ndarray:
        rows = max(1, _NUMPY_STRONG_CHUNK // (self.I * (self.K + self.k)))  # bound the basis matrix
        if h.shape[0] <= rows:
            return self._edges_numpy_strong(h)
        return np.concatenate([self._edges_numpy_strong(h[a : a + rows]) for a in range(0, h.shape[0], rows)])

    def _edges_numpy_strong(self, h: np.ndarray) -> np.ndarray:
        N = h.shape[0]
        k, K, I = self.k, self.K, self.I
        dt = h.dtype
        tp = self.knotsp
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            valid = (h >= self.knots[:, 0]) & (h < self.knots[:, K])  # NaN/inf/degenerate -> False
            # span: #knots <= x == searchsorted(t_i, x, side="right"), vectorized over rows
            cnt = np.zeros(h.shape, dtype=np.int32)
            for m in range(1, K):
                np.add(cnt, h >= self.knots[:, m], out=cnt, casting="unsafe")
            mu = np.where(valid, cnt, 0)  # real span index: t[mu] <= x < t[mu+1] where valid
            xv = np.where(valid, h, self.knots[:, 0])
            base_idx = self.cols * tp.shape[1] + mu + k  # flat index of t[mu] in the padded rows
            tflat = tp.ravel()
            T = {q: np.take(tflat, base_idx + q) for q in range(-k, k + 2)}  # T[q] == t[mu + q]
            Nv = [np.ones((N, I), dtype=dt)]
            for p in range(1, k + 1):
                left = [None] + [xv - T[1 - q] for q in range(1, p + 1)]
                right = [None] + [T[q] - xv for q in range(1, p + 1)]
                saved = None
                new = []
                for r in range(p):
                    temp = Nv[r] / (T[r + 1] - T[1 - p + r])  # > 0 inside the window
                    new.append(right[r + 1] * temp if saved is None else saved + right[r + 1] * temp)
                    saved = left[p - r] * temp
                new.append(saved)
                # pykan's nan_to_num wipes the window-edge functions on a zero-width side
                new[0] = np.where(T[0] == T[-p], dt.type(0), new[0])
                new[p] = np.where(T[p + 1] == T[1], dt.type(0), new[p])
                Nv = new
        W = K + k
        D = np.zeros((N, I * W), dtype=dt)
        Dflat = D.ravel()
        idx0 = np.arange(N)[:, None] * (I * W) + self.cols[None, :] * W + mu  # column of basis mu - k
        for r in range(k + 1):
            Dflat[idx0 + r] = np.where(valid, Nv[r], dt.type(0))
        s = D @ self.coefp_flat
        base = base_function(self.base_fun, h)
        finite = np.isfinite(base).all(axis=1)
        if finite.all():
            s += base @ self.wb
        else:  # IEEE 0*NaN / 0*inf semantics for the affected rows, independent of BLAS
            with np.errstate(invalid="ignore", over="ignore"):
                s[finite] += base[finite] @ self.wb
                bad = ~finite
                s[bad] += (base[bad][:, :, None] * self.wb[None, :, :]).sum(axis=1)
        return s

    # -- node combination ------------------------------------------------------------------------

    def add_symbolic(self, h: np.ndarray, s: np.ndarray) -> None:
        for i, j in self.sym_edges:
            term = self.src.symbolic_term(i, j, h[:, i].astype(np.float64))
            with np.errstate(invalid="ignore", over="ignore"):
                s[:, j] += term.astype(s.dtype)

    def combine(self, s: np.ndarray, backend: str) -> np.ndarray:
        """The node step in ``backend`` (identity steps are skipped)."""
        if self.nodes is None:
            return s
        if backend == "numba":
            return apply_nodes(self.nodes, s)
        with np.errstate(invalid="ignore", over="ignore"):
            return self.nodes.apply(s)


class BSplineModel:
    """A ``SourceModel`` evaluated directly from its B-splines (the honest baselines).

    ``BSplineModel(source, dtype=np.float32).forward(x, backend="numba", method="strong")``
    returns (N, n_outputs) in ``dtype``. See the module docstring for the four variants.
    """

    def __init__(self, source: SourceModel, *, dtype=np.float32, max_bytes: int | None = None):
        """The per-layer coefficient copies are checked against the resource budget first (``lutkan.budget``),
        a batch's temporaries on every call."""
        dt = np.dtype(dtype)
        if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise LutKanError(f"dtype {dt} is not supported; use float32 or float64")
        cells = [int(L.coef.shape[0]) * (int(L.grid.shape[1]) + int(L.k)) * int(L.coef.shape[1]) for L in source.layers]
        budget.check(sum(cells) * (3 * dt.itemsize + 8), "the B-spline baseline's coefficient tables", limit=max_bytes)
        self.max_bytes = max_bytes
        self._row_bytes = max(int(L.grid.shape[0]) * (int(L.grid.shape[1]) + 4 * int(L.k) + 8) + int(L.coef.shape[1])
                              for L in source.layers) * 8
        self.source = source
        self.dtype = dt
        self.n_inputs = int(source.n_inputs)
        self.input_id = np.asarray(source.input_id, dtype=np.int64)
        self._identity_input = bool(np.array_equal(self.input_id, np.arange(self.n_inputs)))
        self.layers = [_Layer(layer, dt, bool(source.symbolic_enabled), source.base_fun)
                       for layer in source.layers]

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].n_nodes

    def _prepare(self, x) -> np.ndarray:
        h = check_input(x, self.n_inputs, dtype=self.dtype)
        if not self._identity_input:
            h = np.ascontiguousarray(h[:, self.input_id])
        return h

    def forward_layer(self, l: int, h: np.ndarray, *, backend: str = "numpy", method: str = "naive") -> np.ndarray:
        """Layer ``l`` alone on its (N, I) input (cast to ``dtype``) -> (N, n_nodes)."""
        _check(backend, method)
        layer = self.layers[l]
        h = np.ascontiguousarray(h, dtype=self.dtype)
        if h.ndim != 2 or h.shape[1] != layer.I:
            raise InputError(f"layer {l} input has shape {h.shape}; expected (batch, {layer.I})")
        return self._layer(layer, h, backend, method)

    def _layer(self, layer: _Layer, h: np.ndarray, backend: str, method: str) -> np.ndarray:
        if backend == "numba":
            s = layer.edges_numba_naive(h) if method == "naive" else layer.edges_numba_strong(h)
        else:
            s = layer.edges_numpy_naive(h) if method == "naive" else layer.edges_numpy_strong(h)
        if layer.sym_edges:
            layer.add_symbolic(h, s)
        return layer.combine(s, backend)

    def forward(self, x, *, backend: str = "numpy", method: str = "naive", upto: int | None = None) -> np.ndarray:
        """(N, n_inputs) -> (N, n_outputs) in ``dtype``; ``upto`` stops after that many layers."""
        _check(backend, method)
        h = self._prepare(x)
        budget.check(h.shape[0] * self._row_bytes, f"the B-spline baseline on a batch of {h.shape[0]} rows",
                     limit=self.max_bytes)
        for layer in self.layers[:upto]:
            h = self._layer(layer, h, backend, method)
        return h

    __call__ = forward


def _check(backend: str, method: str) -> None:
    if backend not in BACKENDS:
        raise LutKanError(f"backend {backend!r} is not supported; choose one of {', '.join(BACKENDS)}")
    if method not in METHODS:
        raise LutKanError(f"method {method!r} is not supported; choose one of {', '.join(METHODS)}")
