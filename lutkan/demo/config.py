"""The demo's settings (``DemoConfig`` and the defaults), its inputs (``DemoData``) and the record of one
(L, scheme) configuration's results (``Row``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DEFAULT_LS = (16, 32, 64, 128)
QUICK_LS = (16, 64)
DEFAULT_SCHEMES = ("int8", "uint8", "float16")
FORMS = ("function", "standard", "custom")
RUNS = ("ort-function", "ort-standard", "plugin-function", "plugin-custom")
"""The onnxruntime backends the demo runs and checks (names of ``lutkan.testing.BACKENDS``)."""
TIMED = ("ort-function", "plugin-function", "ort-standard")
"""The sessions whose latency is measured (plugin-custom runs the same kernel as plugin-function)."""
DEFAULT_MODEL_NAME = "breast_cancer"
#: ONNX vs NumPy reference: |onnx - numpy| <= REL_TOL * max(1, max|numpy|) (float32 rounding).
REL_TOL = 1e-5


def default_model_path() -> Path:
    """The bundled default checkpoint prefix (``models/breast_cancer/0.0`` in the source tree)."""
    return Path(__file__).resolve().parents[2] / "models" / DEFAULT_MODEL_NAME / "0.0"


@dataclass
class DemoConfig:
    """What ``lutkan demo`` runs (the CLI flags): model, output folder, the L x scheme grid, inputs,
    thread count, and whether every configuration's files are written."""

    model: str | None = None
    out: str = "demo-out"
    Ls: tuple[int, ...] = DEFAULT_LS
    schemes: tuple[str, ...] = DEFAULT_SCHEMES
    data: str | None = None
    checkpoint_id: str | None = None
    quiet: bool = False
    quick: bool = False
    threads: int = 1
    save_all: bool = False
    task: str = "auto"


TASKS = ("auto", "classification", "regression")
"""``auto``: classification when the labels are class indices of the model's outputs, regression when they are
other numbers or absent (the outputs are then compared as numbers, not read as logits)."""


@dataclass
class DemoData:
    """The demo's inputs: float32 rows, labels (class indices, regression targets (N, O) or None), the number
    of classes, the task (``classification`` or ``regression``) and their origin."""

    x: np.ndarray
    y_true: np.ndarray | None
    n_classes: int
    desc: str
    task: str = "classification"

    @property
    def labelled(self) -> bool:
        return self.y_true is not None

    @property
    def n(self) -> int:
        return int(self.x.shape[0])


@dataclass
class Row:
    """One (L, scheme) configuration's results."""

    L: int
    scheme: str
    compile_s: float = 0.0
    metrics: dict = field(default_factory=dict)
    max_abs_err: float = float("nan")
    max_rel_err: float = float("nan")
    layer_tab_error: list = field(default_factory=list)
    table_bytes: int = 0
    sizes: dict = field(default_factory=dict)
    latency_us: dict = field(default_factory=dict)
    checks: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)
    files: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def tag(self) -> str:
        return f"L{self.L}_{self.scheme}"


__all__ = ["DEFAULT_LS", "DEFAULT_MODEL_NAME", "DEFAULT_SCHEMES", "FORMS", "QUICK_LS", "REL_TOL", "RUNS", "TASKS", "TIMED",
           "DemoConfig", "DemoData", "Row", "default_model_path"]
