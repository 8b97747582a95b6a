"""The environment record written into every result file (CSV header comments, JSON, report, plots).

Hardware (CPU model, cores, cache, memory), OS, package versions, thread settings, git commit
(read-only ``git rev-parse`` / ``git status --porcelain``), date and load average. The paper's
benchmark recorded none of this (lutkan-reference §8.4); numbers without it cannot be compared.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = ("lutkan", "numpy", "numba", "onnx", "onnxruntime", "onnxruntime-extensions", "onnxscript",
            "torch", "pykan", "scikit-learn", "matplotlib", "tqdm", "psutil")


def _cpuinfo() -> dict:
    info = {"cpu_model": platform.processor() or "unknown", "cache_size": "unknown"}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        key, _, val = line.partition(":")
        key, val = key.strip(), val.strip()
        if key == "model name" and info["cpu_model"] in ("unknown", "", platform.machine()):
            info["cpu_model"] = val
        elif key == "cache size" and info["cache_size"] == "unknown":
            info["cache_size"] = val
    return info


def _mem_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git(root: Path, *args: str) -> str | None:
    try:
        r = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def git_record() -> dict:
    root = Path(__file__).resolve().parents[2]
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        return {"git_commit": "unknown (not a git checkout)", "git_dirty": ""}
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": bool(status)}


def environment(threads: dict | None = None) -> dict:
    """A JSON-able description of this machine and software; ``threads`` from ``timing.pinned_threads``."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    env = {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        **_cpuinfo(),
        "logical_cpus": os.cpu_count(),
        "cpus_usable": affinity,
        "mem_total": _mem_total(),
        "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "versions": {p: _version(p) for p in PACKAGES},
        "threads": threads or {},
        "load_avg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else [],
        **git_record(),
    }
    return env


def one_line(env: dict) -> str:
    """A short footer for plots and CSV headers."""
    v = env.get("versions", {})
    return (f"{env.get('cpu_model')} ({env.get('cpus_usable')} cpus), python {env.get('python')}, "
            f"numpy {v.get('numpy')}, numba {v.get('numba')}, onnxruntime {v.get('onnxruntime')}, "
            f"torch {v.get('torch')}, pykan {v.get('pykan')}, git {str(env.get('git_commit'))[:10]}"
            f"{'+dirty' if env.get('git_dirty') else ''}, {env.get('date')}")


__all__ = ["environment", "git_record", "one_line"]
