"""The models the study runs on: random KANs (pykan-init-like and trained-like), the bundled trained
classifiers (``models/<name>/0.0``) and the real third-party checkpoints (``../shared/realmodels/*``).

Random models are built directly as ``SourceModel`` s (numpy, no torch) with pykan 0.2.8's layer layout:
uniform grid on ``[-1, 1]`` extended by ``k`` knots per side, ``scale_base ~ U(-1, 1)/sqrt(I)``
(pykan's ``scale_base_mu=0, scale_base_sigma=1``), ``scale_sp = 1/sqrt(I)``, mask 1, no symbolic
edges, identity node affines. Only the spline coefficients differ between the two kinds:

* ``pykan-init``: ``coef ~ U(-1/2, 1/2) * 0.3 / G`` -- the size of pykan's initial noise fit
  (``noise_scale=0.3``), i.e. spline amplitudes of a few 1e-2: what the paper's controlled study
  compiled;
* ``trained-like``: ``coef ~ N(0, COEF_STD_TRAINED^2)`` with ``COEF_STD_TRAINED = 0.5``, the size
  of the coefficients of trained pykan models (the study records the coefficient std of every
  trained checkpoint it loads next to this value).

Where torch and pykan are installed, ``to_pykan`` mirrors a random model into a live ``kan.KAN``
so the compiled model can also be compared with pykan's own forward.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lutkan.bench.rows import optional
from lutkan.source import SourceModel
from lutkan.testing.models import random_source

REPO_ROOT = Path(__file__).resolve().parents[2]


def realmodels_dir() -> Path:
    return Path(os.environ.get("LUTKAN_REALMODELS", REPO_ROOT.parent / "shared" / "realmodels"))


def bundled_dir() -> Path:
    return REPO_ROOT / "models"


@dataclass
class BenchModel:
    """A model of the study: its source, where it came from, and its natural inputs (if any)."""

    name: str
    kind: str  # "random" | "bundled" | "real"
    src: SourceModel
    path: Path | None = None
    x: np.ndarray | None = None  # natural inputs: X_test (bundled) or cache_data (real)
    y: np.ndarray | None = None  # labels (bundled classifiers)
    task: str | None = None  # "binary" | "multiclass" | None
    info: dict = field(default_factory=dict)
    _pykan: object = None
    _pykan_reason: str | None = None

    @property
    def grid(self) -> int:
        layer = self.src.layers[0]
        return int(layer.grid.shape[1] - 1 - 2 * layer.k)

    def pykan(self):
        """(live pykan model, None) or (None, reason). Built once, lazily."""
        if self._pykan is None and self._pykan_reason is None:
            try:
                if self.kind == "random":
                    self._pykan, self._pykan_reason = to_pykan(self.src)
                else:
                    from lutkan.compiler.pykan import build_pykan_model

                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        self._pykan = build_pykan_model(str(self.path))
            except Exception as e:  # noqa: BLE001 - a model pykan cannot rebuild is a recorded skip
                self._pykan_reason = f"building the pykan model failed: {type(e).__name__}: {e}"
        return self._pykan, self._pykan_reason


def random_model(width: list[int], grid: int, k: int, seed: int, kind: str = "trained-like") -> BenchModel:
    src = random_source(width, grid, k, seed=seed, amplitude=kind, knots="uniform", domain=(-1.0, 1.0),
                        float32_knots=False, affine=False, input_id="sorted", symbolic_enabled=False,
                        provenance={"source": f"random {kind} seed {seed}"})
    name = f"random-{kind}{list(width)}".replace(" ", "")
    return BenchModel(name=name, kind="random", src=src, info={"seed": seed, "grid": grid, "k": k, "kind": kind})


def to_pykan(src: SourceModel):
    """Mirror a random ``SourceModel`` into a live ``kan.KAN`` (after ``speed()``): (model, None) or
    (None, reason)."""
    torch, why = optional("torch")
    if torch is None:
        return None, why
    kan, why = optional("kan", "KAN")
    if kan is None:
        return None, why
    k = src.layers[0].k
    grid = int(src.layers[0].grid.shape[1] - 1 - 2 * k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = kan.KAN(width=list(src.width), grid=grid, k=k, seed=0, auto_save=False, symbolic_enabled=False,
                    save_act=False)
    with torch.no_grad():
        for l, layer in enumerate(src.layers):
            af = m.act_fun[l]
            for name, arr in (("grid", layer.grid), ("coef", layer.coef), ("scale_base", layer.scale_base),
                              ("scale_sp", layer.scale_sp), ("mask", layer.mask)):
                t = getattr(af, name)
                t.data = torch.as_tensor(np.asarray(arr), dtype=t.dtype).reshape(t.shape).clone()
    m.speed()
    m.eval()
    return m, None


def torch_forward(model, x: np.ndarray) -> np.ndarray:
    """pykan's forward on float32 ``x`` (no grad), as float64 numpy: ``lutkan.compiler.pykan.pykan_forward``
    (so the study and ``lutkan verify`` agree)."""
    from lutkan.compiler.pykan import pykan_forward

    return np.asarray(pykan_forward(model, x), dtype=np.float64)


def checkpoint_paths() -> tuple[list[tuple[str, str, Path]], list[str]]:
    """[(name, kind, path)] of the bundled models and the real checkpoints, and notes on missing ones."""
    found, notes = [], []
    b = bundled_dir()
    if b.is_dir():
        for d in sorted(p for p in b.iterdir() if p.is_dir()):
            if (d / "0.0_state").is_file():
                found.append((d.name, "bundled", d / "0.0"))
    else:
        notes.append(f"bundled models folder {b} not found (lutkan is not running from a source checkout)")
    r = realmodels_dir()
    if r.is_dir():
        for d in sorted(p for p in r.iterdir() if p.is_dir()):
            found.append((d.name, "real", d))
    else:
        notes.append(f"real checkpoints folder {r} not found (set LUTKAN_REALMODELS)")
    return found, notes


def load_checkpoint(name: str, kind: str, path: Path) -> BenchModel:
    """Read a checkpoint with ``lutkan.compiler.pykan.load_source``."""
    from lutkan.compiler.pykan import load_source

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "using the latest checkpoint" for folders: the name is recorded
        src = load_source(str(path))
    bm = BenchModel(name=name, kind=kind, src=src, path=path)
    if kind == "bundled" and (path.parent / "test_data.npz").is_file():
        with np.load(path.parent / "test_data.npz", allow_pickle=False) as d:
            bm.x = np.ascontiguousarray(d["X_test"], dtype=np.float32)
            bm.y = np.asarray(d["y_test"])
        n_out = src.width[-1]
        if bm.y.dtype.kind in "iu":  # class labels; models/featured's float targets are a regression's
            bm.task = "binary" if n_out == 1 else "multiclass"
        else:
            bm.y = None
    elif src.cache_data is not None:
        bm.x = np.ascontiguousarray(src.cache_data, dtype=np.float32)
    bm.info["coef_std"] = [float(np.std(layer.coef)) for layer in src.layers]
    return bm


def layer_domains(src: SourceModel, x: np.ndarray, boundary: str = "closed") -> np.ndarray:
    """(N,) bool: True where a row leaves some layer's knot domain [t_0, t_K] (closed) or
    [t_0, t_K) (half_open) at any input coordinate, following the float64 reference activations."""
    h = np.asarray(x, dtype=np.float64)[:, src.input_id]
    out = np.zeros(h.shape[0], dtype=bool)
    for layer in src.layers:
        lo = layer.grid[:, 0].astype(np.float32).astype(np.float64)
        hi = layer.grid[:, -1].astype(np.float32).astype(np.float64)
        hf = h.astype(np.float32).astype(np.float64)
        with np.errstate(invalid="ignore"):
            inside = (hf >= lo) & ((hf <= hi) if boundary == "closed" else (hf < hi))
        out |= ~np.all(inside, axis=1)
        h = src.layer_forward(layer, h)
    return out


__all__ = ["BenchModel", "checkpoint_paths", "layer_domains", "load_checkpoint",
           "random_model", "realmodels_dir", "to_pykan", "torch_forward"]
