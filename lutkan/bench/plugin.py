"""Benchmark of the LUTKanEdge op in onnxruntime: ``python -m lutkan.bench.plugin [--model ids78|random]``.

Model: the bundled ``ids78`` checkpoint (78->32->16->1, G=5, k=3) compiled with the default contract (L=64
int8, linear), or with ``--model random`` a random 78->32->16->1 SourceModel compiled the same way (no pykan
needed). Contenders are timed against each other with ``lutkan.bench.timing.time_calls`` (threads pinned to
one, interleaved rounds in a shuffled order, blocks of consecutive calls after an untimed re-warm call),
median of many calls:

* ``numba``: ``NumbaEvaluator`` called directly (one fused Numba call per model; includes ``check_input``);
* ``native``: a plain ``onnxruntime.InferenceSession`` of the unmodified custom-form file with
  ``lutkan.runtime_ext.library_path()`` registered, ``session.run`` (one native LUTKanEdge call per layer);
* ``native run()``: ``make_session`` (native backend) + the validated ``lutkan.runtime_ext.run``;
* ``pyop``: ``make_session(..., plugin="pyop")``, the onnxruntime-extensions fallback, ``session.run``;
* ``plain function`` / ``plain standard``: onnxruntime without lutkan code;
* ``native 2 threads``: the ``native`` session with ``intra_op_num_threads=2`` (batches of >= 1024 rows are
  split over onnxruntime's intra-op pool); ``pyop kernel_threads=2``: the PyOp's own 2-thread split. These
  two are not in the single-thread ratio columns; ``2 threads`` is native 1 thread / native 2 threads.

The header line records the CPU model and the load average before and after (the VM is shared: a busy
second core caps the 2-thread gain). ``--threads`` adds a throughput table: T Python threads sharing one
native session at batch 4096.
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import numpy as np

from lutkan.bench.timing import time_calls
from lutkan.contract import ContractOptions
from lutkan.reporting import md_table

BATCHES = (1, 64, 4096)
CALLS = {1: 3000, 64: 600, 4096: 40}
"""Timed calls per contender at each batch size (``--scale`` multiplies them)."""
SINGLE = ("numba", "native", "native run()", "pyop", "plain function", "plain standard")
THREADED = ("native 2 threads", "pyop kernel_threads=2")


def build(kind: str = "ids78", seed: int = 0):
    """The benchmark's ``LUTModel`` (default contract): the bundled ids78 checkpoint or a random one."""
    if kind == "ids78":
        from lutkan.bench.zoo import bundled_dir
        from lutkan.compiler import compile_model
        from lutkan.compiler.pykan import load_source

        return compile_model(load_source(str(bundled_dir() / "ids78" / "0.0")), ContractOptions())
    from lutkan.testing.models import random_model

    return random_model((78, 32, 16, 1), ContractOptions(L=64, scheme="int8"), G=5, k=3, seed=seed,
                        knots="nonuniform", masked=0.1, affine=False, input_id="sorted")


def native_session(proto, threads: int = 1):
    """What a user of the native library writes: a plain session with ``library_path()`` registered."""
    import onnxruntime as ort

    from lutkan.runtime_ext import library_path

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.register_custom_ops_library(library_path())
    return ort.InferenceSession(proto.SerializeToString(), sess_options=so, providers=["CPUExecutionProvider"])


def contenders(model) -> dict:
    from lutkan.evaluators.numba_eval import NumbaEvaluator
    from lutkan.exporter import export
    from lutkan.runtime_ext import make_session, run

    custom = export(model, "custom")
    out = {"numba": NumbaEvaluator(model)}
    sess = native_session(custom)
    out["native"] = lambda x, s=sess: s.run(None, {"x": x})[0]
    made = make_session(custom, plugin="native", intra_op_num_threads=1)
    out["native run()"] = lambda x, s=made: run(s, x)
    pyop = make_session(custom, plugin="pyop", intra_op_num_threads=1)
    out["pyop"] = lambda x, s=pyop: s.run(None, {"x": x})[0]
    for form in ("function", "standard"):
        plain = make_session(export(model, form), plugin=False, intra_op_num_threads=1)
        out[f"plain {form}"] = lambda x, s=plain: s.run(None, {"x": x})[0]
    two = native_session(custom, threads=2)
    out["native 2 threads"] = lambda x, s=two: s.run(None, {"x": x})[0]
    pyop2 = make_session(custom, plugin="pyop", intra_op_num_threads=1, kernel_threads=2)
    out["pyop kernel_threads=2"] = lambda x, s=pyop2: s.run(None, {"x": x})[0]
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
    """The markdown speed table of ``main`` (medians in µs per batch, then the ratios)."""
    cols = list(next(iter(results.values())))
    head = ["batch"] + [f"{c} (µs)" for c in cols] + ["native / numba", "native − numba (µs)", "pyop / native",
                                                      "plain function / native", "2 threads"]
    rows = []
    for n, r in results.items():
        nat, b = r["native"], r["numba"]
        rows.append([str(n)] + [f"{r[c]:,.1f}" for c in cols] +
                    [f"{nat / b:.2f}×", f"{nat - b:+,.1f}", f"{r['pyop'] / nat:.2f}×",
                     f"{r['plain function'] / nat:.2f}×", f"{nat / r['native 2 threads']:.2f}×"])
    return md_table(head, rows)


def threads_table(model, rng: np.random.Generator, scale: float) -> str:
    """Calls/s of 1, 2 and 4 Python threads sharing one native session (1 intra-op thread) at batch 4096."""
    from lutkan.exporter import export as export_model

    sess = native_session(export_model(model, "custom"))
    x = rng.normal(0, 1.5, (4096, model.n_inputs)).astype(np.float32)
    thread_throughput(sess, x, 1, 3)
    rows = [[str(t), f"{thread_throughput(sess, x, t, max(4, int(40 * scale) // t)):.1f}"] for t in (1, 2, 4)]
    return md_table(["Python threads (one native session, batch 4096)", "calls/s"], rows)


def main(argv=None) -> dict:
    """Time every contender at each batch size, print the environment line and the speed table."""
    from lutkan.bench.env import environment

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=("ids78", "random"), default="ids78")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the numbers of timed calls")
    ap.add_argument("--threads", action="store_true", help="also measure multi-thread throughput")
    args = ap.parse_args(argv)

    model = build(args.model)
    fns = contenders(model)
    env = environment()
    rng = np.random.default_rng(1)
    results = {}
    for n in BATCHES:
        x = rng.normal(0, 1.5, (n, model.n_inputs)).astype(np.float32)
        results[n] = measure(fns, x, max(5, int(CALLS[n] * args.scale)))
    load = [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else []
    print(f"model {args.model}; {env['cpu_model']}, {env['cpus_usable']} cpus; load average "
          f"{[round(v, 2) for v in env['load_avg_start']]} before, {load} after; onnxruntime "
          f"{env['versions']['onnxruntime']}, numba {env['versions']['numba']}\n")
    print(speed_table(results), end="")
    if args.threads:
        print("\n" + threads_table(model, rng, args.scale), end="")
    return results


if __name__ == "__main__":
    main()
