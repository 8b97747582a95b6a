"""Benchmark of the onnxruntime plugin bridge: ``python -m lutkan.runtime_ext.bench_plugin``.

Model: a random 78->32->16->1 SourceModel (G=5, k=3), compiled with L=64 int8 tables; one
intra-op thread. Contenders are timed in alternating blocks of consecutive calls (see
``measure``), median of many calls:

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
import statistics
import threading
import time

import numpy as np

from lutkan.contract import ContractOptions

BATCHES = (1, 64, 4096)
REPS = {1: 3000, 64: 600, 4096: 40}


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


def measure(fns: dict, x: np.ndarray, reps: int, block: int = 0) -> dict:
    """Median µs per call. Contenders run in blocks of consecutive calls (the first call of a block
    is a discarded warm-up, so each contender is timed with its own tables in cache, as in steady
    use), and the blocks alternate between contenders so that load drift hits all of them alike."""
    names = list(fns)
    block = block or max(3, min(50, reps // 10))
    times = {n: [] for n in names}
    rounds = max(1, -(-reps // block))
    for r in range(rounds):
        for j in range(len(names)):
            n = names[(r + j) % len(names)]
            f = fns[n]
            f(x)
            for _ in range(block):
                t0 = time.perf_counter()
                f(x)
                times[n].append(time.perf_counter() - t0)
    return {n: statistics.median(v) * 1e6 for n, v in times.items()}


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


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the repeat counts")
    ap.add_argument("--threads", action="store_true", help="also measure multi-thread throughput")
    args = ap.parse_args(argv)

    model = build()
    fns = contenders(model)
    rng = np.random.default_rng(1)
    results = {}
    for n in BATCHES:
        x = rng.normal(0, 1.5, (n, 78)).astype(np.float32)
        results[n] = measure(fns, x, max(5, int(REPS[n] * args.scale)))

    cols = list(fns)
    plain = "plain function" in cols
    head = ["batch"] + [f"{c} (µs)" for c in cols] + ["plugin / numba", "plugin − numba (µs)"]
    if plain:
        head.append("plain function / plugin")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for n, r in results.items():
        p, b = r["plugin sess.run"], r["numba"]
        row = [str(n)] + [f"{r[c]:,.1f}" for c in cols] + [f"{p / b:.2f}×", f"{p - b:+,.1f}"]
        if plain:
            row.append(f"{r['plain function'] / p:.2f}×")
        print("| " + " | ".join(row) + " |")

    if args.threads:
        from lutkan.exporter import export
        from lutkan.runtime_ext import make_session

        sess = make_session(export(model, "custom"), intra_op_num_threads=1)
        x = rng.normal(0, 1.5, (4096, 78)).astype(np.float32)
        thread_throughput(sess, x, 1, 3)
        print("\n| threads (one session, batch 4096) | calls/s |\n|---|---|")
        for t in (1, 2, 4):
            print(f"| {t} | {thread_throughput(sess, x, t, max(4, int(40 * args.scale) // t)):.1f} |")
    return results


if __name__ == "__main__":
    main()
