"""Exported files survive the ONNX toolchain and run in third-party runtimes, equal to the NumPy reference.

Every case (each table scheme and contract option, interp=poly, a model with symbolic edges and a
multiplication node, a G=100 model whose segment search has >= 64 rows) is exported in the ``function`` and
``standard`` forms, passed through a tool (none, onnxslim, onnxsim, onnxoptimizer, ``onnx.inliner``), checked
by ``onnx.checker`` and run in onnxruntime, ``onnx.reference`` and tract (tract reads no model-local functions
and translates at most one ``If`` per model: the standard form, not an ``onnx.inliner`` copy of the function
form, whose layers each chunk rows behind an ``If``; a test keeps that limitation documented). ``--opset N`` files run in onnxruntime; metadata holds no path of
the build machine. The oldest onnxruntime pyproject allows: tests/test_onnxruntime_oldest.py.
"""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest
from conftest import REPO
from onnx import inliner

from lutkan.contract import ContractOptions
from lutkan.errors import ExportError
from lutkan.exporter import export
from lutkan.exporter.opset import MAX_OPSET, MIN_OPSET, convert_opset
from lutkan.testing import assert_backends_agree, onnx_runner
from lutkan.testing.inputs import adversarial_inputs
from lutkan.testing.models import random_model

pytest.importorskip("kan", reason="compiling the bundled checkpoints needs the [pykan] extra")
onnxslim = pytest.importorskip("onnxslim")
onnxsim = pytest.importorskip("onnxsim")
onnxoptimizer = pytest.importorskip("onnxoptimizer")
tract = pytest.importorskip("tract")

BC = REPO / "models" / "breast_cancer" / "0.0"
FEATURED = REPO / "models" / "featured" / "0.0"
CASES = {
    "int8": (BC, ContractOptions()),
    "uint8-nearest-halfopen-clip": (BC, ContractOptions(L=16, scheme="uint8", interp="nearest",
                                                        boundary="half_open", oob="clip")),
    "float16-extrapolate": (BC, ContractOptions(L=32, scheme="float16", oob="extrapolate")),
    "float32": (BC, ContractOptions(scheme="float32")),
    "poly-float32": (BC, ContractOptions(interp="poly", scheme="float32")),
    "poly-float16-symbolic": (FEATURED, ContractOptions(interp="poly", scheme="float16")),
    "symbolic-mult-pruned": (FEATURED, ContractOptions()),
    "tabulated-symbolic": (FEATURED, ContractOptions(L=16, symbolic="tabulate", oob="clip")),
    "G100": (None, ContractOptions(L=16)),
}


def _slim(p):
    return onnxslim.slim(p)


def _sim(p):
    q, ok = onnxsim.simplify(p)
    assert ok, "onnxsim's own check failed"
    return q


TOOLS = {"as-exported": lambda p: p, "onnxslim": _slim, "onnxsim": _sim, "onnxoptimizer": onnxoptimizer.optimize,
         "onnx.inliner": inliner.inline_local_functions}


def tract_runner(proto: onnx.ModelProto, tmp_path):
    """``f(x) -> y`` running ``proto`` in tract (pip ``tract``), loaded from a file as a user would."""
    path = tmp_path / "tract.onnx"
    path.write_bytes(proto.SerializeToString())
    plan = tract.onnx().load(str(path)).into_model().into_runnable()
    return lambda x: plan.run([np.ascontiguousarray(x, dtype=np.float32)])[0].to_numpy()


@pytest.fixture(scope="module")
def compiled():
    from lutkan.compiler import compile_model

    cache = {}

    def get(name):
        if name not in cache:
            src, opts = CASES[name]
            m = (random_model([2, 3, 1], opts, G=100, seed=7) if src is None else compile_model(src, opts))
            cache[name] = m, adversarial_inputs(m, 48, seed=3)
        return cache[name]

    return get


@pytest.mark.parametrize("tool", list(TOOLS))
@pytest.mark.parametrize("form", ["function", "standard"])
@pytest.mark.parametrize("case", list(CASES))
def test_toolchain_then_runtimes_equal_numpy(compiled, case, form, tool, tmp_path):
    model, x = compiled(case)
    proto = TOOLS[tool](export(model, form=form))
    onnx.checker.check_model(proto, full_check=True)
    if form == "function" and tool not in ("onnx.inliner",):
        assert proto.functions, f"{tool} dropped the model-local functions"
    runners = {"ort": onnx_runner(proto, "ort"), "onnx.reference": onnx_runner(proto, "onnxref")}
    if not proto.functions and _count_ifs(proto.graph) <= 1:  # what tract reads (see the module docstring)
        runners["tract"] = tract_runner(proto, tmp_path)
    assert_backends_agree(model, x, runners=runners, rel=1e-5, what=f"{case} {form} after {tool}")


def _count_ifs(graph: onnx.GraphProto) -> int:
    return sum((n.op_type == "If") + sum(_count_ifs(g) for a in n.attribute for g in ([a.g] if a.g.name else []) +
                                         list(a.graphs)) for n in graph.node)


def test_standard_form_has_one_if_and_tract_refuses_two(compiled, tmp_path):
    """docs/deploy.md sends tract users to the standard form: it has one ``If``, whereas tract (0.23) cannot
    translate a model with two (the inlined function form has one per layer). If tract learns to, this fails:
    then run tract on inlined function files too and update the guide."""
    model, x = compiled("int8")
    assert _count_ifs(export(model, form="standard").graph) == 1
    inlined = inliner.inline_local_functions(export(model, form="function"))
    assert _count_ifs(inlined.graph) == len(model.layers) >= 2
    with pytest.raises(tract.TractError, match="Duplicate node name: If"):
        tract_runner(inlined, tmp_path)(x)


def test_tract_runs_batches_up_to_rows_per_pass(compiled, tmp_path):
    """Past ``lutkan.rows_per_pass`` rows the standard form runs its Scan inside the ``If``, which tract
    evaluates without the graph's symbols: an error (never a wrong output), as docs/deploy.md says; up to that
    batch tract equals the reference, and onnxruntime runs every batch."""
    from dataclasses import replace

    from lutkan.exporter.function_form import body_spec
    from lutkan.exporter.standard_form import standard_model

    model, x = compiled("int8")
    proto = standard_model(model, replace(body_spec(model), chunk_floats=1))  # R = 1 row
    assert {p.key: p.value for p in proto.metadata_props}["lutkan.rows_per_pass"] == "1"
    run = tract_runner(proto, tmp_path)
    assert_backends_agree(model, x[:1], runners={"tract": run, "ort": onnx_runner(proto, "ort")}, rel=1e-5)
    assert_backends_agree(model, x, runners={"ort": onnx_runner(proto, "ort")}, rel=1e-5)
    with pytest.raises(tract.TractError):
        run(x[:3])


def test_openvino_runs_the_standard_form_at_every_batch(compiled, tmp_path):
    """OpenVINO runs the standard form, its row-chunk Scan included (R = 1 row here), at f32 as the guide says."""
    ov = pytest.importorskip("openvino")
    from dataclasses import replace

    from lutkan.exporter.function_form import body_spec
    from lutkan.exporter.standard_form import standard_model

    model, x = compiled("symbolic-mult-pruned")
    path = tmp_path / "model.onnx"
    onnx.save(standard_model(model, replace(body_spec(model), chunk_floats=1)), path)
    net = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    assert_backends_agree(model, x, runners={"openvino": lambda v: np.asarray(net(v)[0])}, rel=1e-5)


def test_function_form_is_loadable_after_slimming_every_scheme(compiled):
    """onnxslim used to drop unused formal inputs while the nodes still passed them: every node's actual inputs
    must equal its function's formals after slimming too."""
    for case in CASES:
        proto = _slim(export(compiled(case)[0], form="function"))
        formals = {(f.domain, f.name): len(f.input) for f in proto.functions}
        for node in proto.graph.node:
            if (node.domain, node.op_type) in formals:
                assert "" not in node.input and len(node.input) == formals[(node.domain, node.op_type)], (case, node.name)


@pytest.mark.parametrize("form", ["function", "standard", "custom"])
@pytest.mark.parametrize("opset", sorted({MIN_OPSET, 19, 20, 21, 22, MAX_OPSET}))
def test_opset_conversion_runs_equal(compiled, form, opset):
    model, x = compiled("symbolic-mult-pruned")
    proto, notes = convert_opset(export(model, form=form), opset)
    assert [o.version for o in proto.opset_import if o.domain == ""] == [opset]
    assert not proto.functions, "the function form is inlined before converting"
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["lutkan.form"] == ("custom" if form == "custom" else "standard")
    engine = "plugin" if form == "custom" else "ort"
    assert_backends_agree(model, x, runners={f"{engine}-opset{opset}": onnx_runner(proto, engine)}, rel=1e-5)


def test_opset_out_of_range_is_refused(compiled):
    model, _ = compiled("int8")
    for bad in (MIN_OPSET - 1, MAX_OPSET + 1, "18"):
        with pytest.raises(ExportError, match="lutkan writes opsets"):
            convert_opset(export(model), bad)


def test_cli_export_opset(tmp_path, capsys):
    from lutkan.cli import EXIT_ERROR, EXIT_OK, main

    out = tmp_path / "m18.onnx"
    assert main(["export", str(BC), "-o", str(out), "--opset", str(MIN_OPSET)]) == EXIT_OK
    text = capsys.readouterr().out
    assert f"opset {MIN_OPSET}" in text and "form standard" in text and "inlined" in text
    assert onnx.load(str(out)).ir_version == 8
    assert main(["export", str(BC), "-o", str(out), "--opset", "17"]) == EXIT_ERROR
    assert "lutkan writes opsets 18" in capsys.readouterr().err


def test_metadata_holds_no_build_machine_path(tmp_path):
    """Compiled from an absolute path: neither the .lutkan nor any ONNX form holds that path (nor any folder
    name on it); the source is named by file name, checkpoint id and SHA-256."""
    import json

    from lutkan.artifact import to_bytes
    from lutkan.compiler import compile_model

    secret = tmp_path / "home-alice-BUILD_MACHINE_SECRET" / "project"
    secret.mkdir(parents=True)
    for f in FEATURED.parent.glob("0.0_*"):
        shutil.copy(f, secret / f.name)
    model = compile_model(secret / "0.0")
    blobs = {"lutkan": to_bytes(model)} | {form: export(model, form=form).SerializeToString()
                                           for form in ("function", "standard", "custom")}
    for what, data in blobs.items():
        for needle in (str(tmp_path), "BUILD_MACHINE_SECRET", "home-alice"):
            assert needle.encode() not in data, f"{what} holds {needle!r}"
    meta = {p.key: p.value for p in export(model).metadata_props}
    prov = json.loads(meta["lutkan.provenance"])
    assert prov["source"] == "0.0" and prov["checkpoint_id"] == "0.0" and len(prov["state_sha256"]) == 64
    assert meta["lutkan.source_sha256"] == prov["state_sha256"]
