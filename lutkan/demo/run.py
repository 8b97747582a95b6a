"""The demo pipeline, one named step per function.

``run_demo``: check the settings -> load the model (lutkan's ``SourceModel`` and pykan's live model)
-> read the inputs -> pykan's reference outputs, class metrics and latency -> for every (L, scheme):
compile and compare with pykan, export the three ONNX forms, run each in onnxruntime (plain / plugin)
and check it against the NumPy reference, time the sessions -> plots, ``results.json``, ``report.md``
and the console summary. A configuration that fails anywhere becomes a FAIL row; the demo goes on.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lutkan import contract as C
from lutkan.bench.timing import time_calls
from lutkan.demo import report
from lutkan.demo.config import FORMS, REL_TOL, RUNS, TIMED, DemoConfig, DemoData, Row
from lutkan.demo.inputs import load_inputs, resolve_model
from lutkan.demo.plots import draw_plots
from lutkan.errors import LutKanError
from lutkan.reporting import f1, predict

MAX_CALLS = 2000
"""At most this many timed calls per latency figure (the time budget usually ends timing first)."""


@dataclass
class Job:
    """What every configuration shares: settings, source model, inputs, pykan's reference on them
    (outputs and class metrics), the output folder and file stem, and seconds per latency figure."""

    cfg: DemoConfig
    src: object
    data: DemoData
    y_ref: np.ndarray
    ref_cls: dict
    out: Path
    base_name: str
    budget: float


def run_demo(cfg: DemoConfig) -> dict:
    """Run the demo; returns the results dict (also written as ``results.json``)."""
    with warnings.catch_warnings():
        # pykan's forward warns about std() of a batch of 1 (its activation statistics): noise here.
        warnings.filterwarnings("ignore", message=r"std\(\): degrees of freedom", category=UserWarning)
        return _run_demo(cfg)


def _run_demo(cfg: DemoConfig) -> dict:
    t_start = time.perf_counter()
    # numba before the first timing: lutkan.bench.timing.pinned_threads sets NUMBA_NUM_THREADS in the environment
    # when numba is not loaded yet and unsets it after, so the next JIT compile (a cold cache: a fresh clone)
    # found a thread pool of another size and every plugin kernel failed to build
    import numba  # noqa: F401
    try:
        from lutkan.compiler.pykan import build_pykan_model, load_source, pykan_forward
    except ImportError as e:
        raise LutKanError(f"the demo compares with pykan and needs the [pykan] extra ({e}); "
                          f"pip install 'lutkan[pykan]'") from None
    _check_config(cfg)
    source, name = resolve_model(cfg.model)
    say = (lambda *m: None) if cfg.quiet else (lambda *m: print(*m, flush=True))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", message=r"std\(\): degrees of freedom")
        src = load_source(source, checkpoint_id=cfg.checkpoint_id)
        torch_model = build_pykan_model(source, checkpoint_id=cfg.checkpoint_id)
    for msg in dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, UserWarning)):
        say(f"note: {msg}")
    data = load_inputs(source, src, cfg.data, cfg.task)
    say(f"lutkan demo: {name} (width {src.width}), {data.n} input rows from {data.desc}; {data.task}"
        + (" (no labels: outputs compared as numbers; --task classification reads them as logits)"
           if data.task == "regression" and not data.labelled and cfg.task == "auto" else ""))
    out = _make_out(Path(cfg.out))

    # pykan reference: outputs and latency (torch, same thread count as onnxruntime).
    budget = 0.045 if cfg.quick else 0.09  # seconds per latency figure
    y_ref = np.asarray(pykan_forward(torch_model, data.x), dtype=np.float64)
    ref_cls = class_metrics(y_ref, data)
    ref_lat = _time_pykan(torch_model, data.x, budget, cfg.threads)
    job = Job(cfg=cfg, src=src, data=data, y_ref=y_ref, ref_cls=ref_cls, out=out,
              base_name=name.replace("/", "_"), budget=budget)
    rows, primary = _run_configs(job)

    plots = draw_plots(rows, ref_lat, data.n, out, primary)
    wall = time.perf_counter() - t_start
    results = report.build_results(cfg, name=name, source=source, width=src.width, data=data, ref_cls=ref_cls,
                                   ref_lat=ref_lat, rows=rows, primary=primary, plots=plots, wall=wall)
    report.write_files(out, results, rows, ref_cls, ref_lat, data, primary)
    report.print_summary(cfg, results, rows, ref_cls, ref_lat, data, out)
    return results


def _check_config(cfg: DemoConfig) -> None:
    """Reject illegal L, scheme and thread counts before anything is loaded (the contract's messages)."""
    for L in cfg.Ls:
        C.ContractOptions(L=L)
    for s in cfg.schemes:
        C.ContractOptions(scheme=s)
    if cfg.threads < 1:
        raise LutKanError(f"--threads {cfg.threads}: use 1 or more")


def _make_out(out: Path) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LutKanError(f"cannot create the output folder {out}: {e.strerror or e}") from None
    return out


# ----------------------------------------------------------------------------- metrics


def _confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def _regression(y: np.ndarray, target: np.ndarray) -> dict:
    """RMSE, MAE and R² (1 - SSE/SST over all outputs) of ``y`` against ``target``, over finite entries."""
    ok = np.isfinite(y) & np.isfinite(target)
    d, t = (y - target)[ok], target[ok]
    sst = float(np.sum((t - t.mean()) ** 2)) if t.size else 0.0
    return {"rmse": float(np.sqrt(np.mean(d ** 2))) if d.size else float("nan"),
            "mae": float(np.mean(np.abs(d))) if d.size else float("nan"),
            "r2": 1.0 - float(np.sum(d ** 2)) / sst if sst > 0 else float("nan"), "nonfinite": int((~ok).sum())}


def class_metrics(y_out: np.ndarray, data: DemoData) -> dict:
    """Classification: predictions of the outputs ``y_out``; with labels also accuracy, F1 and the confusion
    matrix (``lutkan.reporting.predict`` / ``f1``: binary F1 for one output, macro F1 over the classes present
    otherwise). Regression: the outputs, with targets also RMSE / MAE / R² against them."""
    if data.task == "regression":
        y = np.asarray(y_out, dtype=np.float64)
        return {"y": y} if data.y_true is None else {"y": y, **_regression(y, data.y_true)}
    pred = predict(y_out)
    if data.y_true is None:
        return {"pred": pred}
    cm = _confusion(data.y_true, pred, data.n_classes)
    return {"pred": pred, "accuracy": float((pred == data.y_true).mean()),
            "f1": f1(data.y_true, pred, binary=y_out.shape[1] == 1), "cm": cm}


def _compare(lut: dict, ref: dict, y_true) -> dict:
    """The LUT model's metrics next to pykan's: changed predictions, agreement, cm difference (classification);
    RMSE / R² against pykan's outputs, and against the targets when there are any (regression)."""
    if "y" in lut:
        vs = _regression(lut["y"], ref["y"])
        out = {"rmse_vs_pykan": vs["rmse"], "r2_vs_pykan": vs["r2"]}
        if y_true is not None:
            out.update(rmse=lut["rmse"], mae=lut["mae"], r2=lut["r2"])
        return out
    out = {"changed": int((lut["pred"] != ref["pred"]).sum()),
           "agreement": float((lut["pred"] == ref["pred"]).mean())}
    if y_true is not None:
        out.update(accuracy=lut["accuracy"], f1=lut["f1"], cm=lut["cm"].tolist(),
                   cm_diff=int(np.abs(lut["cm"] - ref["cm"]).sum()))
    return out


# ----------------------------------------------------------------------------- timing


def _median_us(fns: dict[str, Callable[[], object]], budget: float, threads: int) -> dict[str, float]:
    """Median µs per call of each of ``fns``, timed against each other by ``time_calls`` for ``budget``
    seconds per function (threads pinned to ``threads``)."""
    if not fns:
        return {}
    res = time_calls(fns, seconds=budget * len(fns), max_calls=MAX_CALLS, threads=threads)
    return {k: v["median"] * 1e3 for k, v in res.items()}


def _time_pykan(torch_model, x: np.ndarray, budget: float, threads: int) -> dict:
    """pykan's own forward, ``model(x)`` under ``torch.no_grad`` with ``save_act`` off (inference mode,
    as ``pykan_forward`` runs it), inputs already tensors of the model's dtype, at batch 1 and the
    whole batch, torch limited to the same number of threads as onnxruntime."""
    import torch

    dtype = next(iter(torch_model.parameters())).dtype
    t1, tn = torch.from_numpy(np.ascontiguousarray(x[:1])).to(dtype), torch.from_numpy(x).to(dtype)
    save_act = getattr(torch_model, "save_act", False)
    torch_model.save_act = False
    try:
        with torch.no_grad():
            return {**_median_us({"pykan@1": lambda: torch_model(t1)}, budget, threads),
                    **_median_us({"pykan@N": lambda: torch_model(tn)}, budget, threads)}
    finally:
        torch_model.save_act = save_act


def _time_sessions(row: Row, job: Job, sessions: dict) -> None:
    """``row.latency_us``: ``session.run`` of the ``TIMED`` sessions at batch 1 and the whole batch; the
    sessions of one batch size are timed against each other."""
    x = job.data.x
    timed = {k: sessions[k] for k in TIMED if k in sessions}
    lat: dict[str, float] = {}
    for tag, xb in (("1", np.ascontiguousarray(x[:1])), ("N", x)):
        feeds = {key: {sess.get_inputs()[0].name: xb} for key, sess in timed.items()}
        fns = {f"{key}@{tag}": (lambda s=sess, f=feeds[key]: s.run(None, f)) for key, sess in timed.items()}
        lat.update(_median_us(fns, job.budget, job.cfg.threads))
    row.latency_us.update({f"{key}@{tag}": lat[f"{key}@{tag}"] for key in timed for tag in ("1", "N")})


# ----------------------------------------------------------------------------- one configuration


def _run_configs(job: Job) -> tuple[list[Row], Row]:
    """Every (L, scheme) of the settings, with a progress bar; the primary row (L=64 int8 if asked for,
    else the first) is the one whose files are written and plotted."""
    from tqdm.auto import tqdm

    cfg = job.cfg
    configs = [(L, s) for L in cfg.Ls for s in cfg.schemes]
    default = (C.DEFAULT_L, C.DEFAULT_SCHEME)
    primary_cfg = default if default in configs else configs[0]
    rows: list[Row] = []
    bar = tqdm(configs, desc="demo", unit="config", disable=cfg.quiet, leave=False)
    for L, s in bar:
        bar.set_postfix_str(f"L={L} {s}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rows.append(_run_config(job, L, s, cfg.save_all or (L, s) == primary_cfg))
    bar.close()
    return rows, next(r for r in rows if (r.L, r.scheme) == primary_cfg)


def _run_config(job: Job, L: int, scheme: str, write_files: bool) -> Row:
    """One configuration; any failure becomes a FAIL row (the demo goes on with the others)."""
    row = Row(L=L, scheme=scheme)
    try:
        model, y_np = _compile_and_compare(row, job, write_files)
        sessions = _export_and_check(row, job, model, y_np, write_files)
        _time_sessions(row, job, sessions)
    except LutKanError:  # the model, its inputs or the settings: the same for every configuration (exit 3, once)
        raise
    except Exception as e:  # noqa: BLE001 - reported, not raised
        row.failures.append(f"{type(e).__name__}: {e}")
    return row


def _compile_and_compare(row: Row, job: Job, write_files: bool):
    """Compile at the row's (L, scheme), record sizes and table errors, compare the NumPy reference's
    outputs with pykan's; returns the model and those outputs."""
    from lutkan.artifact import save, to_bytes
    from lutkan.compiler import compile_model
    from lutkan.evaluators.numpy_eval import NumpyEvaluator
    from lutkan.metrics import compare_outputs

    t0 = time.perf_counter()
    model = compile_model(job.src, C.ContractOptions(L=row.L, scheme=row.scheme))
    row.compile_s = time.perf_counter() - t0
    row.layer_tab_error = [float(layer.tab_error.max()) if layer.n_edges else 0.0 for layer in model.layers]
    row.table_bytes = int(sum(model.table_bytes()))
    row.sizes["lutkan"] = len(to_bytes(model))
    y_np = NumpyEvaluator(model)(job.data.x)
    st = compare_outputs(y_np, job.y_ref)
    row.max_abs_err, row.max_rel_err = st["max_abs"], st["max_rel"]
    if st["extreme_mismatch"]:  # a contract difference (e.g. out-of-domain symbolic edges), not a backend bug
        row.notes.append(f"{st['extreme_mismatch']} outputs are NaN/inf/huge in only one of pykan and the LUT "
                         f"model (max error is over the others); see docs/contract.md")
    row.metrics = _compare(class_metrics(y_np, job.data), job.ref_cls, job.data.y_true)
    if write_files:
        save(model, job.out / f"{job.base_name}_{row.tag}.lutkan")
        row.files.append(f"{job.base_name}_{row.tag}.lutkan")
    return model, y_np


def _export_and_check(row: Row, job: Job, model, y_np: np.ndarray, write_files: bool) -> dict:
    """Export every form and run the ``RUNS`` backends on them; returns the sessions that ran (key: backend
    name), including those whose outputs disagree (they are timed; the row says FAIL)."""
    from lutkan.exporter import export, save_onnx
    from lutkan.testing.oracle import ONNX_BACKENDS

    sessions, exported = {}, {}
    for form in FORMS:
        try:
            proto = export(model, form=form)
            data = proto.SerializeToString()
            row.sizes[form] = len(data)
            if write_files:
                name = f"{job.base_name}_{row.tag}.{form}.onnx"
                save_onnx(proto, job.out / name)
                row.files.append(name)
        except Exception as e:  # noqa: BLE001 - reported as a FAIL row, the demo goes on
            row.failures.append(f"export {form}: {type(e).__name__}: {e}")
            continue
        exported[form] = data
    for key in RUNS:
        form, engine = ONNX_BACKENDS[key]
        if form in exported:
            sess = _run_and_check(row, job, model, exported[form], engine, key, y_np)
            if sess is not None:
                sessions[key] = sess
    return sessions


def _run_and_check(row: Row, job: Job, model, onnx_model, engine: str, key: str, y_np: np.ndarray):
    """Backend ``key`` of the oracle (``lutkan.testing``) on ``onnx_model``, checked against the NumPy
    reference into ``row.checks[key]``; returns its session, None when it could not be made or run."""
    from lutkan.runtime_ext import make_session
    from lutkan.testing import assert_backends_agree
    from lutkan.testing.oracle import onnx_runner

    try:
        runner = onnx_runner(onnx_model, engine)
        if job.cfg.threads != 1:
            runner.session = make_session(onnx_model, plugin=engine == "plugin", intra_op_num_threads=job.cfg.threads)
        st = assert_backends_agree(model, job.data.x, runners={key: runner}, reference=y_np, rel=REL_TOL,
                                   what="demo")[key]
        row.checks[key] = {"ok": True, "max_abs_vs_numpy": st["max_abs"]}
    except AssertionError as e:
        msg = f"{e}{_hidden_hint(model, job.data.x)}"
        row.checks[key] = {"ok": False, "error": msg}
        row.failures.append(f"{key}: {msg}")
    except Exception as e:  # noqa: BLE001 - reported as a FAIL row, the demo goes on
        row.checks[key] = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        row.failures.append(f"{key}: {type(e).__name__}: {e}")
        return None
    return runner.session


def _hidden_hint(model, x: np.ndarray) -> str:
    """Why a backend may differ by more than the output-relative tolerance: float32 rounding of
    huge hidden activations (e.g. multiplication nodes fed out-of-domain inputs) carries through."""
    from lutkan.evaluators.numpy_eval import NumpyEvaluator

    ev = NumpyEvaluator(model)
    with np.errstate(all="ignore"):
        mags = [float(np.nanmax(np.abs(ev(x, upto=l)))) for l in range(1, len(model.layers))]
    if not mags or max(mags) < 1e4:
        return ""
    l = int(np.argmax(mags))
    return (f"; note: hidden layer {l + 1} reaches |h| = {mags[l]:.3g}, where one float32 rounding step is "
            f"{float(np.spacing(np.float32(mags[l]))):.3g}")


__all__ = ["Job", "class_metrics", "run_demo"]
