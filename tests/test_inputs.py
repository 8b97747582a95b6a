"""Inference inputs at every front door (contract section 5, lutkan/evaluators/inputs.py).

Backends: every one of the oracle (``lutkan.testing.BACKENDS``): ``NumpyEvaluator``, ``NumbaEvaluator``,
the ``function`` and ``standard`` ONNX forms in plain onnxruntime, the ``function`` and ``custom``
forms in a plugin session (both through ``lutkan.runtime_ext.run``) and ``onnx.reference`` on the
``function`` and ``custom`` forms.

Contract: (batch, n_inputs) float32; float64/float16/integer arrays are converted, any memory layout
(slices, negative strides, transposes, Fortran order, broadcast views, read-only) works and gives
the same result as a contiguous copy; wrong rank/width, bool/complex/object/string dtypes and an
empty batch raise ``InputError`` naming the input and the expected shape; NaN, +-inf, +-1e38 and
denormals are ordinary inputs and every backend agrees.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from conftest import terminal_line

from lutkan.compiler import compile_model
from lutkan.contract import ContractOptions
from lutkan.errors import InputError
from lutkan.evaluators.numba_eval import NumbaEvaluator
from lutkan.evaluators.numpy_eval import NumpyEvaluator
from lutkan.metrics import assert_outputs_close, compare_outputs
from lutkan.testing import BACKENDS, assert_backends_agree
from lutkan.testing import backends as oracle_backends
from lutkan.testing.inputs import SPECIALS, adversarial_inputs
from lutkan.testing.models import random_source

N_IN = 5
STATS: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def _summary(request):
    yield
    line = (f"inputs: {STATS['cases']} backend calls ({STATS['ok']} accepted and equal to the reference, "
            f"{STATS['rejected']} rejected with InputError)")
    terminal_line(request.config, line)


def _models():
    # layer 0 reads 4 of 5 columns (input_id), a multiplication node, symbolic + masked edges, a
    # zero-width row; int8 (default) and float32/nearest/half_open/extrapolate, identity base.
    a = random_source([4, 3, 2], G=4, k=3, seed=11, n_inputs=N_IN, mult_groups={0: [2]}, masked=0.2,
                      symbolic=0.2, zero_width=1, knots="nonuniform")
    b = random_source([4, 2], G=3, k=2, seed=12, n_inputs=N_IN, base_fun="identity")
    return {
        "int8": compile_model(a, ContractOptions(L=16, scheme="int8")),
        "f32x": compile_model(b, ContractOptions(L=8, scheme="float32", interp="nearest", boundary="half_open",
                                                 oob="extrapolate")),
    }


MODELS = _models()


@pytest.fixture(scope="module", params=sorted(MODELS))
def backends(request):
    model = MODELS[request.param]
    return model, oracle_backends(model)


def test_models_have_what_the_comment_says():
    m = MODELS["int8"]
    layer = m.layers[0]
    assert len(set(m.input_id.tolist())) == 4 and m.n_inputs == N_IN
    assert layer.mult_groups == (2,) and layer.n_symbolic > 0  # exact symbolic edges
    assert layer.edge_src.size < layer.in_dim * layer.out_dim  # pruned edges
    assert (layer.knots[:, -1] == layer.knots[:, 0]).any()  # a zero-width row
    assert MODELS["f32x"].base_fun == "identity"


def test_all_backends_present():
    names = set(oracle_backends(MODELS["int8"]))
    assert names == set(BACKENDS)
    assert {"numpy", "numba", "ort-function", "ort-standard", "plugin-function", "plugin-custom",
            "onnxref-function", "onnxref-custom"} <= names


def _ok(model, bk, x, *, reference_x=None, what=""):
    """Every backend accepts x and equals the reference evaluator on the contiguous float32 copy."""
    ref_in = np.ascontiguousarray(x if reference_x is None else reference_x, dtype=np.float32)
    ref = NumpyEvaluator(model)(ref_in)
    assert ref.dtype == np.float32 and ref.shape == (ref_in.shape[0], model.n_outputs)
    STATS["cases"] += len(bk)
    assert_backends_agree(model, x, runners=bk, reference=ref, rel=1e-5, what=what)
    STATS["ok"] += len(bk)
    return ref


def _bad(bk, x, *must_contain, what=""):
    for name, f in bk.items():
        STATS["cases"] += 1
        with pytest.raises(InputError) as ei:
            f(x)
        msg = str(ei.value)
        for part in must_contain:
            assert part in msg, f"{name} {what}: message {msg!r} lacks {part!r}"
        assert isinstance(ei.value, ValueError)  # InputError is also a ValueError
        STATS["rejected"] += 1


# ----------------------------------------------------------------------------------------- rejected


@pytest.mark.parametrize("shape,needle", [((N_IN,), "rank 1"), ((), "rank 0"), ((2, 3, N_IN), "rank 3"),
                                          ((1, 1, 1, N_IN), "rank 4")])
def test_wrong_rank(backends, shape, needle):
    _, bk = backends
    _bad(bk, np.zeros(shape, np.float32), needle, f"(batch, {N_IN})", "'x'", what=f"shape {shape}")


@pytest.mark.parametrize("width", [0, 1, N_IN - 1, N_IN + 1, 100])
def test_wrong_width(backends, width):
    _, bk = backends
    _bad(bk, np.zeros((3, width), np.float32), f"{width} columns", f"(batch, {N_IN})", "'x'", what=f"width {width}")


@pytest.mark.parametrize("dtype", [np.bool_, np.complex64, np.complex128, object, "U3", "S3", "V4",
                                   "datetime64[s]", "timedelta64[s]"])
def test_bad_dtype(backends, dtype):
    _, bk = backends
    x = np.zeros((3, N_IN), dtype=dtype)
    _bad(bk, x, "dtype", f"(batch, {N_IN})", "'x'", what=f"dtype {dtype}")


def test_empty_batch(backends):
    _, bk = backends
    _bad(bk, np.zeros((0, N_IN), np.float32), "empty batch", "'x'")


def test_not_array_like(backends):
    _, bk = backends
    _bad(bk, [[1.0, 2.0], [3.0]], "'x'", what="ragged list")
    _bad(bk, "12345", "'x'", what="str")
    _bad(bk, None, "'x'", what="None")


# ----------------------------------------------------------------------------------------- converted


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int8, np.uint8, np.int16, np.int32, np.int64,
                                   np.uint64, np.longdouble])
def test_convertible_dtypes(backends, dtype):
    model, bk = backends
    rng = np.random.default_rng(1)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        x = rng.integers(max(info.min, -6), min(info.max, 6), size=(9, N_IN), endpoint=True).astype(dtype)
    else:
        x = (rng.normal(size=(9, N_IN)) * 3).astype(dtype)
    ref = _ok(model, bk, x, reference_x=x.astype(np.float32), what=str(np.dtype(dtype)))
    assert np.isfinite(ref).any()


def test_float64_rounds_like_float32_cast(backends):
    """float64 values that are not float32-representable are rounded (nearest), not truncated."""
    model, bk = backends
    x = np.random.default_rng(2).normal(size=(16, N_IN)) * 2 + 1e-9
    _ok(model, bk, x, reference_x=x.astype(np.float32), what="float64 rounding")
    _ok(model, bk, x.tolist(), reference_x=np.asarray(x, np.float32), what="nested list")


# ----------------------------------------------------------------------------------------- layouts


def _layouts(base: np.ndarray) -> dict[str, np.ndarray]:
    big = np.repeat(np.repeat(base, 2, axis=0), 3, axis=1)  # (2N, 3n): strided views pick base back out
    fort = np.asfortranarray(base)
    tr = np.ascontiguousarray(base.T).T  # a transposed view with Fortran strides
    rev = base[::-1][::-1]
    ro = base.copy()
    ro.setflags(write=False)
    pad = np.zeros((base.shape[0], N_IN + 3), np.float32)
    pad[:, 1 : N_IN + 1] = base
    bytes_view = np.frombuffer(base.astype("<f4").tobytes(), dtype="<f4").reshape(base.shape)  # read-only
    be = base.astype(">f4")  # non-native byte order
    return {
        "row_step": big[::2, ::3], "fortran": fort, "transposed": tr, "double_reversed": rev, "readonly": ro,
        "column_slice": pad[:, 1 : N_IN + 1], "frombuffer_readonly": bytes_view, "big_endian": be,
        "negative_strides": base[::-1, ::-1][::-1, ::-1],
    }


def test_noncontiguous_layouts(backends):
    model, bk = backends
    base = adversarial_inputs(model, 24, seed=3)
    for name, x in _layouts(base).items():
        np.testing.assert_array_equal(np.asarray(x, np.float32), base)
        _ok(model, bk, x, reference_x=base, what=name)
    # a view whose rows really are reversed / a broadcast row (stride 0)
    _ok(model, bk, base[::-1], reference_x=np.ascontiguousarray(base[::-1]), what="reversed rows")
    _ok(model, bk, base[:, ::-1][:, ::-1], reference_x=base, what="reversed cols twice")
    row = np.broadcast_to(base[:1], (7, N_IN))
    y = _ok(model, bk, row, reference_x=np.repeat(base[:1], 7, axis=0), what="broadcast")
    np.testing.assert_array_equal(y, np.repeat(y[:1], 7, axis=0))


def test_input_is_not_modified(backends):
    model, bk = backends
    x = adversarial_inputs(model, 32, seed=4)
    for dt in (np.float32, np.float64):
        xx = x.astype(dt)
        keep = xx.copy()
        for name, f in bk.items():
            f(xx)
            np.testing.assert_array_equal(xx, keep, err_msg=f"{name} modified its input")


# ----------------------------------------------------------------------------------------- values


@pytest.mark.parametrize("name", sorted(SPECIALS))
def test_special_values_agree(backends, name):
    """One column at a time and all columns at once; everything else ordinary."""
    model, bk = backends
    v = np.float32(SPECIALS[name])
    x = np.tile(adversarial_inputs(model, 4, seed=5, special_fraction=0.0), (N_IN + 1, 1))
    x = np.nan_to_num(x, nan=0.5, posinf=1.0, neginf=-1.0)
    for c in range(N_IN):
        x[4 * c : 4 * c + 4, c] = v
    x[-4:] = v
    ref = _ok(model, bk, x, what=name)
    if name == "nan":
        # NaN in a column layer 0 never reads changes nothing; all-NaN rows are poisoned
        for c in sorted(set(range(N_IN)) - set(model.input_id.tolist())):
            rows = slice(4 * c, 4 * c + 4)
            clean = x[rows].copy()
            clean[:, c] = 0.0
            np.testing.assert_array_equal(ref[rows], NumpyEvaluator(model)(clean))
        assert np.isnan(ref[-4:]).any()


def test_adversarial_inputs_all_backends(backends):
    model, bk = backends
    for seed in range(3):
        _ok(model, bk, adversarial_inputs(model, 200, seed=seed, special_fraction=0.3), what=f"adversarial seed {seed}")


@pytest.mark.parametrize("n", [1, 2, 3, 17, 1000])
def test_batch_sizes(backends, n):
    model, bk = backends
    x = adversarial_inputs(model, n, seed=n)
    ref = _ok(model, bk, x, what=f"batch {n}")
    # rows are independent: evaluating row by row gives the same numbers
    if n <= 17:
        rows = np.concatenate([NumbaEvaluator(model)(x[i : i + 1]) for i in range(n)])
        st = compare_outputs(rows, ref)
        assert st["extreme_mismatch"] == 0 and st["max_abs"] <= 1e-5 * max(st["ref_max_abs"], 1)


def test_upto_prefix_of_layers():
    model = MODELS["int8"]
    x = adversarial_inputs(model, 50, seed=9)
    h_np, h_nb = NumpyEvaluator(model)(x, upto=1), NumbaEvaluator(model)(x, upto=1)
    assert h_np.shape == (50, model.layers[0].n_nodes)
    assert_outputs_close(h_nb, h_np, rel=1e-5)


