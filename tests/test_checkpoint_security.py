"""Untrusted pykan checkpoints (lutkan.compiler.pykan), complementing tests/test_compiler_pykan.py.

That module covers the basic cases (an ``os.system`` ``__reduce__`` in ``_state``/``_cache_data``, the
``apply``/``new``/``name`` YAML tags, missing state/config, config-vs-state shape mismatches, an empty
folder). Here: payload variants (exec/eval/open/subprocess, every pickle protocol, the legacy
non-zip torch format, a payload hidden next to real tensors, raw pickles), payload side effects
checked through every entry point (``load_source``, ``build_pykan_model``, ``compile_model``), YAML
tags nested inside allowed ones, alias bombs and nesting bombs, sparse/meta/complex tensors, huge
declared widths, half/bfloat16/float64 states, CUDA/MPS-saved real checkpoints, odd files and folders.
Every refusal is a ``LutKanError`` subclass with a message naming the file; nothing runs.
"""

from __future__ import annotations

import io
import os
import pickle
import shutil
import time
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import realmodel_dir

from lutkan.compiler import compile_model
from lutkan.contract import ContractOptions
from lutkan.errors import CheckpointError, LutKanError, UnsupportedModelError
from lutkan.evaluators.numpy_eval import NumpyEvaluator

torch = pytest.importorskip("torch")
kan = pytest.importorskip("kan", reason="reading pykan checkpoints needs the [pykan] extra")
from lutkan.compiler.pykan import build_pykan_model, load_source, read_checkpoint_config

MARK = "LUTKAN_PWNED_MARKER"


def _marker_gone() -> bool:
    return not Path(MARK).exists() and not Path(f"/tmp/{MARK}").exists() and os.environ.get(MARK) is None


class _Exec:
    def __reduce__(self):
        return (exec, (f"open({MARK!r}, 'w').write('1')",))


class _Eval:
    def __reduce__(self):
        return (eval, (f"open({MARK!r}, 'w')",))


class _Open:
    def __reduce__(self):
        return (open, (MARK, "w"))


class _System:
    def __reduce__(self):
        return (os.system, (f"touch {MARK}",))


class _Popen:
    def __reduce__(self):
        import subprocess

        return (subprocess.Popen, (["touch", MARK],))


class _Env:
    def __reduce__(self):
        return (os.putenv, (MARK, "1"))


PAYLOADS = {"exec": _Exec, "eval": _Eval, "open": _Open, "system": _System, "popen": _Popen, "putenv": _Env}


@pytest.fixture
def ckpt():
    """A small saveckpt checkpoint ck/0.0 (width [2, 3, 1]); returns the prefix."""
    m = kan.KAN(width=[2, 3, 1], grid=3, k=3, seed=0, auto_save=False)
    m(torch.zeros(4, 2))
    Path("ck").mkdir()
    m.saveckpt("ck/0.0")
    return Path("ck/0.0")


def _entry_points(prefix):
    """Everything that reads a checkpoint path."""
    return {
        "load_source": lambda: load_source(prefix),
        "build_pykan_model": lambda: build_pykan_model(prefix),
        "compile_model": lambda: compile_model(str(prefix), ContractOptions(L=4)),
    }


def _refused_everywhere(prefix, match, what, target="_state"):
    """Every entry point that reads the damaged file refuses it naming the file; ``compile_model`` does not read
    ``_cache_data`` at all (issue 14: a command does not load what it does not need), so for a damaged cache it
    must succeed without touching it. No payload ever runs."""
    cache_only = target == "_cache_data"
    for name, f in _entry_points(prefix).items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if cache_only and name == "compile_model":
                f()
                assert _marker_gone(), f"{what}: payload ran through {name}"
                continue
            with pytest.raises(LutKanError, match=match) as ei:
                f()
        assert str(prefix.name) in str(ei.value) or str(prefix) in str(ei.value), (name, what, str(ei.value))
        assert _marker_gone(), f"{what}: payload ran through {name}"


# ------------------------------------------------------------------------------------------ pickles


@pytest.mark.parametrize("target", ["_state", "_cache_data"])
@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_pickle_payloads_refused_not_run(ckpt, target, payload):
    torch.save(PAYLOADS[payload](), f"{ckpt}{target}")
    _refused_everywhere(ckpt, rf"{target}: refused to unpickle", f"{payload} in {target}", target)


@pytest.mark.parametrize("protocol", range(0, pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("target", ["_state", "_cache_data"])
def test_raw_pickles_every_protocol(ckpt, protocol, target):
    """A bare pickle (not a torch file): the legacy torch reader unpickles it with weights_only."""
    Path(f"{ckpt}{target}").write_bytes(pickle.dumps(_Exec(), protocol=protocol))
    _refused_everywhere(ckpt, "refused to unpickle|cannot read", f"raw pickle p{protocol} in {target}", target)


@pytest.mark.parametrize("target", ["_state", "_cache_data"])
def test_legacy_format_payload(ckpt, target):
    torch.save({"x": _Exec()}, f"{ckpt}{target}", _use_new_zipfile_serialization=False)
    _refused_everywhere(ckpt, "refused to unpickle", f"legacy torch file in {target}", target)


def test_payload_hidden_among_real_tensors(ckpt):
    """A real, complete state_dict plus one extra entry carrying the payload."""
    sd = torch.load(f"{ckpt}_state", weights_only=True)
    sd["zz_extra"] = _Popen()
    torch.save(sd, f"{ckpt}_state")
    _refused_everywhere(ckpt, "refused to unpickle", "payload next to tensors")
    sd.pop("zz_extra")
    sd["act_fun.0.grid"] = [sd["act_fun.0.grid"], _Exec()]
    torch.save(sd, f"{ckpt}_state")
    _refused_everywhere(ckpt, "refused to unpickle", "payload inside a list")


def test_zip_with_swapped_data_pkl(ckpt):
    """A valid torch zip whose data.pkl was replaced by a payload pickle."""
    src = Path(f"{ckpt}_state").read_bytes()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(src)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith("data.pkl"):
                data = pickle.dumps(_System(), protocol=2)
            zout.writestr(info, data)
    Path(f"{ckpt}_state").write_bytes(out.getvalue())
    _refused_everywhere(ckpt, "refused to unpickle|cannot read", "swapped data.pkl")


def test_numpy_pickled_cache_refused(ckpt):
    """numpy arrays need numpy's reconstruct globals, which weights_only does not allow."""
    torch.save(np.zeros((3, 2)), f"{ckpt}_cache_data")
    with pytest.raises(CheckpointError, match=r"_cache_data: refused to unpickle"):
        load_source(ckpt)


def test_reader_does_not_widen_torch_allowlist(ckpt):
    get = getattr(torch.serialization, "get_safe_globals", None)
    if get is None:  # pragma: no cover - torch < 2.5
        pytest.skip("torch.serialization.get_safe_globals is not available in this torch")
    before = list(get())
    load_source(ckpt)
    build_pykan_model(ckpt)
    assert list(get()) == before, "the reader added globals to torch's weights_only allow-list"


# ------------------------------------------------------------------------------------------ YAML


def _cfg(prefix) -> Path:
    return Path(f"{prefix}_config.yml")


def _replace_key(prefix, key: str, value_yaml: str, extra: str = ""):
    """Replace the top-level ``key`` (and its block continuation lines) with ``value_yaml``."""
    p = _cfg(prefix)
    out, skipping = [], False
    for ln in p.read_text().splitlines():
        if ln.startswith(f"{key}:"):
            skipping = True
            continue
        if skipping and (ln.startswith("- ") or ln.startswith("  ")):
            continue
        skipping = False
        out.append(ln)
    p.write_text(extra + "\n".join(out) + f"\n{key}: {value_yaml}\n")
    assert "not valid YAML" not in _parse_error(p, value_yaml), "the edit itself broke the YAML"


def _parse_error(p: Path, value_yaml: str) -> str:
    import yaml

    try:  # structure only (no tag construction): the edit must keep the document well-formed
        yaml.compose(p.read_text())
    except RecursionError:
        return ""
    except yaml.YAMLError as e:
        return f"not valid YAML: {e}" if "[" * 100 not in value_yaml else ""
    return ""


YAML_TAGS = {
    "object_state": "!!python/object:os._wrap_close {}",
    "module": "!!python/module:os ''",
    "apply_exec": f"!!python/object/apply:builtins.exec [\"open('{MARK}','w')\"]",
    "apply_subprocess": f"!!python/object/apply:subprocess.check_call [[touch, {MARK}]]",
    "name_eval": "!!python/name:builtins.eval ''",
    "new_popen": f"!!python/object/new:subprocess.Popen [[touch, {MARK}]]",
    "tuple_wrapping_apply": f"!!python/tuple [2, !!python/object/apply:os.system ['touch {MARK}']]",
    "list_wrapping_apply": f"[2, [3, !!python/object/apply:os.system ['touch {MARK}']]]",
    "mapping_value_apply": f"{{a: !!python/object/apply:os.system ['touch {MARK}']}}",
    "dtype_object": "!!python/object/apply:numpy.core.multiarray.scalar [!!python/object/apply:numpy.dtype "
                    "{args: [O8, false, true]}, !!binary AAAAAAAAAAA=]",
    "dtype_unicode": "!!python/object/apply:numpy.core.multiarray.scalar [!!python/object/apply:numpy.dtype "
                     "{args: [U1, false, true]}, !!binary AAAAAA==]",
    "dtype_nested_payload": "!!python/object/apply:numpy.core.multiarray.scalar [!!python/object/apply:numpy.dtype "
                            f"{{args: [!!python/object/apply:os.system ['touch {MARK}'], false, true]}}, "
                            "!!binary AAAAAAAAAAA=]",
    "scalar_wrong_nbytes": "!!python/object/apply:numpy.core.multiarray.scalar [!!python/object/apply:numpy.dtype "
                           "{args: [i8, false, true]}, !!binary AAAA]",
    "base_fun_other_object": "!!python/object:torch.nn.modules.activation.ReLU {}",
}


@pytest.mark.parametrize("key", ["grid", "width", "base_fun_name"])
@pytest.mark.parametrize("tag", sorted(YAML_TAGS))
def test_yaml_python_tags_refused(ckpt, tag, key):
    _replace_key(ckpt, key, YAML_TAGS[tag])
    with pytest.raises((CheckpointError, UnsupportedModelError), match=r"_config\.yml: ") as ei:
        load_source(ckpt)
    assert "refused" in str(ei.value) or "not supported" in str(ei.value) or "must" in str(ei.value), str(ei.value)
    with pytest.raises(LutKanError):
        read_checkpoint_config(_cfg(ckpt))
    assert _marker_gone()


def test_yaml_alias_bomb_refused_fast(ckpt):
    """Nine levels of nine aliases (9**9 leaves when expanded) must not be walked or printed."""
    levels = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9))
    good = _cfg(ckpt).read_text()
    for key in ("mult_arity", "base_fun_name", "width", "symbolic.funs_name.0"):
        _cfg(ckpt).write_text(good)
        _replace_key(ckpt, key, "*a8", extra=levels)
        t = time.perf_counter()
        with pytest.raises(CheckpointError, match="alias"):
            load_source(ckpt)
        assert time.perf_counter() - t < 5, f"alias bomb under {key!r} took {time.perf_counter() - t:.1f} s"


def test_yaml_scalar_alias_still_accepted(ckpt):
    """Aliases of scalars cannot expand: they stay legal."""
    _replace_key(ckpt, "grid_eps", "*e", extra="eps_anchor: &e 0.02\n")
    load_source(ckpt)


def test_yaml_dump_dtype_aliases_accepted(ckpt):
    """yaml.dump (what saveckpt uses) anchors the numpy dtype shared by numpy scalars and aliases it:
    that alias is legal, only aliases of plain lists/mappings are refused."""
    import yaml

    p = _cfg(ckpt)
    cfg = yaml.safe_load(p.read_text())
    cfg.update(grid_eps=np.float64(0.02), grid_range=[np.float64(-1.0), np.float64(1.0)], grid=np.int64(3))
    p.write_text(yaml.dump(cfg))
    assert "&id001" in p.read_text() and "*id001" in p.read_text()
    cfg2 = read_checkpoint_config(p)
    assert cfg2["grid_range"] == [-1.0, 1.0] and cfg2["grid"] == 3
    load_source(ckpt)


@pytest.mark.parametrize("bomb", ["[" * 5000 + "]" * 5000, "{a: " * 5000 + "1" + "}" * 5000,
                                  "\n" + "- " * 3000 + "1"])
def test_yaml_nesting_bomb(ckpt, bomb):
    _replace_key(ckpt, "width", bomb)
    with pytest.raises(CheckpointError, match=r"_config\.yml: "):
        load_source(ckpt)


@pytest.mark.parametrize("text", ["", "null\n", "- 1\n- 2\n", "just a string\n", "\x00\x01\x02", "width: [2, 3\n",
                                  "\ufeff{}", b"\xff\xfe\x00w", b"\xc3\x28: 1"])
def test_config_not_a_mapping(ckpt, text):
    if isinstance(text, bytes):
        _cfg(ckpt).write_bytes(text)
    else:
        _cfg(ckpt).write_text(text)
    with pytest.raises(CheckpointError, match=r"_config\.yml: "):
        load_source(ckpt)


# ------------------------------------------------------------------------------------------ tensors


def _edit_state(prefix, fn):
    sd = torch.load(f"{prefix}_state", weights_only=True)
    fn(sd)
    torch.save(sd, f"{prefix}_state")


@pytest.mark.parametrize("kind", ["sparse", "meta", "complex"])
def test_unreadable_tensor_kinds(ckpt, kind):
    def edit(sd):
        c = sd["act_fun.0.coef"]
        sd["act_fun.0.coef"] = {"sparse": lambda: c.to_sparse(), "meta": lambda: torch.empty(c.shape, device="meta"),
                                "complex": lambda: c.to(torch.complex64)}[kind]()

    _edit_state(ckpt, edit)
    with pytest.raises(CheckpointError, match=r"0\.0_state: layer 0: .*(layout|complex)"):
        load_source(ckpt)


def test_huge_declared_width_does_not_allocate(ckpt):
    _replace_key(ckpt, "width", "[[1000000000, 0], [3, 0], [1, 0]]")
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match="1000000000"):
            load_source(ckpt)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20, f"peak {peak} bytes for a checkpoint of a few KB"


def test_nan_knots_refused_by_compiler(ckpt):
    _edit_state(ckpt, lambda sd: sd["act_fun.0.grid"].__setitem__((1, 2), float("nan")))
    src = load_source(ckpt)  # the reader keeps pykan's numbers; the compiler names the defect
    with pytest.raises(UnsupportedModelError, match=r"layer 0, input 1: knots contain NaN"):
        compile_model(src, ContractOptions(L=4))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_reduced_and_double_precision_states(ckpt, dtype, rng):
    ref = load_source(ckpt)
    td = getattr(torch, dtype)
    _edit_state(ckpt, lambda sd: sd.update({k: v.to(td) for k, v in sd.items() if v.is_floating_point()}))
    src = load_source(ckpt)
    assert src.provenance["state_dtype"] == dtype
    for la, lb in zip(src.layers, ref.layers, strict=True):
        assert la.grid.dtype == np.float64
        tol = {"float16": 1e-2, "bfloat16": 1e-1, "float64": 0}[dtype]
        np.testing.assert_allclose(la.coef, lb.coef, rtol=tol, atol=tol)
    x = rng.normal(size=(50, 2))
    y = NumpyEvaluator(compile_model(src, ContractOptions(L=64, scheme="float32")))(x)
    assert np.isfinite(y).all()
    # the float64 state is exactly the float32 one upcast: same forward
    if dtype == "float64":
        np.testing.assert_array_equal(src.forward(x), ref.forward(x))


# ------------------------------------------------------------------------------------------ devices


@pytest.mark.parametrize("name,device", [("logiknet_mult", "cuda"), ("mguo_gwp_symbolic", "mps")])
def test_accelerator_saved_real_checkpoints(realmodels, name, device):
    """The real files were saved on CUDA / MPS (their storages say so); they load on this CPU-only
    torch and compile to finite tables."""
    folder = realmodel_dir(name)
    (state,) = folder.glob("*_state")
    with zipfile.ZipFile(state) as z:
        pkl = next(n for n in z.namelist() if n.endswith("data.pkl"))
        assert device.encode() in z.read(pkl), f"{state} does not record a {device} storage location"
    if device == "cuda":
        assert not torch.cuda.is_available() or True  # loading must not need the device either way
    with pytest.warns(UserWarning, match="latest"):
        src = load_source(folder)
    assert src.provenance["device"].startswith(device)
    model = compile_model(src, ContractOptions(L=16))
    x = src.cache_data[:64]
    with np.errstate(invalid="ignore"):
        y = NumpyEvaluator(model)(x)
    assert y.shape == (len(x), model.n_outputs) and np.isfinite(y).mean() > 0.5


def test_float64_real_checkpoint_keeps_precision(realmodels):
    """logiknet_mult is float64: its knots reach 1e9, which float32 would round by ~64."""
    with pytest.warns(UserWarning):
        src = load_source(realmodel_dir("logiknet_mult"))
    g = src.layers[1].grid
    assert np.abs(g).max() > 1e9
    assert np.any(g != g.astype(np.float32).astype(np.float64)), "float64 knots were rounded to float32"


# ------------------------------------------------------------------------------------------ files and folders


def test_state_file_oddities(ckpt):
    good = Path(f"{ckpt}_state").read_bytes()
    cases = {
        "empty": b"",
        "truncated zip": good[: len(good) // 2],
        "zip tail only": good[-200:],
        "text": b"hello, not torch",
        "zip of nothing": _empty_zip(),
    }
    for what, data in cases.items():
        Path(f"{ckpt}_state").write_bytes(data)
        with pytest.raises(CheckpointError, match=r"0\.0_state: ") as ei:
            load_source(ckpt)
        assert ei.value.args[0], what
    Path(f"{ckpt}_state").unlink()
    Path(f"{ckpt}_state").mkdir()  # a directory where the file should be
    with pytest.raises(CheckpointError, match="0.0_state"):
        load_source(ckpt)


def _empty_zip() -> bytes:
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w"):
        pass
    return b.getvalue()


def test_config_path_is_a_directory(ckpt):
    _cfg(ckpt).unlink()
    _cfg(ckpt).mkdir()
    with pytest.raises(CheckpointError, match=r"0\.0_config\.yml"):
        load_source(ckpt)


def test_folders_without_checkpoints():
    Path("only_cache").mkdir()
    torch.save(torch.zeros(3, 2), "only_cache/0.1_cache_data")
    Path("only_cache/history.txt").write_text("x")
    Path("only_cache/0.2_state").mkdir()  # a folder named like a state file is not a checkpoint
    with pytest.raises(CheckpointError, match="holds no pykan checkpoint"):
        load_source("only_cache")
    with pytest.raises(CheckpointError, match="no pykan checkpoint"):
        load_source("only_cache/0.1_cache_data")
    with pytest.raises(CheckpointError, match="no pykan checkpoint at"):
        load_source("does/not/exist")


def test_ambiguous_and_traversing_ids(ckpt):
    shutil.copy(f"{ckpt}_state", "ck/best_state")
    shutil.copy(f"{ckpt}_config.yml", "ck/best_config.yml")
    with pytest.warns(UserWarning, match="using checkpoint 0.0"):  # numeric ids win over names
        load_source("ck")
    Path("named").mkdir()
    for cid in ("best", "final"):
        shutil.copy(f"{ckpt}_state", f"named/{cid}_state")
        shutil.copy(f"{ckpt}_config.yml", f"named/{cid}_config.yml")
    with pytest.raises(CheckpointError, match="cannot tell which checkpoint is the latest"):
        load_source("named")
    for bad in ("../ck/0.0", "..", ".", "", "a/b", "..\\x"):
        with pytest.raises(CheckpointError, match="is not a checkpoint id|no checkpoint"):
            load_source("named", checkpoint_id=bad)


def test_symlinked_checkpoint_files(ckpt):
    """Symlinks are followed (they are ordinary files to the reader), a dangling one is 'missing'."""
    Path("ln").mkdir()
    for suffix in ("_state", "_config.yml"):
        os.symlink(Path(f"{ckpt}{suffix}").resolve(), f"ln/0.5{suffix}")
    load_source("ln/0.5")
    os.unlink("ln/0.5_state")
    os.symlink("nowhere_state", "ln/0.5_state")
    with pytest.raises(CheckpointError, match=r"0\.5_state"):
        load_source("ln/0.5")
