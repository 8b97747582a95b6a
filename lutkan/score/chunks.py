"""The units of work shared by every engine: parts of an input, the batches read from them, their scores.

An input (``lutkan.score.formats``) is planned into ``Part``s, each readable on its own by any process
(rows of a ``.npy``, row groups of a Parquet file, a byte range of whole CSV lines). A part is read as
``Batch``es of at most ``batch_rows`` rows, which bounds memory; ``score_batch`` turns a batch into a
``Scored`` result with the bad rows set aside. Row numbers inside a ``Batch``/``Scored`` are local (0 =
its first row); the consumer (``lutkan.score.loop``) offsets them in input order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lutkan.score.badrows import BadRow


@dataclass(frozen=True)
class Part:
    """A slice of an input: ``[start, stop)`` in the format's unit (rows, row groups or bytes).

    ``rows`` is the number of data rows in it when known before reading (npy, Parquet), else None (CSV).
    """

    index: int
    start: int
    stop: int
    rows: int | None = None


@dataclass
class Batch:
    """Rows read from a part: ``x`` the good rows (n_good, width) float32; ``n_rows`` all rows read.

    ``good`` holds the local row numbers of ``x``'s rows when some rows were bad (None: every row good);
    ``bad`` the bad ones; ``extra`` the ``--keep`` columns of all ``n_rows`` rows (a pyarrow Table) or None.
    """

    x: np.ndarray
    n_rows: int
    good: np.ndarray | None = None
    bad: list[BadRow] = field(default_factory=list)
    extra: object = None


@dataclass
class Scored:
    """Scores of a batch or part: ``y`` (n_good, n_outputs) for the rows ``good`` (None: all ``n_rows``)."""

    y: np.ndarray
    n_rows: int
    good: np.ndarray | None = None
    bad: list[BadRow] = field(default_factory=list)
    extra: object = None


def score_batch(predictor, batch: Batch) -> Scored:
    """Score the good rows of ``batch`` (none -> an empty result)."""
    return Scored(predictor(batch.x), batch.n_rows, batch.good, batch.bad, batch.extra)


def concat(results: list[Scored], n_outputs: int) -> Scored:
    """One ``Scored`` for consecutive results (local rows renumbered from the first one's start)."""
    if len(results) == 1:
        return results[0]
    ys, goods, bads = [], [], []
    offset = 0
    any_bad = any(r.good is not None for r in results)
    for r in results:
        ys.append(r.y)
        if any_bad:
            goods.append((np.arange(r.n_rows) if r.good is None else r.good) + offset)
        bads.extend(b.shifted(offset) for b in r.bad)
        offset += r.n_rows
    y = np.concatenate(ys) if ys else np.empty((0, n_outputs), np.float32)
    extra = None
    if results and results[0].extra is not None:
        import pyarrow as pa

        extra = pa.concat_tables([r.extra for r in results])
    return Scored(y, offset, np.concatenate(goods) if any_bad else None, bads, extra)


def score_part(predictor, source, part: Part, batch_rows: int, stop_on_bad: bool = False) -> Scored:
    """Read and score one whole part (the task an engine's worker runs); ``stop_on_bad`` ends it at the
    first batch with a bad row (the ``fail`` policy: nothing after it is needed)."""
    results = []
    for batch in source.batches(part, batch_rows):
        results.append(score_batch(predictor, batch))
        if stop_on_bad and batch.bad:
            break
    return concat(results, predictor.n_outputs)


__all__ = ["Batch", "Part", "Scored", "concat", "score_batch", "score_part"]
