"""Scoring data sets of any size: ``lutkan score``, ``lutkan.Predictor`` and the engines (this process, Dask).

    from lutkan.score import score_file
    stats = score_file("ids78.lutkan", "flows.parquet", "scores.parquet", columns="0:78")

Modules (one concept each): ``predictor`` (the picklable ``Predictor``), ``backends`` (which evaluator runs a
model file; built once per process), ``columns`` (``--columns`` specs), ``formats`` (extension -> reader/writer),
``npy_io`` / ``csv_io`` / ``parquet_io`` (readers and writers), ``badrows`` (policies, error, report),
``chunks`` (parts, batches, scored results), ``engines`` (single process), ``dask_engine`` (Dask), ``loop``
(``score_file``), ``cli`` (``lutkan score``). Importing this package is cheap: the rest loads on use.
See docs/scale-out.md for Dask, Spark and Ray recipes.
"""

from __future__ import annotations

from lutkan.score.cli import add_cli

_LAZY = {"Predictor": "lutkan.score.predictor", "score_file": "lutkan.score.loop", "ScoreStats": "lutkan.score.loop",
         "read_npy": "lutkan.score.dask_engine"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lutkan.score' has no attribute {name!r}")


__all__ = ["Predictor", "ScoreStats", "add_cli", "read_npy", "score_file"]
