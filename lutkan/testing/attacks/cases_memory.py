"""Class 2: small files that declare huge allocations.

Each is refused from its declared shapes before anything large is allocated (the case's peak RSS is recorded):
an artifact of a few hundred KB whose dense runtime tables are ~100 GB (loader, both evaluators, the exporter,
the compiler's sampling), an ONNX Table initializer declaring 40 G cells (plugin and plain sessions), and pykan
checkpoints with stride-0 (``expand``) tensors, a multiplication width entry of 3e8 nodes, a zip record declaring
4 GB, the legacy torch format. ``compile`` does not read ``cache_data`` at all (accepted with a bomb in it).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from lutkan.artifact import from_bytes, to_bytes
from lutkan.contract import ContractOptions
from lutkan.errors import ArtifactError, CheckpointError, ExportError, OnnxModelError, ResourceLimitError
from lutkan.testing.attacks.crafting import FILE, empty_model, reject

LIMIT = "resource limit"
_BIG = {"layers": 1, "I": 100, "K": 1000, "O": 100, "L": 4096}  # 4.1e10 cells: ~200 GB of runtime tables


def _big():
    return empty_model(**_BIG)


def _artifact(info):
    blob = to_bytes(_big())
    info["file_bytes"] = len(blob)
    return reject(lambda: from_bytes(blob, source=FILE), ArtifactError, FILE, LIMIT)


def _numpy(info):
    from lutkan.evaluators.numpy_eval import NumpyEvaluator

    return reject(lambda: NumpyEvaluator(_big()), ResourceLimitError, LIMIT)


def _numba(info):
    from lutkan.evaluators.numba_eval import NumbaEvaluator

    return reject(lambda: NumbaEvaluator(_big()), ResourceLimitError, LIMIT)


def _export(info):
    from lutkan.exporter import export

    m = empty_model(layers=1, I=20, K=200, O=20, L=4096)  # 3.3e8 cells: under protobuf's limit, over the budget
    return reject(lambda: export(m, "function"), ExportError, LIMIT)


def _export_protobuf(info):
    from lutkan.exporter import export

    return reject(lambda: export(_big(), "custom"), ExportError, "2 GiB")


def _compile(info):
    from lutkan.compiler import compile_model
    from lutkan.testing.models import random_source

    src = random_source([64, 64], G=5, k=3, seed=0)  # 4096 edges x 11 segments x 4096 samples
    return reject(lambda: compile_model(src, ContractOptions(L=4096)), ResourceLimitError, LIMIT, "compiling layer 0")


def _onnx_declared(plugin: bool):
    def case(info):
        import onnx
        from onnx import TensorProto

        from lutkan.exporter import export
        from lutkan.runtime_ext import make_session
        from lutkan.testing.models import random_model

        m = export(random_model([3, 2], ContractOptions(L=8, scheme="int8"), seed=0), "function")
        t = next(t for t in m.graph.initializer if t.name == "kan0.table")
        del t.dims[:]
        t.dims.extend([100, 1000, 4096, 100])  # declared; the raw data stays 48 bytes
        assert t.data_type == TensorProto.INT8
        data = m.SerializeToString()
        info["file_bytes"] = len(data)
        return reject(lambda: make_session(onnx.load_from_string(data) if plugin else data, plugin=plugin),
                      OnnxModelError, LIMIT)
    return case


def function_chain(depth: int, recursive: bool = False):
    """A function-form model whose LUTKanEdge node is wrapped in ``depth`` model-local functions, each calling the
    next twice: 2**depth nodes once inlined (``recursive``: the outermost also calls itself)."""
    from onnx import helper

    from lutkan.exporter import export
    from lutkan.testing.models import random_model

    m = export(random_model([3, 2], ContractOptions(L=4), seed=0), "function")
    edge = next(n for n in m.graph.node if n.op_type == "LUTKanEdge")
    formals = [f"a{i}" for i in range(len(edge.input))]
    attrs = {a.name: helper.get_attribute_value(a) for a in edge.attribute}
    ops = [helper.make_opsetid("", 21), helper.make_opsetid("lutkan", 2), helper.make_opsetid("wrap", 1)]
    fns = [helper.make_function("wrap", "W0", formals, ["y"], [helper.make_node("LUTKanEdge", formals, ["y"],
                                                                                domain="lutkan", **attrs)], ops)]
    for d in range(1, depth + 1):
        callee = f"W{d}" if recursive and d == depth else f"W{d - 1}"
        body = [helper.make_node(callee, formals, ["p"], domain="wrap"),
                helper.make_node(f"W{d - 1}", formals, ["q"], domain="wrap"), helper.make_node("Add", ["p", "q"], ["y"])]
        fns.append(helper.make_function("wrap", f"W{d}", formals, ["y"], body, ops))
    edge.op_type, edge.domain = f"W{depth}", "wrap"
    del edge.attribute[:]
    m.functions.extend(fns)
    m.opset_import.append(helper.make_opsetid("wrap", 1))
    return m


def _chain(depth: int, plugin: bool, recursive: bool = False, *needles: str):
    def case(info):
        from lutkan.runtime_ext import make_session

        m = function_chain(depth, recursive)
        return reject(lambda: make_session(m, plugin=plugin), OnnxModelError, *needles)
    return case


# ------------------------------------------------------------------------------------------ pykan checkpoints


def _checkpoint(edit) -> Path:
    """A copy of the bundled breast_cancer checkpoint in a temporary folder, edited by ``edit(prefix)``."""
    src = Path(__file__).resolve().parents[3] / "models" / "breast_cancer"
    d = Path(tempfile.mkdtemp(prefix="lutkan-attack-"))
    for f in src.glob("0.0_*"):
        shutil.copy(f, d / f.name)
    edit(d / "0.0")
    return d / "0.0"


def _edit_state(fn):
    def edit(prefix):
        import torch

        sd = torch.load(f"{prefix}_state", weights_only=True)
        fn(sd)
        torch.save(sd, f"{prefix}_state")
    return edit


def _expanded_coef(sd):
    import torch

    sd["act_fun.0.coef"] = torch.zeros(1).expand(30, 1_000_000, 8)  # 2.4e8 elements from 4 stored bytes


def _expanded_cache(prefix):
    import torch

    torch.save(torch.zeros(1).expand(10_000_000, 30), f"{prefix}_cache_data")  # 2.4 GB as float64


def _huge_mult_width(prefix):
    p = Path(f"{prefix}_config.yml")
    p.write_text(p.read_text().replace("- - 8\n  - 0\n", "- - 8\n  - 300000000\n", 1))


def _zip_declares_4gb(prefix):
    p = Path(f"{prefix}_state")
    data = bytearray(p.read_bytes())
    pos = data.find(b"PK\x01\x02")  # first central-directory entry: patch its uncompressed size
    data[pos + 24: pos + 28] = (0xF0000000).to_bytes(4, "little")
    p.write_bytes(bytes(data))


def _legacy(prefix):
    import torch

    sd = torch.load(f"{prefix}_state", weights_only=True)
    torch.save(sd, f"{prefix}_state", _use_new_zipfile_serialization=False)


def _ckpt_case(edit, *needles, entry="load_source"):
    def case(info):
        from lutkan.compiler import compile_model
        from lutkan.compiler.pykan import load_source

        prefix = _checkpoint(edit)
        try:
            fn = {"load_source": lambda: load_source(prefix),
                  "compile": lambda: compile_model(str(prefix), ContractOptions(L=8))}[entry]
            return reject(fn, CheckpointError, str(prefix.name), *needles)
        finally:
            shutil.rmtree(prefix.parent, ignore_errors=True)
    return case


def _compile_ignores_cache(info):
    from lutkan.compiler import compile_model

    prefix = _checkpoint(_expanded_cache)
    try:
        m = compile_model(str(prefix), ContractOptions(L=8))
        assert m.provenance.get("cache_data_sha256"), "the unread cache file is still hashed for provenance"
        return "accepted", f"compiled without reading the 2.4 GB cache_data ({m.width})"
    finally:
        shutil.rmtree(prefix.parent, ignore_errors=True)


CASES = [
    ("artifact: 200 GB of dense tables declared in 0.4 MB", _artifact),
    ("NumpyEvaluator of that model", _numpy),
    ("NumbaEvaluator of that model", _numba),
    ("export of 3.3e8 table cells (over the budget)", _export),
    ("export of 4.1e10 table cells (over protobuf's 2 GiB)", _export_protobuf),
    ("compile: 1.8e8 samples of a 64x64 source at L=4096", _compile),
    ("ONNX Table declaring 4e10 cells, plugin session", _onnx_declared(True)),
    ("ONNX Table declaring 4e10 cells, plain session", _onnx_declared(False)),
    ("ONNX: 200 nested functions calling each other twice (2**200 nodes inlined), plugin",
     _chain(200, True, False, LIMIT, "inlining")),
    ("ONNX: the same chain, plain session", _chain(200, False, False, LIMIT, "inlining")),
    ("ONNX: a function that calls itself, plugin", _chain(3, True, True, "calls itself")),
    ("checkpoint: stride-0 coef of 2.4e8 elements", _ckpt_case(_edit_state(_expanded_coef), "act_fun.0.coef", LIMIT)),
    ("checkpoint: stride-0 coef, via compile", _ckpt_case(_edit_state(_expanded_coef), "act_fun.0.coef", LIMIT,
                                                          entry="compile")),
    ("checkpoint: stride-0 cache_data of 2.4 GB, load_source", _ckpt_case(_expanded_cache, "_cache_data", LIMIT)),
    ("checkpoint: stride-0 cache_data, compile does not read it", _compile_ignores_cache),
    ("checkpoint: width entry of 3e8 multiplication nodes", _ckpt_case(_huge_mult_width, "300000000",
                                                                       "multiplication nodes")),
    ("checkpoint: zip record declaring 4 GB", _ckpt_case(_zip_declares_4gb, LIMIT)),
    ("checkpoint: legacy torch format", _ckpt_case(_legacy, "not a torch zip archive")),
]
