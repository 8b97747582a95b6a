"""Profiles of the study and the driver that runs them (``run_bench``), with a tqdm progress bar.

``full`` is the whole study. ``quick`` keeps every part of it but reduces seeds, combinations, batch
sizes and repeats (each reduction is listed in ``Profile.reductions`` and printed in the report).
``smoke`` is a hidden, seconds-long configuration for the test suite: tiny models, one checkpoint.
"""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from lutkan.bench import accuracy, frontier, lutpoly, memory, speed
from lutkan.bench.env import environment
from lutkan.bench.rows import row, skipped
from lutkan.bench.timing import pinned_threads
from lutkan.bench.zoo import BenchModel, checkpoint_paths, load_checkpoint, random_model
from lutkan.exporter import export

SCHEMA = "lutkan-bench/1"
ALL_CELLS = (("closed", "clip"), ("closed", "zero"), ("half_open", "clip"), ("half_open", "zero"),
             ("closed", "extrapolate"), ("half_open", "extrapolate"))


@dataclass(frozen=True)
class Profile:
    name: str
    # controlled sweep / init study
    seeds: int = 5
    sweep_L: tuple[int, ...] = (16, 32, 64, 128)
    sweep_schemes: tuple[str, ...] = ("int8", "uint8", "float16")
    sweep_interps: tuple[str, ...] = ("linear", "nearest")
    nearest_L: tuple[int, ...] = (16, 32, 64, 128)
    init_L: tuple[int, ...] = (16, 64)
    # trained checkpoints
    trained_models: tuple[str, ...] | None = None  # None = every checkpoint found
    trained_L: tuple[int, ...] = (16, 32, 64, 128)
    trained_schemes: tuple[str, ...] = ("int8", "uint8", "float16")
    use_pykan: bool = True
    # robustness matrix
    robust_L: int = 64
    robust_schemes: tuple[str, ...] = ("int8", "uint8")
    robust_cells: tuple[tuple[str, str], ...] = ALL_CELLS
    robust_random_seeds: int = 5
    robust_models: tuple[str, ...] = ("ids78", "mguo_gwp_symbolic")
    # speed
    speed_model: str = "ids78"
    speed_fallback_width: tuple[int, ...] = (78, 32, 16, 1)
    speed_L: int = 64
    speed_scheme: str = "int8"
    batches: tuple[int, ...] = (1, 16, 64, 256, 1024, 4096)
    min_repeats: int = 50
    min_time: float = 1.0
    max_repeats: int = 2000
    warmup: int = 10
    cell_budget_s: float = 300.0
    essential_budget_s: float = 900.0  # contenders a target depends on (speed.essential)
    deployment: bool = True
    pykan_torch: bool = True  # pykan torch / torch.onnx contenders (need torch + pykan)
    pykan_exporters: tuple[str, ...] = ("dynamo", "legacy")
    pykan_symbolic_on: bool = True
    lut_forms_plain: tuple[str, ...] = ("function", "standard")
    lut_forms_plugin: tuple[str, ...] = ("function", "custom")
    # memory
    memory_grid: tuple[tuple[int, str], ...] = tuple((L, s) for s in ("int8", "uint8", "float16")
                                                     for L in (16, 32, 64, 128))
    rss_batch: int = 4096
    rss_probes: tuple[str, ...] = ("lut-onnx-function-ort", "lut-onnx-standard-ort", "lut-onnx-function-plugin",
                                   "lut-numba", "pykan-onnx-dynamo-ort", "pykan-onnx-legacy-ort")
    # size-vs-error frontier of every (interp, L, scheme) candidate (frontier.py)
    frontier_models: tuple[str, ...] | None = None  # None = every checkpoint found
    frontier_Ls: tuple[int, ...] = (16, 32, 64, 128)
    frontier_schemes: tuple[str, ...] = ("int8", "uint8", "float16", "float32")
    frontier_interps: tuple[str, ...] = ("linear", "nearest", "poly")
    # LUT vs poly kernel speed (lutpoly.py)
    kernel_models: tuple[str, ...] = ("ids78", "ramyar_digits_wide")
    kernel_L: int = 64
    kernel_scheme: str = "int8"
    kernel_poly_scheme: str = "float32"
    kernel_batches: tuple[int, ...] = (1, 64, 4096)
    reductions: tuple[str, ...] = field(default=())
    threads: int = 1  # compute threads of every backend (onnxruntime intra-op, torch, numba, BLAS)


FULL = Profile("full")
QUICK = Profile(
    "quick", seeds=2, nearest_L=(16, 64), init_L=(64,), trained_L=(64,), robust_schemes=("int8",),
    robust_cells=ALL_CELLS[:5], robust_random_seeds=2, batches=(1, 64, 256, 4096), min_repeats=20, min_time=0.0,
    max_repeats=400, warmup=3, cell_budget_s=8.0, essential_budget_s=60.0, pykan_exporters=("legacy",),
    pykan_symbolic_on=False, frontier_Ls=(16, 64),
    lut_forms_plugin=("function",), memory_grid=((16, "int8"), (64, "int8"), (64, "uint8"), (64, "float16"),
                                                 (128, "int8")),
    rss_probes=("lut-onnx-function-ort", "lut-onnx-function-plugin", "lut-numba", "pykan-onnx-legacy-ort"),
    reductions=(
        "2 seeds instead of 5 (controlled sweep, init study, robustness on random models)",
        "nearest interpolation only at L in {16, 64}",
        "trained checkpoints at L=64 only (full: L in {16, 32, 64, 128})",
        "robustness: int8 only, extrapolate only with the closed boundary",
        "batch sizes {1, 64, 256, 4096} instead of {1, 16, 64, 256, 1024, 4096}",
        "at least 20 timed repeats per contender and batch (full: at least 50 and at least 1 s per cell), "
        "3 warm-up calls (full: 10)",
        "contenders whose estimated 20 repeats exceed 8 s per cell are not timed (recorded as skipped; the "
        "contenders a target depends on get 60 s)",
        "PyKAN exported with the legacy TorchScript exporter only (the dynamo graph takes ~7 s to export; "
        "it ran 0-24 % faster in ORT in the research measurements, so the quick ratio against PyKAN-in-ORT "
        "is slightly flattering)",
        "no 'symbolic branch on' pykan contender; plugin timed for the function form only",
        "memory: 5 (L, scheme) points; 4 RSS probes",
        "size-vs-error frontier: table candidates at L in {16, 64} only (full: L in {16, 32, 64, 128})",
    ))
SMOKE = Profile(
    "smoke", seeds=2, sweep_L=(16, 64), sweep_schemes=("int8", "float16"), sweep_interps=("linear",), nearest_L=(),
    init_L=(64,), trained_models=("breast_cancer",), trained_L=(64,), trained_schemes=("int8",), use_pykan=False,
    frontier_models=("breast_cancer",), frontier_Ls=(16, 64), frontier_schemes=("int8", "float16", "float32"),
    kernel_models=("breast_cancer",), kernel_batches=(1, 64),
    robust_schemes=("int8",), robust_cells=ALL_CELLS[:4], robust_random_seeds=1, robust_models=(),
    speed_model="random", speed_fallback_width=(12, 6, 1), batches=(1, 64), min_repeats=20, min_time=0.0,
    max_repeats=100, warmup=2, cell_budget_s=2.0, essential_budget_s=4.0, pykan_torch=False, pykan_exporters=(),
    pykan_symbolic_on=False,
    lut_forms_plain=("function",), lut_forms_plugin=("function",), memory_grid=((64, "int8"),), rss_batch=256,
    rss_probes=("lut-onnx-function-ort",),
    reductions=("smoke profile (test suite only): tiny random models, one checkpoint, no pykan, 2 batch sizes",
                "torch/pykan contenders are not built (pykan_torch=False)",
                "frontier and LUT vs poly speed on breast_cancer only: L in {16, 64}, int8, float16 and float32, batches 1 "
                "and 64"))
PROFILES = {"full": FULL, "quick": QUICK, "smoke": SMOKE}

COMPONENTS = (
    ("torch", (), "pykan forward, reading checkpoints, PyKAN via torch.onnx.export"),
    ("kan", ("KAN",), "pykan models"),
    ("matplotlib", (), "plots"),
)


class Progress:
    """A tqdm bar over the study's stages; ``tick(msg)`` shows what is running inside a stage."""

    def __init__(self, stages: list[str], enabled: bool):
        self.bar = tqdm(total=len(stages), unit="stage", desc="lutkan bench", disable=not enabled,
                        dynamic_ncols=True, leave=True)

    def stage(self, name: str) -> None:
        self.bar.set_description(f"lutkan bench: {name}")

    def tick(self, msg: str) -> None:
        self.bar.set_postfix_str(msg[:60], refresh=True)

    def done(self) -> None:
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _component_rows() -> list[dict]:
    """Which optional packages this run can use (looked up without importing them: importing pykan alone
    takes seconds)."""
    import importlib.util
    from importlib import metadata

    rows = []
    for mod, _names, what in COMPONENTS:
        dist = {"kan": "pykan"}.get(mod, mod)
        if importlib.util.find_spec(mod) is None:
            rows.append(skipped("deps", f"{mod} is not installed (needed for: {what})", metric="available",
                                contender=mod))
            continue
        try:
            ver = metadata.version(dist)
        except metadata.PackageNotFoundError:
            ver = "n/a"
        rows.append(row("deps", "available", 1, contender=mod, note=f"{what}; version {ver}"))
    return rows


def _load_checkpoints(p: Profile, rows: list[dict]) -> list[BenchModel]:
    found, notes = checkpoint_paths()
    for n in notes:
        rows.append(skipped("accuracy_trained", n))
    models = []
    for name, kind, path in found:
        wanted = (p.trained_models is None or name in p.trained_models or name in p.robust_models
                  or name == p.speed_model or p.frontier_models is None or name in p.frontier_models
                  or name in p.kernel_models)
        if not wanted:
            continue
        try:
            models.append(load_checkpoint(name, kind, path))
        except ImportError as e:
            rows.append(skipped("accuracy_trained", f"cannot read checkpoints: {e}", model=name))
        except Exception as e:  # noqa: BLE001 - a checkpoint the reader refuses is a result
            rows.append(skipped("accuracy_trained", f"load_source failed: {type(e).__name__}: {e}",
                                status="failed", model=name))
    return models


def _speed_model(p: Profile, ckpts: list[BenchModel], rows: list[dict]) -> BenchModel:
    for bm in ckpts:
        if bm.name == p.speed_model:
            return bm
    bm = random_model(list(p.speed_fallback_width), 5, 3, 0, "trained-like")
    if p.speed_model != "random":
        rows.append(skipped("speed", f"checkpoint {p.speed_model!r} not available; speed and memory use "
                                     f"{bm.name} (grid 5, k 3, seed 0) instead", model=p.speed_model))
    return bm


def run_bench(profile: str, out_dir: Path, *, progress: bool = True, quiet: bool = False, threads: int = 1) -> dict:
    """Run the study ``profile`` (quick | full | smoke) and write results.csv/json, frontier.csv, report.md and
    plots into ``out_dir``. Returns the results dict (what results.json holds)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose quick or full")
    p = dataclasses.replace(PROFILES[profile], threads=int(threads))
    with pinned_threads(threads) as thread_rec:
        return _run_pinned(p, profile, Path(out_dir), thread_rec, progress=progress, quiet=quiet)


def _run_pinned(p: Profile, profile: str, out_dir: Path, thread_rec: dict, *, progress: bool, quiet: bool) -> dict:
    art = out_dir / "artifacts"
    art.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    env = environment(thread_rec)
    stages = ["components", "checkpoints", "controlled sweep", "init amplitude", "trained models", "frontier",
              "robustness", "speed", "lut vs poly", "memory", "report"]
    bar = Progress(stages, progress and not quiet)
    rows: list[dict] = []
    stage_s: dict[str, float] = {}

    def run_stage(name, fn):
        bar.stage(name)
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fn()
        stage_s[name] = round(time.perf_counter() - t, 3)
        bar.done()
        return out

    try:
        rows += run_stage("components", _component_rows)
        ckpts = run_stage("checkpoints", lambda: _load_checkpoints(p, rows))
        trained = [bm for bm in ckpts if p.trained_models is None or bm.name in p.trained_models]
        rows += run_stage("controlled sweep", lambda: accuracy.controlled(p, bar.tick))
        rows += run_stage("init amplitude", lambda: accuracy.init_amplitude(p, trained, bar.tick))
        rows += run_stage("trained models", lambda: accuracy.trained(p, trained, bar.tick))
        rows += run_stage("frontier", lambda: frontier.run(p, ckpts, bar.tick))
        robust = [random_model(accuracy.CONTROLLED_WIDTH, accuracy.CONTROLLED_GRID, accuracy.CONTROLLED_K, s)
                  for s in range(p.robust_random_seeds)]
        robust += [bm for bm in ckpts if bm.name in p.robust_models]
        rows += run_stage("robustness", lambda: accuracy.robustness(p, robust, bar.tick))

        sm = _speed_model(p, ckpts, rows)
        cache: dict = {}

        def compile_fn(L, scheme):
            from lutkan.compiler import compile_model
            from lutkan.contract import ContractOptions

            if (L, scheme) not in cache:
                cache[(L, scheme)] = compile_model(sm.src, ContractOptions(L=L, scheme=scheme))
            return cache[(L, scheme)]

        lut = compile_fn(p.speed_L, p.speed_scheme)
        rows.append(row("speed", "edges", sum(layer.n_edges for layer in lut.layers), model=sm.name,
                        L=p.speed_L, scheme=p.speed_scheme, note=f"width {sm.src.width}"))
        rows += run_stage("speed", lambda: speed.speed_study(p, sm, lut, art, bar.tick))
        rows += run_stage("lut vs poly", lambda: lutpoly.study(p, ckpts, art, bar.tick))
        rows += run_stage("memory", lambda: _memory(p, sm, lut, compile_fn, art))
        env["load_avg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else []
        from lutkan.bench import report
        from lutkan.bench.report.files import write_json
        from lutkan.bench.report.intro import design
        from lutkan.bench.summary import summarize

        results = {
            "schema": SCHEMA, "run_id": uuid.uuid4().hex[:12], "profile": asdict(p), "env": env,
            "speed_model": {"name": sm.name, "width": list(sm.src.width), "grid": sm.grid,
                            "k": sm.src.layers[0].k},
            "stage_seconds": stage_s, "design": design(), "rows": rows,
        }
        results["summary"] = summarize(results)
        results["wall_time_s"] = round(time.perf_counter() - t_start, 2)
        run_stage("report", lambda: report.write_all(results, out_dir))
        results["report_seconds"] = stage_s.pop("report")  # report.md was rendered without it
    finally:
        bar.close()
    results["wall_time_s_with_report"] = round(time.perf_counter() - t_start, 2)
    write_json(results, out_dir)  # the same content plus the final wall time
    if not quiet:
        print(f"lutkan bench --profile {profile}: {len(rows)} result rows in {results['wall_time_s_with_report']} s "
              f"-> {out_dir}/results.csv, results.json, frontier.csv, report.md, plots/")
    return results


def _memory(p: Profile, sm: BenchModel, lut, compile_fn, art: Path) -> list[dict]:
    from lutkan.artifact import save

    rows = memory.static_rows(sm, compile_fn, list(p.memory_grid))
    tag = f"{sm.name}-L{lut.contract.L}-{lut.contract.scheme}"
    lutkan_path = save(lut, art / f"{tag}.lutkan")
    files = {"lutkan-artifact": lutkan_path}
    for form in ("function", "standard", "custom"):
        files[f"lut-onnx-{form}"] = art / f"{tag}-{form}.onnx"
    for form in ("function", "standard", "custom"):
        if not files[f"lut-onnx-{form}"].is_file():
            files[f"lut-onnx-{form}"].write_bytes(export(lut, form=form).SerializeToString())
    for e in ("dynamo", "legacy"):
        if e in p.pykan_exporters:
            files[f"pykan-onnx-{e}"] = art / f"{sm.name}-pykan-{e}.onnx"
    if sm.path is not None:
        state = Path(str(sm.path) + "_state")
        if state.is_file():
            files["pykan-checkpoint-state"] = state
    rows += memory.file_rows(sm, files, lut.contract.L, lut.contract.scheme)
    probes = {}
    for name in p.rss_probes:
        if name == "lut-numba":
            probes[name] = ("numba", lutkan_path)
        elif name.startswith("lut-onnx-"):
            form = name.split("-")[2]
            probes[name] = ("ort-plugin" if name.endswith("plugin") else "ort", files[f"lut-onnx-{form}"])
        elif name.startswith("pykan-onnx-"):
            e = name.split("-")[2]
            probes[name] = ("ort", art / f"{sm.name}-pykan-{e}.onnx")
    rows += memory.rss_rows(sm, probes, p.rss_batch, sm.src.n_inputs, lut.contract.L, lut.contract.scheme)
    return rows


__all__ = ["FULL", "PROFILES", "Profile", "QUICK", "SMOKE", "run_bench"]
