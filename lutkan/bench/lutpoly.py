"""LUT vs poly kernel speed, side by side: the same model compiled as a linear table (``interp=linear``,
``L=kernel_L``, ``scheme=kernel_scheme``: int8 L=64 in every profile) and as exact polynomial pieces
(``interp=poly``, ``kernel_poly_scheme``: float32), each run by the Numba evaluator and by its ``function``
ONNX form in plain onnxruntime (no plugin).

Method: the study's harness (``timing.measure_interleaved`` under the run's ``pinned_threads``). Per model
and batch size there are two cells, ``numba`` (LUT and poly Numba evaluators) and ``ort`` (the two ONNX
sessions); the two contenders of a cell are interleaved round by round, so the per-round ratio
poly / LUT (``paired_ratio`` rows) sees the same machine load on both sides. Before timing, each contender's
output on ``GATE_ROWS`` rows is checked against the NumPy evaluator of its own compiled model through the
oracle (``assert_backends_agree``: ``GATE_RTOL`` plus the contract's rounding allowance, float32 out); a failing contender is not timed (recorded). The 1/5/15
minute load average is recorded at the start and end of the study (rows ``load_avg``), next to the CPU model
of the environment record.

Rows: study ``lutpoly``; ``latency_ms`` (median, IQR, n) per contender and batch, ``paired_ratio`` with
contender ``poly-<backend>/lut-<backend>`` (> 1: poly is slower), ``gate_max_abs_err``, ``load_avg``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

from lutkan.bench.rows import row, skipped
from lutkan.bench.timing import measure_interleaved, paired_ratio
from lutkan.bench.zoo import BenchModel

STUDY = "lutpoly"
GATE_ROWS = 64
GATE_RTOL = 1e-5
KINDS = ("lut", "poly")
BACKENDS = {"numba": "numba", "ort": "onnxruntime"}


def _load_rows(when: str) -> list[dict]:
    if not hasattr(os, "getloadavg"):
        return [skipped(STUDY, "os.getloadavg is not available on this platform", metric="load_avg",
                        contender=f"load-{when}")]
    return [row(STUDY, "load_avg", v, contender=f"load-{when}", note=f"{m}-minute load average at the {when} "
                                                                       "of the LUT vs poly study")
            for m, v in zip((1, 5, 15), os.getloadavg(), strict=True)]


def _contenders(p, bm: BenchModel, art: Path) -> tuple[dict, list[dict]]:
    """name -> (callable, compiled model, backend); plus rows for what could not be built."""
    from lutkan import runtime_ext as rt
    from lutkan.compiler import compile_model
    from lutkan.contract import ContractOptions
    from lutkan.evaluators.numba_eval import NumbaEvaluator
    from lutkan.exporter import export

    models = {"lut": compile_model(bm.src, ContractOptions(interp="linear", L=p.kernel_L, scheme=p.kernel_scheme)),
              "poly": compile_model(bm.src, ContractOptions(interp="poly", scheme=p.kernel_poly_scheme))}
    out, rows = {}, []
    for kind, m in models.items():
        c = m.contract
        out[f"{kind}-numba"] = (NumbaEvaluator(m), m, "numba")
        try:
            data = export(m, form="function").SerializeToString()
            (art / f"{bm.name}-{c.interp}-L{c.L}-{c.scheme}-function.onnx").write_bytes(data)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sess = rt.make_session(data, plugin=False, intra_op_num_threads=p.threads)
            name = sess.get_inputs()[0].name
            out[f"{kind}-ort"] = (lambda x, s=sess, n=name: s.run(None, {n: x})[0], m, "ort")
        except Exception as e:  # noqa: BLE001 - recorded
            rows.append(skipped(STUDY, f"function form in plain onnxruntime failed: {type(e).__name__}: {e}",
                                status="failed", metric="latency_ms", model=bm.name, contender=f"{kind}-ort",
                                **_cols(m)))
    return out, rows


def _cols(m) -> dict:
    c = m.contract
    return dict(L=c.L, scheme=c.scheme, interp=c.interp, boundary=c.boundary, oob=c.oob)


def _gate(cs: dict, bm: BenchModel) -> list[dict]:
    """Check every contender against the NumPy evaluator of its own model; drop the ones that fail."""
    from lutkan.bench.speed import batch_inputs
    from lutkan.evaluators.numpy_eval import NumpyEvaluator
    from lutkan.testing import assert_backends_agree

    x = batch_inputs(bm, GATE_ROWS, 123)
    rows = []
    for name in list(cs):
        fn, m, backend = cs[name]
        try:
            st = assert_backends_agree(m, x, runners={name: fn}, reference=NumpyEvaluator(m)(x), rel=GATE_RTOL,
                                       what="LUT vs poly gate vs lut-numpy")[name]
            rows.append(row(STUDY, "gate_max_abs_err", st["max_abs"], model=bm.name, contender=name,
                            backend=BACKENDS[backend], reference="lut-numpy", batch=GATE_ROWS, **_cols(m)))
        except Exception as e:  # noqa: BLE001 - a failing gate is recorded and the contender is not timed
            rows.append(skipped(STUDY, f"gate failed: {type(e).__name__}: {e}", status="failed",
                                metric="gate_max_abs_err", model=bm.name, contender=name, backend=BACKENDS[backend],
                                reference="lut-numpy", batch=GATE_ROWS, **_cols(m)))
            del cs[name]
    return rows


def _time_model(p, bm: BenchModel, cs: dict, tick: Callable[[str], None]) -> list[dict]:
    from lutkan.bench.speed import batch_inputs

    rows = []
    for batch in p.kernel_batches:
        x = batch_inputs(bm, batch, batch)
        for cell in BACKENDS:
            fns = {k: (lambda f=v[0], x=x: f(x)) for k, v in cs.items() if v[2] == cell}
            if not fns:
                continue
            res = measure_interleaved(fns, min_repeats=p.min_repeats, min_time=p.min_time, max_repeats=p.max_repeats,
                                      warmup=p.warmup, budget_s=p.essential_budget_s, seed=batch)
            for name, st in res.items():
                kw = dict(model=bm.name, contender=name, backend=BACKENDS[cell], batch=batch, unit="ms",
                          input_set="natural" if bm.x is not None else "gauss1", **_cols(cs[name][1]))
                if "skipped" in st:
                    rows.append(skipped(STUDY, st["skipped"], metric="latency_ms", **kw))
                else:
                    rows.append(row(STUDY, "latency_ms", st["median"], q1=st["q1"], q3=st["q3"], n=st["n"],
                                    note=f"cell {cell}, block {st['block']}, rounds {st['rounds']}", **kw))
            a, b = res.get(f"poly-{cell}", {}), res.get(f"lut-{cell}", {})
            pr = paired_ratio(a, b) if "median" in a and "median" in b else None
            if pr:
                rows.append(row(STUDY, "paired_ratio", pr["median"], q1=pr["q1"], q3=pr["q3"], n=pr["n"],
                                model=bm.name, contender=f"poly-{cell}/lut-{cell}", backend=BACKENDS[cell],
                                batch=batch, unit="x", note="per-round ratio of block means (> 1: poly slower)"))
            tick(f"lut vs poly {bm.name} batch {batch} {cell}")
    return rows


def study(p, models: list[BenchModel], art: Path, tick: Callable[[str], None] = lambda s: None) -> list[dict]:
    """Gate and time LUT vs poly for every model of ``p.kernel_models`` (absent ones are recorded)."""
    rows = _load_rows("start")
    by_name = {bm.name: bm for bm in models}
    for name in p.kernel_models:
        bm = by_name.get(name)
        if bm is None:
            rows.append(skipped(STUDY, f"checkpoint {name!r} not available", metric="latency_ms", model=name))
            continue
        try:
            cs, extra = _contenders(p, bm, art)
            rows += extra + _gate(cs, bm)
            rows += _time_model(p, bm, cs, tick)
        except Exception as e:  # noqa: BLE001 - a model that cannot be compiled is a result
            rows.append(skipped(STUDY, f"{type(e).__name__}: {e}", status="failed", metric="latency_ms", model=name))
    return rows + _load_rows("end")


def summarize(rows: list[dict]) -> dict:
    """Per (model, batch): LUT and poly medians per backend, their ratio poly / LUT and the per-round
    ratio's quartiles; the load averages; the gates."""
    rs = [r for r in rows if r["study"] == STUDY]
    lat = {(r["model"], r["batch"], r["contender"]): r for r in rs if r["metric"] == "latency_ms" and r["status"] == "ok"}
    pr = {(r["model"], r["batch"], r["contender"]): r for r in rs if r["metric"] == "paired_ratio"}
    table = []
    for model, batch in sorted({(m, b) for m, b, _ in lat}, key=lambda t: (t[0], t[1])):
        d = {"model": model, "batch": batch}
        for cell in BACKENDS:
            lut, poly = lat.get((model, batch, f"lut-{cell}")), lat.get((model, batch, f"poly-{cell}"))
            for kind, r in (("lut", lut), ("poly", poly)):
                d[f"{kind}_{cell}_ms"] = r["value"] if r else None
                d[f"{kind}_{cell}_n"] = r["n"] if r else None
                if r:
                    d[f"{kind}_contract"] = f"{r['interp']} L={r['L']} {r['scheme']}"
            d[f"poly_over_lut_{cell}"] = poly["value"] / lut["value"] if lut and poly and lut["value"] > 0 else None
            p = pr.get((model, batch, f"poly-{cell}/lut-{cell}"))
            d[f"paired_{cell}"] = {"median": p["value"], "q1": p["q1"], "q3": p["q3"], "n": p["n"]} if p else None
        table.append(d)
    load = {r["contender"].removeprefix("load-"): [] for r in rs if r["metric"] == "load_avg"}
    for r in rs:
        if r["metric"] == "load_avg" and r["status"] == "ok":
            load[r["contender"].removeprefix("load-")].append(r["value"])
    gates = [{"model": r["model"], "contender": r["contender"], "max_abs_err": r["value"], "status": r["status"]}
             for r in rs if r["metric"] == "gate_max_abs_err"]
    return {"table": table, "load_avg": load, "gates": gates}


__all__ = ["GATE_ROWS", "GATE_RTOL", "STUDY", "study", "summarize"]
