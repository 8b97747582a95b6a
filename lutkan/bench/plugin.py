"""Benchmark of the onnxruntime plugin bridge: ``python -m lutkan.bench.plugin``.

Model: a random 78->32->16->1 SourceModel (G=5, k=3), compiled with L=64 int8 tables; one
intra-op thread. Contenders are timed against each other with ``lutkan.bench.timing.time_calls``
(threads pinned to one, interleaved rounds in a shuffled order, blocks of consecutive calls after an
untimed re-warm call), median of many calls:

* ``numba``: ``NumbaEvaluator`` called directly (includes its ``check_input``);
* ``plugin sess.run``: ``make_session(custom form)`` + ``session.run`` (custom and function
  forms give the same plugin graph);
* ``plugin run()``: the validated ``lutkan.runtime_ext.run``;
* ``plugin kernel_threads=2``: batches >= 256 rows split over 2 threads (opt-in; not counted in
  the ratio columns, which compare single-threaded contenders);
* ``plain function`` / ``plain standard``: onnxruntime without the plugin.

``--threads`` adds a throughput table: T Python threads sharing one plugin session at batch
4096 (the kernel releases the GIL while it runs, so 2 threads can use 2 cores).
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np

from lutkan.bench.timing import time_calls
from lutkan.contract import ContractOptions
from lutkan.reporting import md_table

BATCHES = (1, 64, 4096)
CALLS = {1: 3000, 64: 600, 4096: 40}
"""Timed calls per contender at each batch size (``--scale`` multiplies them)."""


def build(seed: int = 0):
    from lutkan.testing.models import random_model

    return random_model((78, 32, 16, 1), ContractOptions(L=64, scheme="int8"), G=5, k=3, seed=seed,
                        knots="nonuniform", masked=0.1, affine=False, input_id="sorted")


def contenders(model) -> dict:
    from lutkan.evaluators.numba_eval import NumbaEvaluator
    from lutkan.exporter import export
    from lutkan.runtime_ext import make_session, run

    out = {"numba": NumbaEvaluator(model)}
    sess = make_session(export(model, "custom"), intra_op_num_threads=1)
    out["plugin sess.run"] = lambda x, s=sess: s.run(None, {"x": x})[0]
    out["plugin run()"] = lambda x, s=sess: run(s, x)
    sess2 = make_session(export(model, "custom"), intra_op_num_threads=1, kernel_threads=2)
    out["plugin kernel_threads=2"] = lambda x, s=sess2: s.run(None, {"x": x})[0]
    for form in ("function", "standard"):
        plain = make_session(export(model, form), plugin=False, intra_op_num_threads=1)
        out[f"plain {form}"] = lambda x, s=plain: s.run(None, {"x": x})[0]
    return out


def measure(fns: dict, x: np.ndarray, calls: int) -> dict:
    """Median µs per call of each contender ``fn(x)``, timed until each has ``calls`` timed calls."""
    res = time_calls({n: (lambda f=f: f(x)) for n, f in fns.items()}, max_calls=calls)
    return {n: r["median"] * 1e3 for n, r in res.items()}


def thread_throughput(sess, x, n_threads: int, calls: int = 40) -> float:
    """Calls per second with ``n_threads`` threads each making ``calls`` session.run calls."""
    def work():
        for _ in range(calls):
            sess.run(None, {"x": x})

    ts = [threading.Thread(target=work) for _ in range(n_threads)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return n_threads * calls / (time.perf_counter() - t0)


def speed_table(results: dict[int, dict]) -> str:
    """The markdown speed table of ``main`` (medians in µs per batch, ratios of single-threaded contenders)."""
    cols = list(next(iter(results.values())))
    plain = "plain function" in cols
    head = ["batch"] + [f"{c} (µs)" for c in cols] + ["plugin / numba", "plugin − numba (µs)"]
    if plain:
        head.append("plain function / plugin")
    rows = []
    for n, r in results.items():
        p, b = r["plugin sess.run"], r["numba"]
        row = [str(n)] + [f"{r[c]:,.1f}" for c in cols] + [f"{p / b:.2f}×", f"{p - b:+,.1f}"]
        if plain:
            row.append(f"{r['plain function'] / p:.2f}×")
        rows.append(row)
    return md_table(head, rows)


def threads_table(model, rng: np.random.Generator, scale: float) -> str:
    """Calls/s of 1, 2 and 4 Python threads sharing one plugin session at batch 4096."""
    from lutkan.exporter import export as export_model
    from lutkan.runtime_ext import make_session

    sess = make_session(export_model(model, "custom"), intra_op_num_threads=1)
    x = rng.normal(0, 1.5, (4096, 78)).astype(np.float32)
    thread_throughput(sess, x, 1, 3)
    rows = [[str(t), f"{thread_throughput(sess, x, t, max(4, int(40 * scale) // t)):.1f}"] for t in (1, 2, 4)]
    return md_table(["threads (one session, batch 4096)", "calls/s"], rows)


def main(argv=None) -> dict:
    """Time every contender at each batch size, print the speed table (and ``--threads`` table)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the numbers of timed calls")
    ap.add_argument("--threads", action="store_true", help="also measure multi-thread throughput")
    args = ap.parse_args(argv)

    model = build()
    fns = contenders(model)
    rng = np.random.default_rng(1)
    results = {}
    for n in BATCHES:
        x = rng.normal(0, 1.5, (n, 78)).astype(np.float32)
        results[n] = measure(fns, x, max(5, int(CALLS[n] * args.scale)))
    print(speed_table(results), end="")
    if args.threads:
        print("\n" + threads_table(model, rng, args.scale), end="")
    return results


if __name__ == "__main__":
    main()
