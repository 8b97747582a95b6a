"""Fuzzing the ``.lutkan`` container and its loader (lutkan/artifact.py).

Every malformed input must end in ``ArtifactError`` with a clear message: truncations at every
prefix length, bit flips, bad magic, wrong ``format_version``, header JSON edited with the checksums
recomputed (so the structural checks, not the SHA-256 trailer, must catch it), huge declared shapes
(which must not allocate), aliased arrays (allocation amplification), unknown contract values and
value-level defects. A header or array mutation the loader *accepts* must give a model both
evaluators run without crashing. Cases are counted and summarised at the end of the module
("artifact fuzz: N cases, 0 crashes") on the terminal and in ``<basetemp>/artifact_fuzz_stats.json``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import struct
import tracemalloc
from collections import Counter

import numpy as np
import pytest
from conftest import terminal_line
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lutkan.artifact import FORMAT_VERSION, MAGIC, from_bytes, load, save, to_bytes
from lutkan.compiler import compile_model
from lutkan.contract import SCHEMES, ContractOptions
from lutkan.errors import ArtifactError
from lutkan.evaluators.numba_eval import NumbaEvaluator
from lutkan.evaluators.numpy_eval import NumpyEvaluator
from lutkan.metrics import compare_outputs
from lutkan.testing.attacks.crafting import rebuild, set_array, split
from lutkan.testing.inputs import adversarial_inputs
from lutkan.testing.models import random_source

STATS: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def _summary(request, tmp_path_factory):
    yield
    line = (f"artifact fuzz: {STATS['cases']} cases ({STATS['rejected']} rejected with ArtifactError, "
            f"{STATS['accepted']} accepted and evaluated, {STATS['roundtrips']} round trips), "
            f"{STATS['crashes']} crashes")
    out = tmp_path_factory.getbasetemp() / "artifact_fuzz_stats.json"
    out.write_text(json.dumps(dict(STATS), indent=1))
    terminal_line(request.config, f"{line}  [{out}]")


# ---------------------------------------------------------------------------------------------- helpers


def expect_error(data, match: str | None = None, *, what: str = "") -> ArtifactError:
    """Load ``data``; it must raise ArtifactError (whose message contains ``match``)."""
    STATS["cases"] += 1
    try:
        from_bytes(data)
    except ArtifactError as e:
        STATS["rejected"] += 1
        if match is not None:
            assert match in str(e), f"{what}: message {str(e)!r} does not contain {match!r}"
        return e
    except BaseException as e:
        STATS["crashes"] += 1
        raise AssertionError(f"{what}: loader crashed with {type(e).__name__}: {e}") from e
    STATS["silent_accept"] += 1
    raise AssertionError(f"{what}: a defective file was accepted")


def load_or_reject(data, what: str = ""):
    """Load ``data``; ArtifactError is fine; anything else is a crash. An accepted model must run on
    both evaluators without crashing and agree wherever both outputs are ordinary."""
    STATS["cases"] += 1
    try:
        m = from_bytes(data)
    except ArtifactError as e:
        STATS["rejected"] += 1
        assert str(e).strip(), f"{what}: empty error message"
        return None
    except BaseException as e:
        STATS["crashes"] += 1
        raise AssertionError(f"{what}: loader crashed with {type(e).__name__}: {e}") from e
    STATS["accepted"] += 1
    x = np.random.default_rng(0).normal(size=(7, m.n_inputs)).astype(np.float32) * 3
    x[0] = np.nan
    try:
        with np.errstate(all="ignore"):
            a = NumpyEvaluator(m)(x)
            b = NumbaEvaluator(m)(x)
    except BaseException as e:
        STATS["crashes"] += 1
        raise AssertionError(f"{what}: an accepted model crashed an evaluator: {type(e).__name__}: {e}") from e
    assert a.shape == b.shape == (7, m.n_outputs)
    with np.errstate(all="ignore"):
        stt = compare_outputs(b, a)
    if stt["extreme_mismatch"] == 0 and stt["ref_max_abs"] < 1e20:
        assert stt["max_abs"] <= 1e-4 * max(stt["ref_max_abs"], 1.0), (what, stt)
    return m


def _model(seed=0, scheme="int8", width=(3, 3, 2), L=8, **kw):
    src = random_source(list(width), G=3, k=2, seed=seed, mult_groups={0: [2]}, masked=0.3, zero_width=1, **kw)
    return compile_model(src, ContractOptions(L=L, scheme=scheme))


@pytest.fixture(scope="module", params=SCHEMES)
def blob(request) -> bytes:
    return to_bytes(_model(scheme=request.param, symbolic=0.2))


def assert_same_model(a, b):
    assert a.contract == b.contract and a.base_fun == b.base_fun and a.n_inputs == b.n_inputs
    assert a.provenance == b.provenance and a.notes == b.notes
    np.testing.assert_array_equal(a.input_id, b.input_id)
    assert len(a.layers) == len(b.layers)
    for la, lb in zip(a.layers, b.layers, strict=True):
        assert (la.n_sum, la.mult_groups) == (lb.n_sum, lb.mult_groups)
        for name in ("knots", "edge_src", "edge_dst", "table", "scale", "offset", "base_weight", "subnode_scale",
                     "subnode_bias", "node_scale", "node_bias", "tab_error"):
            x, y = getattr(la, name), getattr(lb, name)
            assert (x is None) == (y is None), name
            if x is not None:
                assert x.dtype == y.dtype and x.shape == y.shape, name
                np.testing.assert_array_equal(x, y, err_msg=name)


# ---------------------------------------------------------------------------------------------- round trip


@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), scheme=st.sampled_from(SCHEMES), L=st.integers(2, 40),
       width=st.sampled_from([(1, 1), (2, 3), (4, 3, 2), (3, 1, 1, 2)]), uniform=st.booleans(),
       symbolic=st.sampled_from([0.0, 0.3]), masked=st.sampled_from([0.0, 0.5]),
       base_fun=st.sampled_from(["silu", "identity", "zero"]))
def test_roundtrip_equal(tmp_path_factory, seed, scheme, L, width, uniform, symbolic, masked, base_fun):
    src = random_source(list(width), G=4, k=3, seed=seed, knots="uniform" if uniform else "nonuniform",
                        symbolic=symbolic, masked=masked, zero_width=int(seed % 2), base_fun=base_fun,
                        n_inputs=width[0] + int(seed % 3 == 0))
    m = compile_model(src, ContractOptions(L=L, scheme=scheme))
    path = tmp_path_factory.mktemp("rt") / "m.lutkan"
    save(m, path)
    data = path.read_bytes()
    assert data == to_bytes(m), "save() and to_bytes() disagree"
    m2 = load(path)
    STATS["cases"] += 1
    STATS["roundtrips"] += 1
    assert_same_model(m, m2)
    assert to_bytes(m2) == data, "serialization is not deterministic / not a fixed point"
    assert not list(path.parent.glob("*.tmp")), "save() left its temp file behind"
    x = adversarial_inputs(m, 32, seed=seed)
    a, b = NumpyEvaluator(m)(x), NumpyEvaluator(m2)(x)
    np.testing.assert_array_equal(a, b)
    for arr in (m2.layers[0].table, m2.layers[0].knots, m2.input_id):
        assert not arr.flags.writeable, "loaded arrays must be read-only"


# ---------------------------------------------------------------------------------------------- truncation


def test_every_truncation_rejected(blob):
    """Every proper prefix (0 .. len-1 bytes) and every extension is rejected."""
    n = len(blob)
    hlen = struct.unpack("<Q", blob[8:16])[0]
    classes = Counter()
    for cut in range(n):
        e = expect_error(blob[:cut], what=f"prefix {cut}/{n}")
        msg = str(e)
        if cut < len(MAGIC) + 8 + 32:
            assert "truncated" in msg, msg
            classes["short"] += 1
        elif 16 + hlen > cut - 32:
            assert "header length" in msg or "truncated" in msg, msg
            classes["in header"] += 1
        else:
            assert "checksum mismatch" in msg, msg
            classes["in arrays/trailer"] += 1
    assert all(classes[c] > 0 for c in ("short", "in header", "in arrays/trailer")), classes
    for extra in (b"\x00", b"\x00" * 32, blob[-32:], b"junk" * 100):
        expect_error(blob + extra, "checksum mismatch", what="appended bytes")


# ---------------------------------------------------------------------------------------------- bit flips


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_bit_flips_rejected(blob, data):
    pos = data.draw(st.integers(0, len(blob) - 1), label="byte")
    bit = data.draw(st.integers(0, 7), label="bit")
    b = bytearray(blob)
    b[pos] ^= 1 << bit
    e = expect_error(bytes(b), what=f"flip byte {pos} bit {bit}")
    assert any(s in str(e) for s in ("bad magic", "header length", "checksum mismatch")), str(e)


def test_bit_flip_every_byte_of_small_file():
    blob = to_bytes(_model(width=(1, 1), L=2))
    for pos in range(len(blob)):
        b = bytearray(blob)
        b[pos] ^= 0x10
        expect_error(bytes(b), what=f"flip byte {pos}")


# ---------------------------------------------------------------------------------------------- framing


@pytest.mark.parametrize("magic", [b"LUTKAN\x00\x02", b"lutkan\x00\x01", b"\x00" * 8, b"PK\x03\x04\x00\x00\x00\x00",
                                   b"\x80\x04\x95\x00\x00\x00\x00\x00"])
def test_bad_magic(blob, magic):
    header, region = split(blob)
    expect_error(rebuild(header, region, magic=magic), "not a .lutkan file (bad magic", what=f"magic {magic!r}")


def test_pickle_and_npz_are_not_lutkan(tmp_path):
    import pickle

    expect_error(pickle.dumps({"a": 1}) + b"\x00" * 64, "bad magic", what="pickle")
    np.savez(tmp_path / "a.npz", a=np.zeros(3))
    expect_error((tmp_path / "a.npz").read_bytes(), "bad magic", what="npz")


@pytest.mark.parametrize("hlen", [2**64 - 1, 2**63, (64 << 20) + 1, 10**9])
def test_header_length_field(blob, hlen):
    b = blob[:8] + struct.pack("<Q", hlen) + blob[16:]
    b = b[:-32] + hashlib.sha256(b[:-32]).digest()
    expect_error(b, "header length", what=f"hlen {hlen}")


@pytest.mark.parametrize("version", [0, 3, 99, "1", "2", 1.5, 1.0, 2.0, None, True, [1]])
def test_wrong_format_version(blob, version):
    header, region = split(blob)
    header["format_version"] = version
    e = expect_error(rebuild(header, region), "is not supported by this lutkan", what=f"version {version!r}")
    assert f"format_version {version!r}" in str(e) and f"reads versions 1, {FORMAT_VERSION}" in str(e)
    del header["format_version"]
    expect_error(rebuild(header, region), "format_version None is not supported", what="no version")


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff\xfe{}", b"null", b"[]", b"42", b'"lutkan"', b"{}",
                                 b'{"format":"onnx"}', b"[" * 100_000 + b"]" * 100_000,
                                 b'{"format":"lutkan","format_version":1,"arrays":' + b"[" * 50_000 + b"]" * 50_000 + b"}",
                                 b'{"format":"lutkan","format_version":1,"provenance":' + b'{"a":' * 50_000 + b"0"
                                 + b"}" * 50_001])
def test_garbage_header(blob, raw):
    """Invalid UTF-8/JSON, wrong top-level types and deeply nested JSON (a RecursionError bomb)."""
    _, region = split(blob)
    e = expect_error(rebuild(None, region, raw_header=raw), what=f"header {raw[:30]!r}")
    assert any(s in str(e) for s in ("not valid JSON", "does not describe a lutkan model", "is inconsistent",
                                     "too deeply nested")), str(e)


def test_not_bytes_and_unreadable_paths(tmp_path):
    for bad in ("LUTKAN", None, 123, [1, 2]):
        STATS["cases"] += 1
        with pytest.raises(ArtifactError, match="expected bytes"):
            from_bytes(bad)
        STATS["rejected"] += 1
    for p in (tmp_path / "missing.lutkan", tmp_path):
        STATS["cases"] += 1
        with pytest.raises(ArtifactError, match="cannot read"):
            load(p)
        STATS["rejected"] += 1


# ---------------------------------------------------------------------------------------------- header edits


def _edit(blob, fn):
    header, region = split(blob)
    header = copy.deepcopy(header)
    out = fn(header, region)
    if isinstance(out, tuple):
        header, region = out
    return rebuild(header, region)


TABLE = "layers.0.table"
KNOTS = "layers.0.knots"


def _swap_table_dims(h, r):
    s = h["arrays"][TABLE]["shape"]
    h["arrays"][TABLE]["shape"] = [s[1], s[0], s[2]] if s[0] != s[1] else [s[0] * s[1], 1, s[2]]


HEADER_EDITS = {
    # shapes and byte counts
    "shape_bytes_mismatch": (lambda h, r: h["arrays"][TABLE].__setitem__("shape", [1, 1, 1]), "declares"),
    "shape_relation": (_swap_table_dims, "table has shape"),
    "knots_1d": (lambda h, r: h["arrays"][KNOTS].update(shape=[h["arrays"][KNOTS]["nbytes"] // 4]), "knots must be"),
    "negative_dim": (lambda h, r: h["arrays"][TABLE].__setitem__("shape", [-1, 2, 3]), "invalid shape"),
    "float_dim": (lambda h, r: h["arrays"][TABLE].__setitem__("shape", [1.5]), "invalid shape"),
    "bool_dim": (lambda h, r: h["arrays"][TABLE].__setitem__("shape", [True]), "invalid shape"),
    "rank5": (lambda h, r: h["arrays"][TABLE].__setitem__("shape", [1, 1, 1, 1, 1]), "invalid shape"),
    "shape_not_list": (lambda h, r: h["arrays"][TABLE].__setitem__("shape", "3"), "invalid shape"),
    "nbytes_str": (lambda h, r: h["arrays"][TABLE].__setitem__("nbytes", "12"), "declares"),
    "offset_negative": (lambda h, r: h["arrays"][TABLE].__setitem__("offset", -64), "outside the file"),
    "offset_past_end": (lambda h, r: h["arrays"][TABLE].__setitem__("offset", len(r)), "outside the file"),
    "offset_float": (lambda h, r: h["arrays"][TABLE].__setitem__("offset", 0.0), "declares"),
    "offset_moved": (lambda h, r: h["arrays"][TABLE].__setitem__("offset", 0), "overlaps array"),
    "array_sha": (lambda h, r: h["arrays"][TABLE].__setitem__("sha256", "0" * 64), "checksum of array"),
    # missing arrays / keys
    "array_entry_missing": (lambda h, r: h["arrays"].pop(KNOTS), f"array '{KNOTS}' is missing"),
    "layer_ref_missing": (lambda h, r: h["layers"][0]["arrays"].pop("knots"), "knots must be"),
    "table_ref_missing": (lambda h, r: h["layers"][0]["arrays"].pop("table"), "array 'table' is missing"),
    "scale_ref_missing": (lambda h, r: h["layers"][0]["arrays"].pop("scale"), "array 'scale' is missing"),
    "unknown_layer_array": (lambda h, r: h["layers"][0]["arrays"].__setitem__("evil", TABLE), "unknown arrays"),
    "input_id_key": (lambda h, r: h.__setitem__("input_id", "nope"), "array 'nope' is missing"),
    "input_id_wrong_array": (lambda h, r: h.__setitem__("input_id", KNOTS), f"array '{KNOTS}' is referenced more than once"),
    "arrays_not_dict": (lambda h, r: h.__setitem__("arrays", []), "inconsistent"),
    "array_entry_not_dict": (lambda h, r: h["arrays"].__setitem__(TABLE, 5), "inconsistent"),
    "array_entry_no_dtype": (lambda h, r: h["arrays"][TABLE].pop("dtype"), "inconsistent"),
    "no_layers": (lambda h, r: h.__setitem__("layers", []), "model has no layers"),
    "layers_not_list": (lambda h, r: h.__setitem__("layers", 7), "inconsistent"),
    "no_contract": (lambda h, r: h.pop("contract"), "contract must be a JSON object"),
    "no_base_fun": (lambda h, r: h.pop("base_fun"), "inconsistent"),
    "no_arrays": (lambda h, r: h.pop("arrays"), "inconsistent"),
    # dtypes
    "dtype_float64": (lambda h, r: h["arrays"][KNOTS].__setitem__("dtype", "float64"), "disallowed dtype 'float64' (allowed: float32)"),
    "dtype_object": (lambda h, r: h["arrays"][TABLE].__setitem__("dtype", "object"), "disallowed dtype 'object'"),
    "dtype_O": (lambda h, r: h["arrays"][TABLE].__setitem__("dtype", "O"), "disallowed dtype"),
    "dtype_unicode": (lambda h, r: h["arrays"][TABLE].__setitem__("dtype", "<U4"), "disallowed dtype"),
    "dtype_void": (lambda h, r: h["arrays"][TABLE].__setitem__("dtype", "V8"), "disallowed dtype"),
    "dtype_bigendian": (lambda h, r: h["arrays"][KNOTS].__setitem__("dtype", ">f4"), "disallowed dtype"),
    "dtype_list": (lambda h, r: h["arrays"][KNOTS].__setitem__("dtype", ["float32"]), "inconsistent"),
    "dtype_swap_int8_uint8": (lambda h, r: h["arrays"][TABLE].__setitem__("dtype", "uint8"), "table must be"),
    # contract values
    "scheme_int4": (lambda h, r: h["contract"].__setitem__("scheme", "int4"), "scheme='int4' is not supported"),
    "interp_cubic": (lambda h, r: h["contract"].__setitem__("interp", "cubic"), "interp='cubic' is not supported"),
    "boundary_open": (lambda h, r: h["contract"].__setitem__("boundary", "open"), "boundary='open' is not supported"),
    "oob_wrap": (lambda h, r: h["contract"].__setitem__("oob", "wrap"), "oob='wrap' is not supported"),
    "L_1": (lambda h, r: h["contract"].__setitem__("L", 1), "L=1 is out of range"),
    "L_huge": (lambda h, r: h["contract"].__setitem__("L", 10**12), "is out of range"),
    "L_str": (lambda h, r: h["contract"].__setitem__("L", "8"), "must be an integer"),
    "L_bool": (lambda h, r: h["contract"].__setitem__("L", True), "must be an integer"),
    "L_float": (lambda h, r: h["contract"].__setitem__("L", 8.0), "must be an integer"),
    "L_other": (lambda h, r: h["contract"].__setitem__("L", h["contract"]["L"] + 1), "table has shape"),
    "contract_extra": (lambda h, r: h["contract"].__setitem__("dither", True), "unknown contract option"),
    "contract_not_dict": (lambda h, r: h.__setitem__("contract", ["int8"]), "contract"),
    "contract_int": (lambda h, r: h.__setitem__("contract", 8), "contract must be a JSON object"),
    "contract_missing_key": (lambda h, r: h["contract"].pop("oob"), "contract misses"),
    # model-level fields
    "base_fun_relu": (lambda h, r: h.__setitem__("base_fun", "relu"), "base_fun 'relu' is not one of"),
    "n_inputs_0": (lambda h, r: h.__setitem__("n_inputs", 0), "n_inputs=0 must be a positive int"),
    "n_inputs_str": (lambda h, r: h.__setitem__("n_inputs", "3"), "must be a positive int"),
    "n_inputs_bool": (lambda h, r: h.__setitem__("n_inputs", True), "must be a positive int"),
    "n_inputs_small": (lambda h, r: h.__setitem__("n_inputs", 1), "input_id out of range"),
    "n_sum_bool": (lambda h, r: h["layers"][0].__setitem__("n_sum", False), "must be a non-negative int"),
    "n_sum_negative": (lambda h, r: h["layers"][0].__setitem__("n_sum", -1), "must be a non-negative int"),
    "n_sum_float": (lambda h, r: h["layers"][0].__setitem__("n_sum", 1.0), "must be a non-negative int"),
    "mult_groups_zero": (lambda h, r: h["layers"][0].__setitem__("mult_groups", [0, 2]), "must be positive ints"),
    "mult_groups_int": (lambda h, r: h["layers"][0].__setitem__("mult_groups", 2), "inconsistent"),
    "mult_groups_str": (lambda h, r: h["layers"][0].__setitem__("mult_groups", "2"), "must be positive ints"),
    "mult_groups_wrong_sum": (lambda h, r: h["layers"][0].__setitem__("mult_groups", [3]), "!= "),
    "layer_meta_not_dict": (lambda h, r: h["layers"].__setitem__(0, "layer"), "inconsistent"),
    "provenance_list": (lambda h, r: h.__setitem__("provenance", [1]), "provenance/notes malformed"),
    "notes_str": (lambda h, r: h.__setitem__("notes", "hi"), "provenance/notes malformed"),
    "duplicate_layer": (lambda h, r: h["layers"].append(copy.deepcopy(h["layers"][0])), "is referenced more than once"),
    "edge_src_ref_missing": (lambda h, r: h["layers"][0]["arrays"].pop("edge_src"), "edge_src must be a 1-D"),
    "edge_src_0d": (lambda h, r: h["arrays"]["layers.0.edge_src"].update(shape=[], nbytes=4)
                    if h["arrays"]["layers.0.edge_src"]["nbytes"] >= 4 else h["layers"][0]["arrays"].pop("edge_src"),
                    None),
}


@pytest.mark.parametrize("case", sorted(HEADER_EDITS))
def test_header_edit_with_recomputed_checksum(blob, case):
    fn, match = HEADER_EDITS[case]
    header, _ = split(blob)
    if case == "scale_ref_missing" and "scale" not in header["layers"][0]["arrays"]:
        pytest.skip("float16/float32 tables have no scale array to remove")
    if case == "dtype_swap_int8_uint8" and header["arrays"][TABLE]["dtype"] == "uint8":
        fn = lambda h, r: h["arrays"][TABLE].__setitem__("dtype", "int8")
    if case == "dtype_swap_int8_uint8" and header["arrays"][TABLE]["dtype"] in ("float16", "float32"):
        fn = lambda h, r: h["arrays"][TABLE].update(dtype="int8", shape=h["arrays"][TABLE]["shape"] + [1],
                                                     nbytes=int(np.prod(h["arrays"][TABLE]["shape"])))
        match = None
    expect_error(_edit(blob, fn), match, what=case)


# --------------------------------------------------------------------------------------- huge declared sizes


HUGE_SHAPES = [[2**40], [2**20, 2**20, 2**20], [2**62, 2**62], [2**31, 2**31, 2**31, 2**31], [10**30]]


@pytest.mark.parametrize("shape", HUGE_SHAPES, ids=lambda s: "x".join(f"{v:.0e}" for v in s))
def test_huge_declared_shape_does_not_allocate(blob, shape):
    header, region = split(blob)
    nb = int(np.prod(np.array(shape, dtype=object))) * 4
    header["arrays"][KNOTS].update(shape=shape, nbytes=nb)
    data = rebuild(header, region)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        e = expect_error(data, "lies outside the file", what=f"shape {shape}")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * len(data) + (1 << 20), f"loading a {len(data)}-byte file peaked at {peak} bytes"
    assert str(nb) in str(e)


def test_aliased_arrays_do_not_amplify_memory():
    """A small file whose header points many layers at the same array bytes must not make the
    loader allocate (layers x array size): arrays must not overlap in the file."""
    m = _model(width=(8, 8), L=64, scheme="float32")
    blob = to_bytes(m)
    header, region = split(blob)
    header["layers"] = [copy.deepcopy(header["layers"][0]) for _ in range(200)]
    data = rebuild(header, region)
    table_nb = header["arrays"][TABLE]["nbytes"]
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        STATS["cases"] += 1
        try:
            loaded = from_bytes(data)
        except ArtifactError as e:
            STATS["rejected"] += 1
            assert "is referenced more than once" in str(e), str(e)
            loaded = None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert loaded is None, (f"a {len(data)}-byte file with 200 aliases of one {table_nb}-byte table loaded "
                            f"({peak} bytes peak): the loader must reject overlapping arrays")
    # two keys naming the same bytes (not only the same key twice)
    header, region = split(blob)
    header["arrays"]["layers.0.subnode_bias"] = dict(header["arrays"]["layers.0.subnode_scale"])
    e = expect_error(rebuild(header, region), what="two keys, same bytes")
    assert "overlaps array 'layers.0.subnode_scale'" in str(e), str(e)


# --------------------------------------------------------------------------------------- value-level defects


def _first_layer_arrays(blob):
    m = from_bytes(blob)
    return m, m.layers[0]


def _value_edits(m, layer):
    scheme = m.contract.scheme
    k = layer.knots.copy()
    out = {}
    if k.shape[1] >= 3:
        kk = k.copy()
        kk[0, [0, -1]] = kk[0, [-1, 0]]
        out["knots_unsorted"] = (KNOTS, kk, "are not sorted")
    kk = k.copy()
    kk[0, 1] = np.nan
    out["knots_nan"] = (KNOTS, kk, "knots contain NaN or inf")
    kk = k.copy()
    kk[0, -1] = np.inf
    out["knots_inf"] = (KNOTS, kk, "knots contain NaN or inf")
    if layer.n_edges:
        es = layer.edge_src.copy()
        es[-1] = layer.in_dim
        out["edge_src_range"] = ("layers.0.edge_src", es, "edge_src out of range")
        ed = layer.edge_dst.copy()
        ed[0] = -1
        out["edge_dst_negative"] = ("layers.0.edge_dst", ed, "edge_dst out of range")
        out["edges_reversed"] = ("layers.0.edge_src", layer.edge_src[::-1].copy(),
                                 "edges must be unique and sorted" if layer.n_edges > 1 and len(set(layer.edge_src)) > 1 else None)
        t = layer.table.copy()
        if scheme == "int8":
            t[0, 0, 0] = -128
            out["int8_minus128"] = (TABLE, t, "[-127, 127]")
        elif scheme in ("float16", "float32"):
            t[0, 0, 0] = np.nan
            out["table_nan"] = (TABLE, t, "table contains NaN or inf")
        if layer.scale is not None:
            s = layer.scale.copy()
            s[0, 0] = -1
            out["scale_negative"] = ("layers.0.scale", s, "scale must be >= 0")
            s = layer.scale.copy()
            s[0, 0] = np.inf
            out["scale_inf"] = ("layers.0.scale", s, "scale contains NaN or inf")
        if layer.offset is not None:
            o = layer.offset.copy()
            o[0, 0] = np.nan
            out["offset_nan"] = ("layers.0.offset", o, "offset contains NaN or inf")
    inactive = np.argwhere(~layer.active)
    if inactive.size:
        bw = layer.base_weight.copy()
        bw[tuple(inactive[0])] = 1.0
        out["base_weight_inactive"] = ("layers.0.base_weight", bw, "nonzero on an edge that is not in the edge list")
    for name in ("subnode_scale", "node_bias"):
        v = getattr(layer, name).copy()
        v[0] = np.nan
        out[f"{name}_nan"] = (f"layers.0.{name}", v, f"{name} contains NaN or inf")
    ii = m.input_id.copy()
    ii[0] = m.n_inputs
    out["input_id_range"] = ("input_id", ii, "input_id out of range")
    out["input_id_int32"] = ("input_id", m.input_id.astype(np.int32), "has disallowed dtype 'int32' (allowed: int64)")
    out["knots_float16"] = (KNOTS, k.astype(np.float16), "has disallowed dtype 'float16' (allowed: float32)")
    return out


VALUE_CASES = ["knots_unsorted", "knots_nan", "knots_inf", "edge_src_range", "edge_dst_negative", "edges_reversed",
               "int8_minus128", "table_nan", "scale_negative", "scale_inf", "offset_nan", "base_weight_inactive",
               "subnode_scale_nan", "node_bias_nan", "input_id_range", "input_id_int32", "knots_float16"]


@pytest.mark.parametrize("case", VALUE_CASES)
def test_value_defects_with_valid_checksums(blob, case):
    m, layer = _first_layer_arrays(blob)
    edits = _value_edits(m, layer)
    if case not in edits:
        pytest.skip(f"{case} does not apply to scheme {m.contract.scheme} / this layer")
    key, arr, match = edits[case]
    header, region = split(blob)
    header, region = set_array(header, region, key, arr)
    expect_error(rebuild(header, region), match, what=case)


# --------------------------------------------------------------------------------------- random header fuzz


json_leaves = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False),
                        st.text(max_size=8), st.sampled_from(["int8", "uint8", "float32", "float64", "object",
                                                              "layers.0.table", "input_id", "lutkan", "zero"]))
json_values = st.recursive(json_leaves, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c,
                                                                                          max_size=4), max_leaves=8)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_random_header_mutations(blob, data):
    """Replace, delete or insert at a random JSON path (checksums recomputed). Either ArtifactError,
    or a model that validates and runs on both evaluators."""
    header, region = split(blob)
    paths = [p for p in _paths(header) if p]
    n_mut = data.draw(st.integers(1, 3), label="n_mutations")
    for _ in range(n_mut):
        paths = [p for p in _paths(header) if p]
        path = data.draw(st.sampled_from(paths), label="path")
        parent = header
        for key in path[:-1]:
            parent = parent[key]
        op = data.draw(st.sampled_from(["replace", "delete", "insert"]), label="op")
        if op == "replace":
            parent[path[-1]] = data.draw(json_values, label="value")
        elif op == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[data.draw(st.text(max_size=6), label="new key")] = data.draw(json_values, label="value")
        else:
            parent.insert(path[-1], data.draw(json_values, label="value"))
    load_or_reject(rebuild(header, region), what=f"header mutation {header!r}"[:300])


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_random_array_byte_mutations(blob, data):
    """Overwrite random bytes of one array, re-hash it (so only validation can object): either
    ArtifactError or a model both evaluators run (never a crash or out-of-bounds access)."""
    header, region = split(blob)
    key = data.draw(st.sampled_from(sorted(header["arrays"])), label="array")
    e = header["arrays"][key]
    raw = bytearray(region[e["offset"] : e["offset"] + e["nbytes"]])
    if not raw:
        return
    for _ in range(data.draw(st.integers(1, 4), label="n_bytes")):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    arr = np.frombuffer(bytes(raw), dtype=e["dtype"]).reshape(e["shape"])
    header, region = set_array(header, region, key, arr)
    load_or_reject(rebuild(header, region), what=f"bytes of {key}")
