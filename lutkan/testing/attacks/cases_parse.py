"""Class 5: parser errors that escape, and errors that do not name the file.

Every defect of a crafted ``.lutkan`` header (integers of 5000 digits wherever an integer goes, NaN/Infinity
literals, wrong JSON types, invalid UTF-8, model-level inconsistencies) is an ``ArtifactError`` naming the file;
a checkpoint config with such integers is a ``CheckpointError`` naming the config file; ONNX attributes that are
not UTF-8 or out of range are ``OnnxModelError`` naming the node.
"""

from __future__ import annotations

import json
import shutil

from lutkan.artifact import from_bytes, load, to_bytes
from lutkan.errors import ArtifactError, CheckpointError, OnnxModelError
from lutkan.testing.attacks.crafting import FILE, empty_model, rebuild, reject, split

BIG = "9" * 5000


def _raw(edit, literal: str):
    """A container whose header has ``literal`` (raw JSON) at the place ``edit(header)`` marks with ``"@@"``."""
    header, region = split(to_bytes(empty_model(2)))
    edit(header)
    raw = json.dumps(header, sort_keys=True).replace('"@@"', literal).encode()
    return rebuild(None, region, raw_header=raw)


def _header_case(edit, literal: str, *needles: str):
    def case(info):
        blob = _raw(edit, literal)
        return reject(lambda: from_bytes(blob, source=FILE), ArtifactError, FILE, *needles)
    return case


def _put(*path):
    def edit(h):
        obj = h
        for key in path[:-1]:
            obj = obj[key]
        obj[path[-1]] = "@@"
    return edit


def _bytes_case(fn, *needles):
    def case(info):
        header, region = split(to_bytes(empty_model(2)))
        return reject(lambda: from_bytes(fn(header, region), source=FILE), ArtifactError, FILE, *needles)
    return case


def _bad_utf8(header, region):
    raw = json.dumps(header).encode().replace(b'"silu"', b'"\xff\xfe"')
    return rebuild(None, region, raw_header=raw)


def _field(name, value):
    def fn(header, region):
        header[name] = value
        return rebuild(header, region)
    return fn


def _path_case(kind):
    def case(info):
        import tempfile
        from pathlib import Path

        d = Path(tempfile.mkdtemp(prefix="lutkan-attack-"))
        try:
            p = d / "model.lutkan"
            if kind == "directory":
                p.mkdir()
            return reject(lambda: load(p), ArtifactError, str(p))
        finally:
            shutil.rmtree(d, ignore_errors=True)
    return case


def _config_case(old: str, new: str, *needles: str):
    def case(info):
        from pathlib import Path

        from lutkan.compiler.pykan import load_source
        from lutkan.testing.attacks.cases_memory import _checkpoint

        def edit(prefix):
            p = Path(f"{prefix}_config.yml")
            text = p.read_text()
            assert old in text
            p.write_text(text.replace(old, new, 1))

        prefix = _checkpoint(edit)
        try:
            return reject(lambda: load_source(prefix), CheckpointError, "0.0_config.yml", *needles)
        finally:
            shutil.rmtree(prefix.parent, ignore_errors=True)
    return case


def _onnx_attr(value: bytes, *needles):
    def case(info):
        from onnx import helper

        from lutkan.contract import ContractOptions
        from lutkan.exporter import export
        from lutkan.runtime_ext import make_session
        from lutkan.testing.models import random_model

        m = export(random_model([2, 2], ContractOptions(L=4), seed=0), "custom")
        n = next(n for n in m.graph.node if n.op_type == "LUTKanEdge")
        (a,) = [a for a in n.attribute if a.name == "interp"]
        n.attribute.remove(a)
        n.attribute.append(helper.make_attribute("interp", value))
        return reject(lambda: make_session(m), OnnxModelError, "LUTKanEdge node", *needles)
    return case


CASES = [(f"5000-digit integer as {'.'.join(map(str, p))}", _header_case(_put(*p), BIG, f"field {p[-1]!r}"))
         for p in (("n_inputs",), ("format_version",), ("contract", "L"), ("layers", 0, "n_sum"),
                   ("arrays", "layers.0.knots", "offset"), ("arrays", "layers.0.knots", "nbytes"))]
CASES += [
    ("5000-digit shape dimension", _header_case(lambda h: h["arrays"]["layers.0.knots"].__setitem__("shape", ["@@", 2]),
                                                BIG, "field 'shape'")),
    ("NaN literal as contract.L", _header_case(_put("contract", "L"), "NaN", "L=nan")),
    ("Infinity literal as n_sum", _header_case(_put("layers", 1, "n_sum"), "Infinity", "n_sum")),
    ("-Infinity as an array offset", _header_case(_put("arrays", "input_id", "offset"), "-Infinity", "input_id")),
    ("header bytes not UTF-8", _bytes_case(_bad_utf8, "not valid JSON")),
    ("n_inputs 0 (a model-level error)", _bytes_case(_field("n_inputs", 0), "n_inputs=0")),
    ("base_fun 7", _bytes_case(_field("base_fun", 7), "base_fun 7")),
    ("layers[0] a number", _bytes_case(lambda h, r: rebuild({**h, "layers": [5, h["layers"][1]]}, r), "layers[0]")),
    ("mult_groups an object", _bytes_case(lambda h, r: (h["layers"][0].__setitem__("mult_groups", {"a": 1}),
                                                        rebuild(h, r))[1], "mult_groups")),
    ("load: a missing file", _path_case("missing")),
    ("load: a directory", _path_case("directory")),
    ("checkpoint config: 5000-digit width", _config_case("- - 30\n", f"- - {BIG}\n", "key 'width'")),
    ("checkpoint config: 5000-digit grid", _config_case("grid: 5\n", f"grid: {BIG}\n", "key 'grid'")),
    ("checkpoint config: grid 1e999", _config_case("grid: 5\n", "grid: 1.0e+999\n", "grid")),
    ("ONNX attribute interp not UTF-8", _onnx_attr(b"\xff\xfe", "UTF-8")),
    ("ONNX attribute interp empty", _onnx_attr(b"", "interp=''")),
]
