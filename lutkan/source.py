"""The source model: a trained PyKAN network as plain float64 NumPy arrays.

``SourceModel`` is what the compiler reads (``lutkan.compiler.pykan`` builds it from a
live ``kan.MultKAN`` or a ``saveckpt`` checkpoint, with no torch objects left inside) and
``SourceModel.forward`` is the float64 reference of pykan 0.2.8's forward math
(``docs/contract.md`` §1): per layer

    s_j   = sum_i mask_ij*(sb_ij*base(x_i) + sp_ij*spline_ij(x_i))
            + [symbolic_enabled] * sum_i symmask_ji*(c*f(a*x_i+b)+d)
    s     = subnode_scale*s + subnode_bias
    nodes = [s[:n_sum], prod(group) for each mult group]
    x'    = node_scale*nodes + node_bias
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from lutkan.errors import UnsupportedModelError
from lutkan.nodes import NodeStep
from lutkan.symbolic import symbolic_function


def silu(x: np.ndarray) -> np.ndarray:
    """torch.nn.SiLU: x * sigmoid(x), computed stably in the input's dtype."""
    x = np.asarray(x)
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(-np.abs(x))
        sig = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)
        return x * sig


def base_function(name: str, x: np.ndarray) -> np.ndarray:
    if name == "silu":
        return silu(x)
    if name == "identity":
        return x
    if name == "zero":
        return np.zeros_like(x)
    raise UnsupportedModelError(f"base_fun {name!r} is not supported; use silu, identity or zero")


def bspline_basis(x: np.ndarray, grid: np.ndarray, k: int, *, order0: np.ndarray | None = None) -> np.ndarray:
    """pykan ``B_batch``: Cox-de Boor on one knot row, ``nan_to_num`` after every level (the one
    implementation of the recursion; the Numba baselines in ``lutkan.evaluators.bspline_kernels`` are its
    per-sample forms).

    Args:
        x: (N,) samples; the arithmetic is done in x's float dtype (float64 for anything else).
        grid: (K+1,) extended knots. k: spline order.
        order0: (N, K) order-0 basis to start from; default pykan's half-open indicator
            ``t_m <= x < t_{m+1}`` (the compiler passes the span a sample belongs to instead).
    Returns:
        (N, K-k) basis values (K+1 knots give K-k = G+k basis functions).
    """
    x = np.asarray(x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    xc = x[:, None]
    t = np.asarray(grid, dtype=x.dtype)
    B = ((xc >= t[:-1]) & (xc < t[1:])).astype(x.dtype) if order0 is None else order0.astype(x.dtype)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for p in range(1, k + 1):
            left = (xc - t[: -(p + 1)]) / (t[p:-1] - t[: -(p + 1)])
            right = (t[p + 1 :] - xc) / (t[p + 1 :] - t[1:-p])
            B = np.nan_to_num(left * B[:, :-1] + right * B[:, 1:], copy=False)
    return B


@dataclass(frozen=True)
class SourceLayer:
    """One pykan layer (``act_fun[l]`` + ``symbolic_fun[l]`` + the affines after it).

    Shapes (I inputs, O subnodes, n_nodes = n_sum + len(mult_groups) nodes):
        grid (I, G+2k+1) extended knots, one row per input; coef (I, O, G+k);
        scale_base, scale_sp, mask (I, O); sym_mask (O, I); sym_affine (O, I, 4) = (a, b, c, d);
        sym_names [O][I] pykan symbolic names ('0' = none);
        subnode_scale, subnode_bias (O,); node_scale, node_bias (n_nodes,).
    ``mult_groups`` are the sizes of the consecutive subnode groups after the first ``n_sum``
    subnodes whose product forms one multiplication node.
    """

    grid: np.ndarray
    coef: np.ndarray
    k: int
    scale_base: np.ndarray
    scale_sp: np.ndarray
    mask: np.ndarray
    sym_mask: np.ndarray
    sym_affine: np.ndarray
    sym_names: tuple[tuple[str, ...], ...]
    subnode_scale: np.ndarray
    subnode_bias: np.ndarray
    node_scale: np.ndarray
    node_bias: np.ndarray
    n_sum: int
    mult_groups: tuple[int, ...] = ()

    @property
    def in_dim(self) -> int:
        return int(self.grid.shape[0])

    @property
    def out_dim(self) -> int:
        return int(self.coef.shape[1])

    @property
    def n_nodes(self) -> int:
        return self.n_sum + len(self.mult_groups)

    def __post_init__(self) -> None:
        I, O = self.scale_base.shape
        K1 = self.grid.shape[1]
        checks = {
            "grid": (self.grid.shape, (I, K1)),
            "coef": (self.coef.shape, (I, O, K1 - self.k - 1)),
            "scale_sp": (self.scale_sp.shape, (I, O)),
            "mask": (self.mask.shape, (I, O)),
            "sym_mask": (self.sym_mask.shape, (O, I)),
            "sym_affine": (self.sym_affine.shape, (O, I, 4)),
            "subnode_scale": (self.subnode_scale.shape, (O,)),
            "subnode_bias": (self.subnode_bias.shape, (O,)),
            "node_scale": (self.node_scale.shape, (self.n_nodes,)),
            "node_bias": (self.node_bias.shape, (self.n_nodes,)),
        }
        for name, (got, want) in checks.items():
            if tuple(got) != tuple(want):
                raise UnsupportedModelError(f"layer tensor {name} has shape {tuple(got)}, expected {want}")
        if self.n_sum + sum(self.mult_groups) != O:
            raise UnsupportedModelError(
                f"n_sum={self.n_sum} + mult groups {self.mult_groups} != {O} subnodes")
        if len(self.sym_names) != O or any(len(r) != I for r in self.sym_names):
            raise UnsupportedModelError(f"sym_names must be [{O}][{I}] names")

    def edge_active(self, symbolic_enabled: bool) -> np.ndarray:
        """(I, O) bool: edges that contribute anything (numeric mask or symbolic mask set)."""
        act = self.mask != 0
        if symbolic_enabled:
            act = act | (self.sym_mask.T != 0)
        return act

    def symbolic_term(self, i: int, j: int, x: np.ndarray) -> np.ndarray:
        """c*f(a*x+b)+d of edge (i, j), times its symbolic mask (float64)."""
        a, b, c, d = (float(v) for v in self.sym_affine[j, i])
        f = symbolic_function(self.sym_names[j][i], where=f"edge ({i}, {j}): ")
        with np.errstate(all="ignore"):
            return float(self.sym_mask[j, i]) * (c * f(a * x + b) + d)

    def spline_term(self, i: int, j: int, x: np.ndarray) -> np.ndarray:
        """mask*scale_sp*spline_ij(x) (float64), pykan's exact B-spline."""
        B = bspline_basis(x, self.grid[i], self.k)
        return float(self.mask[i, j] * self.scale_sp[i, j]) * (B @ self.coef[i, j])

    @property
    def node_step(self) -> NodeStep:
        """Subnode affine -> multiplication groups -> node affine of this layer (float64)."""
        return NodeStep(self.subnode_scale, self.subnode_bias, self.node_scale, self.node_bias, self.n_sum,
                        tuple(self.mult_groups))


@dataclass(frozen=True)
class SourceModel:
    """A whole pykan network, torch-free. ``forward`` is the float64 pykan reference."""

    layers: tuple[SourceLayer, ...]
    input_id: np.ndarray
    n_inputs: int
    base_fun: str = "silu"
    symbolic_enabled: bool = True
    provenance: dict = field(default_factory=dict)
    cache_data: np.ndarray | None = None

    def __post_init__(self) -> None:
        if not self.layers:
            raise UnsupportedModelError("the model has no layers")
        for l in range(1, len(self.layers)):
            prev, cur = self.layers[l - 1], self.layers[l]
            if prev.n_nodes != cur.in_dim:
                raise UnsupportedModelError(
                    f"layer {l - 1} has {prev.n_nodes} nodes but layer {l} expects {cur.in_dim} inputs")
        if len(self.input_id) != self.layers[0].in_dim:
            raise UnsupportedModelError(
                f"input_id has {len(self.input_id)} entries, layer 0 has {self.layers[0].in_dim} inputs")
        if len(self.input_id) and (self.input_id.min() < 0 or self.input_id.max() >= self.n_inputs):
            raise UnsupportedModelError(f"input_id {self.input_id.tolist()} out of range for {self.n_inputs} inputs")
        if self.base_fun not in ("silu", "identity", "zero"):
            raise UnsupportedModelError(f"base_fun {self.base_fun!r} is not supported; use silu, identity or zero")

    @property
    def width(self) -> list[int]:
        return [self.layers[0].in_dim] + [layer.n_nodes for layer in self.layers]

    def forward(self, x: np.ndarray, *, upto: int | None = None) -> np.ndarray:
        """pykan's forward in float64 (x: (N, n_inputs)); ``upto`` stops after that many layers."""
        h = np.asarray(x, dtype=np.float64)[:, self.input_id]
        for layer in self.layers[:upto]:
            h = self.layer_forward(layer, h)
        return h

    def layer_forward(self, layer: SourceLayer, h: np.ndarray) -> np.ndarray:
        """One layer in float64: all edges, then node combination."""
        N = h.shape[0]
        s = np.zeros((N, layer.out_dim))
        base = base_function(self.base_fun, h)
        for i in range(layer.in_dim):
            B = bspline_basis(h[:, i], layer.grid[i], layer.k)  # shared by all outputs
            spl = B @ layer.coef[i].T  # (N, O)
            s += layer.mask[i] * (layer.scale_base[i] * base[:, i : i + 1] + layer.scale_sp[i] * spl)
            if self.symbolic_enabled:
                for j in np.nonzero(layer.sym_mask[:, i])[0]:
                    s[:, j] += layer.symbolic_term(i, int(j), h[:, i])
        return layer.node_step.apply(s)


_ABS_PATH = re.compile(r"^(?:/|~|[A-Za-z]:[\\/]|\\\\|file:)")


def portable_provenance(provenance: dict) -> dict:
    """``provenance`` without paths of the machine that built it: every string value (at any depth) that is
    an absolute path (POSIX, ``~``, a Windows drive or UNC path, ``file:``) becomes its file name, so compiled
    artifacts and exported ONNX files name their source by file name, checkpoint id and SHA-256 only."""

    def clean(v):
        if isinstance(v, str) and _ABS_PATH.match(v):
            return re.split(r"[\\/]", v.rstrip("\\/"))[-1]
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return type(v)(clean(x) for x in v)
        return v

    return clean(dict(provenance))
