"""Attacks on lutkan's readers and backends, run in a child process with a memory limit and a timeout.

Each class of issue 14 is a list of cases written as an attacker would write them: internally consistent files
with recomputed checksums, mutated ONNX graphs, stride-0 (``expand``) tensors, huge declared sizes. A case
returns its outcome (``rejected`` with the error, or ``identical``: evaluated the same by every backend) or raises
``AssertionError`` (accepted when it must not be, wrong error, backends disagree)::

    report = run_class("values", mem_bytes=3 << 30, timeout=120)    # from a test or scripts/attack_report.py
    python -m lutkan.testing.attacks lutkan.testing.attacks.cases_values   # the child: one JSON line per case

The child runs every case of one class in turn under ``RLIMIT_AS`` (set by the parent before exec) and prints
``{"start": case}`` before and a record after each case (outcome, seconds, peak RSS of the case, the
message), so a crash (signal), an exhaustion (MemoryError) or a timeout is reported against the case that
caused it instead of taking down the caller. ``LUTKAN_MAX_BYTES`` is set to ``CHILD_BUDGET`` in the child, below
its memory limit, so an estimate that let a large allocation through would show up as an exhaustion.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field

__all__ = ["CHILD_BUDGET", "CLASSES", "ClassReport", "run_class"]

CLASSES = {
    "values": ("lutkan.testing.attacks.cases_values", "1: values that break the arithmetic"),
    "memory": ("lutkan.testing.attacks.cases_memory", "2: small files that allocate huge memory"),
    "work": ("lutkan.testing.attacks.cases_work", "3: work that grows faster than the file"),
    "onnx": ("lutkan.testing.attacks.cases_onnx", "4: ONNX files the plugin reads differently"),
    "parse": ("lutkan.testing.attacks.cases_parse", "5: parser errors that escape"),
    "knots": ("lutkan.testing.attacks.cases_knots", "7: discontinuities between backends"),
}
"""Class name -> (module defining ``CASES``, title). Class 6 (CLI output paths) is tested with the CLI."""

CHILD_BUDGET = "1G"
DEFAULT_MEM = 3 << 30


@dataclass
class ClassReport:
    """What one child run produced: per-case records, and how the child ended."""

    name: str
    records: list[dict] = field(default_factory=list)
    returncode: int | None = None
    timed_out: bool = False
    last_started: str | None = None
    stderr: str = ""
    seconds: float = 0.0

    @property
    def crashed(self) -> bool:
        return self.timed_out or self.returncode != 0

    def count(self, outcome: str) -> int:
        return sum(r["outcome"] == outcome for r in self.records)

    def failures(self) -> list[dict]:
        return [r for r in self.records if r["outcome"] not in ("rejected", "identical", "accepted")]


def _limit(mem_bytes: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))
    return apply


def run_class(name: str, *, mem_bytes: int = DEFAULT_MEM, timeout: float = 180, env: dict | None = None,
              module: str | None = None) -> ClassReport:
    """Run class ``name`` (its cases: ``CLASSES[name]``'s module, or ``module``) in a child process under
    ``RLIMIT_AS = mem_bytes`` and ``timeout`` seconds."""
    if module is None and name not in CLASSES:
        raise ValueError(f"unknown attack class {name!r}; choose one of {', '.join(CLASSES)}")
    module = module or CLASSES[name][0]
    child_env = dict(os.environ, LUTKAN_MAX_BYTES=CHILD_BUDGET, **(env or {}))
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    child_env["PYTHONPATH"] = root + os.pathsep + child_env.get("PYTHONPATH", "")
    report = ClassReport(name)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "lutkan.testing.attacks", module], capture_output=True, text=True,
                              timeout=timeout, env=child_env, preexec_fn=_limit(mem_bytes))
        out, report.returncode, report.stderr = proc.stdout, proc.returncode, proc.stderr[-4000:]
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        report.timed_out = True
    report.seconds = time.perf_counter() - t0
    for line in out.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if "start" in rec:
            report.last_started = rec["start"]
        elif "case" in rec:
            report.records.append(rec)
            report.last_started = None
    return report
