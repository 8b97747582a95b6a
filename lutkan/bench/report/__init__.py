"""Write a run's files: ``results.csv``, ``frontier.csv``, ``results.json``, ``report.md`` and ``plots/*.png``.

``frontier.csv`` holds every (interp, L, scheme) candidate of each trained model with its stored bytes,
error / output std and whether it is on the Pareto frontier (``lutkan.bench.frontier``).

``report.md`` is rendered by ``render_report(results)`` from the results dict alone (what
``results.json`` holds): no number in it is typed by hand, every one goes through ``fmt`` from a
row or from ``results["summary"]``. Re-render a saved run with
``python -m lutkan.bench.report results.json``.

``results.csv`` starts with ``#`` comment lines holding the environment record (read it with
``pandas.read_csv(path, comment="#")`` or skip lines starting with ``#``), then one row per
measurement with the columns of ``lutkan.bench.rows.COLUMNS`` plus ``run_id``.

Modules: ``intro`` (title, environment, method, design constants), ``targets`` (T1-T5, bars and the
analyses of unmet targets), ``accuracy`` (sections 1-4), ``speed`` (sections 5-6, not run, plots),
``frontier`` (sections 7-8: size vs error, LUT vs poly speed), ``files`` (results.csv / results.json). Tables and numbers go through ``lutkan.reporting``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from lutkan.bench.report import accuracy, frontier, intro, speed, targets
from lutkan.bench.report.files import write_csv, write_json


def render_report(results: dict, plot_files: list[str] | None = None) -> str:
    """report.md text from a results dict (as written to results.json)."""
    plots = plot_files if plot_files is not None else results.get("plots", [])
    parts = [intro.header(results), intro.environment(results), intro.method(results), targets.targets(results),
             accuracy.controlled(results), accuracy.init(results), accuracy.trained(results),
             accuracy.robustness(results), speed.speed(results), speed.memory(results), frontier.frontier(results),
             frontier.lutpoly(results), speed.not_run(results), speed.plots(results, plots)]
    return "\n".join(p for p in parts if p)


def write_all(results: dict, out_dir: Path) -> dict:
    """results.csv, frontier.csv, plots, results.json, then report.md rendered from results.json."""
    from lutkan.bench.frontier import write_csv as write_frontier_csv

    out_dir = Path(out_dir)
    write_csv(results, out_dir)
    write_frontier_csv(results["summary"]["frontier"], out_dir)
    try:
        from lutkan.bench.plots import draw_all

        results["plots"] = [str(p.relative_to(out_dir)) for p in draw_all(results, out_dir)]
    except ImportError as e:
        results["plots"] = []
        results["summary"]["not_run"].append({"study": "report", "model": "", "contender": "plots", "batch": "",
                                              "status": "skipped", "reason": f"matplotlib not available: {e}"})
    path = write_json(results, out_dir)
    # The report is rendered from the file just written, not from memory: report.md is a pure
    # function of results.json.
    (out_dir / "report.md").write_text(render_report(json.loads(path.read_text())))
    return results


def main(argv: list[str] | None = None) -> int:
    """``python -m lutkan.bench.report results.json``: write report.md beside it; 3 on a bad file."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m lutkan.bench.report",
                                 description="Re-render report.md (beside the file) from a results.json.")
    ap.add_argument("results", type=Path, help="results.json written by `lutkan bench`")
    path = ap.parse_args(argv).results
    if not path.is_file():
        ap.error(f"{path} is not a file")
    try:
        results = json.loads(path.read_text())
        text = render_report(results)
    except (ValueError, KeyError, TypeError) as e:
        print(f"error: {path} is not a lutkan bench results.json ({type(e).__name__}: {e})", file=sys.stderr)
        return 3
    (path.parent / "report.md").write_text(text)
    print(f"wrote {path.parent / 'report.md'}")
    return 0


__all__ = ["main", "render_report", "write_all"]
