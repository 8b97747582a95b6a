"""Structure of the exported files: forms, domains, opsets, names, dtypes, metadata, option errors."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto

import lutkan
from lutkan.contract import ContractOptions
from lutkan.custom_ops.schema import ATTRIBUTES, DOMAIN, INPUTS, OP_TYPE, OP_VERSION
from lutkan.errors import ExportError
from lutkan.exporter import FORMS, export, save_onnx
from lutkan.exporter._versions import IR_VERSION, METADATA_KEYS, TARGET_OPSET
from lutkan.testing.models import random_source

_DTYPES = {"int8": TensorProto.INT8, "uint8": TensorProto.UINT8, "float16": TensorProto.FLOAT16,
           "float32": TensorProto.FLOAT}


@pytest.fixture(scope="module", params=["int8", "uint8", "float16", "float32"])
def model(request):
    src = random_source([5, 4, 3, 2], G=4, k=3, seed=3, mult_groups={1: (2,)}, masked=0.2, n_inputs=6)
    return lutkan.compile_model(src, ContractOptions(L=16, scheme=request.param, oob="extrapolate"))


def _edge_nodes(proto):
    return [n for n in proto.graph.node if n.op_type == OP_TYPE]


@pytest.mark.parametrize("form", list(FORMS))
def test_checker_versions_and_io(model, form):
    proto = export(model, form)
    onnx.checker.check_model(proto, full_check=True)
    assert proto.ir_version == IR_VERSION
    opsets = {o.domain: o.version for o in proto.opset_import}
    assert opsets[""] == TARGET_OPSET
    assert proto.producer_name == "lutkan" and proto.producer_version == lutkan.__version__
    (x,), (y,) = proto.graph.input, proto.graph.output
    assert x.name == "x" and y.name == "y"
    for v, width in ((x, model.n_inputs), (y, model.n_outputs)):
        d0, d1 = v.type.tensor_type.shape.dim
        assert d0.dim_param == "batch" and d1.dim_value == width
    assert x.doc_string
    # every layer output carries its shape for Netron; the standard form's main chain runs on the first
    # lutkan.rows_per_pass rows (exporter/_rows.py), so its row count is left unnamed (tract unifies names)
    shapes = {vi.name: vi for vi in proto.graph.value_info}
    for l in range(len(model.layers) - 1):
        d0, d1 = shapes[f"h{l + 1}"].type.tensor_type.shape.dim
        assert d0.dim_param == ("" if form == "standard" else "batch") and d1.dim_value == model.layers[l].n_nodes


@pytest.mark.parametrize("form", ["function", "custom"])
def test_one_edge_node_per_layer(model, form):
    proto = export(model, form)
    nodes = _edge_nodes(proto)
    assert [n.name for n in nodes] == [f"kan{l}" for l in range(len(model.layers))]
    for n in nodes:
        assert n.domain == DOMAIN
        assert {a.name for a in n.attribute} == set(ATTRIBUTES)
        # exactly the inputs the scheme has (no "" actuals, so tools that prune unused formals keep it valid)
        n_inputs = {"int8": 8, "uint8": 9}.get(model.contract.scheme, 7)
        assert list(n.input)[1:] == [f"{n.name}.{s}" for s in ("knots", "bounds", "seg_scale", "base_weight",
                                                               "edge_mask", "table", "table_scale",
                                                               "table_offset")][:n_inputs - 1]
    assert {o.domain: o.version for o in proto.opset_import}[DOMAIN] == OP_VERSION == 2
    if form == "function":
        (f,) = proto.functions
        assert (f.domain, f.name) == (DOMAIN, OP_TYPE)
        assert list(f.input) == list(INPUTS)[:n_inputs] and len(f.output) == 1
        assert {a.name for a in f.attribute_proto} == set(ATTRIBUTES)
        assert {n.domain for n in f.node} == {""}
        assert not any(n.op_type == "Constant" and n.attribute[0].t.dims and np.prod(n.attribute[0].t.dims) > 8
                       for n in f.node), "tables must be initializers, not Constant nodes"
    else:
        assert not proto.functions


def test_standard_form_has_default_domain_only(model):
    proto = export(model, "standard")
    assert [o.domain for o in proto.opset_import] == [""]
    assert not proto.functions
    assert all(n.domain == "" for n in proto.graph.node)
    assert any(n.name.startswith("kan0/") for n in proto.graph.node)


@pytest.mark.parametrize("form", list(FORMS))
def test_tables_stored_in_compiled_dtype(model, form):
    proto = export(model, form)
    inits = {t.name: t for t in proto.graph.initializer}
    scheme = model.contract.scheme
    for l, layer in enumerate(model.layers):
        t = inits[f"kan{l}.table"]
        assert t.data_type == _DTYPES[scheme]
        assert list(t.dims) == [layer.in_dim, layer.n_segments, model.contract.L, layer.out_dim]
        assert (f"kan{l}.table_scale" in inits) == (scheme in ("int8", "uint8"))
        assert (f"kan{l}.table_offset" in inits) == (scheme == "uint8")
    # the table is stored once and nothing derived from it is stored (ORT derives it at load)
    nbytes = {n: onnx.numpy_helper.to_array(t).nbytes for n, t in inits.items()}
    table_bytes = sum(b for n, b in nbytes.items() if n.endswith(".table"))
    assert sum(nbytes.values()) < 1.6 * table_bytes + 2_000
    nodes = list(proto.graph.node) + [m for f in proto.functions for m in f.node]
    consts = [n for n in nodes if n.op_type == "Constant"]
    assert all(np.prod(c.attribute[0].t.dims) <= 8 for c in consts)


def test_metadata(model):
    proto = export(model, "function")
    meta = {p.key: p.value for p in proto.metadata_props}
    assert set(METADATA_KEYS) <= set(meta)
    assert json.loads(meta["lutkan.contract"]) == model.contract.to_dict()
    assert len(json.loads(meta["lutkan.layers"])) == len(model.layers)
    assert meta["lutkan.table_dtype"] == model.contract.scheme
    assert json.loads(meta["lutkan.provenance"])["seed"] == 3
    assert meta["lutkan.form"] == "function" and meta["lutkan.format_version"] == "1"


def test_identity_ops_are_skipped():
    src = random_source([3, 2], G=3, k=1, seed=1, affine=False, input_id="sorted")
    model = lutkan.compile_model(src, ContractOptions(L=8, scheme="float32"))
    proto = export(model, "function")
    assert [n.op_type for n in proto.graph.node] == [OP_TYPE]
    assert proto.graph.node[0].output[0] == "y"


def test_plain_ort_rejects_custom_form(model):
    proto = export(model, "custom")
    with pytest.raises(Exception, match="LUTKanEdge"):
        ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def test_export_errors(model):
    with pytest.raises(ExportError, match="function, standard, custom"):
        export(model, "tflite")
    with pytest.raises(ExportError, match=r"option 'opset' is not supported by form 'function' \(options: none\)"):
        export(model, "function", opset=17)
    with pytest.raises(ExportError, match=r"options: none"):
        export(model, "custom", variant="flat")
    with pytest.raises(ExportError, match="LUTModel"):
        export("model.lutkan")


def test_save_onnx_roundtrip(model, tmp_path):
    proto = export(model, "function")
    path = save_onnx(proto, tmp_path / "m.onnx")
    assert path.exists() and not (tmp_path / "m.onnx.tmp").exists()
    again = onnx.load(path)
    assert again.SerializeToString() == proto.SerializeToString()


def test_export_is_deterministic(model):
    assert export(model, "function").SerializeToString() == export(model, "function").SerializeToString()
