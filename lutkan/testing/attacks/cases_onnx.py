"""Class 4: ONNX files the plugin could read differently from plain onnxruntime.

Every mutation of a real export (function form unless named) must be refused by the plugin's session creation
(``OnnxModelError`` naming the node), and value mutations of the custom form by the ``onnx.reference`` OpRun too:
inputs missing, empty or surplus for the table dtype, duplicate or computed initializers, a tampered function
body or a node attribute the body is not specialized for, foreign lutkan functions and overloads, and every input
value the schema forbids (masks, derived bounds and scales, inactive edges, non-finite or beyond ``VALUE_MAX``).
Unmodified exports of several schemes run identically on every backend.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from lutkan.contract import ContractOptions
from lutkan.errors import LutKanError, OnnxModelError
from lutkan.tables import index_hi, segment_scales
from lutkan.testing.attacks.crafting import identical, init, reject, set_init
from lutkan.testing.inputs import adversarial_inputs
from lutkan.testing.models import random_model

_MODELS: dict = {}


def _model(scheme: str, symbolic: float = 0.0):
    key = (scheme, symbolic)
    if key not in _MODELS:
        _MODELS[key] = random_model([3, 3, 2], ContractOptions(L=8, scheme=scheme), seed=7, masked=0.3,
                                    symbolic=symbolic, knots=("uniform", "nonuniform"))
    return _MODELS[key]


def _export(scheme: str, form: str, symbolic: float = 0.0) -> onnx.ModelProto:
    from lutkan.exporter import export

    return export(_model(scheme, symbolic), form)


def _node(m, op="LUTKanEdge"):
    return next(n for n in m.graph.node if n.op_type == op)


def _set_attr(name, value):
    def edit(m):
        n = _node(m)
        (a,) = [a for a in n.attribute if a.name == name]
        n.attribute.remove(a)
        n.attribute.append(helper.make_attribute(name, value))
    return edit


def _map_init(name, fn):
    def edit(m):
        set_init(m, name, fn(init(m, name)))
    return edit


def _input(q, value):
    def edit(m):
        n = _node(m)
        if value is None:
            del n.input[q:]
        else:
            n.input[q] = value
    return edit


def _add_input(role_name, shape_from):
    def edit(m):
        a = init(m, shape_from)
        set_init(m, role_name, np.ones(a.shape[:2] + a.shape[3:], np.float32))
        _node(m).input.append(role_name)
    return edit


def _duplicate(name):
    def edit(m):
        t = next(t for t in m.graph.initializer if t.name == name)
        dup = onnx.TensorProto()
        dup.CopyFrom(t)
        m.graph.initializer.append(dup)
        set_init(m, name, init(m, name))  # same name twice: first and last copies exist
        a = init(m, name)
        m.graph.initializer[-1].CopyFrom(onnx.numpy_helper.from_array(np.flip(a, 0).copy(), name))
    return edit


def _computed(name):
    def edit(m):
        m.graph.node.insert(0, helper.make_node("Identity", [name], ["shadow"]))
        m.graph.node.insert(1, helper.make_node("Identity", ["shadow"], [name]))
    return edit


def _tamper_body(m):
    f = m.functions[0]
    n = next(n for n in f.node if n.op_type == "Constant" and n.attribute[0].t.data_type == onnx.TensorProto.FLOAT)
    t = onnx.numpy_helper.to_array(n.attribute[0].t) * 2
    n.attribute[0].t.CopyFrom(onnx.numpy_helper.from_array(t.astype(np.float32)))


def _overload(m):
    _node(m).overload = "fast"


def _foreign_function(m):
    f = onnx.FunctionProto()
    f.CopyFrom(m.functions[0])
    f.name = "KanSymbolic"
    m.functions.append(f)


def _inactive(m):
    return init(m, "kan0.edge_mask") == 0


def _knots_span(m):
    kn = init(m, "kan0.knots")
    n = kn.shape[1]
    kn[0] = np.where(np.arange(n) < n // 2, -3e38, 3e38).astype(np.float32)
    set_init(m, "kan0.knots", kn)
    b = init(m, "kan0.bounds")
    b[:, 0] = kn[0, 0], kn[0, -1], index_hi(kn, "closed")[0]
    set_init(m, "kan0.bounds", b)
    with np.errstate(all="ignore"):
        set_init(m, "kan0.seg_scale", segment_scales(kn, 7))


def _table_on_inactive(m):
    t = init(m, "kan0.table")
    i, j = np.argwhere(_inactive(m))[0]
    t[i, :, :, j] = 5
    set_init(m, "kan0.table", t)


def _at(value, idx=(0, 0, 0)):
    def fn(a):
        a[idx] = value
        return a
    return fn


def _on_edge(name, value):
    """Set ``value`` at one cell of initializer ``name`` that an active edge with nonzero codes reads."""
    def edit(m):
        t = init(m, "kan0.table")
        live = (np.abs(t.astype(np.float64)).max(axis=2) > 0) & (init(m, "kan0.edge_mask") == 1)[:, None, :]
        i, k, j = (int(v) for v in np.argwhere(live)[0])
        a = init(m, name)
        a[(i, k, 0, j) if a.ndim == 4 else (i, k, j)] = value
        set_init(m, name, a)
    return edit


MUTATIONS = {  # name -> (scheme, form, edit, message)
    "int8 TableScale ''": ("int8", "function", _input(7, ""), "needs input TableScale"),
    "int8 TableScale left off": ("int8", "function", _input(7, None), "needs input TableScale"),
    "uint8 TableOffset left off": ("uint8", "function", _input(8, None), "needs input TableOffset"),
    "uint8 TableOffset ''": ("uint8", "custom", _input(8, ""), "needs input TableOffset"),
    "float32 Table with a TableScale": ("float32", "function", _add_input("s", "kan0.table"), "takes no TableScale"),
    "int8 Table with a TableOffset": ("int8", "custom", _add_input("o", "kan0.table"), "takes no TableOffset"),
    "duplicate initializer kan0.table": ("int8", "function", _duplicate("kan0.table"), "defined twice"),
    "initializer recomputed by nodes": ("int8", "function", _computed("kan0.knots"), "computed by a node"),
    "function body constant doubled": ("int8", "function", _tamper_body, "not the body lutkan builds"),
    "node interp=nearest, body linear": ("int8", "function", _set_attr("interp", "nearest"), "not the body"),
    "node oob=clip, body zero": ("uint8", "function", _set_attr("oob", "clip"), "not the body"),
    "node overload": ("int8", "function", _overload, "overload"),
    "foreign lutkan function": ("int8", "function", _foreign_function, "lutkan-domain function"),
    "L attribute 2**62": ("int8", "custom", _set_attr("L", 2**62), "out of range"),
    "EdgeMask 2": ("int8", "custom", _map_init("kan0.edge_mask", lambda a: a * 2), "EdgeMask must hold 0"),
    "BaseWeight off the edges": ("int8", "custom", _map_init("kan0.base_weight", lambda a: a + 1), "inactive edge"),
    "Table on an inactive edge": ("int8", "custom", _table_on_inactive, "Table is nonzero on an inactive edge"),
    "SegScale doubled": ("int8", "function", _map_init("kan0.seg_scale", lambda a: a * 2), "SegScale must be"),
    "hi_idx below hi": ("int8", "custom", _map_init("kan0.bounds", _at(-1.0, (2, 0))), "Bounds row 2"),
    "Knots spanning +-3e38 (consistent)": ("int8", "function", _knots_span, "Knots holds |value|"),
    "float32 Table 3e38": ("float32", "custom", _on_edge("kan0.table", 3e38), "dequantized Table"),
    "float32 Table NaN": ("float32", "function", _on_edge("kan0.table", np.nan), "Table contains NaN"),
    "int8 TableScale 3e38/127": ("int8", "custom", _on_edge("kan0.table_scale", 3e38 / 127), "dequantized"),
    "int8 TableScale -1": ("int8", "function", _on_edge("kan0.table_scale", -1.0), ">= 0"),
    "int8 TableScale inf": ("int8", "custom", _on_edge("kan0.table_scale", np.inf), "NaN/inf"),
    "uint8 TableOffset NaN": ("uint8", "function", _on_edge("kan0.table_offset", np.nan), "NaN/inf"),
    "uint8 TableOffset -3e38": ("uint8", "custom", _on_edge("kan0.table_offset", -3e38), "dequantized"),
    "int8 code -128": ("int8", "custom", _on_edge("kan0.table", -128), "[-127, 127]"),
    "BaseWeight 3e38": ("int8", "custom", _map_init("kan0.base_weight", lambda a: np.where(a != 0, 3e38, a)
                                                    .astype(np.float32)), "BaseWeight holds"),
}


def _mutation_case(name):
    scheme, form, edit, msg = MUTATIONS[name]

    def case(info):
        from lutkan.runtime_ext import make_session

        m = _export(scheme, form)
        edit(m)
        out = reject(lambda: make_session(m), OnnxModelError, msg)
        if form == "custom" and not msg.startswith(("out of range", "computed")):  # the OpRun validates its inputs
            from lutkan.testing import onnx_runner

            x = adversarial_inputs(_model(scheme), 8, seed=0)
            reject(lambda: onnx_runner(m, "onnxref+op")(x), (OnnxModelError, RuntimeError, ValueError), msg)
        return out
    return case


def _symbolic_case(edit, msg):
    def case(info):
        from lutkan.runtime_ext import make_session, run

        m = _export("int8", "custom", symbolic=0.4)
        edit(m)

        def session_then_run():
            run(make_session(m), adversarial_inputs(_model("int8", 0.4), 8, seed=0))

        return reject(session_then_run, LutKanError, msg)
    return case


def _sym_init(suffix, fn):
    def edit(m):
        name = next(t.name for t in m.graph.initializer if t.name.endswith(suffix))
        set_init(m, name, fn(init(m, name)))
    return edit


def _legit(scheme, symbolic=0.0, **opts):
    def case(info):
        m = random_model([3, 3, 2], ContractOptions(L=8, scheme=scheme, **opts), seed=11, masked=0.3,
                         symbolic=symbolic, knots=("uniform", "nonuniform", "repeated"))
        return identical(m, adversarial_inputs(m, 64, seed=1), what=f"unmodified {scheme} export")
    return case


CASES = [(f"mutation: {name}", _mutation_case(name)) for name in MUTATIONS]
CASES += [
    ("KanSymbolic Affine NaN", _symbolic_case(_sym_init("sym_affine", _at(np.nan, (0, 0))), "Affine contains NaN")),
    ("KanSymbolic Src out of range", _symbolic_case(_sym_init("sym_src", lambda a: a + 1000), "")),
    ("KanSymbolic Dst out of range", _symbolic_case(_sym_init("sym_dst", lambda a: a + 1000), "Dst in [0")),
    ("unmodified int8 export: every backend", _legit("int8")),
    ("unmodified uint8 half_open extrapolate export", _legit("uint8", boundary="half_open", oob="extrapolate")),
    ("unmodified float16 nearest clip export", _legit("float16", interp="nearest", oob="clip")),
    ("unmodified float32 poly export with symbolic edges", _legit("float32", symbolic=0.3, interp="poly")),
]
