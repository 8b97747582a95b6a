"""The node step (``lutkan.nodes``) as a Numba kernel, shared by the LUT kernel and the B-spline baselines.

Same operations in the same order as ``NodeStep.apply``: per row, ``subnode_scale*s + subnode_bias``, the
product of each multiplication group from left to right, then ``node_scale*node + node_bias``; in the
arrays' dtype (float32 or float64).
"""

from __future__ import annotations

import numba
import numpy as np

from lutkan.nodes import NodeStep


@numba.njit(cache=True, nogil=True, fastmath=False)
def combine_kernel(s, subnode_scale, subnode_bias, n_sum, groups, node_scale, node_bias, out):
    """Subnode affine -> multiplication groups -> node affine, row by row (in ``out``'s dtype)."""
    N = s.shape[0]
    consts = np.ones(1, dtype=out.dtype)
    one = consts[0]
    for n in range(N):
        for j in range(n_sum):
            out[n, j] = node_scale[j] * (subnode_scale[j] * s[n, j] + subnode_bias[j]) + node_bias[j]
        c = n_sum
        for g in range(groups.shape[0]):
            p = one
            for _ in range(groups[g]):
                p = p * (subnode_scale[c] * s[n, c] + subnode_bias[c])
                c += 1
            q = n_sum + g
            out[n, q] = node_scale[q] * p + node_bias[q]


def apply_nodes(step: NodeStep, s: np.ndarray) -> np.ndarray:
    """``step`` applied to the (N, O) edge sums ``s`` with the Numba kernel (its vectors cast to s's dtype)."""
    st = step.astype(s.dtype)
    out = np.empty((s.shape[0], st.n_nodes), dtype=s.dtype)
    combine_kernel(s, st.subnode_scale, st.subnode_bias, st.n_sum, np.asarray(st.mult_groups, dtype=np.int64),
                   st.node_scale, st.node_bias, out)
    return out
