"""``onnx.reference`` implementation of ``lutkan.LUTKanEdge`` (runs ``custom`` files, overrides bodies).

Usage::

    from onnx.reference import ReferenceEvaluator
    from lutkan.custom_ops.reference_op import LUTKanEdge
    y, = ReferenceEvaluator(model_proto, new_ops=[LUTKanEdge]).run(None, {"x": x})

The kernel is the reference itself: the op's inputs are repacked into a ``PackedLayer`` with identity
node combination and evaluated by ``lutkan.evaluators.numpy_eval.eval_layer`` (steps 1-7; step 8 of
the contract is separate standard ops in the graph), so there is one implementation of the math.
"""

from __future__ import annotations

import numpy as np
from onnx.reference.op_run import OpRun

from lutkan.custom_ops.schema import DOMAIN, OpTensors, dequantized_dense
from lutkan.evaluators.numpy_eval import eval_layer
from lutkan.evaluators.packing import PackedLayer


def packed_op_layer(t: OpTensors, L: int) -> PackedLayer:
    """A PackedLayer computing exactly the op (no affines, no multiplication nodes)."""
    I, K, L_table, O = t.table.shape
    if L_table != L:
        raise ValueError(f"attribute L={L} does not match the table's sample axis ({L_table})")
    knots = np.ascontiguousarray(t.knots, dtype=np.float32)
    bounds = np.asarray(t.bounds, dtype=np.float32)
    ones, zeros = np.ones(O, np.float32), np.zeros(O, np.float32)
    return PackedLayer(
        knots=knots, lo=bounds[0].copy(), hi=bounds[1].copy(), hi_idx=bounds[2].copy(),
        seg_scale=np.asarray(t.seg_scale, dtype=np.float32), dense=dequantized_dense(t),
        active=np.asarray(t.edge_mask) != 0, base_weight=np.asarray(t.base_weight, dtype=np.float32),
        subnode_scale=ones, subnode_bias=zeros, node_scale=ones, node_bias=zeros,
        n_sum=O, mult_groups=(), K=K, L=L,
    )


class LUTKanEdge(OpRun):
    """``Y = LUTKanEdge(X, Knots, Bounds, SegScale, BaseWeight, EdgeMask, Table[, TableScale[, TableOffset]])``."""

    op_domain = DOMAIN

    def _run(self, X, Knots, Bounds, SegScale, BaseWeight, EdgeMask, Table, TableScale=None, TableOffset=None,
             L=None, interp="linear", boundary="closed", oob="zero", base_fun="silu"):
        t = OpTensors(knots=Knots, bounds=Bounds, seg_scale=SegScale, base_weight=BaseWeight, edge_mask=EdgeMask,
                      table=Table, table_scale=TableScale, table_offset=TableOffset)
        L = int(Table.shape[2]) if L is None else int(L)
        p = packed_op_layer(t, L)
        x = np.ascontiguousarray(X, dtype=np.float32)
        y = eval_layer(p, x, interp=_s(interp), boundary=_s(boundary), oob=_s(oob), base_fun=_s(base_fun))
        return (np.ascontiguousarray(y, dtype=np.float32),)


def _s(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)
