"""Latency: the honest baseline (B-spline vs LUT in the same backend) and the deployment view.

Contenders (all take the same float32 ``(batch, n_inputs)`` arrays; one thread each):

honest, NumPy vs NumPy and Numba vs Numba, on the same source model the LUT was compiled from:
    lut-numpy / lut-numba                  ``NumpyEvaluator`` / ``NumbaEvaluator`` of the compiled model
    lut-numba-layered                      diagnostic: the same Numba kernels called one layer at a time
                                           from Python (what the fused whole-network call saves)
    bspline-naive-{numpy,numba}            per-edge Cox-de Boor (the paper's baseline)
    bspline-strong-{numpy,numba}           shared-basis local de Boor (k+1 nonzero basis values per
                                           (row, input), shared by all outputs): the fair baseline
deployment, what a user runs:
    pykan-torch-speed                      pykan forward after ``speed()``, ``torch.no_grad()``
    pykan-torch-asis                       pykan forward of the model as loaded (flags in ``note``)
    pykan-torch-symbolic-on                the model with pykan's construction defaults
                                           (``symbolic_enabled=True, save_act=True``): a user who
                                           never called ``speed()`` (only when as-is differs)
    pykan-onnx-{dynamo,legacy}-ort         pykan exported by ``torch.onnx.export`` (after ``speed()``)
                                           in onnxruntime
    lut-onnx-{function,standard}-ort       our ONNX forms in plain onnxruntime
    lut-onnx-{function,custom}-plugin      our ONNX forms with the lutkan plugin (Numba kernel in ORT)
ORT sessions are called as ``sess.run(None, {name: x})`` (no wrapper) with ``intra_op_num_threads`` = the
profile's ``threads`` (1 unless ``--threads`` says otherwise).

Timing cells: at each batch size the contenders of one comparison are interleaved with each other
(``timing.measure_interleaved``) in their own cell: ``honest-numba`` (LUT, naive and strong B-spline in
Numba), ``honest-numpy`` (the same in NumPy) and ``deployment`` (every torch / onnxruntime path). Mixing
all of them in one cell would let torch's and onnxruntime's large intermediate tensors evict the LUT's
megabyte tables between calls, a cache penalty the spline kernels (kilobytes of coefficients) do not pay.

A correctness gate runs before any timing: every contender's output on the gate batch must match its
reference (``lut-numpy`` for LUT contenders, the float64 ``SourceModel.forward`` for B-spline and pykan
ones) within ``GATE_RTOL * max(1, max|ref|)``; a contender that fails is not timed (recorded).
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lutkan.bench.rows import row, skipped
from lutkan.bench.timing import measure_interleaved, paired_ratio
from lutkan.bench.zoo import BenchModel
from lutkan.evaluators.numba_eval import NumbaEvaluator
from lutkan.evaluators.numpy_eval import NumpyEvaluator
from lutkan.testing import assert_backends_agree

GATE_RTOL = 1e-3
GATE_ROWS = 64
PAIRS = (("bspline-naive-numba", "lut-numba"), ("bspline-strong-numba", "lut-numba"),
         ("bspline-naive-numpy", "lut-numpy"), ("bspline-strong-numpy", "lut-numpy"))
"""Same-backend comparisons whose per-round ratio is recorded (``paired_ratio`` rows)."""
GROUPS = ("honest-numba", "honest-numpy", "deployment")


@dataclass
class Contender:
    name: str
    backend: str
    group: str  # honest-numpy | honest-numba | deployment
    fn: Callable[[np.ndarray], np.ndarray] | None
    reference: str  # lut-numpy | float64
    reason: str = ""  # why fn is None
    note: str = ""


def _ort_call(sess) -> Callable[[np.ndarray], np.ndarray]:
    name = sess.get_inputs()[0].name

    def f(x):
        return sess.run(None, {name: x})[0]

    return f


def _torch_call(model) -> Callable[[np.ndarray], np.ndarray]:
    import torch

    dtype = model.act_fun[0].coef.dtype

    def f(x):
        with torch.no_grad():
            t = torch.from_numpy(x)
            return model(t if dtype == torch.float32 else t.to(dtype)).numpy()

    return f


def _bspline(bm: BenchModel) -> list[Contender]:
    from lutkan.evaluators.bspline import BSplineModel

    bs = BSplineModel(bm.src, dtype=np.float32)
    out = []
    for backend in ("numpy", "numba"):
        for method in ("naive", "strong"):
            def f(x, b=backend, m=method):
                return bs.forward(x, backend=b, method=m)

            out.append(Contender(f"bspline-{method}-{backend}", backend, f"honest-{backend}", f, "float64"))
    return out


def _pykan_contenders(p, bm: BenchModel, art: Path, extra: list[dict]) -> list[Contender]:
    names = ["pykan-torch-speed", "pykan-torch-asis"] + [f"pykan-onnx-{e}-ort" for e in p.pykan_exporters]
    live, why = bm.pykan()
    if live is None:
        return [Contender(n, "torch", "deployment", None, "float64", reason=why) for n in names]
    from lutkan.bench import pykan_onnx as po

    out = []
    asis = copy.deepcopy(live)
    asis.eval()
    flags = (f"as loaded: symbolic_enabled={getattr(asis, 'symbolic_enabled', '?')}, "
             f"save_act={getattr(asis, 'save_act', '?')}")
    fast = po.prepare_for_export(live)
    out.append(Contender("pykan-torch-speed", "torch", "deployment", _torch_call(fast), "float64",
                         note="after speed(), no_grad"))
    out.append(Contender("pykan-torch-asis", "torch", "deployment", _torch_call(asis), "float64", note=flags))
    if p.pykan_symbolic_on and not (getattr(asis, "symbolic_enabled", True) and getattr(asis, "save_act", True)):
        on = copy.deepcopy(live)
        on.symbolic_enabled, on.save_act = True, True
        on.eval()
        out.append(Contender("pykan-torch-symbolic-on", "torch", "deployment", _torch_call(on), "float64",
                             note="pykan's construction defaults: symbolic_enabled=True, save_act=True"))
    for exporter in p.pykan_exporters:
        name = f"pykan-onnx-{exporter}-ort"
        path = art / f"{bm.name}-pykan-{exporter}.onnx"
        try:
            t0 = time.perf_counter()
            po.export_pykan_onnx(live, path, n_inputs=bm.src.n_inputs, exporter=exporter)
            extra.append(row("speed", "export_s", time.perf_counter() - t0, model=bm.name, contender=name,
                             backend="torch.onnx", unit="s", note=f"torch.onnx.export ({exporter}) + ORT check"))
            sess = po.make_pykan_session(path, threads=p.threads)
            out.append(Contender(name, "onnxruntime", "deployment", _ort_call(sess), "float64",
                                 note=f"torch.onnx.export {exporter}, after speed(); file {path.name}"))
        except Exception as e:  # noqa: BLE001 - recorded
            out.append(Contender(name, "onnxruntime", "deployment", None, "float64",
                                 reason=f"export failed: {type(e).__name__}: {e}"))
    return out


def _onnx_contenders(p, bm: BenchModel, lut, art: Path, extra: list[dict]) -> list[Contender]:
    wanted = [(f, False) for f in p.lut_forms_plain] + [(f, True) for f in p.lut_forms_plugin]
    from lutkan import exporter as exp
    from lutkan import runtime_ext as rt

    out = []
    protos = {}
    for form, plugin in wanted:
        name = f"lut-onnx-{form}-{'plugin' if plugin else 'ort'}"
        backend = "onnxruntime+plugin" if plugin else "onnxruntime"
        try:
            if form not in protos:
                t0 = time.perf_counter()
                proto = exp.export(lut, form=form)
                data = proto.SerializeToString()
                (art / f"{bm.name}-L{lut.contract.L}-{lut.contract.scheme}-{form}.onnx").write_bytes(data)
                protos[form] = data
                extra.append(row("speed", "export_s", time.perf_counter() - t0, model=bm.name,
                                 contender=f"lut-onnx-{form}", backend="lutkan.exporter", unit="s",
                                 L=lut.contract.L, scheme=lut.contract.scheme))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sess = rt.make_session(protos[form], plugin=plugin, intra_op_num_threads=p.threads)
            out.append(Contender(name, backend, "deployment", _ort_call(sess), "lut-numpy"))
        except Exception as e:  # noqa: BLE001 - recorded
            out.append(Contender(name, backend, "deployment", None, "lut-numpy",
                                 reason=f"{type(e).__name__}: {e}"))
    return out


def contenders(p, bm: BenchModel, lut, art: Path) -> tuple[list[Contender], list[dict]]:
    """All contenders for ``bm`` compiled as ``lut`` (skipped ones carry their reason)."""
    extra: list[dict] = []
    nb = NumbaEvaluator(lut)
    cs = [Contender("lut-numpy", "numpy", "honest-numpy", NumpyEvaluator(lut), "lut-numpy"),
          Contender("lut-numba", "numba", "honest-numba", nb, "lut-numpy")]
    cs.append(Contender("lut-numba-layered", "numba", "honest-numba", nb.forward_layers, "lut-numpy",
                        note="diagnostic: the same kernels called one layer at a time from Python"))
    cs += _bspline(bm)
    if p.deployment and p.pykan_torch:
        cs += _pykan_contenders(p, bm, art, extra)
    elif p.deployment:
        cs.append(Contender("pykan-*", "torch", "deployment", None, "float64",
                            reason=f"profile {p.name!r} does not build torch/pykan contenders"))
    if p.deployment:
        cs += _onnx_contenders(p, bm, lut, art, extra)
    return cs, extra


def batch_inputs(bm: BenchModel, batch: int, seed: int) -> np.ndarray:
    """``batch`` rows drawn (with replacement, seeded) from the natural inputs, else N(0, 1)."""
    rng = np.random.default_rng(seed)
    if bm.x is not None:
        return np.ascontiguousarray(bm.x[rng.integers(0, bm.x.shape[0], batch)], dtype=np.float32)
    return rng.standard_normal((batch, bm.src.n_inputs)).astype(np.float32)


def gate(cs: list[Contender], bm: BenchModel, lut_ref: np.ndarray, f64_ref: np.ndarray, x: np.ndarray,
         cols: dict) -> list[dict]:
    """Check every live contender against its reference; failing ones get ``fn = None``."""
    rows = []
    for c in cs:
        if c.fn is None:
            continue
        ref = lut_ref if c.reference == "lut-numpy" else f64_ref
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                st = assert_backends_agree(None, x, runners={c.name: c.fn}, reference=ref, rel=GATE_RTOL,
                                           what=f"speed gate vs {c.reference}", dtype=None)[c.name]
            ok, why = True, ""
        except AssertionError as e:
            st, ok, why = {"max_abs": ""}, False, f"gate failed: {e}"
        except Exception as e:  # noqa: BLE001 - recorded
            st, ok, why = {"max_abs": ""}, False, f"gate raised {type(e).__name__}: {e}"
        r = row("speed_gate", "max_abs_err", st["max_abs"], contender=c.name, backend=c.backend,
                reference=c.reference, batch=len(x), input_set="natural" if bm.x is not None else "gauss1",
                note=why or c.note, **cols)
        if not ok:
            r["status"] = "failed"
            c.reason, c.fn = why, None
        rows.append(r)
    return rows


def speed_study(p, bm: BenchModel, lut, art: Path, tick: Callable[[str], None] = lambda s: None) -> list[dict]:
    """Gate, then time every contender at every batch size of the profile, interleaved per batch."""
    c = lut.contract
    cols = dict(model=bm.name, L=c.L, scheme=c.scheme, interp=c.interp, boundary=c.boundary, oob=c.oob)
    cs, rows = contenders(p, bm, lut, art)
    tick("speed contenders built")
    xg = batch_inputs(bm, GATE_ROWS, 123)
    rows += gate(cs, bm, NumpyEvaluator(lut)(xg).astype(np.float64), bm.src.forward(xg), xg, cols)
    for cn in cs:
        if cn.fn is None:
            rows.append(skipped("speed", cn.reason, metric="latency_ms", contender=cn.name, backend=cn.backend,
                                unit="ms", **cols))
    live = [cn for cn in cs if cn.fn is not None]
    over: dict[str, str] = {}  # contender -> why it was over budget at a smaller batch
    warm: set[str] = set()
    top = max(p.batches)
    for batch in p.batches:
        x = batch_inputs(bm, batch, batch)
        base = dict(batch=batch, unit="ms", input_set="natural" if bm.x is not None else "gauss1", **cols)
        timed = []
        for cn in live:
            if cn.name in over and not essential(cn.name, batch, top):
                rows.append(skipped("speed", f"not timed: {over[cn.name]} (latency grows with the batch)",
                                    metric="latency_ms", contender=cn.name, backend=cn.backend, **base))
            else:
                timed.append(cn)
        res: dict[str, dict] = {}
        for group in GROUPS:  # each comparison is interleaved in its own cell (see the module doc)
            cell = [cn for cn in timed if cn.group == group]
            if not cell:
                continue
            fns = {cn.name: (lambda f=cn.fn, x=x: f(x)) for cn in cell}
            budgets = {cn.name: p.essential_budget_s if essential(cn.name, batch, top) else p.cell_budget_s
                       for cn in cell}
            res.update(measure_interleaved(fns, min_repeats=p.min_repeats, min_time=p.min_time,
                                           max_repeats=p.max_repeats, warmup=p.warmup, budget_s=budgets,
                                           seed=batch, warm=warm))
            warm |= set(fns)
        for cn in timed:
            st = res[cn.name]
            kw = dict(contender=cn.name, backend=cn.backend, **base)
            if "skipped" in st:
                over.setdefault(cn.name, f"over budget at batch {batch} (~{st['estimate_ms']:.4g} ms per call)")
                rows.append(skipped("speed", st["skipped"], metric="latency_ms", **kw))
                continue
            note = (cn.note + "; " if cn.note else "") + f"cell {cn.group}, block {st['block']}, rounds {st['rounds']}"
            if essential(cn.name, batch, top):
                note += "; target contender (budget " + f"{p.essential_budget_s:g} s)"
            rows.append(row("speed", "latency_ms", st["median"], q1=st["q1"], q3=st["q3"], n=st["n"], note=note,
                            **kw))
        for slow, fast in PAIRS:
            if "median" in res.get(slow, {}) and "median" in res.get(fast, {}):
                pr = paired_ratio(res[slow], res[fast])
                if pr:
                    rows.append(row("speed", "paired_ratio", pr["median"], q1=pr["q1"], q3=pr["q3"], n=pr["n"],
                                    contender=f"{slow}/{fast}", note="per-round ratio of block means",
                                    **{**base, "unit": "x"}))
        tick(f"speed batch {batch}")
    return rows


def essential(name: str, batch: int, top: int) -> bool:
    """Contenders a target depends on at this batch size get the profile's larger time budget:
    T1 (batch 1: LUT Numba, naive B-spline Numba), T2 (batch >= 256: LUT Numba, strong B-spline Numba),
    T3 (batch 4096: every ORT path)."""
    if name == "lut-numba":
        return True
    if batch == 1 and name == "bspline-naive-numba":
        return True
    if batch >= 256 and name == "bspline-strong-numba":
        return True
    return batch == top == 4096 and (name.startswith("lut-onnx-") or name.startswith("pykan-onnx-"))


__all__ = ["Contender", "GATE_RTOL", "batch_inputs", "contenders", "essential", "gate", "speed_study"]
