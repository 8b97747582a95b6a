"""Engines: where the parts of an input are read and scored. Each yields ``Scored`` results in input order.

* ``single``: this process. A reader thread parses the next batch (pyarrow and the ``.npy`` copy release the
  GIL) while this thread scores the current one (the Numba kernel releases it too); at most ``PREFETCH``
  batches wait in between, so memory stays a few batches whatever the input size.
* ``dask``: a Dask cluster (``lutkan.score.dask_engine``): one task per part, a bounded number in flight.
"""

from __future__ import annotations

import queue
import threading
from contextlib import contextmanager

from lutkan.score.chunks import score_batch

ENGINES = ("single", "dask")
PREFETCH = 2
SINGLE_PART_ROWS = 1_000_000
DASK_PART_ROWS = 1_000_000

_DONE = object()


@contextmanager
def single_results(source, predictor, batch_rows: int):
    """Context manager giving an iterator of ``Scored`` per batch, scored in this process."""
    parts = source.plan(max(batch_rows, SINGLE_PART_ROWS))
    q: queue.Queue = queue.Queue(maxsize=PREFETCH)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for part in parts:
                for batch in source.batches(part, batch_rows):
                    if not put(batch):
                        return
            put(_DONE)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, raised there
            put(e)

    reader = threading.Thread(target=read, name="lutkan-score-reader", daemon=True)
    reader.start()

    def results():
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield score_batch(predictor, item)

    try:
        yield results()
    finally:
        stop.set()
        reader.join()


def engine_results(engine: str, source, predictor, batch_rows: int, *, stop_on_bad: bool, scheduler=None,
                   workers=None, part_rows=None, on_ready=None):
    """The context manager of ``engine`` (``single`` or ``dask``) yielding ``Scored`` results in order."""
    if engine == "single":
        return single_results(source, predictor, batch_rows)
    from lutkan.score.dask_engine import dask_results

    return dask_results(source, predictor, batch_rows, part_rows=part_rows or DASK_PART_ROWS, scheduler=scheduler,
                        workers=workers, stop_on_bad=stop_on_bad, on_ready=on_ready)


__all__ = ["ENGINES", "PREFETCH", "engine_results", "single_results"]
