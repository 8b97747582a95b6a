"""The closing figures of issue 14: every attack class run in a child process under a memory limit and a timeout.

Usage (from the repository root)::

    PYTHONPATH=$PWD .venv/bin/python scripts/attack_report.py [--baseline REV] [--json OUT.json]

Prints, per class: cases tried, rejected / evaluated identically / accepted, crashes, timeouts, the largest peak
RSS of a rejected case; the load time of 1e2..1e4 empty layers against the file size; the knot-straddle figure
of class 7. ``--baseline REV`` also times the same files with the artifact loader of git revision ``REV`` (e.g.
the commit before issue 14) in a child process, for the before/after column.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lutkan.testing.attacks import CLASSES, run_class  # noqa: E402 - after the sys.path line above

MEMORY = {"memory": 4 << 30, "parse": 4 << 30}
BASELINE_TIMEOUT = 120


def _baseline_times(rev: str, layers: list[int]) -> dict[int, float]:
    """Load time of ``empty_model(n)`` files with the loader of revision ``rev`` (a child process)."""
    from lutkan.artifact import to_bytes
    from lutkan.testing.attacks.crafting import empty_model

    out: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as d:
        old = Path(d) / "old"
        old.mkdir()
        archive = subprocess.run(["git", "archive", rev, "lutkan"], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        for n in layers:
            f = Path(d) / f"{n}.lutkan"
            f.write_bytes(to_bytes(empty_model(n)))
            code = (f"import time; from lutkan.artifact import from_bytes; b = open({str(f)!r}, 'rb').read(); "
                    f"t = time.perf_counter(); from_bytes(b); print(time.perf_counter() - t)")
            try:
                r = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(old), "PATH": "/usr/bin:/bin"},
                                   cwd=d, capture_output=True, text=True, timeout=BASELINE_TIMEOUT)
                out[n] = float(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 else float("nan")
            except subprocess.TimeoutExpired:
                out[n] = float("inf")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", help="git revision whose artifact loader to time on the same files")
    ap.add_argument("--json", help="write every case record to this file")
    a = ap.parse_args(argv)
    reports = {name: run_class(name, mem_bytes=MEMORY.get(name, 3 << 30), timeout=600) for name in CLASSES}
    print("| class | cases | rejected | identical | accepted | crashes | timeouts | largest peak RSS of a rejected "
          "case | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, rep in reports.items():
        rej = [r for r in rep.records if r["outcome"] == "rejected"]
        peak = max(rej, key=lambda r: r["peak_mb"]) if rej else None
        crashes = int(rep.returncode not in (0, None)) + len(rep.failures())
        peak_txt = f"{peak['peak_mb']:.0f} MB ({peak['case']})" if peak else "-"
        print(f"| {CLASSES[name][1]} | {len(rep.records)} | {len(rej)} | {rep.count('identical')} | "
              f"{rep.count('accepted')} | {crashes} | {int(rep.timed_out)} | {peak_txt} | {rep.seconds:.1f} |")
    for name, rep in reports.items():
        for r in rep.failures():
            print(f"FAILED {name}: {r['case']}: {r['outcome']}: {r['detail'][:300]}")
        if rep.crashed:
            print(f"CRASHED {name} in case {rep.last_started!r} (rc={rep.returncode}, timeout={rep.timed_out})")
    print("\n| class 2 case | outcome | peak RSS of the child during the case |")
    print("|---|---|---|")
    for r in reports["memory"].records:
        print(f"| {r['case']} | {r['outcome']} | {r['peak_mb']:.0f} MB |")
    loads = [r for r in reports["work"].records if "layers" in r["info"]]
    base = _baseline_times(a.baseline, [r["info"]["layers"] for r in loads]) if a.baseline else {}
    print("\n| empty layers | arrays | file bytes | load s | load s at " + (a.baseline or "-") + " |")
    print("|---|---|---|---|---|")
    for r in loads:
        i = r["info"]
        b = base.get(i["layers"], float("nan"))
        b_txt = f"> {BASELINE_TIMEOUT} (timed out)" if b == float("inf") else f"{b:.3f}"
        print(f"| {i['layers']} | {i['arrays']} | {i['file_bytes']} | {i['load_s']:.3f} | {b_txt} |")
    for r in reports["knots"].records:
        print(f"\nclass 7, {r['case']}: {r['detail']}")
    if a.json:
        Path(a.json).write_text(json.dumps({n: rep.records for n, rep in reports.items()}, indent=1))
    ok = all(not rep.crashed and not rep.failures() for rep in reports.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
