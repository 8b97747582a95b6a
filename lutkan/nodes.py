"""The node step of a KAN layer, defined once: subnode affine -> multiplication groups -> node affine.

pykan 0.2.8 (``docs/contract.md`` §1), for the edge sums ``s`` (N, O) of one layer::

    s     = subnode_scale * s + subnode_bias
    nodes = [s[:, :n_sum], prod(s[:, group_1]), prod(s[:, group_2]), ...]   (consecutive groups)
    x'    = node_scale * nodes + node_bias

``NodeStep.apply`` is the NumPy implementation, generic in the arrays' dtype (float64 for the source
reference, float32 for the compiled evaluators). The Numba kernel (``lutkan.evaluators.kernels``) and the
ONNX graph (``lutkan.exporter._graph``) implement the same step in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class NodeStep:
    """Affines and multiplication wiring of one layer.

    Shapes: ``subnode_scale``/``subnode_bias`` (O,) with O = n_sum + sum(mult_groups) subnodes;
    ``node_scale``/``node_bias`` (n_sum + len(mult_groups),) nodes.
    """

    subnode_scale: np.ndarray
    subnode_bias: np.ndarray
    node_scale: np.ndarray
    node_bias: np.ndarray
    n_sum: int
    mult_groups: tuple[int, ...] = ()

    @property
    def n_nodes(self) -> int:
        return self.n_sum + len(self.mult_groups)

    @property
    def is_identity(self) -> bool:
        """True when the step changes nothing (no groups, unit scales, zero biases)."""
        return (not self.mult_groups and bool(np.all(self.subnode_scale == 1)) and bool(np.all(self.node_scale == 1))
                and not np.any(self.subnode_bias) and not np.any(self.node_bias))

    def apply(self, s: np.ndarray) -> np.ndarray:
        """(N, O) edge sums -> (N, n_nodes) node values, in the arrays' dtype."""
        s = self.subnode_scale * s + self.subnode_bias
        if self.mult_groups:
            parts = [s[:, : self.n_sum]]
            start = self.n_sum
            for size in self.mult_groups:
                parts.append(np.prod(s[:, start : start + size], axis=1, keepdims=True))
                start += size
            s = np.concatenate(parts, axis=1)
        return self.node_scale * s + self.node_bias

    def magnitude(self, s: np.ndarray, mag: np.ndarray) -> np.ndarray:
        """A rounding scale of ``apply(s)`` per node, given ``mag`` (N, O) for the edge sums: each result's own
        magnitude plus the first-order propagation of ``mag`` through the affines and products (the bound a
        summation-order difference of the edge sums can move a node by, in units of the float epsilon)."""
        with np.errstate(all="ignore"):
            t = self.subnode_scale * s + self.subnode_bias
            mt = np.abs(self.subnode_scale) * mag + np.abs(t)
            vals, mags = [t[:, : self.n_sum]], [mt[:, : self.n_sum]]
            start = self.n_sum
            for size in self.mult_groups:
                f, m = np.abs(t[:, start : start + size]), mt[:, start : start + size]
                prod = np.prod(t[:, start : start + size], axis=1, keepdims=True)
                spread = sum(m[:, r] * np.prod(np.delete(f, r, axis=1), axis=1) for r in range(size))
                vals.append(prod)
                mags.append(spread[:, None] + np.abs(prod))
                start += size
            nodes, mnodes = np.concatenate(vals, axis=1), np.concatenate(mags, axis=1)
            return np.abs(self.node_scale) * mnodes + np.abs(self.node_scale * nodes + self.node_bias)

    def astype(self, dtype) -> NodeStep:
        """The same step with its vectors in ``dtype`` (C-contiguous)."""
        def c(a):
            return np.ascontiguousarray(a, dtype=dtype)

        return NodeStep(c(self.subnode_scale), c(self.subnode_bias), c(self.node_scale), c(self.node_bias),
                        int(self.n_sum), tuple(int(g) for g in self.mult_groups))
