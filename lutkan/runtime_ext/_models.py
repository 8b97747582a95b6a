"""Test/benchmark helpers: random SourceModels and ONNX graphs built from LUTKanEdge nodes.

``export_model`` is ``lutkan.exporter.export``. ``stand_in_export`` builds a graph here with
``onnx.helper`` (written before the exporter existed): input ``x`` (batch, n_inputs)
-> optional Gather(input_id) -> per layer a ``lutkan.LUTKanEdge`` node (tables as initializers
``kan{l}.knots`` ...) -> subnode/node affine as Mul/Add -> output ``y``; with ``decoy_function``
it carries a FunctionProto body that is wrong on purpose (``Y = MatMul(X, EdgeMask)``), which
proves that the registered plugin kernel replaces the body.
Not part of the public API.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from lutkan.artifact import LUTModel
from lutkan.contract import ContractOptions
from lutkan.custom_ops.schema import ATTRIBUTES, DOMAIN, INPUTS, OP_TYPE, OP_VERSION, op_attributes, op_inputs
from lutkan.tables import LayerTables
from lutkan.source import SourceLayer, SourceModel

_ROLE_NAMES = {"Knots": "knots", "Bounds": "bounds", "SegScale": "seg_scale", "BaseWeight": "base_weight",
               "EdgeMask": "edge_mask", "Table": "table", "TableScale": "table_scale", "TableOffset": "table_offset"}


def random_source(width, *, G: int = 5, k: int = 3, seed: int = 0, base_fun: str = "silu",
                  affine: bool = True, sparse: float = 0.1, zero_width_row: bool = False,
                  input_id=None, n_inputs: int | None = None, mult: bool = False) -> SourceModel:
    """A random pykan-like SourceModel of the given node widths (non-uniform per-input grids).

    ``mult=True``: the last node of every layer is a multiplication node (product of 2 subnodes).
    """
    rng = np.random.default_rng(seed)
    layers = []
    for l, (I, n_nodes) in enumerate(zip(width[:-1], width[1:])):
        n_sum, groups = (n_nodes - 1, (2,)) if mult else (n_nodes, ())
        O = n_sum + sum(groups)
        lo = rng.uniform(-3.0, -0.5, I)
        hi = rng.uniform(0.5, 3.0, I)
        u = np.sort(rng.uniform(0, 1, (I, G - 1)), axis=1) if G > 1 else np.zeros((I, 0))
        u = 0.5 * u + 0.5 * np.linspace(0, 1, G + 1)[1:-1]  # non-uniform but well spread
        inner = np.concatenate([np.zeros((I, 1)), u, np.ones((I, 1))], axis=1)
        h = (hi - lo) / G
        grid = np.concatenate([lo[:, None] + h[:, None] * np.arange(-k, 0),
                               lo[:, None] + (hi - lo)[:, None] * inner,
                               hi[:, None] + h[:, None] * np.arange(1, k + 1)], axis=1)
        if zero_width_row and l == 0:
            grid[0] = 0.25
        mask = (rng.uniform(0, 1, (I, O)) > sparse).astype(np.float64)
        if affine:
            sub_s, sub_b = rng.uniform(0.5, 1.5, O), rng.normal(0, 0.1, O)
            node_s, node_b = rng.uniform(0.5, 1.5, n_nodes), rng.normal(0, 0.1, n_nodes)
        else:
            sub_s, sub_b, node_s, node_b = np.ones(O), np.zeros(O), np.ones(n_nodes), np.zeros(n_nodes)
        layers.append(SourceLayer(
            grid=grid, coef=rng.normal(0, 0.5, (I, O, G + k)), k=k,
            scale_base=rng.normal(0, 0.3, (I, O)), scale_sp=np.ones((I, O)), mask=mask,
            sym_mask=np.zeros((O, I)), sym_affine=np.zeros((O, I, 4)),
            sym_names=tuple(tuple("0" for _ in range(I)) for _ in range(O)),
            subnode_scale=sub_s, subnode_bias=sub_b, node_scale=node_s, node_bias=node_b, n_sum=n_sum,
            mult_groups=groups))
    ids = np.arange(width[0]) if input_id is None else np.asarray(input_id, dtype=np.int64)
    return SourceModel(layers=tuple(layers), input_id=ids, n_inputs=n_inputs or width[0], base_fun=base_fun,
                       symbolic_enabled=False)


def random_model(width=(4, 3, 2), *, options: ContractOptions | None = None, **kw) -> LUTModel:
    from lutkan.compiler import compile_model

    return compile_model(random_source(width, **kw), options or ContractOptions())


def exporter_available() -> bool:
    try:
        from lutkan.exporter import export  # noqa: F401
    except ImportError:
        return False
    return True


def export_model(model: LUTModel, form: str = "custom", **options) -> onnx.ModelProto:
    """``lutkan.exporter.export`` (the real exporter)."""
    from lutkan.exporter import export

    return export(model, form=form, **options)


def decoy_function_model(model: LUTModel) -> onnx.ModelProto:
    """LUTKanEdge nodes + a FunctionProto whose body is wrong on purpose (``MatMul(X, EdgeMask)``)."""
    return stand_in_export(model, decoy_function=True)


def stand_in_export(model: LUTModel, *, decoy_function: bool = False) -> onnx.ModelProto:
    opts = model.contract
    nodes, inits = [], []
    h = "x"
    ids = np.asarray(model.input_id, dtype=np.int64)
    if not np.array_equal(ids, np.arange(model.n_inputs)):
        inits.append(numpy_helper.from_array(ids, "input_id"))
        nodes.append(helper.make_node("Gather", ["x", "input_id"], ["x_sel"], axis=1, name="select_inputs"))
        h = "x_sel"
    for l, layer in enumerate(model.layers):
        if layer.mult_groups:
            raise NotImplementedError("the stand-in exporter has no multiplication nodes")
        names = [h]
        for role, arr in op_inputs(LayerTables.from_layer(layer, opts, model.base_fun)).items():
            if arr is None:
                names.append("")
                continue
            name = f"kan{l}.{_ROLE_NAMES[role]}"
            inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
            names.append(name)
        while names[-1] == "":
            names.pop()
        s = f"kan{l}.s"
        nodes.append(helper.make_node(OP_TYPE, names, [s], domain=DOMAIN, name=f"kan{l}",
                                      **op_attributes(opts, model.base_fun)))
        for what, vec, op in (("subnode_scale", layer.subnode_scale, "Mul"),
                              ("subnode_bias", layer.subnode_bias, "Add"),
                              ("node_scale", layer.node_scale, "Mul"), ("node_bias", layer.node_bias, "Add")):
            neutral = 1.0 if op == "Mul" else 0.0
            if np.all(vec == neutral):
                continue
            name = f"kan{l}.{what}"
            inits.append(numpy_helper.from_array(np.asarray(vec, dtype=np.float32), name))
            nodes.append(helper.make_node(op, [s, name], [f"{name}.out"], name=f"kan{l}.{what}.op"))
            s = f"{name}.out"
        h = s
    nodes.append(helper.make_node("Identity", [h], ["y"], name="output"))
    n_out = model.layers[-1].n_nodes
    g = helper.make_graph(nodes, "lutkan_stand_in",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", model.n_inputs])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", n_out])],
                          initializer=inits)
    functions = []
    if decoy_function:
        body = [helper.make_node("MatMul", ["X", "EdgeMask"], ["Y"])]
        functions.append(helper.make_function(DOMAIN, OP_TYPE, list(INPUTS), ["Y"], body,
                                              [helper.make_opsetid("", 21)], attributes=list(ATTRIBUTES)))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid(DOMAIN, OP_VERSION)],
                          ir_version=10, functions=functions, producer_name="lutkan-stand-in")
    return m
