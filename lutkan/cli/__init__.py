"""``lutkan`` command line: compile, run, verify, export, inspect, bench, demo, score.

Exit codes: 0 success; 1 verification failed (``verify`` above its tolerance, ``compile --max-error`` with no
candidate, a ``demo`` configuration that FAILed); 2 usage error (argparse: unknown flag, a value out of range
such as ``--L 1`` or ``--threads 0``); 3 a lutkan error (bad model, checkpoint, artifact, input or output path:
the message names the file and says what to do). Library warnings are printed as ``note:`` lines and messages
name the command-line flags (``--plugin``, ``--checkpoint-id``), not Python arguments.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from lutkan import contract as C
from lutkan._version import version
from lutkan.cli.commands import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    EXIT_VERIFY_FAILED,
    cmd_compile,
    cmd_export,
    cmd_inspect,
    cmd_run,
    cmd_verify,
)
from lutkan.cli.files import arg_L, arg_opset, arg_threads, cli_text, warning_printer
from lutkan.errors import LutKanError


def _add_contract_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("compile options (used when the model is a pykan source)")
    g.add_argument("--L", type=arg_L, default=None,
                   help=f"samples per knot interval, endpoints included, {C.MIN_L}..{C.MAX_L} (default {C.DEFAULT_L}; "
                        f"with --interp poly the compiler sets it to the spline order + 1)")
    g.add_argument("--scheme", choices=C.SCHEMES, default=C.DEFAULT_SCHEME,
                   help="table storage (default %(default)s; poly: float32 or float16)")
    g.add_argument("--interp", choices=C.INTERPS, default=C.DEFAULT_INTERP,
                   help="linear or nearest table lookups, or poly: each segment's exact polynomial (default %(default)s)")
    g.add_argument("--symbolic", choices=C.SYMBOLIC_MODES, default=C.DEFAULT_SYMBOLIC,
                   help="symbolic edges: exact (evaluated as pykan does, everywhere) or tabulate (default %(default)s)")
    g.add_argument("--boundary", choices=C.BOUNDARIES, default=C.DEFAULT_BOUNDARY, help="domain membership at the upper end (default %(default)s)")
    g.add_argument("--oob", choices=C.OOB_POLICIES, default=C.DEFAULT_OOB, help="out-of-bounds policy for the tabulated term (default %(default)s)")
    g.add_argument("--checkpoint-id", default=None, help="checkpoint id inside a folder of pykan checkpoints (default: the latest)")


def _compile_parser(sub) -> None:
    c = sub.add_parser("compile", help="compile a pykan model/checkpoint into a .lutkan artifact")
    c.add_argument("source", help="checkpoint prefix DIR/ID (e.g. model/0.3) or a folder of checkpoints")
    c.add_argument("-o", "--output", required=True, help="output .lutkan path (its folder must exist)")
    _add_contract_flags(c)
    g = c.add_argument_group("automatic interp, L and scheme (replaces --interp, --L and --scheme)")
    g.add_argument("--max-error", type=float, default=None, metavar="REL",
                   help="pick the smallest stored model (interp x L x scheme, poly included, by exact bytes) whose max "
                        "abs output error is <= REL x that output's std on the calibration inputs; exit 1 if none is")
    g.add_argument("--L-choices", default="16,32,64,128", metavar="L1,L2,...",
                   help="with --max-error: the L values to try for tables (default %(default)s)")
    g.add_argument("--interps", default=",".join(C.INTERPS), metavar="I1,I2,...",
                   help="with --max-error: the interpolations to try (default %(default)s)")
    g.add_argument("--calib", default=None, metavar="X.npy",
                   help="calibration inputs for --max-error (default: the checkpoint's cache_data)")
    c.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    c.set_defaults(func=cmd_compile)


def _run_verify_parsers(sub) -> None:
    r = sub.add_parser("run", help="run a .lutkan or .onnx model on a .npy input")
    r.add_argument("model", help="MODEL.lutkan or MODEL.onnx (any letter case)")
    r.add_argument("--input", required=True, help="input .npy, shape (batch, n_inputs)")
    r.add_argument("-o", "--output", required=True, help="output .npy path, written exactly as given")
    r.add_argument("--backend", choices=("numpy", "numba"), default="numba", help=".lutkan backend (default %(default)s)")
    r.add_argument("--plugin", action="store_true", help=".onnx: run LUTKanEdge nodes with the lutkan onnxruntime plugin")
    r.add_argument("--threads", type=arg_threads, default=1,
                   help="onnxruntime intra-op threads, 1 to the CPUs available (default %(default)s)")
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=cmd_run)

    v = sub.add_parser("verify", help="compare pykan's forward with the compiled model")
    v.add_argument("source", help="the pykan checkpoint the model was compiled from")
    v.add_argument("model", help="MODEL.lutkan (or the same checkpoint: compiled on the fly with the flags)")
    v.add_argument("--input", help="input .npy (default: the checkpoint's cache_data)")
    v.add_argument("--backend", choices=("numpy", "numba"), default="numpy", help="evaluator (default %(default)s)")
    v.add_argument("--tol", type=float, default=None,
                   help="fail (exit 1) when any output's max abs error / max|pykan| exceeds this (default: from the "
                        "model's contract: poly float32 1e-4, poly float16 1e-2, linear tables 2e-2, nearest 5e-2)")
    _add_contract_flags(v)
    v.add_argument("--quiet", action="store_true")
    v.set_defaults(func=cmd_verify)


def _export_inspect_parsers(sub) -> None:
    e = sub.add_parser("export", help="export a .lutkan (or a pykan source) to ONNX")
    e.add_argument("model", help="MODEL.lutkan or a pykan checkpoint (compiled with the flags)")
    e.add_argument("-o", "--output", required=True, help="output .onnx path (its folder must exist)")
    e.add_argument("--form", choices=("function", "standard", "custom"), default="function",
                   help="function: LUTKanEdge nodes with a standard-op body (default); standard: standard ops "
                        "only; custom: bare LUTKanEdge nodes (needs the plugin)")
    e.add_argument("--opset", type=arg_opset, default=None, metavar="N",
                   help="default-domain opset of the file (default 21); another N writes the standard form "
                        "(model-local functions inlined) at opset N; see docs/deploy.md")
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lutkan", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Exit codes: 0 ok, 1 verify failed, 2 usage error, 3 lutkan error.")
    p.add_argument("--version", action="version", version=f"lutkan {version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _compile_parser(sub)
    _run_verify_parsers(sub)
    _export_inspect_parsers(sub)

    from lutkan.bench import add_cli as add_bench_cli
    from lutkan.demo import add_cli as add_demo_cli
    from lutkan.score import add_cli as add_score_cli

    add_bench_cli(sub)
    add_demo_cli(sub)
    add_score_cli(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = warning_printer(a.command)
            if getattr(a, "quiet", False):
                warnings.simplefilter("ignore")
            return a.func(a)
    except LutKanError as e:
        print(f"lutkan {a.command}: error: {cli_text(str(e))}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_USAGE", "EXIT_VERIFY_FAILED", "build_parser", "main"]
