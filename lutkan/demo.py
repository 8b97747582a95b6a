"""``lutkan demo``: the whole product on one model, in one command.

compile (every L x scheme) -> export the three ONNX forms -> run them in onnxruntime (plain: function
and standard forms; with the lutkan plugin: function and custom forms) -> check every ONNX output
against the NumPy reference evaluator -> compare with pykan's own forward (accuracy / F1 / changed
predictions, max output error) -> latency (onnxruntime vs pykan/torch, batch 1 and the full test
batch) and file sizes -> ``report.md`` with plots, the ``.lutkan`` and ``.onnx`` files, ``results.json``.

Default model: the bundled ``models/breast_cancer`` classifier ([30, 8, 1], 114 labelled test rows).
``--model PATH`` runs on your own pykan checkpoint (prefix ``DIR/ID`` or a folder); its inputs are
``--data X.npz`` (``X_test`` and optional ``y_test``), else a ``test_data.npz`` beside the checkpoint,
else the checkpoint's ``cache_data``. Without labels the report shows agreement with pykan (max error,
sign/argmax agreement) instead of accuracy.

Exit code: 0 when every ONNX output equals the NumPy reference (float32 rounding), 1 when some
configuration FAILed (it is reported as a FAIL row, the demo carries on), 3 on a lutkan error.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lutkan import contract as C
from lutkan.errors import InputError, LutKanError

__all__ = ["DemoConfig", "add_cli", "default_model_path", "run_demo"]

DEFAULT_LS = (16, 32, 64, 128)
QUICK_LS = (16, 64)
DEFAULT_SCHEMES = ("int8", "uint8", "float16")
FORMS = ("function", "standard", "custom")
DEFAULT_MODEL_NAME = "breast_cancer"
#: ONNX vs NumPy reference: |onnx - numpy| <= REL_TOL * max(1, max|numpy|) (float32 rounding).
REL_TOL = 1e-5


def default_model_path() -> Path:
    """The bundled default checkpoint prefix (``models/breast_cancer/0.0`` in the source tree)."""
    return Path(__file__).resolve().parents[1] / "models" / DEFAULT_MODEL_NAME / "0.0"


@dataclass
class DemoConfig:
    model: str | None = None
    out: str = "demo-out"
    Ls: tuple[int, ...] = DEFAULT_LS
    schemes: tuple[str, ...] = DEFAULT_SCHEMES
    data: str | None = None
    checkpoint_id: str | None = None
    quiet: bool = False
    quick: bool = False
    threads: int = 1
    save_all: bool = False


@dataclass
class Row:
    """One (L, scheme) configuration's results."""

    L: int
    scheme: str
    compile_s: float = 0.0
    metrics: dict = field(default_factory=dict)
    max_abs_err: float = float("nan")
    max_rel_err: float = float("nan")
    layer_tab_error: list = field(default_factory=list)
    table_bytes: int = 0
    sizes: dict = field(default_factory=dict)
    latency_us: dict = field(default_factory=dict)
    checks: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)
    files: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def tag(self) -> str:
        return f"L{self.L}_{self.scheme}"


# ----------------------------------------------------------------------------- inputs


def _resolve_model(path: str | None) -> tuple[str, str, bool]:
    """(source path for load_source, display name, is_default)."""
    if path is None:
        p = default_model_path()
        if not p.with_name(p.name + "_state").is_file():
            raise LutKanError(f"the bundled default model is not at {p.parent} (lutkan installed without the "
                              f"source tree?); pass --model PATH to a pykan checkpoint")
        return str(p), DEFAULT_MODEL_NAME, True
    p = Path(path)
    if p.is_dir():
        name = p.resolve().name
    else:
        name = f"{p.parent.resolve().name}/{p.name}"
    return str(path), name, False


def _find_test_data(source: str, data: str | None) -> Path | None:
    if data is not None:
        return Path(data)
    p = Path(source)
    folder = p if p.is_dir() else p.parent
    cand = folder / "test_data.npz"
    return cand if cand.is_file() else None


def _load_data(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(X, y or None) from an .npz with X_test [y_test], or a plain .npy of inputs."""
    try:
        f = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read --data {str(path)!r}: {e}") from None
    if isinstance(f, np.ndarray):  # a plain .npy: inputs only
        return f, None
    with f:
        keys = list(f.keys())
        xk = next((k for k in ("X_test", "X", "x") if k in keys), None)
        if xk is None:
            raise InputError(f"{path}: no X_test array (found {keys}); pass an .npz with X_test and "
                             f"optionally y_test")
        yk = next((k for k in ("y_test", "y") if k in keys), None)
        return np.asarray(f[xk]), (None if yk is None else np.asarray(f[yk]))


# ----------------------------------------------------------------------------- metrics


def _predict(y: np.ndarray) -> np.ndarray:
    """Class predictions: sign of the single logit (logit > 0 -> 1), else argmax."""
    y = np.asarray(y)
    if y.shape[1] == 1:
        return (y[:, 0] > 0).astype(np.int64)
    return np.argmax(y, axis=1).astype(np.int64)


def _confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def _f1(cm: np.ndarray) -> float:
    """Binary: F1 of class 1. Multiclass: macro F1."""
    tp = np.diag(cm).astype(np.float64)
    prec_den = cm.sum(axis=0)
    rec_den = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(prec_den > 0, tp / prec_den, 0.0)
        r = np.where(rec_den > 0, tp / rec_den, 0.0)
        f = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
    return float(f[1]) if cm.shape[0] == 2 else float(f.mean())


def _class_metrics(y_out: np.ndarray, y_true: np.ndarray | None, n_classes: int) -> dict:
    pred = _predict(y_out)
    if y_true is None:
        return {"pred": pred}
    cm = _confusion(y_true, pred, n_classes)
    return {"pred": pred, "accuracy": float((pred == y_true).mean()), "f1": _f1(cm), "cm": cm}


def _compare(lut: dict, ref: dict, y_true) -> dict:
    out = {"changed": int((lut["pred"] != ref["pred"]).sum()),
           "agreement": float((lut["pred"] == ref["pred"]).mean())}
    if y_true is not None:
        out.update(accuracy=lut["accuracy"], f1=lut["f1"], cm=lut["cm"].tolist(),
                   cm_diff=int(np.abs(lut["cm"] - ref["cm"]).sum()))
    return out


# ----------------------------------------------------------------------------- timing


def _median_us(fn, budget_s: float, *, rounds: int = 3, min_reps: int = 5, max_reps: int = 2000,
               warmup: int = 3) -> float:
    """Median latency of ``fn()`` in µs: the lowest of ``rounds`` per-round medians (each round runs for
    ``budget_s / rounds``), so a burst of load from other processes does not decide the number."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(rounds):
        times = []
        t_end = time.perf_counter() + budget_s / rounds
        while len(times) < max_reps and (len(times) < min_reps or time.perf_counter() < t_end):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        best = min(best, float(np.median(times)))
    return best * 1e6


def _time_pykan(torch_model, x1: np.ndarray, x: np.ndarray, budget: float, threads: int) -> dict:
    """pykan's own forward, ``model(x)`` under ``torch.no_grad`` with ``save_act`` off (inference mode,
    as ``pykan_forward`` runs it), inputs already tensors of the model's dtype, and torch limited to
    the same number of threads as onnxruntime."""
    import torch

    dtype = next(iter(torch_model.parameters())).dtype
    t1, tn = torch.from_numpy(x1).to(dtype), torch.from_numpy(x).to(dtype)
    save_act = getattr(torch_model, "save_act", False)
    torch_model.save_act = False
    try:
        with _TorchThreads(threads), torch.no_grad():
            return {"pykan@1": _median_us(lambda: torch_model(t1), budget),
                    "pykan@N": _median_us(lambda: torch_model(tn), budget)}
    finally:
        torch_model.save_act = save_act


class _TorchThreads:
    def __init__(self, n: int):
        self.n = n

    def __enter__(self):
        import torch

        self.prev = torch.get_num_threads()
        torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self.prev)


# ----------------------------------------------------------------------------- one configuration


def _run_config(L: int, scheme: str, *args) -> Row:
    """One configuration; any failure becomes a FAIL row (the demo goes on with the others)."""
    row = Row(L=L, scheme=scheme)
    try:
        _fill_row(row, *args)
    except Exception as e:  # noqa: BLE001 - reported, not raised
        row.failures.append(f"{type(e).__name__}: {e}")
    return row


def _fill_row(row: Row, src, x: np.ndarray, y_ref: np.ndarray, ref_cls: dict, y_true, n_classes: int,
              cfg: DemoConfig, out: Path, base_name: str, write_files: bool, budget: float) -> None:
    from lutkan.artifact import save, to_bytes
    from lutkan.compiler import compile_model
    from lutkan.evaluators.numpy_eval import NumpyEvaluator
    from lutkan.exporter import export, save_onnx
    from lutkan.runtime_ext import make_session, run
    from lutkan.metrics import assert_outputs_close, compare_outputs

    L, scheme = row.L, row.scheme
    t0 = time.perf_counter()
    model = compile_model(src, C.ContractOptions(L=L, scheme=scheme))
    row.compile_s = time.perf_counter() - t0
    row.layer_tab_error = [float(layer.tab_error.max()) if layer.n_edges else 0.0 for layer in model.layers]
    row.table_bytes = int(sum(model.table_bytes()))
    row.sizes["lutkan"] = len(to_bytes(model))
    y_np = NumpyEvaluator(model)(x)
    st = compare_outputs(y_np, y_ref)
    row.max_abs_err, row.max_rel_err = st["max_abs"], st["max_rel"]
    if st["extreme_mismatch"]:  # a contract difference (e.g. out-of-domain symbolic edges), not a backend bug
        row.notes.append(f"{st['extreme_mismatch']} outputs are NaN/inf/huge in only one of pykan and the LUT "
                         f"model (max error is over the others); see docs/contract.md")
    row.metrics = _compare(_class_metrics(y_np, y_true, n_classes), ref_cls, y_true)
    stem = f"{base_name}_{row.tag}"
    if write_files:
        save(model, out / f"{stem}.lutkan")
        row.files.append(f"{stem}.lutkan")

    sessions = {}
    for form in FORMS:
        try:
            proto = export(model, form=form)
            data = proto.SerializeToString()
            row.sizes[form] = len(data)
            if write_files:
                save_onnx(proto, out / f"{stem}.{form}.onnx")
                row.files.append(f"{stem}.{form}.onnx")
        except Exception as e:  # noqa: BLE001 - reported as a FAIL row, the demo goes on
            row.failures.append(f"export {form}: {type(e).__name__}: {e}")
            continue
        runs = {"function": ("plain", "plugin"), "standard": ("plain",), "custom": ("plugin",)}[form]
        for mode in runs:
            key = f"{form}+{mode}"
            try:
                sess = make_session(proto if mode == "plugin" else data, plugin=(mode == "plugin"),
                                    intra_op_num_threads=cfg.threads)
                y_ort = run(sess, x)
                sessions[key] = sess  # timed even if it disagrees (the row says FAIL)
                st_o = assert_outputs_close(y_ort, y_np, rel=REL_TOL, what=f"{key} vs numpy reference")
                row.checks[key] = {"ok": True, "max_abs_vs_numpy": st_o["max_abs"]}
            except AssertionError as e:
                msg = f"{e}{_hidden_hint(model, x)}"
                row.checks[key] = {"ok": False, "error": msg}
                row.failures.append(f"{key}: {msg}")
            except Exception as e:  # noqa: BLE001
                row.checks[key] = {"ok": False, "error": f"{type(e).__name__}: {e}"}
                row.failures.append(f"{key}: {type(e).__name__}: {e}")
    x1 = np.ascontiguousarray(x[:1])
    for key in ("function+plain", "function+plugin", "standard+plain"):
        sess = sessions.get(key)
        if sess is None:
            continue
        name = sess.get_inputs()[0].name
        feed1, feedn = {name: x1}, {name: x}
        row.latency_us[f"{key}@1"] = _median_us(lambda s=sess, f=feed1: s.run(None, f), budget)
        row.latency_us[f"{key}@N"] = _median_us(lambda s=sess, f=feedn: s.run(None, f), budget)


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


# ----------------------------------------------------------------------------- formatting


def _kb(n) -> str:
    return "–" if n is None else f"{n / 1024:.1f}"


def _us(v) -> str:
    if v is None or not np.isfinite(v):
        return "–"
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}"


def _pct(v) -> str:
    return f"{100 * v:.2f}%"


def _acc_header(labelled: bool) -> list[str]:
    if labelled:
        return ["L", "scheme", "accuracy", "F1", "changed preds", "cm Δ", "max abs err vs pykan", "max abs err / max abs pykan",
                "ONNX = numpy"]
    return ["L", "scheme", "agreement", "changed preds", "max abs err vs pykan", "max abs err / max abs pykan",
            "ONNX = numpy"]


def _acc_cells(r: Row, labelled: bool) -> list[str]:
    ok = "ok" if r.ok else "FAIL"
    m = r.metrics
    if not m:
        return [str(r.L), r.scheme] + ["–"] * (len(_acc_header(labelled)) - 3) + [ok]
    if labelled:
        return [str(r.L), r.scheme, _pct(m["accuracy"]), f"{m['f1']:.4f}", str(m["changed"]), str(m["cm_diff"]),
                f"{r.max_abs_err:.3g}", f"{r.max_rel_err:.2e}", ok]
    return [str(r.L), r.scheme, _pct(m["agreement"]), str(m["changed"]), f"{r.max_abs_err:.3g}",
            f"{r.max_rel_err:.2e}", ok]


def _lat_header(n: int) -> list[str]:
    return ["L", "scheme", "ORT function b=1", "ORT standard b=1", "ORT +plugin b=1", f"ORT function b={n}",
            f"ORT standard b={n}", f"ORT +plugin b={n}", "speed-up vs pykan b=1 / b=" + str(n) + " (plugin)"]


def _speedup(ref: float | None, v: float | None) -> str:
    if not ref or not v or not np.isfinite(v):
        return "–"
    return f"{ref / v:.0f}×" if ref / v >= 10 else f"{ref / v:.1f}×"


def _lat_cells(r: Row, ref_lat: dict) -> list[str]:
    g = r.latency_us.get
    return [str(r.L), r.scheme, _us(g("function+plain@1")), _us(g("standard+plain@1")), _us(g("function+plugin@1")),
            _us(g("function+plain@N")), _us(g("standard+plain@N")), _us(g("function+plugin@N")),
            f"{_speedup(ref_lat.get('pykan@1'), g('function+plugin@1'))} / "
            f"{_speedup(ref_lat.get('pykan@N'), g('function+plugin@N'))}"]


def _size_header() -> list[str]:
    return ["L", "scheme", "table bytes", ".lutkan (kB)", "function.onnx (kB)", "standard.onnx (kB)", "custom.onnx (kB)"]


def _size_cells(r: Row) -> list[str]:
    s = r.sizes
    return [str(r.L), r.scheme, str(r.table_bytes), _kb(s.get("lutkan")), _kb(s.get("function")),
            _kb(s.get("standard")), _kb(s.get("custom"))]


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(c) + " |" for c in rows]
    return "\n".join(lines)


def _text_table(header: list[str], rows: list[list[str]]) -> str:
    w = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    out = ["  ".join(h.rjust(w[i]) for i, h in enumerate(header))]
    out += ["  ".join(c.rjust(w[i]) for i, c in enumerate(r)) for r in rows]
    return "\n".join(out)


def _console_table(rows: list[Row], labelled: bool, n: int) -> str:
    header = (["L", "scheme", "acc", "F1", "Δpred", "cmΔ"] if labelled else ["L", "scheme", "agree", "Δpred"])
    header += ["max|err|", "ONNX=np", "fn b1 µs", "plug b1 µs", f"fn b{n} µs", f"plug b{n} µs", ".lutkan kB",
               "fn.onnx kB"]
    cells = []
    for r in rows:
        m, g = r.metrics, r.latency_us.get
        c = [str(r.L), r.scheme]
        if not m:
            c += ["–"] * (4 if labelled else 2)
        else:
            c += ([_pct(m["accuracy"]), f"{m['f1']:.4f}", str(m["changed"]), str(m["cm_diff"])] if labelled
                  else [_pct(m["agreement"]), str(m["changed"])])
        c += [f"{r.max_abs_err:.3g}", "ok" if r.ok else "FAIL", _us(g("function+plain@1")),
              _us(g("function+plugin@1")), _us(g("function+plain@N")), _us(g("function+plugin@N")),
              _kb(r.sizes.get("lutkan")), _kb(r.sizes.get("function"))]
        cells.append(c)
    return _text_table(header, cells)


# ----------------------------------------------------------------------------- plots


def _plots(rows: list[Row], ref_lat: dict, n: int, out: Path, primary: Row | None) -> list[str]:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return []
    written = []
    rows = [r for r in rows if r.layer_tab_error]  # compiled configurations only
    if not rows:
        return written
    schemes = list(dict.fromkeys(r.scheme for r in rows))
    n_layers = len(rows[0].layer_tab_error)
    fig = Figure(figsize=(4.2 * max(1, len(schemes)), 3.8), dpi=100)
    axes = fig.subplots(1, max(1, len(schemes)), squeeze=False, sharey=True)[0]
    for ax, scheme in zip(axes, schemes):
        rs = sorted((r for r in rows if r.scheme == scheme), key=lambda r: r.L)
        Ls = [r.L for r in rs]
        for l in range(n_layers):
            ax.plot(Ls, [max(r.layer_tab_error[l], 1e-12) for r in rs], marker="o",
                    label=f"layer {l}: max table error (tab_error)")
        ax.plot(Ls, [max(r.max_abs_err, 1e-12) for r in rs], marker="s", color="k", linestyle="--",
                label="model output: max abs error vs pykan")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(Ls, [str(v) for v in Ls])
        ax.set_xlabel("L (samples per segment)")
        ax.set_title(scheme)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("max abs error")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    p = out / "error_per_layer.png"
    fig.savefig(p)
    written.append(p.name)

    if primary is not None and primary.latency_us:
        labels = ["pykan (torch)", "ORT function", "ORT +plugin"]
        b1 = [ref_lat.get("pykan@1"), primary.latency_us.get("function+plain@1"),
              primary.latency_us.get("function+plugin@1")]
        bn = [ref_lat.get("pykan@N"), primary.latency_us.get("function+plain@N"),
              primary.latency_us.get("function+plugin@N")]
        fig = Figure(figsize=(8, 3.6), dpi=100)
        axes = fig.subplots(1, 2)
        for ax, vals, title in ((axes[0], b1, "batch 1"), (axes[1], bn, f"batch {n}")):
            v = [np.nan if x is None else x for x in vals]
            bars = ax.bar(labels, v, color=["#888888", "#1f77b4", "#2ca02c"])
            for b, x in zip(bars, v):
                if np.isfinite(x):
                    ax.annotate(_us(x), (b.get_x() + b.get_width() / 2, x), ha="center", va="bottom", fontsize=8)
            ax.set_ylabel("median latency (µs)")
            ax.set_title(f"{title} (L={primary.L}, {primary.scheme})")
            ax.tick_params(axis="x", labelsize=8)
        fig.tight_layout()
        p = out / "latency.png"
        fig.savefig(p)
        written.append(p.name)
    return written


# ----------------------------------------------------------------------------- the demo


def run_demo(cfg: DemoConfig) -> dict:
    """Run the demo; returns the results dict (also written as ``results.json``)."""
    with warnings.catch_warnings():
        # pykan's forward warns about std() of a batch of 1 (its activation statistics): noise here.
        warnings.filterwarnings("ignore", message=r"std\(\): degrees of freedom", category=UserWarning)
        return _run_demo(cfg)


def _run_demo(cfg: DemoConfig) -> dict:
    from tqdm.auto import tqdm

    t_start = time.perf_counter()
    try:
        from lutkan.compiler.pykan_reader import build_pykan_model, load_source, pykan_forward
    except ImportError as e:
        raise LutKanError(f"the demo compares with pykan and needs the [pykan] extra ({e}); "
                          f"pip install 'lutkan[pykan]'") from None
    for L in cfg.Ls:
        C.ContractOptions(L=L)  # validates L early, with the contract's message
    for s in cfg.schemes:
        C.ContractOptions(scheme=s)
    if cfg.threads < 1:
        raise LutKanError(f"--threads {cfg.threads}: use 1 or more")
    source, name, _ = _resolve_model(cfg.model)
    out = Path(cfg.out)
    say = (lambda *m: None) if cfg.quiet else (lambda *m: print(*m, flush=True))
    budget = 0.045 if cfg.quick else 0.09  # seconds per latency figure (3 rounds)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", message=r"std\(\): degrees of freedom")
        src = load_source(source, checkpoint_id=cfg.checkpoint_id)
        torch_model = build_pykan_model(source, checkpoint_id=cfg.checkpoint_id)
    for msg in dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, UserWarning)):
        say(f"note: {msg}")

    data_path = _find_test_data(source, cfg.data)
    if data_path is not None:
        x, y_true = _load_data(data_path)
        data_desc = f"{data_path} ({'labelled' if y_true is not None else 'no labels'})"
    elif src.cache_data is not None:
        x, y_true = np.asarray(src.cache_data), None
        data_desc = "the checkpoint's cache_data (no labels)"
    else:
        raise LutKanError(f"{source}: no test data: the checkpoint has no cache_data and no test_data.npz is "
                          f"beside it; pass --data X.npz with X_test (and optionally y_test)")
    if x.ndim != 2 or x.shape[1] != src.n_inputs:
        raise InputError(f"the demo inputs have shape {x.shape}; the model expects (batch, {src.n_inputs})")
    if x.shape[0] == 0:
        raise InputError("the demo inputs are an empty batch")
    x = np.ascontiguousarray(x, dtype=np.float32)
    n = int(x.shape[0])
    n_out = src.width[-1]
    if y_true is not None:
        y_true = np.asarray(y_true).astype(np.int64).reshape(-1)
        if y_true.shape[0] != n:
            raise InputError(f"y_test has {y_true.shape[0]} labels for {n} input rows")
        n_classes = 2 if n_out == 1 else n_out
        if y_true.min() < 0 or y_true.max() >= n_classes:
            raise InputError(f"y_test labels must lie in [0, {n_classes}) for a model with {n_out} output(s)")
    else:
        n_classes = 2 if n_out == 1 else n_out
    say(f"lutkan demo: {name} (width {src.width}), {n} input rows from {data_desc}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LutKanError(f"cannot create the output folder {out}: {e.strerror or e}") from None

    # pykan reference: outputs and latency (torch, same thread count as onnxruntime).
    y_ref = np.asarray(pykan_forward(torch_model, x), dtype=np.float64)
    ref_cls = _class_metrics(y_ref, y_true, n_classes)
    x1 = np.ascontiguousarray(x[:1])
    ref_lat = _time_pykan(torch_model, x1, x, budget, cfg.threads)

    configs = [(L, s) for L in cfg.Ls for s in cfg.schemes]
    primary_cfg = (C.DEFAULT_L, C.DEFAULT_SCHEME) if (C.DEFAULT_L, C.DEFAULT_SCHEME) in configs else configs[0]
    base_name = name.replace("/", "_")
    rows: list[Row] = []
    bar = tqdm(configs, desc="demo", unit="config", disable=cfg.quiet, leave=False)
    for L, s in bar:
        bar.set_postfix_str(f"L={L} {s}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rows.append(_run_config(L, s, src, x, y_ref, ref_cls, y_true, n_classes, cfg, out, base_name,
                                    cfg.save_all or (L, s) == primary_cfg, budget))
    bar.close()
    primary = next(r for r in rows if (r.L, r.scheme) == primary_cfg)
    plots = _plots(rows, ref_lat, n, out, primary)
    wall = time.perf_counter() - t_start

    results = _results(cfg, name, source, src, data_desc, n, y_true is not None, ref_cls, ref_lat, rows, primary,
                       plots, wall)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=_json_default))
    report = _report_md(results, rows, ref_cls, ref_lat, y_true is not None, n, primary)
    (out / "report.md").write_text(report)

    labelled = y_true is not None
    if not cfg.quiet:
        print()
        if labelled:
            print(f"pykan (float): accuracy {_pct(ref_cls['accuracy'])}, F1 {ref_cls['f1']:.4f}; latency "
                  f"b=1 {_us(ref_lat['pykan@1'])} µs, b={n} {_us(ref_lat['pykan@N'])} µs (torch, {cfg.threads} thread)")
        else:
            print(f"pykan (float): latency b=1 {_us(ref_lat['pykan@1'])} µs, b={n} {_us(ref_lat['pykan@N'])} µs "
                  f"(torch, {cfg.threads} thread); no labels: agreement = same {'sign' if n_out == 1 else 'argmax'}")
        print(_console_table(rows, labelled, n))
        for r in rows:
            for f in r.failures:
                print(f"FAIL L={r.L} {r.scheme}: {f}")
    n_fail = sum(not r.ok for r in rows)
    status = "all ONNX outputs equal the NumPy reference" if not n_fail else f"{n_fail} configuration(s) FAILED"
    print(f"demo: {len(rows)} configurations in {wall:.1f} s; {status}; report {out / 'report.md'}")
    return results


def _json_default(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    return str(o)


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("lutkan", "numpy", "onnx", "onnxruntime", "onnxruntime-extensions", "numba", "torch", "pykan"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def _checkpoint_bytes(source: str) -> int | None:
    """Size of the pykan checkpoint's state + config files (the float model a user would ship)."""
    p = Path(source)
    if p.is_dir():
        return None
    files = [p.with_name(p.name + suffix) for suffix in ("_state", "_config.yml")]
    return sum(f.stat().st_size for f in files) if all(f.is_file() for f in files) else None


def _command(cfg: DemoConfig) -> str:
    parts = ["lutkan demo"]
    if cfg.model:
        parts.append(f"--model {cfg.model}")
    if cfg.data:
        parts.append(f"--data {cfg.data}")
    parts.append(f"--L {','.join(map(str, cfg.Ls))} --schemes {','.join(cfg.schemes)}")
    if cfg.threads != 1:
        parts.append(f"--threads {cfg.threads}")
    parts.append(f"--out {cfg.out}")
    return " ".join(parts)


def _results(cfg, name, source, src, data_desc, n, labelled, ref_cls, ref_lat, rows, primary, plots, wall):
    ref = {k: v for k, v in ref_cls.items() if k != "pred"}
    return {
        "model": name, "source": source, "width": src.width, "data": data_desc, "rows": n, "labelled": labelled,
        "pykan": {**ref, "latency_us": ref_lat, "checkpoint_bytes": _checkpoint_bytes(source)},
        "threads": cfg.threads,
        "configs": [{**asdict(r), "ok": r.ok} for r in rows],
        "primary": primary.tag, "files": [f for r in rows for f in r.files], "plots": plots, "wall_s": wall,
        "ok": all(r.ok for r in rows), "versions": _versions(), "cpu_count": os.cpu_count(),
        "command": _command(cfg), "rel_tol": REL_TOL,
    }


def _report_md(res: dict, rows: list[Row], ref_cls: dict, ref_lat: dict, labelled: bool, n: int,
               primary: Row) -> str:
    v = res["versions"]
    n_out = res["width"][-1]
    rule = "logit > 0 → class 1" if n_out == 1 else "argmax of the logits"
    md = [f"# lutkan demo: `{res['model']}`", "",
          f"`{res['command']}` — {len(rows)} configurations in {res['wall_s']:.1f} s on {res['cpu_count']} CPU(s).", "",
          f"- model: `{res['source']}`, width {res['width']} (prediction: {rule})",
          f"- inputs: {res['rows']} rows from {res['data']}",
          "- each configuration (L = samples per knot interval, table scheme) is compiled, exported to the three "
          "ONNX forms and run in onnxruntime: `function` and `standard` plain, `function` and `custom` with the "
          "lutkan plugin. Every output is checked against the NumPy reference evaluator "
          f"(|onnx − numpy| ≤ {REL_TOL:g}·max(1, max|numpy|)).",
          f"- status: **{'PASS: all ONNX outputs equal the NumPy reference' if res['ok'] else 'FAIL (see below)'}**",
          ""]
    md += ["## Accuracy vs pykan", ""]
    if labelled:
        macro = " (macro)" if ref_cls["cm"].shape[0] > 2 else ""
        md += [f"pykan's own forward (torch, float32): accuracy **{_pct(ref_cls['accuracy'])}**, "
               f"F1{macro} **{ref_cls['f1']:.4f}**. `changed preds`: rows whose predicted class differs from "
               "pykan's; `cm Δ`: sum of absolute differences between the two confusion matrices; errors are on "
               "the raw model outputs (logits).", ""]
    else:
        md += ["No labels: `agreement` is the share of rows where the LUT model predicts the same "
               f"{'sign of the logit' if n_out == 1 else 'argmax'} as pykan; errors are on the raw model outputs.",
               ""]
    md += [_md_table(_acc_header(labelled), [_acc_cells(r, labelled) for r in rows]), ""]
    if labelled and "cm" in primary.metrics:
        md += [f"Confusion matrices (rows: true class, columns: predicted), L={primary.L} {primary.scheme}: "
               f"pykan `{ref_cls['cm'].tolist()}`, LUT `{primary.metrics['cm']}`.", ""]
    fails = [(r, f) for r in rows for f in r.failures]
    if fails:
        md += ["### FAIL", ""] + [f"- L={r.L} {r.scheme}: {f}" for r, f in fails] + [""]
    notes = [(r, f) for r in rows for f in r.notes]
    if notes:
        md += ["Notes:", ""] + [f"- L={r.L} {r.scheme}: {f}" for r, f in notes] + [""]
    md += [f"## Latency (median µs; onnxruntime intra_op_num_threads={res['threads']}, torch threads="
           f"{res['threads']})", "",
           f"pykan's forward (torch, `model(x)` under `no_grad`): batch 1 **{_us(ref_lat['pykan@1'])} µs**, "
           f"batch {n} **{_us(ref_lat['pykan@N'])} µs**. `ORT function`: the `function` file in plain "
           "onnxruntime (it runs the LUTKanEdge function body of standard ops); `ORT standard`: the inlined "
           "standard-op file; `ORT +plugin`: the `function` file with the lutkan plugin registered (the "
           "Numba kernel runs each LUTKanEdge node). Timed with `session.run` on prepared inputs, the "
           "lowest of three per-round medians.", "",
           _md_table(_lat_header(n), [_lat_cells(r, ref_lat) for r in rows]), ""]
    ck = res["pykan"]["checkpoint_bytes"]
    md += ["## Sizes", "",
           "`table bytes`: stored tables + scales/offsets + knots; files in kB"
           + (f"; the pykan checkpoint (state + config) is {_kb(ck)} kB." if ck else "."), "",
           _md_table(_size_header(), [_size_cells(r) for r in rows]), ""]
    md += ["## Plots", ""]
    for p in res["plots"]:
        md += [f"![{p}]({p})", ""]
    fn = next((f for f in res["files"] if f.endswith(".function.onnx")), None)
    md += ["## Files", ""] + [f"- `{f}`" for f in res["files"]] + [""]
    if fn:
        md += ["Try them (from this folder):", "", "```bash",
               f"lutkan inspect {fn}",
               f"python -c \"import numpy as np; np.save('x.npy', np.zeros((4, {res['width'][0]}), np.float32))\"",
               f"lutkan run {fn} --input x.npy -o y.npy            # plain onnxruntime",
               f"lutkan run {fn} --input x.npy -o y.npy --plugin   # with the lutkan kernel",
               f"netron {fn}                                       # pip install netron", "```", ""]
    md += ["## Environment", "", ", ".join(f"{k} {val}" for k, val in v.items()), ""]
    return "\n".join(md)


# ----------------------------------------------------------------------------- CLI


def _int_list(s: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in s.replace(",", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 16,32,64, got {s!r}") from None


def _scheme_list(s: str) -> tuple[str, ...]:
    out = tuple(v for v in s.replace(",", " ").split())
    bad = [v for v in out if v not in C.SCHEMES]
    if bad or not out:
        raise argparse.ArgumentTypeError(f"unknown scheme(s) {bad or s!r}; choose from {', '.join(C.SCHEMES)}")
    return out


def cmd_demo(a) -> int:
    Ls = a.L if a.L else (QUICK_LS if a.quick else DEFAULT_LS)
    cfg = DemoConfig(model=a.model, out=a.out, Ls=tuple(dict.fromkeys(Ls)), schemes=tuple(dict.fromkeys(a.schemes)),
                     data=a.data, checkpoint_id=a.checkpoint_id, quiet=a.quiet, quick=a.quick, threads=a.threads,
                     save_all=a.save_all)
    res = run_demo(cfg)
    return 0 if res["ok"] else 1


def add_cli(sub) -> None:
    """Register ``lutkan demo`` on the CLI's subparsers."""
    d = sub.add_parser(
        "demo", help="the whole pipeline on the bundled (or your) model, with a report",
        description="compile every L x scheme, export function/standard/custom ONNX, run in onnxruntime (plain "
                    "and with the plugin), check against the NumPy reference and pykan, time it, write report.md")
    d.add_argument("--model", help="a pykan checkpoint prefix DIR/ID or folder (default: the bundled "
                                   f"models/{DEFAULT_MODEL_NAME})")
    d.add_argument("--data", help="inputs .npz with X_test (and optional y_test labels); default: test_data.npz "
                                  "beside the checkpoint, else its cache_data")
    d.add_argument("--checkpoint-id", default=None, help="checkpoint id inside a folder (default: the latest)")
    d.add_argument("--out", default="demo-out", help="output folder (default %(default)s)")
    d.add_argument("--L", type=_int_list, default=None,
                   help=f"L values, e.g. 16,32,64,128 (default {','.join(map(str, DEFAULT_LS))}; "
                        f"--quick: {','.join(map(str, QUICK_LS))})")
    d.add_argument("--schemes", type=_scheme_list, default=DEFAULT_SCHEMES,
                   help=f"table schemes (default {','.join(DEFAULT_SCHEMES)})")
    d.add_argument("--quick", action="store_true", help="fewer L values and shorter timings")
    d.add_argument("--threads", type=int, default=1, help="onnxruntime/torch intra-op threads (default 1)")
    d.add_argument("--save-all", action="store_true",
                   help="write .lutkan/.onnx files for every configuration (default: only L=64 int8)")
    d.add_argument("--quiet", action="store_true", help="no progress bar or tables (the summary line remains)")
    d.set_defaults(func=cmd_demo)
