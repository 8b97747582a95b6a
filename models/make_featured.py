#!/usr/bin/env python
"""Train and save ``models/featured``: a small PyKAN regression model with every feature lutkan reads.

``y = x0 * x1 + sin(2 x2) + noise`` on four uniform inputs in [-2, 2] (x3 is noise-free irrelevant):
``KAN(width=[4, [2, 1], 1], grid=5, k=3, grid_eps=0.5)`` (two sum nodes and one multiplication node of arity
2 in the hidden layer), ``update_grid_from_samples`` (updated, non-uniform knots), 60 Adam epochs, then
x3's edges pruned (``remove_edge``), the edge x2 -> subnode 0 fixed to the symbolic ``sin`` with the affine
(2, 0, 1, 0) and the output edge of node 0 fixed to ``x`` (``fix_symbolic``), and 30 more epochs.
Saved with pykan's ``saveckpt`` as ``models/featured/0.0``; ``test_data.npz`` holds ``X_test`` (float32)
and the regression targets ``y_test`` (float32, (n, 1)); ``TRAINING.json`` the recipe and figures.

Seeded and offline (``make_models.seed_everything``, the deterministic lstsq driver), so a rerun on the same
software versions reproduces the files. Run through ``python models/make_models.py featured``.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy as np

NAME = "featured"
N_TRAIN, N_TEST, EPOCHS, EPOCHS_AFTER = 1000, 200, 60, 30
WIDTH = [4, [2, 1], 1]


def make_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, (N_TRAIN + N_TEST, 4)).astype(np.float32)
    y = X[:, 0] * X[:, 1] + np.sin(2 * X[:, 2]) + 0.02 * rng.standard_normal(len(X))
    return X, y.astype(np.float32)[:, None]


def _train(model, x, y, epochs: int, seed: int) -> list[float]:
    import torch

    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(epochs):
        perm, tot = torch.randperm(len(x), generator=gen), 0.0
        for s in range(0, len(x), 64):
            idx = perm[s: s + 64]
            opt.zero_grad()
            loss = torch.mean((model(x[idx]) - y[idx]) ** 2)
            loss.backward()
            opt.step()
            tot += loss.item() * len(idx)
        losses.append(round(tot / len(x), 6))
    return losses


def _features(model) -> None:
    """Prune x3, fix x2 -> subnode 0 to 2-periodic sin and the output edge of node 0 to x (pykan's own calls)."""
    import torch

    for j in range(model.width_out[1]):  # subnodes: the sum nodes and every multiplication input
        model.remove_edge(0, 3, j)
    model.symbolic_enabled = True
    model.fix_symbolic(0, 2, 0, "sin", fit_params_bool=False, verbose=False)
    model.fix_symbolic(1, 0, 0, "x", fit_params_bool=False, verbose=False)
    with torch.no_grad():
        model.symbolic_fun[0].affine[0, 2] = torch.tensor([2.0, 0.0, 1.0, 0.0])
        model.symbolic_fun[1].affine[0, 0] = torch.tensor([1.0, 0.0, 1.0, 0.0])


def train_featured(out_root: Path, *, seed: int, threads: int, lstsq, seed_everything, compact) -> dict:
    """Train, save and check ``out_root/featured``; returns the TRAINING.json dict."""
    import kan as kan_pkg
    import torch
    from kan import KAN

    torch.set_num_threads(threads)
    seed_everything(seed)
    X, y = make_data(seed)
    xtr, ytr = torch.from_numpy(X[:N_TRAIN]), torch.from_numpy(y[:N_TRAIN])
    xte = torch.from_numpy(X[N_TRAIN:])
    with lstsq():
        model = KAN(width=WIDTH, grid=5, k=3, seed=seed, grid_eps=0.5, auto_save=False)
        model.speed()
        with torch.no_grad():
            model.update_grid_from_samples(xtr)
    compact(model)
    losses = _train(model, xtr, ytr, EPOCHS, seed)
    _features(model)
    losses += _train(model, xtr, ytr, EPOCHS_AFTER, seed + 1)
    model.eval()
    compact(model)
    with torch.no_grad():
        pred = model(xte).numpy()
    mse, var = float(np.mean((pred - y[N_TRAIN:]) ** 2)), float(np.var(y[N_TRAIN:]))
    out = out_root / NAME
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("0.0_*"):
        old.unlink()
    model.cache_data = xte.clone()
    compact(model, check=True)
    model.saveckpt(str(out / "0.0"))
    np.savez_compressed(out / "test_data.npz", X_test=X[N_TRAIN:], y_test=y[N_TRAIN:])
    reloaded = KAN.loadckpt(str(out / "0.0"))
    with torch.no_grad():
        diff = float(np.abs(reloaded(xte).numpy() - pred).max())
    if diff > 1e-5:
        raise RuntimeError(f"{NAME}: the reloaded checkpoint differs from the trained model by {diff}")
    info = {"name": NAME, "task": "regression", "dataset": "generated: y = x0*x1 + sin(2 x2) + N(0, 0.02^2), "
            "x ~ U(-2, 2)^4 (x3 irrelevant)", "width": WIDTH, "grid": 5, "k": 3, "grid_eps": 0.5,
            "features": ["updated knots (update_grid_from_samples)", "multiplication node (arity 2)",
                         "pruned edges (x3: remove_edge)", "symbolic edges (layer 0 x2->0 sin, layer 1 0->0 x)"],
            "epochs": [EPOCHS, EPOCHS_AFTER], "n_train": N_TRAIN, "n_test": N_TEST, "seed": seed,
            "train_loss_per_epoch": losses,
            "test_metrics": {"mse": round(mse, 6), "r2": round(1 - mse / var, 6)},
            "reload_check_max_abs_diff": diff,
            "file_bytes": {p.name: p.stat().st_size for p in sorted(out.iterdir()) if p.name != "TRAINING.json"},
            "versions": {"python": platform.python_version(), "pykan": getattr(kan_pkg, "__version__", None),
                         "torch": torch.__version__, "numpy": np.__version__},
            "regenerate": f"python models/make_models.py {NAME}"}
    (out / "TRAINING.json").write_text(json.dumps(info, indent=2) + "\n")
    return info
