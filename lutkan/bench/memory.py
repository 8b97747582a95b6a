"""Memory: stored LUT bytes vs the float spline parameters, file sizes per form, and session peak RSS.

* ``lut_table_bytes``   ``LUTModel.table_bytes()`` per layer (tables + scales/offsets + knots): what the
                        artifact stores for the tabulated functions.
* ``lut_runtime_dense_bytes``  the float32 dense ``(I*K*L, O)`` table per layer that the NumPy/Numba
                        evaluators (and the plugin kernel) hold in memory after dequantizing
                        (inactive edges are zero rows): what inference actually touches.
* ``float_spline_bytes`` pykan's spline parameters as float32: coef (I*O*(G+k)) + grid (I*(G+2k+1)) +
                        scale_base + scale_sp + mask (3*I*O).
* ``float_all_bytes``   every pykan parameter and buffer as float32, as the paper counted ``model_bytes``:
                        the above + symbolic mask and affine (5*I*O) + subnode/node scale and bias.
* ``file_bytes``        ``.lutkan`` and ``.onnx`` (function/standard/custom, pykan dynamo/legacy) on disk.
* ``rss_*``             peak resident set size of a fresh process that loads one model, runs it at the
                        profile's batch size (default 4096) three times; see ``probe`` (run as
                        ``python -m lutkan.bench.memory``). On Linux the high-water mark is reset
                        (``/proc/self/clear_refs``) after the session is built, so ``rss_peak_run_mib``
                        is the peak while running; ``rss_after_import_mib`` is the interpreter + libraries.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from lutkan.bench.rows import row, skipped


def float_param_counts(src) -> list[dict]:
    """Per layer: float counts of the spline parameters and of all pykan parameters."""
    out = []
    for layer in src.layers:
        I, O = layer.in_dim, layer.out_dim
        spline = layer.coef.size + layer.grid.size + 3 * I * O
        extra = 5 * I * O + 2 * O + 2 * layer.n_nodes
        out.append({"spline": int(spline), "all": int(spline + extra)})
    return out


def static_rows(bm, compile_fn, grid: list[tuple[int, str]]) -> list[dict]:
    """LUT stored/runtime bytes per layer and total for each (L, scheme), and the float baselines."""
    rows = []
    counts = float_param_counts(bm.src)
    for l, c in enumerate(counts):
        for metric, key in (("float_spline_bytes", "spline"), ("float_all_bytes", "all")):
            rows.append(row("memory", metric, 4 * c[key], model=bm.name, contender=f"layer{l}", backend="file",
                            unit="bytes"))
    for metric, key in (("float_spline_bytes", "spline"), ("float_all_bytes", "all")):
        rows.append(row("memory", metric, 4 * sum(c[key] for c in counts), model=bm.name, contender="total",
                        backend="file", unit="bytes"))
    for L, scheme in grid:
        lut = compile_fn(L, scheme)
        cols = dict(model=bm.name, L=L, scheme=scheme, unit="bytes")
        tb = lut.table_bytes()
        dense = [4 * layer.in_dim * layer.n_segments * L * layer.out_dim for layer in lut.layers]
        for l, (b, d) in enumerate(zip(tb, dense, strict=True)):
            rows.append(row("memory", "lut_table_bytes", b, contender=f"layer{l}", **cols))
            rows.append(row("memory", "lut_runtime_dense_bytes", d, contender=f"layer{l}", **cols))
        rows.append(row("memory", "lut_table_bytes", sum(tb), contender="total", **cols))
        rows.append(row("memory", "lut_runtime_dense_bytes", sum(dense), contender="total", **cols))
    return rows


def file_rows(bm, files: dict[str, Path], L: int, scheme: str) -> list[dict]:
    rows = []
    for name, path in files.items():
        if path.is_file():
            rows.append(row("memory", "file_bytes", path.stat().st_size, model=bm.name, contender=name,
                            backend="file", unit="bytes", L=L if name.startswith("lut") else "",
                            scheme=scheme if name.startswith("lut") else "", note=path.name))
        else:
            rows.append(skipped("memory", f"{path.name} was not produced", metric="file_bytes", model=bm.name,
                                contender=name))
    return rows


def rss_rows(bm, probes: dict[str, tuple[str, Path]], batch: int, n_inputs: int, L: int, scheme: str,
             timeout: float = 300.0) -> list[dict]:
    """Run ``probe`` in a subprocess per (name -> (kind, model path)); one row per RSS figure.

    The probes run concurrently: each process's RSS is its own, so they do not disturb each other's
    figures (no timing is taken here)."""
    rows = []
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1")
    procs = {}
    for name, (kind, path) in probes.items():
        cols = dict(model=bm.name, contender=name, backend="process", batch=batch, unit="MiB",
                    L=L if name.startswith("lut") else "", scheme=scheme if name.startswith("lut") else "")
        if not path.is_file():
            rows.append(skipped("memory", f"{path.name} was not produced", metric="rss_peak_run_mib", **cols))
            continue
        cmd = [sys.executable, "-m", "lutkan.bench.memory", "--kind", kind, "--model", str(path),
               "--batch", str(batch), "--n-inputs", str(n_inputs)]
        try:
            procs[name] = (subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env),
                           cols)
        except OSError as e:
            rows.append(skipped("memory", f"probe failed to start: {e}", status="failed", metric="rss_peak_run_mib",
                                **cols))
    for proc, cols in procs.values():
        try:
            out, err = proc.communicate(timeout=timeout)
            rec = json.loads(out.strip().splitlines()[-1]) if proc.returncode == 0 else None
            why = "" if rec else f"probe exited {proc.returncode}: {err.strip()[-300:]}"
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            rec, why = None, f"probe timed out after {timeout:g} s"
        except (json.JSONDecodeError, IndexError) as e:
            rec, why = None, f"probe output unreadable: {type(e).__name__}: {e}"
        if rec is None:
            rows.append(skipped("memory", why, status="failed", metric="rss_peak_run_mib", **cols))
            continue
        for k in ("rss_after_import_mib", "rss_after_session_mib", "rss_peak_run_mib", "rss_peak_total_mib"):
            rows.append(row("memory", k, rec[k], note=rec.get("note", ""), **cols))
    return rows


# ------------------------------------------------------------------ the subprocess side


def _status_kib(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return None


def _rss_mib() -> float:
    v = _status_kib("VmRSS")
    if v is None:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return v / 1024


def _hwm_mib() -> float:
    v = _status_kib("VmHWM")
    if v is None:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return v / 1024


def _reset_hwm() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def probe(kind: str, model: str, batch: int, n_inputs: int) -> dict:
    """Load ``model`` (kind: ort | ort-plugin | numba), run it 3x at ``batch``; report RSS in MiB."""
    if kind in ("ort", "ort-plugin"):
        import onnxruntime as ort

        if kind == "ort-plugin":
            from lutkan.runtime_ext import make_session
        rss_import = _rss_mib()
        if kind == "ort":
            so = ort.SessionOptions()
            so.intra_op_num_threads = 1
            so.inter_op_num_threads = 1
            sess = ort.InferenceSession(model, sess_options=so, providers=["CPUExecutionProvider"])
        else:
            sess = make_session(model, plugin=True, intra_op_num_threads=1)
        name = sess.get_inputs()[0].name

        def call(x):
            return sess.run(None, {name: x})[0]
    elif kind == "numba":
        from lutkan.artifact import load
        from lutkan.evaluators.numba_eval import NumbaEvaluator

        rss_import = _rss_mib()
        call = NumbaEvaluator(load(model))
    else:
        raise SystemExit(f"unknown probe kind {kind!r}")
    x = np.random.default_rng(0).standard_normal((batch, n_inputs)).astype(np.float32)
    call(x[:1])  # first run: lazy allocations, JIT cache load
    rss_session = _rss_mib()
    peak_before = _hwm_mib()
    reset = _reset_hwm()
    for _ in range(3):
        call(x)
    peak = _hwm_mib()
    return {"rss_after_import_mib": rss_import, "rss_after_session_mib": rss_session,
            "rss_peak_run_mib": peak, "rss_peak_total_mib": max(peak, peak_before),
            "note": "rss_peak_run: high-water mark reset after session creation" if reset
            else "rss_peak_run: whole-process high-water mark (reset not available)"}


def main(argv: list[str] | None = None) -> int:
    a = argparse.ArgumentParser(description="peak-RSS probe of one model (used by lutkan bench)")
    a.add_argument("--kind", required=True, choices=("ort", "ort-plugin", "numba"))
    a.add_argument("--model", required=True)
    a.add_argument("--batch", type=int, default=4096)
    a.add_argument("--n-inputs", type=int, required=True)
    ns = a.parse_args(argv)
    print(json.dumps(probe(ns.kind, ns.model, ns.batch, ns.n_inputs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["file_rows", "float_param_counts", "probe", "rss_rows", "static_rows"]
