"""Small models and data sets for the ``lutkan score`` / ``Predictor`` / scale-out tests (no torch needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import lutkan
from lutkan.testing.models import random_source


def make_model(folder: Path, width=(6, 4, 2), seed: int = 0, name: str = "m") -> dict[str, Path]:
    """``{"lutkan": m.lutkan, "function": m_function.onnx, "standard": ..., "custom": ...}`` in ``folder``."""
    from lutkan.exporter import save_onnx

    model = lutkan.compile_model(random_source(list(width), G=5, k=3, seed=seed),
                                 lutkan.ContractOptions(L=64, scheme="int8"))
    paths = {"lutkan": folder / f"{name}.lutkan"}
    lutkan.save(model, paths["lutkan"])
    for form in ("function", "standard", "custom"):
        paths[form] = folder / f"{name}_{form}.onnx"
        save_onnx(lutkan.export(model, form=form), paths[form])
    return paths


def features(n: int, width: int, seed: int = 0) -> np.ndarray:
    """float32 rows, mostly inside the knot domains, with a few out-of-domain values, NaN and infinities."""
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=1.5, size=(n, width)).astype(np.float32)
    x.flat[rng.choice(x.size, size=max(1, x.size // 500), replace=False)] = np.nan
    x.flat[rng.choice(x.size, size=max(1, x.size // 1000), replace=False)] = np.inf
    return x


def write_table(x: np.ndarray, folder: Path, stem: str, *, row_group_size: int = 1 << 20, ids: bool = True,
                names: list[str] | None = None) -> dict[str, Path]:
    """``stem.parquet`` and ``stem.csv`` with an int64 ``flow_id`` first (if ``ids``), then columns f0.. ."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    names = names or [f"f{i}" for i in range(x.shape[1])]
    cols = {"flow_id": pa.array(np.arange(len(x), dtype=np.int64) + 1000)} if ids else {}
    cols.update({n: pa.array(x[:, i]) for i, n in enumerate(names)})
    t = pa.table(cols)
    out = {"parquet": folder / f"{stem}.parquet", "csv": folder / f"{stem}.csv"}
    pq.write_table(t, out["parquet"], row_group_size=row_group_size)
    pacsv.write_csv(t, out["csv"])
    return out


def read_output(path: Path) -> np.ndarray:
    """The score columns ``y0``, ``y1``, ... of an output (any format) as (N, O) float32."""
    path = Path(path)
    if path.suffix == ".npy":
        return np.load(path)
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    t = pq.read_table(path) if path.suffix == ".parquet" else pacsv.read_csv(path)
    cols = [c for c in t.column_names if c[:1] == "y" and c[1:].isdigit()]
    return np.stack([t.column(c).to_numpy().astype(np.float32) for c in cols], axis=1)


def read_rows(path: Path) -> np.ndarray:
    """The ``row`` column of a CSV/Parquet score output."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    path = Path(path)
    t = pq.read_table(path) if path.suffix == ".parquet" else pacsv.read_csv(path)
    return t.column("row").to_numpy()
