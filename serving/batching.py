"""Dynamic batching for ``pipeline("universal-ie")``: concurrent requests share one forward pass.

One worker thread owns the pipeline (so nothing else calls it concurrently). It takes the oldest waiting request,
then keeps gathering requests for at most ``max_wait_ms`` (or until ``max_batch_size`` records), runs all their
records through one pipeline call (``batch_size`` = the gathered count, i.e. one forward pass), and hands every
request its own slice of the answers. Only requests with the same decoding options (threshold, scores) are
gathered together, since those are per pipeline call; schema and instruction travel inside each record, so
requests with different schemas share a pass.

A batch that fails (one bad record) is re-run request by request, so the error reaches only the request at fault.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


class BatcherClosed(RuntimeError):
    """The batcher is shutting down and takes no new requests."""


@dataclass
class _Request:
    records: list[dict]
    options: tuple[tuple[str, Any], ...]  # call options (threshold, return_scores): the gathering key
    future: Future = field(default_factory=Future)


@dataclass
class BatcherStats:
    requests: int = 0
    records: int = 0
    batches: int = 0  # pipeline calls (one forward pass each, bar long-text windows beyond max_batch_size)
    largest_batch: int = 0


class DynamicBatcher:
    """Gathers concurrent requests into pipeline calls.

    Args:
        pipe: a ``UniversalIEPipeline`` (or any callable ``pipe(records, batch_size=..., **options) -> answers``).
        max_wait_ms: how long the first request of a batch waits for company; ``0`` runs whatever is queued now.
        max_batch_size: records per pipeline call; a request larger than this runs alone (in several passes).
        batching: ``False`` runs requests one at a time (for comparison; same worker, same answers).
    """

    def __init__(
        self,
        pipe: Callable[..., Any],
        max_wait_ms: float = 5.0,
        max_batch_size: int = 32,
        batching: bool = True,
    ) -> None:
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        self.pipe = pipe
        self.max_wait = max_wait_ms / 1000.0
        self.max_batch_size = int(max_batch_size)
        self.batching = batching
        self.stats = BatcherStats()
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._held: list[_Request] = []  # taken from the queue, but with other options: first in the next batch
        self._closed = False
        self._lock = threading.Lock()
        self._worker = threading.Thread(target=self._run, name="ldnet-batcher", daemon=True)
        self._worker.start()

    # -- client side ---------------------------------------------------------------------------------------
    def submit(self, records: list[dict], **options: Any) -> Future:
        """Queue ``records`` (unified records with their schema); the future resolves to one answer per record."""
        req = _Request(list(records), tuple(sorted(options.items())))
        with self._lock:
            if self._closed:
                raise BatcherClosed("the server is shutting down")
            self._queue.put(req)
        return req.future

    def __call__(self, records: list[dict], timeout: float | None = None, **options: Any) -> list[dict]:
        return self.submit(records, **options).result(timeout)

    def pending(self) -> int:
        return self._queue.qsize() + len(self._held)

    def close(self, timeout: float | None = None) -> None:
        """Stop taking requests, finish every queued one, then stop the worker."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._worker.join(timeout)

    # -- worker side ---------------------------------------------------------------------------------------
    def _next(self, timeout: float | None) -> _Request | None:
        return self._queue.get(timeout=timeout) if timeout is None or timeout > 0 else self._queue.get_nowait()

    def _run(self) -> None:
        stopping = False
        while True:
            if self._held:
                first = self._held.pop(0)
            elif stopping:
                return
            else:
                first = self._queue.get()
                if first is None:
                    stopping = True
                    continue
            batch, size = [first], len(first.records)
            if self.batching:
                deadline = time.monotonic() + self.max_wait
                # gather: held requests first (they waited longest), then new arrivals until the deadline
                for req in list(self._held):
                    if req.options == first.options and size + len(req.records) <= self.max_batch_size:
                        self._held.remove(req)
                        batch.append(req)
                        size += len(req.records)
                while size < self.max_batch_size and not stopping:
                    try:
                        req = self._next(deadline - time.monotonic())
                    except queue.Empty:
                        break
                    if req is None:
                        stopping = True  # finish this batch and everything held, then stop
                        break
                    if req.options != first.options or size + len(req.records) > self.max_batch_size:
                        self._held.append(req)
                        if size + len(req.records) > self.max_batch_size:
                            break
                        continue
                    batch.append(req)
                    size += len(req.records)
            self._execute(batch)

    def _execute(self, batch: list[_Request]) -> None:
        live = [r for r in batch if r.future.set_running_or_notify_cancel()]
        if not live:
            return
        records = [rec for r in live for rec in r.records]
        options = dict(live[0].options)
        try:
            answers = self.pipe(records, batch_size=max(1, min(len(records), self.max_batch_size)), **options)
        except Exception as exc:  # noqa: BLE001 - attributed to the request at fault below
            if len(live) == 1:
                live[0].future.set_exception(exc)
                return
            logger.info("batch of %d requests failed (%s); running them one by one", len(live), exc)
            for r in live:
                try:
                    r.future.set_result(self.pipe(r.records, batch_size=max(1, len(r.records)), **options))
                except Exception as one_exc:  # noqa: BLE001
                    r.future.set_exception(one_exc)
                self._count([r])
            return
        self._count(live)
        start = 0
        for r in live:
            r.future.set_result(answers[start : start + len(r.records)])
            start += len(r.records)

    def _count(self, live: list[_Request]) -> None:
        n = sum(len(r.records) for r in live)
        self.stats.requests += len(live)
        self.stats.records += n
        self.stats.batches += 1
        self.stats.largest_batch = max(self.stats.largest_batch, n)
