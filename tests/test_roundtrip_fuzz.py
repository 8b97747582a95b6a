"""Hypothesis-driven compile -> save -> load -> export -> run round trips on random models.

Per example: a random SourceModel (``lutkan.testing.strategies.sources``: up to 3 layers of up to 4
nodes, k 1..5, G 1..12, uniform / non-uniform / repeated / coarse / zero-width knot rows, pruned and
symbolic edges, multiplication nodes of equal and unequal arity, affines, input_id subsets), random
contract options, compile, ``save``/``load`` through a real file, then every backend of the oracle
(``lutkan.testing.BACKENDS``) on the loaded model with adversarial inputs: NumPy and Numba, the
``function`` and ``standard`` ONNX forms in plain onnxruntime, the ``function`` and ``custom`` forms
in a plugin session, and ``onnx.reference`` on the ``function`` and ``custom`` forms (small batch).
All must agree with the NumPy reference on the model as compiled (before saving). Cases are counted
and summarised at the end of the module.
"""

from __future__ import annotations

import gc
from collections import Counter

import numpy as np
import pytest
from conftest import terminal_line
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_contract_properties import _identity_combine

from lutkan.artifact import load, save, to_bytes
from lutkan.compiler import compile_model
from lutkan.evaluators.numpy_eval import NumpyEvaluator, eval_layer
from lutkan.metrics import HUGE
from lutkan.runtime_ext import live_kernels
from lutkan.tables import model_tables
from lutkan.testing import BACKENDS, assert_backends_agree, backends
from lutkan.testing.inputs import adversarial_inputs
from lutkan.testing.strategies import contract_options, sources

ONNXREF = ("onnxref-function", "onnxref-custom")  # slow per row: run on a small batch

STATS: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def _summary(request):
    yield
    line = (f"roundtrip fuzz: {STATS['examples']} models, {STATS['backend_runs']} backend runs compared, "
            f"{STATS['rows']} input rows compared ({STATS['rows_overflow_skipped']} overflow-region rows not compared end to end), {STATS['mismatch']} mismatches, {STATS['crashes']} crashes")
    terminal_line(request.config, line)


def overflow_rows(model, x) -> np.ndarray:
    """Rows in float32's overflow region somewhere in the network (contract section 5).

    A layer input |h| >= HUGE (incl. +-inf) that meets a nonzero base weight, or any active edge under
    ``extrapolate``, makes terms near FLT_MAX whose sum is +inf, -inf, NaN or finite depending on the
    summation order, which the contract leaves to each backend. Downstream that difference is no
    longer "extreme on both sides" (NaN poisons the next layer, inf is clipped to T_hi; a product
    with 0 gives NaN vs 0), so such rows are not compared end to end (the contract suite compares
    them layer by layer on the raw edge sums).
    """
    c = model.contract
    h = np.ascontiguousarray(x[:, model.input_id], dtype=np.float32)
    bad = np.zeros(len(x), dtype=bool)
    for layer, p in zip(model.layers, model_tables(model), strict=True):
        reach = np.abs(layer.base_weight).sum(axis=1) > 0 if model.base_fun != "zero" else np.zeros(layer.in_dim, bool)
        if c.oob == "extrapolate":
            reach = reach | layer.active.any(axis=1)
        with np.errstate(invalid="ignore"):
            bad |= ((np.abs(h) >= HUGE) & reach[None, :]).any(axis=1)
            sums = eval_layer(_identity_combine(p), h)
            bad |= (np.isinf(sums) | (np.abs(sums) >= HUGE)).any(axis=1)
            h = eval_layer(p, h)
    return bad


def _agree(model, x, ref, include, what):
    runners = backends(model, include=include)
    STATS["backend_runs"] += len(runners)
    try:
        assert_backends_agree(model, x, runners=runners, reference=ref, rel=1e-5, what=what)
    except AssertionError:
        STATS["mismatch"] += 1
        raise


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(src=sources(max_layers=3, max_width=4, max_extra_inputs=2), opts=contract_options(),
       xseed=st.integers(0, 2**16))
def test_compile_save_load_export_run(tmp_path_factory, src, opts, xseed):
    STATS["examples"] += 1
    model = compile_model(src, opts)
    x = adversarial_inputs(model, 48, seed=xseed, special_fraction=0.2)
    x = np.concatenate([x, adversarial_inputs(src, 16, seed=xseed + 1, far=1e3)])  # knots of the source, far OOB
    skip = overflow_rows(model, x)
    STATS["rows"] += int((~skip).sum())
    STATS["rows_overflow_skipped"] += int(skip.sum())
    ref_all = NumpyEvaluator(model)(x)
    x_all, x = x, x[~skip]
    ref = ref_all[~skip]
    what = f"{opts} width={model.width} base={model.base_fun} {src.provenance['call']}"

    path = tmp_path_factory.mktemp("rt") / "m.lutkan"
    save(model, path)
    loaded = load(path)
    assert to_bytes(loaded) == path.read_bytes()
    np.testing.assert_array_equal(NumpyEvaluator(loaded)(x_all), ref_all)  # same bytes -> same numbers
    if not len(x):
        return
    gc.collect()
    base = live_kernels()
    _agree(loaded, x, ref, [b for b in BACKENDS if b not in ONNXREF], what)
    _agree(loaded, x[:16], ref[:16], ONNXREF, what)
    gc.collect()
    assert live_kernels() == base, "plugin kernels leaked after the sessions were dropped"
