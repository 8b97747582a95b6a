"""The resource budget (``lutkan.budget``): the limit's sources, its messages, and that every entry point honours
the keyword and the environment variable. The attacks that need it are in ``test_attacks.py``."""

from __future__ import annotations

import numpy as np
import pytest

from lutkan import budget
from lutkan.artifact import from_bytes, load, save, to_bytes
from lutkan.contract import ContractOptions
from lutkan.errors import ArtifactError, ExportError, LutKanError, ResourceLimitError
from lutkan.evaluators import numpy_eval
from lutkan.evaluators.numba_eval import NumbaEvaluator
from lutkan.evaluators.numpy_eval import NumpyEvaluator
from lutkan.testing.models import random_model


@pytest.mark.parametrize("env, want", [(None, budget.DEFAULT_MAX_BYTES), ("123", 123), ("8G", 8 << 30),
                                       ("16 MiB", 16 << 20), ("2k", 2048), ("0", None), ("none", None), ("", 4 << 30)])
def test_limit_from_environment(monkeypatch, env, want):
    if env is None:
        monkeypatch.delenv(budget.ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(budget.ENV_VAR, env)
    assert budget.max_bytes() == want
    assert budget.max_bytes(77) == 77 and budget.max_bytes(0) is None  # the keyword wins


@pytest.mark.parametrize("env", ["lots", "-5", "1.5G", "9" * 30])
def test_bad_environment_value_is_named(monkeypatch, env):
    monkeypatch.setenv(budget.ENV_VAR, env)
    with pytest.raises(LutKanError, match=budget.ENV_VAR):
        budget.max_bytes()


@pytest.mark.parametrize("bad", [-1, 1.5, True, "8G"])
def test_bad_keyword(bad):
    with pytest.raises(LutKanError, match="max_bytes"):
        budget.max_bytes(bad)


def test_check_message_and_error_class():
    assert budget.check(10, "x", limit=10) == 10
    with pytest.raises(ArtifactError) as e:
        budget.check(3 << 30, "the tables", limit=1 << 30, error=ArtifactError, where="m.lutkan")
    msg = str(e.value)
    assert msg.startswith("m.lutkan: the tables would allocate 3 GiB (3221225472 bytes)") and "1 GiB" in msg
    assert budget.ENV_VAR in msg and "max_bytes=" in msg


def test_every_entry_point_honours_keyword_and_environment(tmp_path, monkeypatch):
    m = random_model([3, 4, 2], ContractOptions(L=16, scheme="int8"), seed=0)
    p = save(m, tmp_path / "m.lutkan")
    small = 1000
    for fn, err in ((lambda kw: load(p, **kw), ArtifactError), (lambda kw: from_bytes(to_bytes(m), **kw), ArtifactError),
                    (lambda kw: NumpyEvaluator(m, **kw), ResourceLimitError),
                    (lambda kw: NumbaEvaluator(m, **kw), ResourceLimitError)):
        with pytest.raises(err, match="resource limit"):
            fn({"max_bytes": small})
        fn({"max_bytes": 0})  # 0: unlimited
    from lutkan.exporter import export

    with pytest.raises(ExportError, match="resource limit"):
        export(m, max_bytes=small)
    monkeypatch.setenv(budget.ENV_VAR, str(small))
    with pytest.raises(ArtifactError, match=f"{p}: .*resource limit of 1000 B"):
        load(p)
    load(p, max_bytes=1 << 30)  # the keyword overrides the environment
    x = np.zeros((2000, 3), np.float32)  # the tables fit in 20 kB, the batch's hidden values do not
    for ev in (NumpyEvaluator(m, max_bytes=40_000), NumbaEvaluator(m, max_bytes=40_000)):
        with pytest.raises(ResourceLimitError, match="evaluating a batch of 2000 rows"):
            ev(x)
        assert ev(x[:10]).shape == (10, 2)


def test_numpy_reference_in_row_blocks(monkeypatch):
    """A batch larger than ``WORK_BYTES`` of temporaries is evaluated in row blocks: the same rows' results."""
    m = random_model([5, 6, 3], ContractOptions(L=8, scheme="uint8"), seed=2, symbolic=0.3)
    x = np.random.default_rng(0).normal(0, 2, (1000, 5)).astype(np.float32)
    whole = NumpyEvaluator(m)(x)
    monkeypatch.setattr(numpy_eval, "WORK_BYTES", 40 * numpy_eval._row_bytes(NumpyEvaluator(m).tables[0]))
    ev = NumpyEvaluator(m)
    assert numpy_eval.WORK_BYTES // ev._row < x.shape[0] // 10  # really split
    np.testing.assert_array_equal(ev(x), whole)
    np.testing.assert_array_equal(ev(x, upto=1), NumpyEvaluator(m)(x, upto=1))
