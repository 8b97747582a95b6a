"""How every latency in the study is taken: pinned threads, warm-up, interleaved timed repeats.

Method (``measure_interleaved``), per batch size:

1. **Threads pinned to one** while anything is measured (``pinned_threads``, restored on exit):
   ``numba.set_num_threads(1)``, ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` = 1
   in the environment plus threadpoolctl limits for libraries already loaded, ``torch.set_num_threads(1)``;
   onnxruntime sessions are built with ``intra_op_num_threads=1``. ``NUMBA_NUM_THREADS`` is set in the
   environment only if numba is not imported yet: numba re-reads its environment on every JIT compile
   and raises if the pool size it launched with changed.
2. **Warm-up**: each contender is called up to ``warmup`` times untimed (Numba JIT, onnxruntime's
   first run, allocator growth); the last warm-up call's duration is the per-call estimate.
3. **Budget**: a contender whose estimate × ``min_repeats`` exceeds its per-cell budget is not timed;
   the caller records it as skipped with that arithmetic as the reason (warm-up stops early once a
   representative call is already over budget, and ``speed`` does not retry a contender at larger
   batches). Contenders a target depends on get a larger budget than the rest.
4. **Interleaved rounds**: every round visits all contenders in a freshly shuffled order (seeded).
   A contender first makes one untimed call when a call is shorter than ``REWARM_S`` = 50 ms, so the
   previous contender's cache footprint does not land on its first timed call (the LUT's dense
   tables are megabytes: without this its first call after another contender ran is a cold-cache
   call, measurably slower at mid-size batches); for longer calls a cold start is a few percent at
   most and is not worth the time. Then it makes a block of
   timed calls; blocks hold ``ceil(BLOCK_S / estimate)`` calls (at most ``MAX_BLOCK``), so fast
   contenders collect more samples per round while slow ones take one. Rounds repeat until there have
   been at least ``min_repeats`` rounds (so every contender has at least ``min_repeats`` samples, each
   from a different round) and the cell has run for ``min_time`` seconds (a contender stops collecting
   at ``max_repeats`` samples, but never before ``min_repeats`` rounds). Machine noise (this VM is shared) therefore
   falls on all contenders alike instead of on whichever ran during a burst.
5. Every call is timed on its own with ``time.perf_counter()``; the garbage collector is off while
   timing. Reported: the **median** and the quartiles (IQR), in ms, and the number of samples.

``time_calls`` is the front door for the tools outside the study (``lutkan demo``,
``python -m lutkan.bench.plugin``): the same pinned, interleaved measurement with no budget (nothing is
skipped), stopped by wall time or by a number of calls.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterator

from lutkan.bench.stats import quartiles

THREAD_ENV = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
REWARM_S = 50e-3
BLOCK_S = 2e-3
MAX_BLOCK = 20


@contextlib.contextmanager
def pinned_threads(n: int = 1, *, pin_torch: bool = True) -> Iterator[dict]:
    """Limit every compute library to ``n`` threads for the ``with`` body; yield what is in effect
    (for the environment record). Environment variables and library thread counts are restored on exit.
    With ``pin_torch=False`` torch is left alone (and not imported)."""
    saved_env = {k: os.environ.get(k) for k in THREAD_ENV}
    numba_loaded = "numba" in sys.modules
    for k in THREAD_ENV:
        if k == "NUMBA_NUM_THREADS" and numba_loaded:
            continue  # see the module doc: changing it after import breaks the next JIT compile
        os.environ[k] = str(n)
    out: dict = {k: os.environ.get(k, "unset") for k in THREAD_ENV}
    restore: list[Callable[[], object]] = []
    try:
        import numba

        prev = numba.get_num_threads()
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
        restore.append(lambda: numba.set_num_threads(prev))
        out["numba.get_num_threads"] = int(numba.get_num_threads())
    except Exception as e:  # noqa: BLE001 - recorded, not fatal
        out["numba.get_num_threads"] = f"unavailable ({type(e).__name__})"
    limiter = None
    try:
        import threadpoolctl

        limiter = threadpoolctl.threadpool_limits(n)
        out["threadpoolctl"] = [f"{d.get('internal_api')}:{d.get('num_threads')}"
                                for d in threadpoolctl.threadpool_info()]
    except Exception:  # noqa: BLE001 - optional
        out["threadpoolctl"] = "not installed"
    try:
        if not pin_torch:
            raise ImportError("pin_torch=False")
        import torch

        prev_torch = torch.get_num_threads()
        torch.set_num_threads(n)
        restore.append(lambda: torch.set_num_threads(prev_torch))
        try:
            torch.set_num_interop_threads(n)
        except RuntimeError:  # only settable before torch's first parallel work
            pass
        out["torch.get_num_threads"] = int(torch.get_num_threads())
        out["torch.get_num_interop_threads"] = int(torch.get_num_interop_threads())
    except ImportError as e:
        out["torch.get_num_threads"] = f"torch left alone ({e})" if not pin_torch else "torch not installed"
    out["onnxruntime.intra_op_num_threads"] = n
    try:
        yield out
    finally:
        for fn in reversed(restore):
            fn()
        if limiter is not None:
            limiter.restore_original_limits()
        for k, v in saved_env.items():
            if k == "NUMBA_NUM_THREADS" and numba_loaded:
                continue
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _call_time(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def estimate(fn: Callable[[], object], warmup: int, *, limit_s: float | None = None, warm: bool = False) -> float:
    """Run up to ``warmup`` (>= 1) untimed calls; return the duration of the last one (seconds).

    With ``limit_s``, stop as soon as a call that is representative (any call of an already ``warm``
    contender, otherwise the second call on: the first may include JIT compilation) exceeds it: that
    contender is over budget and further warm-up would only burn time.
    """
    t = 0.0
    for i in range(max(1, warmup)):
        t = _call_time(fn)
        if limit_s is not None and t > limit_s and (warm or i >= 1):
            break
    return t


def measure_interleaved(contenders: dict[str, Callable[[], object]], *, min_repeats: int, min_time: float,
                        max_repeats: int, warmup: int, budget_s: float | dict[str, float], seed: int = 0,
                        warm: set[str] | frozenset = frozenset()) -> dict[str, dict]:
    """Time ``contenders`` (name -> zero-argument callable) against each other; see the module doc.

    ``budget_s`` is the per-cell budget (one number, or per contender); ``warm`` names contenders
    that already ran in an earlier cell (their first warm-up call is a valid estimate).
    Returns name -> ``quartiles`` dict in **milliseconds** plus ``estimate_ms``, ``block`` and
    ``rounds``; or name -> ``{"skipped": reason, "estimate_ms": ...}`` when over budget.
    """
    budgets = budget_s if isinstance(budget_s, dict) else {k: budget_s for k in contenders}
    est = {name: estimate(fn, warmup, limit_s=budgets[name] / min_repeats, warm=name in warm)
           for name, fn in contenders.items()}
    out: dict[str, dict] = {}
    live = {}
    for name, fn in contenders.items():
        need = est[name] * min_repeats
        if need > budgets[name]:
            out[name] = {"skipped": f"over the profile's per-cell time budget: one call takes "
                                    f"~{est[name] * 1e3:.4g} ms, x {min_repeats} repeats = {need:.3g} s "
                                    f"> {budgets[name]:g} s", "estimate_ms": est[name] * 1e3}
        else:
            live[name] = fn
    samples: dict[str, list[float]] = {k: [] for k in live}
    per_round: dict[str, dict[int, float]] = {k: {} for k in live}
    block = {k: max(1, min(MAX_BLOCK, math.ceil(BLOCK_S / max(est[k], 1e-9)))) for k in live}
    cap = {k: max(max_repeats, min_repeats * block[k]) for k in live}  # never stop before min_repeats rounds
    rng = random.Random(seed)
    order = list(live)
    rounds = 0
    gc_was = gc.isenabled()
    gc.disable()
    t_start = time.perf_counter()
    try:
        while live:
            active = [k for k in order if len(samples[k]) < cap[k]]
            enough = rounds >= min_repeats
            if not active or (enough and time.perf_counter() - t_start >= min_time):
                break
            rng.shuffle(active)
            for k in active:
                fn = live[k]
                if est[k] < REWARM_S:
                    fn()
                blk = [_call_time(fn) for _ in range(block[k])]
                samples[k] += blk
                per_round[k][rounds] = sum(blk) / len(blk) * 1e3
            rounds += 1
    finally:
        if gc_was:
            gc.enable()
    for k in live:
        st = quartiles(s * 1e3 for s in samples[k])
        st.update(estimate_ms=est[k] * 1e3, block=block[k], rounds=len(per_round[k]), per_round_ms=per_round[k])
        out[k] = st
    return out


def paired_ratio(a: dict, b: dict) -> dict | None:
    """Quartiles of the per-round ratio a/b over the rounds both contenders ran in (``per_round_ms`` of
    two ``measure_interleaved`` results): machine noise that hits one round hits both sides of it, so
    the spread of this ratio is the uncertainty of the comparison itself."""
    ra, rb = a.get("per_round_ms", {}), b.get("per_round_ms", {})
    common = sorted(set(ra) & set(rb))
    if not common:
        return None
    return quartiles(ra[r] / rb[r] for r in common if rb[r] > 0)


def time_calls(fns: dict[str, Callable[[], object]], *, seconds: float = math.inf, max_calls: int = 10_000,
               min_rounds: int = 5, warmup: int = 3, threads: int = 1, seed: int = 0) -> dict[str, dict]:
    """Time ``fns`` (name -> zero-argument callable) against each other: ``measure_interleaved`` under
    ``pinned_threads(threads)``, with no budget (no contender is skipped).

    Timing stops once every contender has been timed in ``min_rounds`` rounds and ``seconds`` have
    passed, or once every contender has ``max_calls`` samples. torch is pinned only when it is already
    imported (a caller that never loads torch does not pay for importing it).
    Returns name -> ``quartiles`` dict in **milliseconds** (``median``, ``q1``, ``q3``, ``n``, ...).
    """
    with pinned_threads(threads, pin_torch="torch" in sys.modules):
        return measure_interleaved(fns, min_repeats=min_rounds, min_time=seconds, max_repeats=max_calls,
                                   warmup=warmup, budget_s=math.inf, seed=seed)


__all__ = ["THREAD_ENV", "estimate", "measure_interleaved", "paired_ratio", "pinned_threads", "time_calls"]
