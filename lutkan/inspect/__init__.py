"""``lutkan inspect``: describe a ``.lutkan`` artifact or an exported ``.onnx`` file.

``describe.describe`` gives the description as a dict and ``describe.format_text`` renders it;
``--edges`` adds the per-edge error report against the source model (``edges.write_edge_report``:
``edges.csv`` and one heatmap per layer). ``inspect_main`` is the CLI entry.
"""

from __future__ import annotations

import json
from pathlib import Path

from lutkan.inspect import describe, edges


def inspect_main(a) -> int:
    """Entry point of ``lutkan inspect`` (args: model, json, edges, source, out, quiet)."""
    path = Path(a.model)
    d = describe.describe(path)
    if getattr(a, "edges", False):
        model, src = edges.model_for_edges(path, d["kind"], d, getattr(a, "source", None))
        d["edge_report"] = edges.write_edge_report(model, src, getattr(a, "out", None) or "inspect-out",
                                                   label=f"{path.name}: ")
    if getattr(a, "json", False):
        print(json.dumps(d, indent=2, default=str))
        return 0
    print(describe.format_text(d))
    if "edge_report" in d:
        r = d["edge_report"]
        print(f"edge report: {r['rows']} edges -> {r['csv']}, heatmaps {', '.join(r['png'])}")
        print(f"  {'layer':>5} {'edges':>6} {'max_tab_error':>14} {'max_grid_error':>15}")
        for e in r["per_layer"]:
            print(f"  {e['layer']:>5} {e['edges']:>6} {e['max_tab_error']:>14.4g} {e['max_grid_error']:>15.4g}")
    return 0


__all__ = ["inspect_main"]
