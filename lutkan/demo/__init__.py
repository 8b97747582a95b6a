"""``lutkan demo``: the whole product on one model, in one command.

compile (every L x scheme) -> export the three ONNX forms -> run them in onnxruntime (plain: function
and standard forms; with the lutkan plugin: function and custom forms) -> check every ONNX output
against the NumPy reference evaluator -> compare with pykan's own forward (accuracy / F1 / changed
predictions, max output error) -> latency (onnxruntime vs pykan/torch, batch 1 and the full test
batch) and file sizes -> ``report.md`` with plots, the ``.lutkan`` and ``.onnx`` files, ``results.json``.

Default model: the bundled ``models/breast_cancer`` classifier ([30, 8, 1], 114 labelled test rows).
``--model PATH`` runs on your own pykan checkpoint (prefix ``DIR/ID`` or a folder); its inputs are
``--data X.npz`` (``X_test`` and optional ``y_test``), else a ``test_data.npz`` beside the checkpoint,
else the checkpoint's ``cache_data``. ``--task`` (default auto): a classifier (labels are class indices) is
reported with accuracy, F1 (``lutkan.reporting.f1``: binary F1 of class 1 for a one-output model, macro F1
otherwise), changed predictions and confusion matrices; a regression model (labels that are other numbers,
or no labels at all) with RMSE / R² against pykan's outputs and, given targets, against them; both with the
max output error.

Exit code: 0 when every ONNX output equals the NumPy reference (float32 rounding), 1 when some
configuration FAILed (it is reported as a FAIL row, the demo carries on), 2 on a usage error, 3 on a lutkan
error (the model, its inputs or the settings; printed once).

Modules: ``config`` (settings, inputs and row records), ``inputs`` (model and data resolution),
``run`` (the pipeline), ``report`` (results.json, report.md, console), ``plots`` (figures).
"""

from __future__ import annotations

import argparse
import os

from lutkan import contract as C
from lutkan.demo.config import (
    DEFAULT_LS,
    DEFAULT_MODEL_NAME,
    DEFAULT_SCHEMES,
    QUICK_LS,
    TASKS,
    DemoConfig,
    default_model_path,
)
from lutkan.demo.run import run_demo


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


def _threads(s: str) -> int:
    try:
        n = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {s!r}") from None
    try:
        top = max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - platforms without sched_getaffinity
        top = max(1, os.cpu_count() or 1)
    if not 1 <= n <= top:
        raise argparse.ArgumentTypeError(f"{n} is out of range: use 1 to {top} (the CPUs available here)")
    return n


def _L(s: str) -> tuple[int, ...]:
    from lutkan.errors import LutKanError

    Ls = _int_list(s)
    try:
        for L in Ls:
            C.ContractOptions(L=L)
    except LutKanError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if not Ls:
        raise argparse.ArgumentTypeError("expected at least one L value")
    return Ls


def cmd_demo(a: argparse.Namespace) -> int:
    """``lutkan demo`` from parsed arguments: 0 when every check passed, 1 when a configuration FAILed."""
    Ls = a.L if a.L else (QUICK_LS if a.quick else DEFAULT_LS)
    cfg = DemoConfig(model=a.model, out=a.out, Ls=tuple(dict.fromkeys(Ls)), schemes=tuple(dict.fromkeys(a.schemes)),
                     data=a.data, checkpoint_id=a.checkpoint_id, quiet=a.quiet, quick=a.quick, threads=a.threads,
                     save_all=a.save_all, task=a.task)
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
    d.add_argument("--task", choices=TASKS, default="auto",
                   help="classification (outputs are logits: accuracy, F1, changed predictions) or regression "
                        "(outputs are numbers: RMSE / R² vs pykan and the targets); auto (default): classification "
                        "when the labels are class indices, else regression")
    d.add_argument("--L", type=_L, default=None,
                   help=f"L values, e.g. 16,32,64,128 (default {','.join(map(str, DEFAULT_LS))}; "
                        f"--quick: {','.join(map(str, QUICK_LS))})")
    d.add_argument("--schemes", type=_scheme_list, default=DEFAULT_SCHEMES,
                   help=f"table schemes (default {','.join(DEFAULT_SCHEMES)})")
    d.add_argument("--quick", action="store_true", help="fewer L values and shorter timings")
    d.add_argument("--threads", type=_threads, default=1, help="onnxruntime/torch intra-op threads (default 1)")
    d.add_argument("--save-all", action="store_true",
                   help="write .lutkan/.onnx files for every configuration (default: only L=64 int8)")
    d.add_argument("--quiet", action="store_true", help="no progress bar or tables (the summary line remains)")
    d.set_defaults(func=cmd_demo)


__all__ = ["DemoConfig", "add_cli", "cmd_demo", "default_model_path", "run_demo"]
