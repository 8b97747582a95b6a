"""Issue 14: untrusted files cannot crash, exhaust or silently fool lutkan.

Each class of attacks (``lutkan.testing.attacks``: crafted consistent ``.lutkan`` files with recomputed checksums,
mutated ONNX graphs, stride-0 checkpoint tensors, huge declared sizes) runs in a child process under a memory
limit (``RLIMIT_AS``) and a timeout, so a crash, an exhaustion or a hang fails its test, not the suite. Every
case must end ``rejected`` (the right error, naming the file/field/node), ``identical`` (every backend agrees) or
``accepted`` (a command that must work, e.g. compile with a bomb in the unread cache_data).
``scripts/attack_report.py`` prints the same runs as the closing table of the issue.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import terminal_line

from lutkan.testing.attacks import CLASSES, run_class

MEMORY = {"memory": 4 << 30, "parse": 4 << 30}  # classes that import torch need more address space
DEFAULT_MEMORY = 3 << 30
TIMEOUT = 240
TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def summaries(request):
    lines: list[str] = []
    yield lines
    for line in lines:
        terminal_line(request.config, line)


@pytest.mark.parametrize("name", list(CLASSES))
def test_attack_class(name, summaries):
    rep = run_class(name, mem_bytes=MEMORY.get(name, DEFAULT_MEMORY), timeout=TIMEOUT)
    where = f"class {CLASSES[name][1]!r}"
    assert not rep.timed_out, f"{where}: timed out after {TIMEOUT} s in case {rep.last_started!r}"
    assert rep.returncode == 0, (f"{where}: the child died (rc={rep.returncode}) in case {rep.last_started!r}:\n"
                                 f"{rep.stderr[-2000:]}")
    bad = rep.failures()
    assert not bad, f"{where}: " + "\n".join(f"{r['case']}: {r['outcome']}: {r['detail']}" for r in bad)
    assert rep.records, f"{where}: no case ran"
    peak = max(r["peak_mb"] for r in rep.records)
    summaries.append(f"attacks {name}: {len(rep.records)} cases, {rep.count('rejected')} rejected, "
                     f"{rep.count('identical')} identical, {rep.count('accepted')} accepted, 0 crashes, 0 timeouts, "
                     f"peak RSS {peak:.0f} MB, {rep.seconds:.1f} s")


def test_a_crash_fails_the_case_not_the_runner():
    """The harness reports a child that dies (here: SIGSEGV in the second case of a planted class) as a crash of
    that case, and an exhaustion as such: ``test_attack_class`` cannot pass over either."""
    rep = run_class("planted", module="attack_planted", timeout=60, env={"PYTHONPATH": str(TESTS)})
    assert rep.crashed and rep.returncode != 0 and rep.last_started == "segfault", rep
    assert [r["case"] for r in rep.records] == ["rejected first"]
    rep = run_class("planted", module="attack_planted", timeout=60, env={"PYTHONPATH": str(TESTS), "PLANT": "memory"},
                    mem_bytes=1 << 30)
    assert rep.returncode == 0 and [r["outcome"] for r in rep.records] == ["exhausted"], rep
