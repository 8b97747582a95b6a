"""What the demo writes and prints: ``results.json`` (``build_results``), ``report.md`` (``report_md``)
and the console summary (``print_summary``). Markdown tables come from ``lutkan.reporting``."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict
from pathlib import Path

import numpy as np

from lutkan.demo.config import REL_TOL, DemoConfig, DemoData, Row
from lutkan.reporting import DASH, md_table

# ----------------------------------------------------------------------------- cells


def fmt_kb(n) -> str:
    """Bytes as kB with one decimal."""
    return DASH if n is None else f"{n / 1024:.1f}"


def fmt_us(v) -> str:
    """A latency in µs: no decimals from 100 µs on, one below."""
    if v is None or not np.isfinite(v):
        return DASH
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}"


def fmt_pct(v) -> str:
    return f"{100 * v:.2f}%"


def _speedup(ref: float | None, v: float | None) -> str:
    if not ref or not v or not np.isfinite(v):
        return DASH
    return f"{ref / v:.0f}×" if ref / v >= 10 else f"{ref / v:.1f}×"


def table_mode(data: DemoData) -> str:
    """Which metric columns the tables show: ``labelled`` / ``unlabelled`` classification, ``regression`` /
    ``regression-targets``."""
    if data.task == "regression":
        return "regression-targets" if data.labelled else "regression"
    return "labelled" if data.labelled else "unlabelled"


def _acc_header(labelled: str) -> list[str]:
    if labelled.startswith("regression"):
        return (["L", "scheme", "RMSE vs pykan", "R² vs pykan"]
                + (["RMSE vs targets", "R² vs targets"] if labelled == "regression-targets" else [])
                + ["max abs err vs pykan", "max abs err / max abs pykan", "ONNX = numpy"])
    if labelled == "labelled":
        return ["L", "scheme", "accuracy", "F1", "changed preds", "cm Δ", "max abs err vs pykan",
                "max abs err / max abs pykan", "ONNX = numpy"]
    return ["L", "scheme", "agreement", "changed preds", "max abs err vs pykan", "max abs err / max abs pykan",
            "ONNX = numpy"]


def _acc_cells(r: Row, labelled: str) -> list[str]:
    ok = "ok" if r.ok else "FAIL"
    m = r.metrics
    if not m:
        return [str(r.L), r.scheme] + [DASH] * (len(_acc_header(labelled)) - 3) + [ok]
    if labelled.startswith("regression"):
        tgt = [f"{m['rmse']:.4g}", f"{m['r2']:.4f}"] if labelled == "regression-targets" else []
        return [str(r.L), r.scheme, f"{m['rmse_vs_pykan']:.3g}", f"{m['r2_vs_pykan']:.6f}", *tgt,
                f"{r.max_abs_err:.3g}", f"{r.max_rel_err:.2e}", ok]
    if labelled == "labelled":
        return [str(r.L), r.scheme, fmt_pct(m["accuracy"]), f"{m['f1']:.4f}", str(m["changed"]), str(m["cm_diff"]),
                f"{r.max_abs_err:.3g}", f"{r.max_rel_err:.2e}", ok]
    return [str(r.L), r.scheme, fmt_pct(m["agreement"]), str(m["changed"]), f"{r.max_abs_err:.3g}",
            f"{r.max_rel_err:.2e}", ok]


def _lat_header(n: int) -> list[str]:
    return ["L", "scheme", "ORT function b=1", "ORT standard b=1", "ORT +plugin b=1", f"ORT function b={n}",
            f"ORT standard b={n}", f"ORT +plugin b={n}", "speed-up vs pykan b=1 / b=" + str(n) + " (plugin)"]


def _lat_cells(r: Row, ref_lat: dict) -> list[str]:
    g = r.latency_us.get
    return [str(r.L), r.scheme, fmt_us(g("ort-function@1")), fmt_us(g("ort-standard@1")),
            fmt_us(g("plugin-function@1")), fmt_us(g("ort-function@N")), fmt_us(g("ort-standard@N")),
            fmt_us(g("plugin-function@N")),
            f"{_speedup(ref_lat.get('pykan@1'), g('plugin-function@1'))} / "
            f"{_speedup(ref_lat.get('pykan@N'), g('plugin-function@N'))}"]


def _size_header() -> list[str]:
    return ["L", "scheme", "table bytes", ".lutkan (kB)", "function.onnx (kB)", "standard.onnx (kB)",
            "custom.onnx (kB)"]


def _size_cells(r: Row) -> list[str]:
    s = r.sizes
    return [str(r.L), r.scheme, str(r.table_bytes), fmt_kb(s.get("lutkan")), fmt_kb(s.get("function")),
            fmt_kb(s.get("standard")), fmt_kb(s.get("custom"))]


# ----------------------------------------------------------------------------- results.json


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("lutkan", "numpy", "onnx", "onnxruntime", "onnxruntime-extensions", "numba", "torch", "pykan"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def _checkpoint_bytes(source: str) -> int | None:
    """Size of the pykan checkpoint's state + config files (the float model a user would ship)."""
    p = Path(source)
    if p.is_dir():
        return None
    files = [p.with_name(p.name + suffix) for suffix in ("_state", "_config.yml")]
    return sum(f.stat().st_size for f in files) if all(f.is_file() for f in files) else None


def _command(cfg: DemoConfig) -> str:
    parts = ["lutkan demo"]
    if cfg.model:
        parts.append(f"--model {cfg.model}")
    if cfg.data:
        parts.append(f"--data {cfg.data}")
    parts.append(f"--L {','.join(map(str, cfg.Ls))} --schemes {','.join(cfg.schemes)}")
    if cfg.threads != 1:
        parts.append(f"--threads {cfg.threads}")
    parts.append(f"--out {cfg.out}")
    return " ".join(parts)


def build_results(cfg: DemoConfig, *, name: str, source: str, width, data: DemoData, ref_cls: dict, ref_lat: dict,
                  rows: list[Row], primary: Row, plots: list[str], wall: float) -> dict:
    """The results dict written as ``results.json`` (and returned by ``run_demo``)."""
    ref = {k: v for k, v in ref_cls.items() if k not in ("pred", "y")}
    return {
        "model": name, "source": source, "width": width, "data": data.desc, "rows": data.n,
        "labelled": data.labelled, "task": data.task,
        "pykan": {**ref, "latency_us": ref_lat, "checkpoint_bytes": _checkpoint_bytes(source)},
        "threads": cfg.threads,
        "configs": [{**asdict(r), "ok": r.ok} for r in rows],
        "primary": primary.tag, "files": [f for r in rows for f in r.files], "plots": plots, "wall_s": wall,
        "ok": all(r.ok for r in rows), "versions": _versions(), "cpu_count": os.cpu_count(),
        "command": _command(cfg), "rel_tol": REL_TOL,
    }


def _json_default(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    return str(o)


# ----------------------------------------------------------------------------- report.md


def _intro_md(res: dict, rows: list[Row]) -> list[str]:
    n_out = res["width"][-1]
    rule = ("the raw outputs (regression)" if res["task"] == "regression" else
            "logit > 0 → class 1" if n_out == 1 else "argmax of the logits")
    return [f"# lutkan demo: `{res['model']}`", "",
            f"`{res['command']}` — {len(rows)} configurations in {res['wall_s']:.1f} s on {res['cpu_count']} "
            "CPU(s).", "",
            f"- model: `{res['source']}`, width {res['width']} (prediction: {rule})",
            f"- inputs: {res['rows']} rows from {res['data']}",
            "- each configuration (L = samples per knot interval, table scheme) is compiled, exported to the three "
            "ONNX forms and run in onnxruntime: `function` and `standard` plain, `function` and `custom` with the "
            "lutkan plugin. Every output is checked against the NumPy reference evaluator "
            f"(|onnx − numpy| ≤ {REL_TOL:g}·max(1, max|numpy|)).",
            f"- status: **{'PASS: all ONNX outputs equal the NumPy reference' if res['ok'] else 'FAIL (see below)'}**",
            ""]


def _accuracy_md(res: dict, rows: list[Row], ref_cls: dict, labelled: str, primary: Row) -> list[str]:
    n_out = res["width"][-1]
    md = ["## Accuracy vs pykan", ""]
    if labelled.startswith("regression"):
        md += ["Regression: `RMSE vs pykan` and `R² vs pykan` compare the LUT model's outputs with pykan's own "
               "forward on the same inputs (R² = 1 − SSE/SST over all outputs)"
               + (f"; pykan itself has RMSE **{ref_cls['rmse']:.4g}** and R² **{ref_cls['r2']:.4f}** against the "
                  "targets" if labelled == "regression-targets" else "; no targets were given") + ".", ""]
    elif labelled == "labelled":
        macro = " (macro)" if n_out > 1 else ""
        md += [f"pykan's own forward (torch, float32): accuracy **{fmt_pct(ref_cls['accuracy'])}**, "
               f"F1{macro} **{ref_cls['f1']:.4f}**. `changed preds`: rows whose predicted class differs from "
               "pykan's; `cm Δ`: sum of absolute differences between the two confusion matrices; errors are on "
               "the raw model outputs (logits).", ""]
    else:
        md += ["No labels: `agreement` is the share of rows where the LUT model predicts the same "
               f"{'sign of the logit' if n_out == 1 else 'argmax'} as pykan; errors are on the raw model outputs.",
               ""]
    md += [md_table(_acc_header(labelled), [_acc_cells(r, labelled) for r in rows])]
    if labelled == "labelled" and "cm" in primary.metrics:
        md += [f"Confusion matrices (rows: true class, columns: predicted), L={primary.L} {primary.scheme}: "
               f"pykan `{ref_cls['cm'].tolist()}`, LUT `{primary.metrics['cm']}`.", ""]
    fails = [(r, f) for r in rows for f in r.failures]
    if fails:
        md += ["### FAIL", ""] + [f"- L={r.L} {r.scheme}: {f}" for r, f in fails] + [""]
    notes = [(r, f) for r in rows for f in r.notes]
    if notes:
        md += ["Notes:", ""] + [f"- L={r.L} {r.scheme}: {f}" for r, f in notes] + [""]
    return md


def _latency_md(res: dict, rows: list[Row], ref_lat: dict, n: int) -> list[str]:
    return [f"## Latency (median µs; onnxruntime intra_op_num_threads={res['threads']}, torch threads="
            f"{res['threads']})", "",
            f"pykan's forward (torch, `model(x)` under `no_grad`): batch 1 **{fmt_us(ref_lat['pykan@1'])} µs**, "
            f"batch {n} **{fmt_us(ref_lat['pykan@N'])} µs**. `ORT function`: the `function` file in plain "
            "onnxruntime (it runs the LUTKanEdge function body of standard ops); `ORT standard`: the inlined "
            "standard-op file; `ORT +plugin`: the `function` file with the lutkan plugin registered (the "
            "Numba kernel runs each LUTKanEdge node). Timed with `session.run` on prepared inputs by the "
            "bench's harness (`lutkan.bench.timing.time_calls`: threads pinned, the three sessions of a "
            "configuration interleaved in shuffled rounds at each batch size); the median of all timed calls.",
            "", md_table(_lat_header(n), [_lat_cells(r, ref_lat) for r in rows])]


def _sizes_md(res: dict, rows: list[Row]) -> list[str]:
    ck = res["pykan"]["checkpoint_bytes"]
    return ["## Sizes", "",
            "`table bytes`: stored tables + scales/offsets + knots; files in kB"
            + (f"; the pykan checkpoint (state + config) is {fmt_kb(ck)} kB." if ck else "."), "",
            md_table(_size_header(), [_size_cells(r) for r in rows])]


def _files_md(res: dict) -> list[str]:
    md = ["## Plots", ""]
    for p in res["plots"]:
        md += [f"![{p}]({p})", ""]
    fn = next((f for f in res["files"] if f.endswith(".function.onnx")), None)
    md += ["## Files", ""] + [f"- `{f}`" for f in res["files"]] + [""]
    if fn:
        md += ["Try them (from this folder):", "", "```bash",
               f"lutkan inspect {fn}",
               f"python -c \"import numpy as np; np.save('x.npy', np.zeros((4, {res['width'][0]}), np.float32))\"",
               f"lutkan run {fn} --input x.npy -o y.npy            # plain onnxruntime",
               f"lutkan run {fn} --input x.npy -o y.npy --plugin   # with the lutkan kernel",
               f"netron {fn}                                       # pip install netron", "```", ""]
    return md


def report_md(res: dict, rows: list[Row], ref_cls: dict, ref_lat: dict, labelled: str, n: int,
              primary: Row) -> str:
    """The ``report.md`` text: status, accuracy vs pykan, latency, sizes, plots, files, environment."""
    env = ", ".join(f"{k} {val}" for k, val in res["versions"].items())
    md = (_intro_md(res, rows) + _accuracy_md(res, rows, ref_cls, labelled, primary)
          + _latency_md(res, rows, ref_lat, n) + _sizes_md(res, rows) + _files_md(res)
          + ["## Environment", "", env, ""])
    return "\n".join(md)


def write_files(out: Path, results: dict, rows: list[Row], ref_cls: dict, ref_lat: dict, data: DemoData,
                primary: Row) -> None:
    """``out/results.json`` and ``out/report.md``."""
    (out / "results.json").write_text(json.dumps(results, indent=2, default=_json_default))
    (out / "report.md").write_text(report_md(results, rows, ref_cls, ref_lat, table_mode(data), data.n, primary))


# ----------------------------------------------------------------------------- console


def _text_table(header: list[str], rows: list[list[str]]) -> str:
    w = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    out = ["  ".join(h.rjust(w[i]) for i, h in enumerate(header))]
    out += ["  ".join(c.rjust(w[i]) for i, c in enumerate(r)) for r in rows]
    return "\n".join(out)


_CONSOLE = {"labelled": ["acc", "F1", "Δpred", "cmΔ"], "unlabelled": ["agree", "Δpred"],
            "regression": ["R² vs pykan"], "regression-targets": ["R² vs pykan", "RMSE", "R²"]}


def _console_metrics(m: dict, labelled: str) -> list[str]:
    if labelled == "labelled":
        return [fmt_pct(m["accuracy"]), f"{m['f1']:.4f}", str(m["changed"]), str(m["cm_diff"])]
    if labelled == "unlabelled":
        return [fmt_pct(m["agreement"]), str(m["changed"])]
    return [f"{m['r2_vs_pykan']:.6f}"] + ([f"{m['rmse']:.4g}", f"{m['r2']:.4f}"] if labelled.endswith("targets")
                                          else [])


def console_table(rows: list[Row], labelled: str, n: int) -> str:
    """The compact per-configuration table printed at the end of a run (``labelled``: ``table_mode``)."""
    header = ["L", "scheme", *_CONSOLE[labelled]]
    header += ["max|err|", "ONNX=np", "fn b1 µs", "plug b1 µs", f"fn b{n} µs", f"plug b{n} µs", ".lutkan kB",
               "fn.onnx kB"]
    cells = []
    for r in rows:
        m, g = r.metrics, r.latency_us.get
        c = [str(r.L), r.scheme]
        c += [DASH] * len(_CONSOLE[labelled]) if not m else _console_metrics(m, labelled)
        c += [f"{r.max_abs_err:.3g}", "ok" if r.ok else "FAIL", fmt_us(g("ort-function@1")),
              fmt_us(g("plugin-function@1")), fmt_us(g("ort-function@N")), fmt_us(g("plugin-function@N")),
              fmt_kb(r.sizes.get("lutkan")), fmt_kb(r.sizes.get("function"))]
        cells.append(c)
    return _text_table(header, cells)


def print_summary(cfg: DemoConfig, results: dict, rows: list[Row], ref_cls: dict, ref_lat: dict, data: DemoData,
                  out: Path) -> None:
    """pykan's figures, the console table and every FAIL (unless ``cfg.quiet``), then the status line."""
    n, n_out = data.n, results["width"][-1]
    if not cfg.quiet:
        print()
        if data.task == "regression":
            fit = (f"RMSE {ref_cls['rmse']:.4g}, R² {ref_cls['r2']:.4f} vs the targets; " if data.labelled
                   else "no targets; ")
            print(f"pykan (float): regression, {fit}latency b=1 {fmt_us(ref_lat['pykan@1'])} µs, b={n} "
                  f"{fmt_us(ref_lat['pykan@N'])} µs (torch, {cfg.threads} thread)")
        elif data.labelled:
            print(f"pykan (float): accuracy {fmt_pct(ref_cls['accuracy'])}, F1 {ref_cls['f1']:.4f}; latency "
                  f"b=1 {fmt_us(ref_lat['pykan@1'])} µs, b={n} {fmt_us(ref_lat['pykan@N'])} µs (torch, "
                  f"{cfg.threads} thread)")
        else:
            print(f"pykan (float): latency b=1 {fmt_us(ref_lat['pykan@1'])} µs, b={n} {fmt_us(ref_lat['pykan@N'])} "
                  f"µs (torch, {cfg.threads} thread); no labels: agreement = same "
                  f"{'sign' if n_out == 1 else 'argmax'}")
        print(console_table(rows, table_mode(data), n))
        for r in rows:
            for f in r.failures:
                print(f"FAIL L={r.L} {r.scheme}: {f}")
    n_fail = sum(not r.ok for r in rows)
    status = "all ONNX outputs equal the NumPy reference" if not n_fail else f"{n_fail} configuration(s) FAILED"
    print(f"demo: {len(rows)} configurations in {results['wall_s']:.1f} s; {status}; report {out / 'report.md'}")


__all__ = ["build_results", "console_table", "table_mode", "fmt_kb", "fmt_pct", "fmt_us", "print_summary", "report_md",
           "write_files"]
