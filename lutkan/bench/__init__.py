"""``lutkan bench``: the accuracy / speed / memory study of compiled models.

    lutkan bench --profile quick --out bench-out      # about 1.5 to 2 minutes on 2 cores
    lutkan bench --profile full  --out bench-full     # the whole study, about 10 to 12 minutes

    from lutkan.bench import run_bench
    results = run_bench("quick", Path("bench-out"))   # the dict written to results.json

Modules (one concept each): ``timing`` (how latencies are taken), ``env`` (the environment record),
``stats`` (mean/std/t-interval, quartiles), ``rows`` (result records), ``zoo`` (the models),
``accuracy``, ``speed``, ``memory`` (the three studies), ``frontier`` (size vs error of every
(interp, L, scheme) candidate: ``frontier.csv``), ``lutpoly`` (LUT vs poly kernel speed), ``summary`` (derived figures and targets),
``report`` / ``plots`` (the files), ``suite`` (profiles and the driver), ``pykan_onnx`` (the
torch.onnx.export baseline), ``plugin`` (``python -m lutkan.bench.plugin``: the onnxruntime plugin
bridge against the Numba kernel), ``score`` (``python -m lutkan.bench.score``: ``lutkan score`` throughput and
memory, issue 16). Importing this package is cheap: heavy modules load inside ``run_bench``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

PUBLIC_PROFILES = ("quick", "full")


def run_bench(profile: str, out_dir: Path, *, progress: bool = True, quiet: bool = False, threads: int = 1) -> dict:
    """Run the study (``quick`` or ``full``) into ``out_dir``; see ``lutkan.bench.suite.run_bench``."""
    from lutkan.bench.suite import run_bench as _run

    return _run(profile, Path(out_dir), progress=progress, quiet=quiet, threads=threads)


def _cmd_bench(a: argparse.Namespace) -> int:
    if a.threads != 1:
        print("lutkan bench: note: the study's figures are defined for one thread; running with "
              f"--threads {a.threads} as asked (recorded in the environment)")
    run_bench(a.profile, Path(a.out), progress=not a.quiet, quiet=a.quiet, threads=a.threads)
    return 0


def add_cli(subparsers) -> argparse.ArgumentParser:
    """Register the ``bench`` subcommand on an ``argparse`` subparsers object."""
    b = subparsers.add_parser(
        "bench", help="accuracy / speed / memory study (CSV, JSON, markdown report, plots)",
        description="Run the LUT-KAN study: controlled error sweep, trained checkpoints, size-vs-error frontier "
                    "of every stored form, OOB robustness, honest same-backend speed baseline and deployment view, "
                    "LUT vs poly speed, memory. Writes results.csv, results.json, frontier.csv, report.md and "
                    "plots/ into --out.")
    b.add_argument("--profile", choices=PUBLIC_PROFILES, default="quick",
                   help="quick: reduced study, about 1.5 to 2 min on 2 cores; full: everything, about 10 to 12 min "
                        "(default %(default)s)")
    b.add_argument("--out", default="bench-out", help="output folder (default %(default)s)")
    b.add_argument("--threads", type=int, default=1, help="compute threads for every backend (default %(default)s)")
    b.add_argument("--quiet", action="store_true", help="no progress bar or summary line")
    b.set_defaults(func=_cmd_bench)
    return b


__all__ = ["add_cli", "run_bench"]
