"""``lutkan inspect``: describe a ``.lutkan`` artifact or an exported ``.onnx`` file.

``describe`` (``describe.py``) gives the description as a dict and ``format_text`` renders it;
``--edges`` adds the per-edge error report against the source model (``edges.py``: ``edges.csv`` and
one heatmap per layer). ``inspect_main`` is the CLI entry.
"""

from __future__ import annotations

import json
from pathlib import Path

from lutkan.inspect.describe import describe, format_text
from lutkan.inspect.edges import edge_errors, model_for_edges, write_edge_report


def inspect_main(a) -> int:
    """Entry point of ``lutkan inspect`` (args: model, json, edges, source, out, quiet)."""
    path = Path(a.model)
    d = describe(path)
    if getattr(a, "edges", False):
        model, src = model_for_edges(path, d["kind"], d, getattr(a, "source", None))
        d["edge_report"] = write_edge_report(model, src, getattr(a, "out", None) or "inspect-out",
                                             label=f"{path.name}: ")
    if getattr(a, "json", False):
        print(json.dumps(d, indent=2, default=str))
        return 0
    print(format_text(d))
    if "edge_report" in d:
        r = d["edge_report"]
        print(f"edge report: {r['rows']} edges -> {r['csv']}, heatmaps {', '.join(r['png'])}")
        print(f"  {'layer':>5} {'edges':>6} {'max_tab_error':>14} {'max_grid_error':>15}")
        for e in r["per_layer"]:
            print(f"  {e['layer']:>5} {e['edges']:>6} {e['max_tab_error']:>14.4g} {e['max_grid_error']:>15.4g}")
    return 0


__all__ = ["describe", "edge_errors", "format_text", "inspect_main", "write_edge_report"]
