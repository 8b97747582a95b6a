"""The ``compile``, ``run``, ``verify``, ``export`` and ``inspect`` commands (``lutkan.cli`` parses)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lutkan import contract as C
from lutkan.cli.files import (
    check_output,
    is_lutkan_file,
    is_onnx_path,
    load_npy,
    require_file,
    save_npy,
)
from lutkan.errors import LutKanError

EXIT_OK, EXIT_VERIFY_FAILED, EXIT_USAGE, EXIT_ERROR = 0, 1, 2, 3


def say(a, *msg) -> None:
    if not getattr(a, "quiet", False):
        print(*msg)


def options(a) -> C.ContractOptions:
    if a.L is not None and a.interp == "poly":
        say(a, f"note: --L {a.L} is ignored with --interp poly (L is the spline order + 1)")
    L = C.DEFAULT_L if a.L is None else a.L
    return C.ContractOptions(L=L, scheme=a.scheme, interp=a.interp, boundary=a.boundary, oob=a.oob,
                             symbolic=a.symbolic)


def load_or_compile(source: str, a, command: str):
    """A ``.lutkan`` artifact is loaded; an ``.onnx`` file is refused (named as such); anything else is
    read as a pykan checkpoint (prefix or folder) and compiled with the flags."""
    from lutkan.artifact import load

    if is_onnx_path(source):
        raise LutKanError(f"{source} is an ONNX file; `lutkan {command}` takes a .lutkan artifact or a pykan "
                          f"checkpoint (DIR/ID or a folder of checkpoints)")
    if Path(source).suffix.lower() == ".lutkan" or is_lutkan_file(source):
        return load(require_file(source, "a .lutkan artifact"))
    from lutkan.compiler import compile_model

    return compile_model(source, options(a), progress=not a.quiet, checkpoint_id=a.checkpoint_id)


def require_checkpoint(source: str, command: str) -> str:
    """``source`` unless it is an ONNX file or a ``.lutkan`` artifact, which a pykan SOURCE cannot be."""
    if is_onnx_path(source) or is_lutkan_file(source) or Path(source).suffix.lower() == ".lutkan":
        kind = "an ONNX file" if is_onnx_path(source) else "a .lutkan artifact"
        raise LutKanError(f"{source} is {kind}; the SOURCE of `lutkan {command}` is a pykan checkpoint (DIR/ID or a "
                          f"folder of checkpoints)")
    return source


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
        x = load_npy(a.calib, "--calib")
    elif src.cache_data is not None:
        x = src.cache_data
    else:
        raise LutKanError("--max-error needs calibration inputs: the source has no cache_data; pass --calib X.npy")
    say(a, f"choosing interp, L and scheme for max error {a.max_error:g} x output std on {len(x)} calibration "
           f"rows (smallest stored bytes first)")

    def show(t):
        say(a, f"  {t.interp:<7} L={t.L:<4} {t.scheme:<8} {t.stored_bytes:>11,} bytes  error/std {t.error:.4g}  "
               f"{'ok' if t.ok else 'over'}")

    interps = tuple(s.strip() for s in a.interps.split(",") if s.strip())
    try:
        model, _ = select_options(src, x, a.max_error, base=options(a), Ls=_int_list(a.L_choices, "--L-choices"),
                                  interps=interps, on_trial=show)
    except SelectionError as e:
        print(f"FAILED: {e}")
        return None
    c = model.contract
    say(a, f"chose {c.interp} L={c.L} {c.scheme} ({sum(model.table_bytes()):,} bytes)")
    return model


def cmd_compile(a) -> int:
    from lutkan.artifact import save
    from lutkan.compiler import compile_model

    out = check_output(a.output, a.source, a.calib, what="artifact")
    require_checkpoint(a.source, "compile")
    if a.calib and a.max_error is None:
        raise LutKanError("--calib only applies with --max-error")
    if a.max_error is not None:
        model = _select(a)
        if model is None:
            return EXIT_VERIFY_FAILED
    else:
        model = compile_model(a.source, options(a), progress=not a.quiet, checkpoint_id=a.checkpoint_id)
    save(model, out)
    s = model.summary()
    say(a, f"wrote {out}: width {s['width']}, {sum(l['edges'] for l in s['layers'])} edges, "
           f"{sum(model.table_bytes())} table bytes, contract {json.dumps(s['contract'])}")
    for note in model.notes:
        say(a, f"note: {note}")
    return EXIT_OK


def cmd_run(a) -> int:
    out = check_output(a.output, a.model, a.input)
    x = load_npy(a.input)
    if is_onnx_path(a.model):
        from lutkan.runtime_ext import make_session, run

        sess = make_session(str(require_file(a.model, "an .onnx model")), plugin=a.plugin,
                            intra_op_num_threads=a.threads)
        y = run(sess, x)
    elif is_lutkan_file(a.model) or Path(a.model).suffix.lower() == ".lutkan":
        from lutkan.artifact import load
        from lutkan.evaluators import evaluator

        if a.plugin:
            raise LutKanError("--plugin applies to .onnx models; for a .lutkan artifact choose --backend")
        y = evaluator(load(require_file(a.model, "a .lutkan artifact")), a.backend)(x)
    else:
        require_file(a.model, "a .lutkan artifact or an .onnx model")
        raise LutKanError(f"{a.model} is neither a .lutkan artifact (no lutkan header) nor an .onnx file; "
                          f"`lutkan run` takes one of those (compile a pykan checkpoint first)")
    save_npy(y, out)
    say(a, f"wrote {out}: shape {y.shape}, dtype {y.dtype}")
    return EXIT_OK


def verify_figures(y: np.ndarray, y_ref: np.ndarray) -> tuple[list[dict], float, int]:
    """Per-output ``compare_outputs`` stats (plus ``rel`` = max abs error / max|reference| of that output),
    the overall relative figure (the worst output's, so never below any one of them) and the number of
    entries that are NaN/inf/huge on one side only."""
    from lutkan.metrics import compare_outputs

    rows = []
    for j in range(y_ref.shape[1]):
        st = compare_outputs(y[:, j], y_ref[:, j])
        st["rel"] = st["max_abs"] / st["ref_max_abs"] if st["ref_max_abs"] > 0 else (
            0.0 if st["max_abs"] == 0 else float("inf"))
        rows.append(st)
    return rows, max((r["rel"] for r in rows), default=0.0), sum(r["extreme_mismatch"] for r in rows)


def cmd_verify(a) -> int:
    from lutkan.compiler.pykan import build_pykan_model, load_source, pykan_forward
    from lutkan.evaluators import evaluator

    require_checkpoint(a.source, "verify")
    model = load_or_compile(a.model, a, "verify")
    src = load_source(a.source, checkpoint_id=a.checkpoint_id)
    if a.input:
        x = load_npy(a.input)
    elif src.cache_data is not None:
        x = src.cache_data
        say(a, f"inputs: the checkpoint's cache_data, {x.shape[0]} rows")
    else:
        raise LutKanError("the source has no cache_data; pass --input X.npy")
    x = np.asarray(x, dtype=np.float64)
    y_ref = pykan_forward(build_pykan_model(a.source, checkpoint_id=a.checkpoint_id), x)
    y = evaluator(model, a.backend)(x)
    rows, overall, mismatched = verify_figures(y, y_ref)
    tol, origin = (a.tol, "--tol") if a.tol is not None else (
        C.verify_tolerance(model.contract), f"the default for interp={model.contract.interp} "
                                            f"scheme={model.contract.scheme}")
    print(f"{'output':>6} {'max_abs_err':>12} {'max|pykan|':>12} {'abs/max|pykan|':>15} {'mismatched_nonfinite':>20}")
    for j, st in enumerate(rows):
        print(f"{j:>6} {st['max_abs']:>12.4g} {st['ref_max_abs']:>12.4g} {st['rel']:>15.4g} "
              f"{st['extreme_mismatch']:>20}")
    print(f"overall (worst output): max abs error / max|pykan| = {overall:.4g}; {mismatched} entries NaN/inf on "
          f"one side only; tolerance {tol:g} ({origin})")
    if overall > tol or mismatched:
        why = f"{overall:.4g} > {tol:g}" if overall > tol else f"{mismatched} NaN/inf entries differ"
        print(f"FAILED: {why}; pass --tol to accept a larger error, or compile with a wider scheme or larger L")
        return EXIT_VERIFY_FAILED
    print("OK")
    return EXIT_OK


def cmd_export(a) -> int:
    from lutkan.exporter import export, save_onnx

    out = check_output(a.output, a.model, what="ONNX file")
    if not is_onnx_path(out):
        say(a, f"note: {out} does not end in .onnx")
    model = load_or_compile(a.model, a, "export")
    inline = a.opset is not None and a.form == "function"  # the standard form is the function form inlined
    proto = export(model, form="standard" if inline else a.form)
    if inline:
        say(a, f"note: --opset {a.opset}: written as the standard form (the function bodies inlined, one row-chunk "
               f"If for the model), which every opset can express")
    if a.opset is not None:
        from lutkan.exporter.opset import convert_opset

        proto, notes = convert_opset(proto, a.opset)
        for note in notes:
            say(a, f"note: {note}")
    save_onnx(proto, out)
    form = proto.metadata_props and {p.key: p.value for p in proto.metadata_props}.get("lutkan.form", a.form)
    say(a, f"wrote {out}: form {form}, opset {_opset(proto)}, {out.stat().st_size} bytes, "
           f"{len(proto.graph.node)} nodes")
    return EXIT_OK


def _opset(proto) -> int:
    return next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))


def cmd_inspect(a) -> int:
    from lutkan.inspect import inspect_main

    return inspect_main(a)  # names a missing file, a folder or a file of another kind itself


__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_USAGE", "EXIT_VERIFY_FAILED", "cmd_compile", "cmd_export", "cmd_inspect",
           "cmd_run", "cmd_verify", "load_or_compile", "options", "verify_figures"]
