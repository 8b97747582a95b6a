"""Class 3: work that grows faster than the file, and degenerate models.

Artifacts of 1e2, 1e3 and 1e4 empty layers must load in time linear in the file (each case records the file size
and the load time: ``scripts/attack_report.py`` prints the table); a header declaring 1e5 arrays is checked with
one sort; both evaluators run 1e3 layers. Layers with zero inputs or zero outputs are refused by the loader,
the plugin and the OpRun; a 1e5-deep JSON header is refused without recursion trouble.
"""

from __future__ import annotations

import hashlib
import json
import time

import numpy as np

from lutkan.artifact import from_bytes, to_bytes
from lutkan.errors import ArtifactError, OnnxModelError
from lutkan.testing.attacks.crafting import FILE, empty_layer, empty_model, rebuild, reject, set_array, split

MAX_SECONDS_PER_LAYER = 2e-3
"""Loading an empty layer (11 arrays) must take less than this (it takes ~0.2 ms): a quadratic check over 1e4
layers would take ~20 s."""


def _load_layers(n: int):
    def case(info):
        blob = to_bytes(empty_model(n))
        t0 = time.perf_counter()
        m = from_bytes(blob, source=FILE)
        dt = time.perf_counter() - t0
        info.update(layers=n, arrays=11 * n + 1, file_bytes=len(blob), load_s=round(dt, 4))
        assert len(m.layers) == n
        assert dt < 0.5 + MAX_SECONDS_PER_LAYER * n, f"{n} empty layers took {dt:.2f} s to load"
        return "accepted", f"{n} layers ({len(blob)} bytes) loaded in {dt:.3f} s"
    return case


def _many_arrays(info):
    header, region = split(to_bytes(empty_model(1)))
    n = 100_000
    base = len(region) + (-len(region)) % 64
    region = region + b"\0" * ((-len(region)) % 64) + b"\1\0\0\0" * n
    sha = hashlib.sha256(b"\1\0\0\0").hexdigest()
    for q in range(n):  # unreferenced arrays, 4 bytes each at distinct offsets; the last one overlaps its neighbour
        header["arrays"][f"extra.{q}"] = {"dtype": "float32", "shape": [1], "offset": base + 4 * q - (q == n - 1) * 2,
                                          "nbytes": 4, "sha256": sha}
    blob = rebuild(header, region)
    t0 = time.perf_counter()
    out = reject(lambda: from_bytes(blob, source=FILE), ArtifactError, FILE, "overlaps")
    info.update(arrays=n, file_bytes=len(blob), load_s=round(time.perf_counter() - t0, 4))
    assert info["load_s"] < 5, f"checking {n} declared arrays took {info['load_s']} s"
    return out


def _evaluate_many(info):
    from lutkan.evaluators.numba_eval import NumbaEvaluator
    from lutkan.evaluators.numpy_eval import NumpyEvaluator

    m = empty_model(1000)
    x = np.array([[0.5], [np.nan], [np.inf]], np.float32)
    t0 = time.perf_counter()
    a, b = NumpyEvaluator(m)(x), NumbaEvaluator(m)(x)
    info["seconds_both"] = round(time.perf_counter() - t0, 3)
    assert np.array_equal(a, b, equal_nan=True), (a, b)
    return "identical", "1000 empty layers: NumPy and Numba equal"


def _degenerate(I: int, O: int, l: int):
    """A consistent file (checksums recomputed) whose layer ``l`` has ``I`` inputs and ``O`` outputs."""
    def case(info):
        bad = empty_layer(I, 1, O, 2)
        header, region = split(to_bytes(empty_model(2)))
        for name in ("knots", "base_weight", "subnode_scale", "subnode_bias", "node_scale", "node_bias"):
            header, region = set_array(header, region, f"layers.{l}.{name}", getattr(bad, name))
        header["layers"][l]["n_sum"] = O
        if l == 0:
            header, region = set_array(header, region, "input_id", np.arange(I, dtype=np.int64))
        return reject(lambda: from_bytes(rebuild(header, region), source=FILE), ArtifactError, FILE, "at least one")
    return case


def _onnx_zero_outputs(info):
    from lutkan.contract import ContractOptions
    from lutkan.exporter import export
    from lutkan.runtime_ext import make_session
    from lutkan.testing.attacks.crafting import init, set_init
    from lutkan.testing.models import random_model

    m = export(random_model([3, 2], ContractOptions(L=4), seed=0), "custom")
    for name in ("kan0.base_weight", "kan0.edge_mask"):
        set_init(m, name, init(m, name)[:, :0])
    for name in ("kan0.table", "kan0.table_scale"):
        set_init(m, name, init(m, name)[..., :0])
    return reject(lambda: make_session(m), OnnxModelError, "O >= 1")


def _deep_json(info):
    header, region = split(to_bytes(empty_model(1)))
    raw = json.dumps(header).encode()
    raw = raw[:-1] + b',"deep":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    return reject(lambda: from_bytes(rebuild(None, region, raw_header=raw), source=FILE), ArtifactError, FILE)


CASES = [(f"load {n} empty layers", _load_layers(n)) for n in (100, 1000, 10000)]
CASES += [
    ("header declaring 1e5 arrays (one overlap)", _many_arrays),
    ("evaluate 1000 empty layers (NumPy, Numba)", _evaluate_many),
    ("output layer with zero outputs", _degenerate(1, 0, 1)),
    ("model with zero inputs", _degenerate(0, 1, 0)),
    ("hidden layer of zero width", _degenerate(1, 0, 0)),
    ("ONNX LUTKanEdge with zero outputs (plugin)", _onnx_zero_outputs),
    ("header nested 1e5 deep", _deep_json),
]
