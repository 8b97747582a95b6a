"""Kernel benchmark (issue 13): ``python -m lutkan.bench.kernel [--out DIR] [--scale S] [--rss]``.

On the bundled ids78 checkpoint (78->32->16->1, G=5, k=3; default contract: int8 L=64 linear), every figure
measured side by side in one run with ``lutkan.bench.timing.time_calls`` (threads pinned to one unless said,
interleaved rounds in a shuffled order, median of many calls):

1. **Per layer**, the 0.1 kernel (``lut_kernel_v1``, kept as this named baseline for one release) against
   ``lut_kernel`` on the same hidden values: ns per (sample, input) pair and per edge evaluation (a pair times
   the layer's active edges of that input), at batch 4096 (and 64, 1).
2. **Whole model**: ``numba 0.1`` (the 0.1 kernel per layer + the node step), ``numba`` (``NumbaEvaluator``),
   ``numba 2 threads`` (``NumbaEvaluator(threads=2)``), ``native`` (a plain onnxruntime session with
   ``lutkan.runtime_ext.library_path()``, custom form), ``function`` and ``standard`` forms in plain
   onnxruntime, and ``pykan onnx``: pykan exported with ``torch.onnx`` (after ``speed()``) in onnxruntime
   (needs torch and pykan; skipped with the reason otherwise).
3. With ``--rss``: the peak RSS of one plain-onnxruntime run of the function and standard forms at 1,000,000
   rows, each in a fresh process, as a multiple of the input array's bytes.

Writes ``kernel.json``, ``kernel.csv`` and ``kernel.md`` (CPU model, load average before and after) to
``--out`` (default ``bench-kernel``) and prints the markdown.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from lutkan.bench.timing import pinned_threads, time_calls
from lutkan.reporting import md_table

BATCHES = (1, 64, 4096)
CALLS = {1: 2000, 64: 400, 4096: 40}
"""Timed calls per contender at each batch size (``--scale`` multiplies them)."""
RSS_ROWS = 1_000_000


def v1_forward(nb, x: np.ndarray) -> np.ndarray:
    """The whole model with the 0.1 layer kernel (``NumbaEvaluator.forward_layers`` with ``run_v1``)."""
    from lutkan.evaluators.lut_kernel_v1 import run_v1
    from lutkan.evaluators.node_kernel import apply_nodes

    h = np.ascontiguousarray(x[:, nb._input_id]) if not nb._identity_input else x
    for k, sym, t in zip(nb.kernels, nb.symbolic, nb.tables, strict=True):
        s = np.empty((h.shape[0], k.out_dim), np.float32)
        run_v1(h, k.knots, k.bounds, k.seg_scale, k.dense, k.base_weight, k.edge_mask, *k.flags, s)
        if sym is not None:
            sym.add_to(h, s)
        h = s if t.nodes is None else apply_nodes(t.nodes, s)
    return h


def layer_rows(nb, rng: np.random.Generator, scale: float) -> list[dict]:
    """Section 1: per layer, 0.1 vs new kernel, ns per pair and per edge evaluation."""
    from lutkan.evaluators.lut_kernel import lut_layer_kernel
    from lutkan.evaluators.lut_kernel_v1 import run_v1

    rows = []
    for n in BATCHES:
        x = rng.normal(0, 1.5, (n, nb.model.n_inputs)).astype(np.float32)
        for l, k in enumerate(nb.kernels):
            h = np.ascontiguousarray(x if l == 0 else nb(x, upto=l))
            o1, o2 = np.empty((n, k.out_dim), np.float32), np.empty((n, k.out_dim), np.float32)
            args = (h, k.knots, k.bounds, k.seg_scale, k.dense, k.base_weight, k.edge_mask, *k.flags)
            res = time_calls({"0.1": lambda a=args, o=o1: run_v1(*a, o),
                              "new": lambda a=args, o=o2: lut_layer_kernel(*a, o)},
                             max_calls=max(5, int(CALLS[n] * scale)))
            edges = int(np.count_nonzero(k.edge_mask))
            pairs, evals = n * k.in_dim, n * edges
            for name in ("0.1", "new"):
                ms = res[name]["median"]
                rows.append({"section": "layer", "batch": n, "layer": l, "I": k.in_dim, "O": k.out_dim,
                             "kernel": name, "ms": ms, "ns_per_pair": ms * 1e6 / pairs,
                             "ns_per_edge_eval": ms * 1e6 / max(evals, 1)})
    return rows


def model_contenders(model, threads_ok: bool) -> tuple[dict, dict]:
    """Section 2's callables (name -> fn(x)) and the skipped ones (name -> reason)."""
    import onnxruntime as ort

    from lutkan.evaluators.numba_eval import NumbaEvaluator
    from lutkan.exporter import export

    nb = NumbaEvaluator(model)
    fns = {"numba 0.1": lambda x: v1_forward(nb, x), "numba": nb}
    if threads_ok:
        fns["numba 2 threads"] = NumbaEvaluator(model, threads=2)
    skipped = {}
    try:
        from lutkan.runtime_ext import library_path

        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.register_custom_ops_library(library_path())
        s = ort.InferenceSession(export(model, "custom").SerializeToString(), so, providers=["CPUExecutionProvider"])
        fns["native"] = lambda x, s=s: s.run(None, {"x": x})[0]
    except Exception as e:  # noqa: BLE001 - recorded
        skipped["native"] = f"{type(e).__name__}: {e}"
    for form in ("function", "standard"):
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        s = ort.InferenceSession(export(model, form).SerializeToString(), so, providers=["CPUExecutionProvider"])
        fns[form] = lambda x, s=s: s.run(None, {"x": x})[0]
    try:
        fns["pykan onnx"] = _pykan_onnx()
    except Exception as e:  # noqa: BLE001 - recorded
        skipped["pykan onnx"] = f"{type(e).__name__}: {e}"
    return fns, skipped


def _pykan_onnx():
    """pykan's ids78 exported by torch.onnx (after speed()) in onnxruntime, 1 thread."""
    import warnings

    from lutkan.bench.pykan_onnx import export_pykan_onnx, make_pykan_session
    from lutkan.bench.zoo import bundled_dir
    from lutkan.compiler.pykan import build_pykan_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        live = build_pykan_model(str(bundled_dir() / "ids78" / "0.0"))
        path = Path(tempfile.mkdtemp(prefix="lutkan-bench-")) / "ids78-pykan.onnx"
        export_pykan_onnx(live, path, n_inputs=78)
    s = make_pykan_session(path, threads=1)
    name = s.get_inputs()[0].name
    return lambda x: s.run(None, {name: x})[0]


def model_rows(model, rng: np.random.Generator, scale: float) -> tuple[list[dict], dict]:
    """Section 2: median ms of each whole-model contender at each batch."""
    fns, skipped = model_contenders(model, threads_ok=(os.cpu_count() or 1) > 1)
    rows = []
    for n in BATCHES:
        x = rng.normal(0, 1.5, (n, model.n_inputs)).astype(np.float32)
        res = time_calls({k: (lambda f=f, x=x: f(x)) for k, f in fns.items()}, max_calls=max(5, int(CALLS[n] * scale)))
        rows += [{"section": "model", "batch": n, "contender": k, "ms": r["median"]} for k, r in res.items()]
    return rows, skipped


_RSS_CHILD = """
import sys, numpy as np, onnxruntime as ort
path, n, width = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
so = ort.SessionOptions(); so.intra_op_num_threads = 1
s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
x = np.random.default_rng(0).standard_normal((n, width), dtype=np.float32)
s.run(None, {"x": x[:10]})
open("/proc/self/clear_refs", "w").write("5")
before = status("VmRSS")
s.run(None, {"x": x})
print(before, status("VmHWM"), x.nbytes)
"""


def rss_rows(model, rows_n: int = RSS_ROWS) -> list[dict]:
    """Section 3: peak RSS of one plain-onnxruntime run at ``rows_n`` rows, per form, in a fresh process."""
    from lutkan.exporter import export, save_onnx

    out = []
    with tempfile.TemporaryDirectory() as d:
        for form in ("function", "standard"):
            path = save_onnx(export(model, form), Path(d) / f"{form}.onnx")
            r = subprocess.run([sys.executable, "-c", _RSS_CHILD, str(path), str(rows_n), str(model.n_inputs)],
                               capture_output=True, text=True, timeout=1800)
            if r.returncode != 0:
                out.append({"section": "rss", "form": form, "rows": rows_n, "error": r.stderr.strip()[-500:]})
                continue
            before, peak, nbytes = (int(v) for v in r.stdout.split())
            out.append({"section": "rss", "form": form, "rows": rows_n, "input_bytes": nbytes, "rss_before": before,
                        "peak_rss": peak, "growth_x_input": (peak - before) / nbytes, "peak_x_input": peak / nbytes})
    return out


def report(env: dict, load_end: list, layers: list[dict], models: list[dict], skipped: dict, rss: list[dict]) -> str:
    """The markdown report."""
    lines = ["# Kernel benchmark (issue 13)", "",
             f"Command: `python -m lutkan.bench.kernel`. Model ids78 (78→32→16→1, G=5, k=3, int8 L=64 linear). "
             f"{env['cpu_model']}, {env['cpus_usable']} CPUs; load average {[round(v, 2) for v in env['load_avg_start']]} "
             f"before, {load_end} after; numba {env['versions']['numba']}, onnxruntime "
             f"{env['versions']['onnxruntime']}. One thread unless named. Medians of interleaved calls.", ""]
    head = ["batch", "layer (I→O)", "0.1 ns/pair", "new ns/pair", "0.1 ns/edge eval", "new ns/edge eval", "speed-up"]
    body = []
    for n in BATCHES:
        for l in sorted({r["layer"] for r in layers}):
            a = next(r for r in layers if r["batch"] == n and r["layer"] == l and r["kernel"] == "0.1")
            b = next(r for r in layers if r["batch"] == n and r["layer"] == l and r["kernel"] == "new")
            body.append([str(n), f"{l} ({a['I']}→{a['O']})", f"{a['ns_per_pair']:.2f}", f"{b['ns_per_pair']:.2f}",
                         f"{a['ns_per_edge_eval']:.3f}", f"{b['ns_per_edge_eval']:.3f}", f"{a['ms'] / b['ms']:.2f}×"])
    lines += ["## 1. Layer kernel: 0.1 vs new", "", md_table(head, body), ""]
    names = list(dict.fromkeys(r["contender"] for r in models))
    head = ["batch"] + [f"{c} (ms)" for c in names]
    body = []
    for n in BATCHES:
        got = {r["contender"]: r["ms"] for r in models if r["batch"] == n}
        body.append([str(n)] + [f"{got[c]:.4g}" for c in names])
    lines += ["## 2. Whole model", "", md_table(head, body), ""]
    ratios = []
    for n in BATCHES:
        got = {r["contender"]: r["ms"] for r in models if r["batch"] == n}
        cells = [str(n), f"{got['numba 0.1'] / got['numba']:.2f}×"]
        cells.append(f"{got['numba'] / got['numba 2 threads']:.2f}×" if "numba 2 threads" in got else "–")
        for c in ("numba", "native", "function"):
            cells.append(f"{got['pykan onnx'] / got[c]:.1f}×" if "pykan onnx" in got and c in got else "–")
        cells.append(f"{got['native'] / got['numba']:.2f}×" if "native" in got else "–")
        ratios.append(cells)
    lines += [md_table(["batch", "numba 0.1 / numba", "numba: 1 / 2 threads", "pykan onnx / numba",
                        "pykan onnx / native", "pykan onnx / function", "native / numba"], ratios), ""]
    if skipped:
        lines += [f"Skipped: {'; '.join(f'{k}: {v}' for k, v in skipped.items())}", ""]
    if rss:
        body = [[r["form"], f"{r['rows']:,}", f"{r['input_bytes'] / 2**20:.0f}", f"{r['rss_before'] / 2**20:.0f}",
                 f"{r['peak_rss'] / 2**20:.0f}", f"{r['growth_x_input']:.1f}×", f"{r['peak_x_input']:.1f}×"]
                for r in rss if "error" not in r]
        lines += ["## 3. Peak RSS, plain onnxruntime, one run", "",
                  md_table(["form", "rows", "input MiB", "RSS before MiB", "peak MiB", "growth / input",
                            "peak / input"], body), ""]
    return "\n".join(lines)


def main(argv=None) -> dict:
    from lutkan.bench.env import environment
    from lutkan.bench.plugin import build
    from lutkan.evaluators.numba_eval import NumbaEvaluator

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench-kernel", help="output folder (default %(default)s)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the numbers of timed calls")
    ap.add_argument("--rss", action="store_true", help=f"also measure peak RSS at {RSS_ROWS:,} rows (slow)")
    args = ap.parse_args(argv)
    model = build("ids78")
    env = environment()
    rng = np.random.default_rng(1)
    with pinned_threads(1, pin_torch=True):
        layers = layer_rows(NumbaEvaluator(model), rng, args.scale)
        models, skipped = model_rows(model, rng, args.scale)
    rss = rss_rows(model) if args.rss else []
    load_end = [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else []
    md = report(env, load_end, layers, models, skipped, rss)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"environment": env, "load_avg_end": load_end, "layers": layers, "model": models, "skipped": skipped,
              "rss": rss}
    (out / "kernel.json").write_text(json.dumps(result, indent=1, default=str))
    with open(out / "kernel.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=sorted({k for r in layers + models + rss for k in r}))
        w.writeheader()
        w.writerows(layers + models + rss)
    (out / "kernel.md").write_text(md)
    print(md)
    return result


if __name__ == "__main__":
    main()
