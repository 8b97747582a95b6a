"""``onnx.reference`` implementations of the lutkan ops (run ``custom`` files, override bodies).

Usage::

    from onnx.reference import ReferenceEvaluator
    from lutkan.custom_ops.reference_op import OPS
    y, = ReferenceEvaluator(model_proto, new_ops=list(OPS)).run(None, {"x": x})

The kernel is the reference itself: the op's inputs become a ``LayerTables`` without node step
(``schema.tables_from_op``) evaluated by ``lutkan.evaluators.numpy_eval.eval_layer`` (steps 1-7; step 8
of the contract is separate standard ops in the graph), so there is one implementation of the math.
"""

from __future__ import annotations

import numpy as np
from onnx.reference.op_run import OpRun

from lutkan.custom_ops.schema import DOMAIN, symbolic_from_op, tables_from_op
from lutkan.custom_ops.validate import check_edge_inputs, check_symbolic_inputs
from lutkan.errors import OnnxModelError
from lutkan.evaluators.numpy_eval import eval_layer, symbolic_sum


class LUTKanEdge(OpRun):
    """``Y = LUTKanEdge(X, Knots, Bounds, SegScale, BaseWeight, EdgeMask, Table[, TableScale[, TableOffset]])``."""

    op_domain = DOMAIN

    def _run(self, X, Knots, Bounds, SegScale, BaseWeight, EdgeMask, Table, TableScale=None, TableOffset=None,
             L=None, interp="linear", boundary="closed", oob="zero", base_fun="silu"):
        L = int(Table.shape[2]) if L is None else int(L)
        if L != Table.shape[2]:
            raise ValueError(f"attribute L={L} does not match the table's sample axis ({Table.shape[2]})")
        arrays = {"Knots": Knots, "Bounds": Bounds, "SegScale": SegScale, "BaseWeight": BaseWeight,
                  "EdgeMask": EdgeMask, "Table": Table, "TableScale": TableScale, "TableOffset": TableOffset}
        attrs = {"L": L, "interp": _s(interp), "boundary": _s(boundary), "oob": _s(oob), "base_fun": _s(base_fun)}
        check_edge_inputs("LUTKanEdge OpRun", {k: None if v is None else np.asarray(v) for k, v in arrays.items()},
                          attrs)
        y = eval_layer(tables_from_op(arrays, attrs), np.ascontiguousarray(X, dtype=np.float32))
        return (np.ascontiguousarray(y, dtype=np.float32),)


def _s(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class KanSymbolic(OpRun):
    """``Y = KanSymbolic(X, Src, Dst, Affine)``: the NumPy reference's symbolic sum (``numpy_eval.symbolic_sum``)."""

    op_domain = DOMAIN

    def _run(self, X, Src, Dst, Affine, functions=None, n_outputs=None):
        funs = [_s(f) for f in (functions or [])]
        arrays = {"Src": np.asarray(Src), "Dst": np.asarray(Dst), "Affine": np.asarray(Affine)}
        check_symbolic_inputs("KanSymbolic OpRun", arrays, funs, int(n_outputs))
        if np.any(arrays["Src"] >= X.shape[1]):
            raise OnnxModelError(f"KanSymbolic OpRun: Src must be < the {X.shape[1]} columns of X")
        sym = symbolic_from_op({"Src": Src, "Dst": Dst, "Affine": Affine},
                               {"functions": funs, "n_outputs": int(n_outputs)})
        with np.errstate(all="ignore"):
            y = symbolic_sum(sym, np.ascontiguousarray(X, dtype=np.float32))
        return (np.ascontiguousarray(y, dtype=np.float32),)


OPS = (LUTKanEdge, KanSymbolic)
"""Every lutkan op for ``onnx.reference.ReferenceEvaluator(model, new_ops=list(OPS))``."""
