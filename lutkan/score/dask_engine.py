"""The Dask engine of ``lutkan score --engine dask`` and a helper for Dask array recipes.

``dask_results`` connects to a scheduler (``--scheduler ADDR``) or starts an embedded ``LocalCluster``
(``--workers N`` processes of one thread each, default one per usable CPU), submits one task per part
(``chunks.score_part``: the worker opens the input itself, reads and scores its part with the Predictor,
built once per worker process, before the first task) and yields the results in input order, keeping at
most ``2 x workers`` tasks in flight so the client's memory stays bounded. Only scores travel back; the
client writes the one output file. Workers must see the input and model at the same absolute paths (one
machine, or a shared file system).

``read_npy(path, rows_per_block)`` is a ``dask.array`` over a ``.npy`` file whose blocks each worker reads
from its own memory map (``da.from_array(np.load(..., mmap_mode="r"))`` would pickle the whole array
into the task graph).
"""

from __future__ import annotations

import logging
import os
from collections import deque
from contextlib import contextmanager

import numpy as np

from lutkan.errors import LutKanError
from lutkan.score.chunks import score_part

CONNECT_TIMEOUT = "20s"
"""How long ``--scheduler ADDR`` waits for the scheduler before giving up."""


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise LutKanError("--engine dask needs dask.distributed: pip install 'lutkan[scale]' "
                          "(or pip install 'dask[distributed]')") from None
    return distributed


@contextmanager
def connect(scheduler: str | None = None, workers: int | None = None):
    """A ``distributed.Client``: to ``scheduler`` if given, else to a new LocalCluster closed on exit."""
    distributed = _import_distributed()
    cluster = None
    try:
        if scheduler:
            try:
                client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT)
            except (OSError, TimeoutError) as e:
                raise LutKanError(f"cannot connect to the Dask scheduler at {scheduler!r}: {e}") from None
        else:
            cluster = distributed.LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1,
                                               processes=True, dashboard_address=":0", silence_logs=logging.ERROR)
            client = distributed.Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()


def _ordered(client, parts, submit, window: int):
    pending: deque = deque()
    it = iter(parts)
    try:
        for part in it:
            pending.append(submit(part))
            if len(pending) >= window:
                break
        while pending:
            res = pending.popleft().result()
            nxt = next(it, None)
            if nxt is not None:
                pending.append(submit(nxt))
            yield res
    finally:
        if pending:
            client.cancel(list(pending))


@contextmanager
def dask_results(source, predictor, batch_rows: int, *, part_rows: int, scheduler=None, workers=None,
                 stop_on_bad: bool = False, on_ready=None):
    """Context manager giving an iterator of one ``Scored`` per part, computed on the cluster, in order."""
    with connect(scheduler, workers) as client:
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
        except TimeoutError:
            raise LutKanError(f"the Dask cluster at {client.scheduler.address} has no workers") from None
        n = len(client.scheduler_info().get("workers", {}))
        client.run(_warm, predictor)  # every worker loads the model now: errors surface before any task runs
        if on_ready is not None:
            on_ready(f"dask: {n} worker{'s' if n != 1 else ''} at {client.scheduler.address}")
        parts = source.plan(part_rows)

        def submit(part):
            return client.submit(score_part, predictor, source, part, batch_rows, stop_on_bad, pure=False,
                                 key=f"lutkan-score-{os.getpid()}-{id(parts)}-{part.index}")

        gen = _ordered(client, parts, submit, window=2 * n)
        try:
            yield gen
        finally:
            gen.close()  # cancels the tasks still in flight (an early stop: a bad row, an interrupt)


def _warm(predictor) -> str:
    return predictor.build().backend


def _read_rows(path: str, start: int, stop: int) -> np.ndarray:
    return np.array(np.load(path, mmap_mode="r")[start:stop])


def read_npy(path, rows_per_block: int = 1_000_000):
    """A ``dask.array`` of a 2-D ``.npy`` file, chunked by rows; each block is read by the worker that needs it."""
    import dask
    import dask.array as da

    from lutkan.score.npy_io import NpySource

    src = NpySource(os.path.abspath(os.fspath(path)))
    n, w = src.shape
    read = dask.delayed(_read_rows, pure=True)
    blocks = [da.from_delayed(read(src.path, a, min(a + rows_per_block, n)), shape=(min(a + rows_per_block, n) - a, w),
                              dtype=src.dtype) for a in range(0, n, rows_per_block)]
    return da.concatenate(blocks, axis=0) if blocks else da.empty((0, w), dtype=src.dtype)


__all__ = ["connect", "dask_results", "default_workers", "read_npy"]
