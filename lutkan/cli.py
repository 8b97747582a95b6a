"""``lutkan`` command line: compile, run, verify, export, inspect, bench, demo.

Exit codes: 0 success; 1 verification failed (``verify`` above tolerance); 2 usage error;
3 a lutkan error (bad model, checkpoint, artifact or input: the message says what and why).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

from lutkan import contract as C
from lutkan.errors import LutKanError

EXIT_OK, EXIT_VERIFY_FAILED, EXIT_USAGE, EXIT_ERROR = 0, 1, 2, 3


def _add_contract_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("compile options (used when the model is a pykan source)")
    g.add_argument("--L", type=int, default=C.DEFAULT_L, help=f"samples per knot interval, endpoints included (default {C.DEFAULT_L})")
    g.add_argument("--scheme", choices=C.SCHEMES, default=C.DEFAULT_SCHEME, help="table storage (default %(default)s)")
    g.add_argument("--interp", choices=C.INTERPS, default=C.DEFAULT_INTERP, help="interpolation (default %(default)s)")
    g.add_argument("--boundary", choices=C.BOUNDARIES, default=C.DEFAULT_BOUNDARY, help="domain membership at the upper end (default %(default)s)")
    g.add_argument("--oob", choices=C.OOB_POLICIES, default=C.DEFAULT_OOB, help="out-of-bounds policy for the tabulated term (default %(default)s)")
    g.add_argument("--checkpoint-id", default=None, help="checkpoint id inside a folder of pykan checkpoints (default: the latest)")


def _options(a) -> C.ContractOptions:
    return C.ContractOptions(L=a.L, scheme=a.scheme, interp=a.interp, boundary=a.boundary, oob=a.oob)


def _is_lutkan(path: str) -> bool:
    from lutkan.artifact import MAGIC

    p = Path(path)
    if not p.is_file():
        return False
    with p.open("rb") as f:
        return f.read(len(MAGIC)) == MAGIC


def _load_or_compile(source: str, a):
    """A ``.lutkan`` file is loaded; anything else is read as a pykan checkpoint and compiled."""
    from lutkan.artifact import load

    if _is_lutkan(source):
        return load(source)
    from lutkan.compiler import compile_model

    return compile_model(source, _options(a), progress=not a.quiet, checkpoint_id=a.checkpoint_id)


def _say(a, *msg) -> None:
    if not getattr(a, "quiet", False):
        print(*msg)


def _int_list(text: str, flag: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise LutKanError(f"{flag} must be comma-separated integers, got {text!r}") from None
    if not vals:
        raise LutKanError(f"{flag} is empty")
    return vals


def _select(a):
    """``compile --max-error``: the smallest candidate meeting the bound (None after reporting failure)."""
    from lutkan.compiler import as_source
    from lutkan.compiler.select import SelectionError, select_options

    src = as_source(a.source, checkpoint_id=a.checkpoint_id)
    if a.calib:
        x = _load_input(a.calib)
    elif src.cache_data is not None:
        x = src.cache_data
    else:
        raise LutKanError("--max-error needs calibration inputs: the source has no cache_data; pass --calib X.npy")
    _say(a, f"choosing L and scheme for max error {a.max_error:g} x output std on {len(x)} calibration rows")

    def show(t):
        _say(a, f"  L={t.L:<4} {t.scheme:<8} {t.table_bytes:>11,} table bytes  error/std {t.error:.4g}  "
                f"{'ok' if t.ok else 'over'}")

    try:
        model, _ = select_options(src, x, a.max_error, base=_options(a), Ls=_int_list(a.L_choices, "--L-choices"),
                                  on_trial=show)
    except SelectionError as e:
        print(f"FAILED: {e}")
        return None
    _say(a, f"chose L={model.contract.L} {model.contract.scheme}")
    return model


def cmd_compile(a) -> int:
    from lutkan.artifact import save
    from lutkan.compiler import compile_model

    if a.calib and a.max_error is None:
        raise LutKanError("--calib only applies with --max-error")
    if a.max_error is not None:
        model = _select(a)
        if model is None:
            return EXIT_VERIFY_FAILED
    else:
        model = compile_model(a.source, _options(a), progress=not a.quiet, checkpoint_id=a.checkpoint_id)
    save(model, a.output)
    s = model.summary()
    _say(a, f"wrote {a.output}: width {s['width']}, {sum(l['edges'] for l in s['layers'])} edges, "
            f"{sum(model.table_bytes())} table bytes, contract {json.dumps(s['contract'])}")
    for note in model.notes:
        _say(a, f"note: {note}")
    return EXIT_OK


def _load_input(path: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise LutKanError(f"cannot read input {path!r} as a .npy array: {e}") from None


def cmd_run(a) -> int:
    x = _load_input(a.input)
    if a.model.endswith(".onnx"):
        from lutkan.runtime_ext import make_session, run

        sess = make_session(a.model, plugin=a.plugin, intra_op_num_threads=a.threads)
        y = run(sess, x)
    else:
        from lutkan.artifact import load
        from lutkan.evaluators import evaluator

        if a.plugin:
            raise LutKanError("--plugin applies to .onnx models; for .lutkan use --backend")
        y = evaluator(load(a.model), a.backend)(x)
    np.save(a.output, y)
    _say(a, f"wrote {a.output}: shape {y.shape}, dtype {y.dtype}")
    return EXIT_OK


def cmd_verify(a) -> int:
    from lutkan.compiler.pykan_reader import build_pykan_model, load_source, pykan_forward
    from lutkan.evaluators import evaluator
    from lutkan.testing import compare_outputs

    src = load_source(a.source, checkpoint_id=a.checkpoint_id)
    model = _load_or_compile(a.model, a)
    if a.input:
        x = _load_input(a.input)
    elif src.cache_data is not None:
        x = src.cache_data
        _say(a, f"inputs: the checkpoint's cache_data, {x.shape[0]} rows")
    else:
        raise LutKanError("the source has no cache_data; pass --input X.npy")
    x = np.asarray(x, dtype=np.float64)
    y_ref = pykan_forward(build_pykan_model(a.source, checkpoint_id=a.checkpoint_id), x)
    y = evaluator(model, a.backend)(x)
    worst = 0.0
    rows = []
    for j in range(y_ref.shape[1]):
        st = compare_outputs(y[:, j], y_ref[:, j])
        worst = max(worst, st["max_abs"] / max(st["ref_max_abs"], 1e-30))
        rows.append((j, st))
    print(f"{'output':>6} {'max_abs_err':>12} {'max_rel_err':>12} {'max|pykan|':>12} {'mismatched_nonfinite':>20}")
    for j, st in rows:
        print(f"{j:>6} {st['max_abs']:>12.4g} {st['max_rel']:>12.4g} {st['ref_max_abs']:>12.4g} {st['extreme_mismatch']:>20}")
    all_st = compare_outputs(y, y_ref)
    print(f"overall: max abs {all_st['max_abs']:.4g}, max abs / max|pykan| {all_st['max_rel']:.4g}")
    if a.tol is not None and (all_st["max_rel"] > a.tol or all_st["extreme_mismatch"]):
        print(f"FAILED: relative error {all_st['max_rel']:.4g} > --tol {a.tol}")
        return EXIT_VERIFY_FAILED
    return EXIT_OK


def cmd_export(a) -> int:
    from lutkan.exporter import export, save_onnx

    model = _load_or_compile(a.model, a)
    proto = export(model, form=a.form)
    save_onnx(proto, a.output)
    _say(a, f"wrote {a.output}: form {a.form}, {Path(a.output).stat().st_size} bytes, "
            f"{len(proto.graph.node)} nodes")
    return EXIT_OK


def cmd_inspect(a) -> int:
    from lutkan.inspect import inspect_main

    return inspect_main(a)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lutkan", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Exit codes: 0 ok, 1 verify failed, 2 usage error, 3 lutkan error.")
    p.add_argument("--version", action="version", version="lutkan 0.1.0")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("compile", help="compile a pykan model/checkpoint into a .lutkan artifact")
    c.add_argument("source", help="checkpoint prefix DIR/ID (e.g. model/0.3) or a folder of checkpoints")
    c.add_argument("-o", "--output", required=True, help="output .lutkan path")
    _add_contract_flags(c)
    g = c.add_argument_group("automatic L and scheme (replaces --L and --scheme)")
    g.add_argument("--max-error", type=float, default=None, metavar="REL",
                   help="pick the smallest tables (L in 16/32/64/128 x int8/uint8/float16/float32) whose max abs "
                        "output error is <= REL x that output's std on the calibration inputs; exit 1 if none is")
    g.add_argument("--L-choices", default="16,32,64,128", metavar="L1,L2,...",
                   help="with --max-error: the L values to try (default %(default)s)")
    g.add_argument("--calib", default=None, metavar="X.npy",
                   help="calibration inputs for --max-error (default: the checkpoint's cache_data)")
    c.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    c.set_defaults(func=cmd_compile)

    r = sub.add_parser("run", help="run a .lutkan or .onnx model on a .npy input")
    r.add_argument("model", help="MODEL.lutkan or MODEL.onnx")
    r.add_argument("--input", required=True, help="input .npy, shape (batch, n_inputs)")
    r.add_argument("-o", "--output", required=True, help="output .npy path")
    r.add_argument("--backend", choices=("numpy", "numba"), default="numba", help=".lutkan backend (default %(default)s)")
    r.add_argument("--plugin", action="store_true", help=".onnx: run LUTKanEdge nodes with the lutkan onnxruntime plugin")
    r.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (default %(default)s)")
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=cmd_run)

    v = sub.add_parser("verify", help="compare pykan's forward with the compiled model")
    v.add_argument("source", help="the pykan checkpoint the model was compiled from")
    v.add_argument("model", help="MODEL.lutkan (or the same checkpoint: compiled on the fly with the flags)")
    v.add_argument("--input", help="input .npy (default: the checkpoint's cache_data)")
    v.add_argument("--backend", choices=("numpy", "numba"), default="numpy", help="evaluator (default %(default)s)")
    v.add_argument("--tol", type=float, default=None, help="fail (exit 1) if max abs error / max|pykan| exceeds this")
    _add_contract_flags(v)
    v.add_argument("--quiet", action="store_true")
    v.set_defaults(func=cmd_verify)

    e = sub.add_parser("export", help="export a .lutkan (or a pykan source) to ONNX")
    e.add_argument("model", help="MODEL.lutkan or a pykan checkpoint (compiled with the flags)")
    e.add_argument("-o", "--output", required=True, help="output .onnx path")
    e.add_argument("--form", choices=("function", "standard", "custom"), default="function",
                   help="function: LUTKanEdge nodes with a standard-op body (default); standard: standard ops "
                        "only; custom: bare LUTKanEdge nodes (needs the plugin)")
    _add_contract_flags(e)
    e.add_argument("--quiet", action="store_true")
    e.set_defaults(func=cmd_export)

    i = sub.add_parser("inspect", help="describe a .lutkan or .onnx model")
    i.add_argument("model", help="MODEL.lutkan or MODEL.onnx")
    i.add_argument("--json", action="store_true", help="print JSON instead of text")
    i.add_argument("--edges", action="store_true", help="per-edge error report vs the source model (CSV + heatmap)")
    i.add_argument("--source", help="with --edges: the pykan checkpoint (default: provenance source)")
    i.add_argument("--out", default="inspect-out", help="with --edges: output folder (default %(default)s)")
    i.add_argument("--quiet", action="store_true")
    i.set_defaults(func=cmd_inspect)

    for mod in ("lutkan.bench", "lutkan.demo", "lutkan.score"):
        try:
            module = __import__(mod, fromlist=["add_cli"])
        except ImportError:
            continue
        if hasattr(module, "add_cli"):
            module.add_cli(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            if getattr(a, "quiet", False):
                warnings.simplefilter("ignore")
            return a.func(a)
    except LutKanError as e:
        print(f"lutkan {a.command}: error: {e}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
