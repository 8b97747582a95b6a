#!/usr/bin/env python
"""Train, save and document the small PyKAN classifiers bundled in ``models/``.

Offline and seeded: the data come from scikit-learn's bundled datasets or are generated, and every
random source (python ``random``, numpy, torch, the minibatch shuffler) is seeded, so a rerun on the
same machine gives the same weights and metrics.

Each model is saved with pykan's own ``model.saveckpt(models/<name>/0.0)``, which writes
``0.0_state``, ``0.0_config.yml`` and ``0.0_cache_data`` (the cache data are the standardized TEST
inputs). Next to it go ``test_data.npz`` (``X_test`` float32, ``y_test`` int64; already standardized)
and ``TRAINING.json`` (data, recipe, versions, timing, test metrics, knot statistics).
``models/README.md`` is generated from the TRAINING.json files.

Usage::

    python models/make_models.py                  # train all models, then write README.md
    python models/make_models.py breast_cancer    # train only the named models (README is rewritten)
    python models/make_models.py featured         # the regression model with every feature (make_featured.py)
    python models/make_models.py --write-readme   # only regenerate README.md from TRAINING.json
    python models/make_models.py --export-onnx    # only re-export <name>/<name>.onnx from the checkpoints
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import random
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CKPT_ID = "0.0"
SEED = 0
THREADS = 2
MAX_TOTAL_BYTES = 3 * 1024 * 1024

# --------------------------------------------------------------------------------------------------
# Model recipes
# --------------------------------------------------------------------------------------------------

RECIPES: dict[str, dict] = {
    "breast_cancer": dict(
        dataset="sklearn.datasets.load_breast_cancer (569 x 30, binary)",
        width=[30, 8, 1],
        task="binary",
        grid=5,
        k=3,
        grid_update=True,
        grid_eps=0.02,  # pykan's default -> strongly non-uniform (quantile) knots
        epochs=60,
    ),
    "digits": dict(
        dataset="sklearn.datasets.load_digits (1797 x 64, 10 classes; some pixels are constant)",
        width=[64, 16, 10],
        task="multiclass",
        grid=5,
        k=3,
        grid_update=True,
        grid_eps=0.02,  # default -> non-uniform knots, plus zero-width rows for constant pixels
        epochs=30,
    ),
    "ids78": dict(
        dataset=(
            "generated: sklearn.datasets.make_classification(n_samples=6000, n_features=78, "
            "n_informative=20, n_redundant=20, class_sep=1.0, flip_y=0.01, random_state=0); "
            "then 10 columns exp(x) (lognormal, flow-size-like), 4 columns floor(exp(1.5 x)) "
            "(heavy-tailed counts), 4 columns (x > 0.5) as 0/1 flags"
        ),
        width=[78, 32, 16, 1],
        task="binary",
        grid=5,
        k=3,
        grid_update=True,
        grid_eps=1.0,  # uniform knots per row (each row spans its own training min..max)
        epochs=12,
    ),
}

FEATURED = "featured"
"""The small regression model with every feature (mult node, symbolic and pruned edges): make_featured.py."""
ALL_MODELS = (*RECIPES, FEATURED)

OPT = dict(optimizer="Adam", lr=1e-2, batch=64, shuffle="torch.randperm with a seeded torch.Generator")


def compact_parameters(model, check: bool = False) -> None:
    """Give every parameter/buffer its own compact storage.

    pykan's ``update_grid_from_samples`` sets ``coef`` to a strided *view* of the full ``lstsq``
    solution (shape (in, out, G+k, N) for N samples); ``torch.save`` then writes the whole storage,
    e.g. a 58 MB ``_state`` file instead of ~0.2 MB for [78,32,16,1] trained on 4800 rows.
    """
    import torch

    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.untyped_storage().nbytes() != t.numel() * t.element_size():
                if check:
                    raise RuntimeError("a parameter is still a view into a larger storage")
                t.data = t.data.clone(memory_format=torch.contiguous_format)


LSTSQ_DRIVER = "gelsd"
LSTSQ_NOTE = (
    "pykan's curve2coef (KAN init noise fit, update_grid_from_samples) calls torch.linalg.lstsq with "
    "the default CPU driver 'gelsy', which is not reproducible run to run (its pivot array JPVT is "
    "uninitialized memory: pytorch/pytorch#71222, #187411); this script routes those calls to 'gelsd' "
    "(SVD, minimum-norm, deterministic here)"
)


@contextlib.contextmanager
def deterministic_lstsq(driver: str = LSTSQ_DRIVER):
    """Temporarily make ``torch.linalg.lstsq`` default to a reproducible LAPACK driver."""
    import torch

    orig = torch.linalg.lstsq

    def lstsq(A, B, rcond=None, **kw):
        kw.setdefault("driver", driver)
        return orig(A, B, rcond, **kw)

    torch.linalg.lstsq = lstsq
    try:
        yield
    finally:
        torch.linalg.lstsq = orig


def seed_everything(seed: int = SEED) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------


def make_ids78_data() -> tuple[np.ndarray, np.ndarray]:
    """A tabular binary problem shaped like a 78-feature flow-statistics intrusion detector."""
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=6000,
        n_features=78,
        n_informative=20,
        n_redundant=20,
        n_repeated=0,
        n_classes=2,
        class_sep=1.0,
        flip_y=0.01,
        random_state=0,
    )
    rng = np.random.default_rng(0)
    cols = rng.permutation(78)
    lognormal, counts, flags = cols[:10], cols[10:14], cols[14:18]
    X = X.astype(np.float64)
    X[:, lognormal] = np.exp(X[:, lognormal])
    X[:, counts] = np.floor(np.exp(1.5 * X[:, counts]))
    X[:, flags] = (X[:, flags] > 0.5).astype(np.float64)
    return X, y.astype(np.int64)


def load_data(name: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer, load_digits

    if name == "breast_cancer":
        d = load_breast_cancer()
        return d.data.astype(np.float64), d.target.astype(np.int64)
    if name == "digits":
        d = load_digits()
        return d.data.astype(np.float64), d.target.astype(np.int64)
    if name == "ids78":
        return make_ids78_data()
    raise KeyError(name)


def split_scale(X: np.ndarray, y: np.ndarray):
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    sc = StandardScaler().fit(Xtr)
    return (
        sc.transform(Xtr).astype(np.float32),
        sc.transform(Xte).astype(np.float32),
        ytr.astype(np.int64),
        yte.astype(np.int64),
    )


# --------------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------------


def knot_stats(grid: np.ndarray, k: int) -> dict:
    """Non-uniformity of the interior knots [t_k .. t_{G+k}] of one layer's (in, G+2k+1) grid."""
    interior = grid[:, k : grid.shape[1] - k]
    d = np.diff(interior, axis=1)
    zero_width = np.all(interior == interior[:, :1], axis=1)
    live = d[~zero_width]
    zero_intervals = int(np.sum(live <= 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = live.max(axis=1) / live.min(axis=1) if live.size else np.array([])
    finite = ratio[np.isfinite(ratio)]
    return {
        "rows": int(grid.shape[0]),
        "zero_width_rows": int(zero_width.sum()),
        "zero_length_intervals_in_live_rows": zero_intervals,
        "spacing_ratio_max_over_min_median": round(float(np.median(finite)), 4) if finite.size else None,
        "spacing_ratio_max_over_min_max": round(float(np.max(finite)), 4) if finite.size else None,
        "interior_range_min": round(float(interior[~zero_width, 0].min()), 4) if live.size else None,
        "interior_range_max": round(float(interior[~zero_width, -1].max()), 4) if live.size else None,
    }


def metrics(task: str, logits: np.ndarray, y: np.ndarray) -> dict:
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    if task == "binary":
        score = logits[:, 0]
        pred = (score > 0).astype(np.int64)
        return {
            "accuracy": round(float(accuracy_score(y, pred)), 6),
            "f1": round(float(f1_score(y, pred)), 6),
            "roc_auc": round(float(roc_auc_score(y, score)), 6),
            "max_abs_logit": round(float(np.abs(score).max()), 3),
        }
    pred = logits.argmax(axis=1)
    return {
        "accuracy": round(float(accuracy_score(y, pred)), 6),
        "macro_f1": round(float(f1_score(y, pred, average="macro")), 6),
        "max_abs_logit": round(float(np.abs(logits).max()), 3),
    }


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------


def train_one(name: str, out_root: Path = HERE) -> dict:
    import kan as kan_pkg
    import sklearn
    import torch
    import yaml
    from kan import KAN

    r = RECIPES[name]
    torch.set_num_threads(THREADS)
    seed_everything()

    X, y = load_data(name)
    Xtr, Xte, ytr, yte = split_scale(X, y)
    xtr, xte = torch.from_numpy(Xtr), torch.from_numpy(Xte)
    if r["task"] == "binary":
        ttr = torch.from_numpy(ytr).float()[:, None]
        loss_fn = torch.nn.BCEWithLogitsLoss()
        loss_name = "BCEWithLogitsLoss"
    else:
        ttr = torch.from_numpy(ytr)
        loss_fn = torch.nn.CrossEntropyLoss()
        loss_name = "CrossEntropyLoss"

    t0 = time.perf_counter()
    # KAN(...) reseeds torch/numpy/random with `seed`; auto_save=False: no ./model folder.
    with deterministic_lstsq():
        model = KAN(width=list(r["width"]), grid=r["grid"], k=r["k"], seed=SEED, grid_eps=r["grid_eps"],
                    auto_save=False)
        model.speed()  # symbolic branch off, save_act off, auto_save off
        if r["grid_update"]:
            with torch.no_grad():
                model.update_grid_from_samples(xtr)
    compact_parameters(model)

    opt = torch.optim.Adam(model.parameters(), lr=OPT["lr"])
    gen = torch.Generator().manual_seed(SEED)
    n = xtr.shape[0]
    losses = []
    model.train()
    for _epoch in range(r["epochs"]):
        perm = torch.randperm(n, generator=gen)
        tot = 0.0
        for s in range(0, n, OPT["batch"]):
            idx = perm[s : s + OPT["batch"]]
            opt.zero_grad()
            loss = loss_fn(model(xtr[idx]), ttr[idx])
            loss.backward()
            opt.step()
            tot += loss.item() * len(idx)
        losses.append(tot / n)
    train_time = time.perf_counter() - t0
    model.eval()

    with torch.no_grad():
        logits_te = model(xte).numpy()
        logits_tr = model(xtr).numpy()
    m_test = metrics(r["task"], logits_te, yte)
    m_train = metrics(r["task"], logits_tr, ytr)

    # Save (pykan's own format). cache_data = standardized test inputs.
    out = out_root / name
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob(f"{CKPT_ID}_*"):
        old.unlink()
    model.cache_data = xte.clone()
    compact_parameters(model, check=True)
    ckpt = out / CKPT_ID
    model.saveckpt(str(ckpt))
    np.savez_compressed(out / "test_data.npz", X_test=Xte.astype(np.float32), y_test=yte.astype(np.int64))

    # Verify the checkpoint loads back and reproduces the predictions.
    with open(f"{ckpt}_config.yml") as fh:
        cfg = yaml.safe_load(fh)  # must be plain YAML (no python object tags)
    state = torch.load(f"{ckpt}_state", weights_only=True)
    cache = torch.load(f"{ckpt}_cache_data", weights_only=True)
    assert torch.equal(cache, xte), "cache_data is not the test inputs"
    loaded = KAN.loadckpt(str(ckpt))
    assert not loaded.auto_save and not cfg["auto_save"]
    with torch.no_grad():
        y_loaded = loaded(xte).numpy()
    diff_loadckpt = float(np.abs(y_loaded - logits_te).max())
    fresh = KAN(width=cfg["width"], grid=cfg["grid"], k=cfg["k"], seed=SEED, grid_eps=cfg["grid_eps"],
                auto_save=False, symbolic_enabled=False)
    fresh.load_state_dict(state)
    fresh.speed()
    with torch.no_grad():
        y_fresh = fresh(xte).numpy()
    diff_state = float(np.abs(y_fresh - logits_te).max())
    if diff_loadckpt > 1e-6 or diff_state > 1e-6:
        raise RuntimeError(f"{name}: reloaded model differs: loadckpt {diff_loadckpt}, state_dict {diff_state}")

    grids = [model.act_fun[l].grid.detach().numpy().astype(np.float64) for l in range(model.depth)]
    knots = [knot_stats(g, r["k"]) for g in grids]

    files = sorted(p for p in out.iterdir() if p.is_file() and p.name != "TRAINING.json")
    info = {
        "name": name,
        "dataset": r["dataset"],
        "task": r["task"],
        "n_features": int(X.shape[1]),
        "n_classes": int(len(np.unique(y))),
        "n_train": int(len(ytr)),
        "n_test": int(len(yte)),
        "split": "train_test_split(test_size=0.2, random_state=0, stratify=y); StandardScaler fit on train",
        "width": list(r["width"]),
        "grid": r["grid"],
        "k": r["k"],
        "base_fun": "silu",
        "grid_updated": bool(r["grid_update"]),
        "grid_update": "update_grid_from_samples(X_train) once, after speed(), before training"
        if r["grid_update"] else "none",
        "grid_eps": r["grid_eps"],
        "lstsq_driver": LSTSQ_DRIVER,
        "lstsq_note": LSTSQ_NOTE,
        "loss": loss_name,
        "optimizer": OPT["optimizer"],
        "lr": OPT["lr"],
        "batch": OPT["batch"],
        "epochs": r["epochs"],
        "shuffle": OPT["shuffle"],
        "seed": SEED,
        "torch_threads": THREADS,
        "train_loss_per_epoch": [round(v, 6) for v in losses],
        "training_wall_time_s": round(train_time, 2),
        "test_metrics": m_test,
        "train_metrics": m_train,
        "knots_layer0": knots[0],
        "knots_per_layer": knots,
        "checkpoint": f"{CKPT_ID} (pykan saveckpt: {CKPT_ID}_state, {CKPT_ID}_config.yml, {CKPT_ID}_cache_data)",
        "cache_data": "standardized test inputs (float32, shape n_test x n_features)",
        "test_data": "test_data.npz: X_test float32 (standardized), y_test int64",
        "reload_check_max_abs_diff": {"KAN.loadckpt": diff_loadckpt, "state_dict_into_fresh_KAN": diff_state},
        "symbolic_enabled_saved": bool(cfg["symbolic_enabled"]),
        "file_bytes": {p.name: p.stat().st_size for p in files},
        "versions": {
            "python": platform.python_version(),
            "pykan": getattr(kan_pkg, "__version__", None) or _dist_version("pykan"),
            "torch": torch.__version__,
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
        },
        "regenerate": f"python models/make_models.py {name}",
    }
    info["total_bytes"] = sum(info["file_bytes"].values())
    (out / "TRAINING.json").write_text(json.dumps(info, indent=2) + "\n")
    info["total_bytes"] += (out / "TRAINING.json").stat().st_size
    return info


def _dist_version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


# --------------------------------------------------------------------------------------------------
# README
# --------------------------------------------------------------------------------------------------


def _fmt(v, nd=4):
    return "–" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))


def write_readme(root: Path = HERE) -> Path:
    infos = []
    for name in RECIPES:
        p = root / name / "TRAINING.json"
        if p.is_file():
            infos.append(json.loads(p.read_text()))
    lines = [
        "# Bundled PyKAN models",
        "",
        "Small trained PyKAN 0.2.8 classifiers used as real-world inputs for the compiler, tests and",
        "benchmarks. **This file is generated** by `python models/make_models.py --write-readme` from the",
        "`TRAINING.json` files; do not edit it by hand.",
        "",
        "| model | data | width | G | k | grid update (grid_eps) | epochs | n_train / n_test | test accuracy | test F1 | ROC-AUC | layer-0 knot spacing max/min (median / max) | zero-width rows (layer 0) | train time (s) | files (kB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i in infos:
        m = i["test_metrics"]
        f1 = m.get("f1", m.get("macro_f1"))
        f1s = _fmt(f1) + ("" if "f1" in m else " (macro)")
        kn = i["knots_layer0"]
        gu = f"yes ({i['grid_eps']})" if i["grid_updated"] else "no"
        size = sum(i["file_bytes"].values()) / 1024
        lines.append(
            f"| `{i['name']}` | {i['dataset'].split(' (')[0].split(':')[0]} | {i['width']} | {i['grid']} | {i['k']} | {gu} "
            f"| {i['epochs']} | {i['n_train']} / {i['n_test']} | {_fmt(m['accuracy'])} | {f1s} | {_fmt(m.get('roc_auc'))} "
            f"| {_fmt(kn['spacing_ratio_max_over_min_median'], 2)} / {_fmt(kn['spacing_ratio_max_over_min_max'], 2)} "
            f"| {kn['zero_width_rows']} | {_fmt(i['training_wall_time_s'], 1)} | {size:.0f} |"
        )
    lines += [
        "",
        "Data sets:",
        "",
    ]
    for i in infos:
        lines.append(f"- `{i['name']}`: {i['dataset']}.")
    feat = root / FEATURED / "TRAINING.json"
    if feat.is_file():
        f = json.loads(feat.read_text())
        lines += ["", f"`{FEATURED}` (regression, width {f['width']}, G={f['grid']}, k={f['k']}, grid_eps {f['grid_eps']}, "
                  f"{f['n_train']} / {f['n_test']} rows, test R² {f['test_metrics']['r2']:.4f}): {f['dataset']}. "
                  f"It carries every feature lutkan reads that the classifiers lack: {'; '.join(f['features'])}. "
                  "Recipe in `models/make_featured.py`; its `test_data.npz` holds regression targets (float32 (n, 1))."]
    if infos:
        v = infos[0]["versions"]
        lines += [
            "",
            "Recipe (all models): `KAN(width, grid=G, k=3, seed=0, grid_eps=…, auto_save=False)`, `model.speed()`,",
            "one `update_grid_from_samples(X_train)`, then a plain torch Adam loop (lr 1e-2, batch 64, shuffled by a",
            f"seeded `torch.Generator`), {infos[0]['torch_threads']} torch threads. Split: {infos[0]['split']}.",
            "Loss: BCEWithLogits (binary, one logit) or CrossEntropy (digits, 10 logits).",
            f"Reproducibility: {infos[0].get('lstsq_note', '')}.",
            f"Trained with python {v['python']}, pykan {v['pykan']}, torch {v['torch']}, scikit-learn {v['scikit-learn']},",
            f"numpy {v['numpy']}. Train time is wall-clock on a shared 2-core VM and varies between runs; the metrics do not.",
            "`files (kB)` counts the checkpoint files and `test_data.npz` (not TRAINING.json).",
        ]
    lines += [
        "",
        "## Files per model (`models/<name>/`)",
        "",
        "- `0.0_state`, `0.0_config.yml`, `0.0_cache_data`: pykan's own `model.saveckpt('models/<name>/0.0')`.",
        "  Load with `kan.KAN.loadckpt('models/<name>/0.0')` (creates no `./model` folder, because",
        "  the saved config has `auto_save: false`). The config has `symbolic_enabled: false` (the models",
        "  were trained after `speed()`); no symbolic edges are set. `0.0_cache_data` holds the",
        "  standardized test inputs.",
        "- `test_data.npz`: `X_test` (float32, already standardized with the train-set scaler) and `y_test`",
        "  (int64).",
        "- `TRAINING.json`: data, recipe, versions, wall time, test/train metrics, per-layer knot statistics",
        "  (interior knot spacing ratio, zero-width rows, zero-length intervals), reload check, file sizes.",
        "- `<name>.onnx`: the model compiled with the default contract (L=64, int8, linear, `closed`, `zero`)",
        "  and exported in the `function` form: runs in plain onnxruntime, opens in Netron. Rebuilt by",
        "  `python models/make_models.py --export-onnx` (byte-deterministic; `tests/test_models.py` checks",
        "  it is not stale).",
        "",
        "Knot notes: `breast_cancer` and `digits` use pykan's default `grid_eps=0.02`, so their knots are",
        "quantile-based and strongly non-uniform; `digits` also has zero-width rows (constant pixels: all",
        "knots equal, the spline branch is 0 and only `scale_base*silu(x)` remains). `ids78` uses",
        "`grid_eps=1.0`: uniform knots, but each row spans its own training min..max (heavy-tailed columns",
        "give wide rows).",
        "",
        "## Regenerate",
        "",
        "```bash",
        ". .venv/bin/activate",
        "python models/make_models.py                # all models + this README",
        "python models/make_models.py ids78          # one model (README is rewritten too)",
        "python models/make_models.py --write-readme # README only, from TRAINING.json",
        "python models/make_models.py --export-onnx  # only re-export the <name>.onnx files",
        "```",
        "",
        "The script is offline and seeded (python `random`, numpy, torch and the minibatch generator), so a",
        "rerun on the same software versions reproduces the metrics. It never creates a `./model` folder.",
        "",
    ]
    path = root / "README.md"
    path.write_text("\n".join(lines))
    return path


# --------------------------------------------------------------------------------------------------
# Exported ONNX


def export_onnx(name: str, root: Path = HERE) -> Path:
    """Compile ``<root>/<name>/0.0`` with the default contract (L=64, int8, linear, closed, zero) and
    write the ``function`` form to ``<root>/<name>/<name>.onnx`` (byte-deterministic)."""
    from lutkan.compiler import compile_model
    from lutkan.contract import ContractOptions
    from lutkan.exporter import export

    lut = compile_model(root / name / "0.0", ContractOptions())
    path = root / name / f"{name}.onnx"
    path.write_bytes(export(lut, form="function").SerializeToString())
    return path


# --------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help=f"models to train (default: all of {', '.join(ALL_MODELS)})")
    ap.add_argument("--write-readme", action="store_true", help="only regenerate README.md")
    ap.add_argument("--out", type=Path, default=HERE, help="output root (default: models/)")
    ap.add_argument("--export-onnx", action="store_true",
                    help="only re-export <name>/<name>.onnx (function form, default contract) from the checkpoints")
    args = ap.parse_args(argv)
    out_root = args.out.resolve()
    unknown = [n for n in args.names if n not in ALL_MODELS]
    if unknown:
        ap.error(f"unknown model(s) {unknown}; choose from {list(ALL_MODELS)}")

    if args.write_readme:
        print(f"wrote {write_readme(out_root)}")
        return 0
    if args.export_onnx:
        for name in args.names or list(ALL_MODELS):
            print(f"wrote {export_onnx(name, out_root)}")
        return 0

    watch = {Path.cwd() / "model", HERE.parent / "model", out_root / "model"}
    existed = {p for p in watch if p.exists()}
    names = args.names or list(ALL_MODELS)
    for name in names:
        if name == FEATURED:
            sys.path.insert(0, str(HERE))
            from make_featured import train_featured

            info = train_featured(out_root, seed=SEED, threads=THREADS, lstsq=deterministic_lstsq,
                                  seed_everything=seed_everything, compact=compact_parameters)
            export_onnx(name, out_root)
            print(f"{name:14s} test R2={info['test_metrics']['r2']:.4f}", flush=True)
            continue
        info = train_one(name, out_root)
        export_onnx(name, out_root)
        m = info["test_metrics"]
        f1 = m.get("f1", m.get("macro_f1"))
        print(
            f"{name:14s} acc={m['accuracy']:.4f} f1={f1:.4f} auc={_fmt(m.get('roc_auc'))} "
            f"train={info['training_wall_time_s']:.1f}s size={info['total_bytes'] / 1024:.1f} kB "
            f"knots0 ratio med/max={info['knots_layer0']['spacing_ratio_max_over_min_median']}/"
            f"{info['knots_layer0']['spacing_ratio_max_over_min_max']} "
            f"zero-width rows={info['knots_layer0']['zero_width_rows']}",
            flush=True,
        )
    created = {p for p in watch if p.exists()} - existed
    if created:
        raise RuntimeError(f"pykan created {sorted(map(str, created))}")

    total = 0
    for name in ALL_MODELS:
        d = out_root / name
        if d.is_dir():
            sz = sum(p.stat().st_size for p in d.iterdir() if p.is_file() and p.suffix != ".onnx")
            total += sz
            print(f"  {name}/: {sz / 1024:.1f} kB")
    print(f"  total: {total / 1024:.1f} kB")
    if total > MAX_TOTAL_BYTES:
        raise RuntimeError(f"models are {total} bytes, over the {MAX_TOTAL_BYTES} byte budget")
    print(f"wrote {write_readme(out_root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
