"""Dynamic batching for ``pipeline("universal-ie")``: concurrent requests share forward passes, a pass never holds
more than ``max_batch_size`` windows, and no request waits behind all of another request's windows.

A request is encoded when it is submitted, in the caller's thread (``pipe.preprocess``: tokenization, long-text
windows, schema label groups): that gives its **rows**, one per window (per label-group pass) of each record. One
worker thread owns the model. It builds each forward pass from the rows of the waiting requests **round-robin**
(one row of each request in turn, oldest first) up to ``max_batch_size`` rows, so a one-sentence request that
arrives while a 64-text request runs is in the very next pass (newcomers first, in a pass of a quarter of
``max_batch_size`` rows, so that it is quick: on a CPU, rows per second hardly depend on the pass size); it runs
the pass (rows right-padded to the longest),
keeps each row's logits, and decodes a record (``pipe.postprocess``: its windows merged) as soon as all of its rows
are done; a request is answered when its last record is decoded. Decoding options (threshold, scores) act only in
decoding, so requests with different options share passes.

The first pass over a new request waits at most ``max_wait_ms`` for company (no wait once ``max_batch_size`` rows
are waiting). Cancelling a request's future (the server does when its client disconnects) drops the rows it has
left; counted in :class:`BatcherStats`. A pass that raises is re-run request by request, so the error reaches only
the request at fault. ``batching=False`` runs one request at a time, in passes of ``max_batch_size`` rows (FIFO,
for comparison).
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import torch

from modeling_ldnet.answers_ldnet import DECODE_TRUNCATED
from modeling_ldnet.encoding_ldnet import EncodingReport

logger = logging.getLogger(__name__)

#: model inputs with a sequence axis (right-padded when rows of several requests share a pass)
_SEQ_KEYS = ("input_ids", "attention_mask", "token_type_ids")
#: waits kept for the queue-time percentiles of :meth:`DynamicBatcher.queue_stats`
_RECENT_WAITS = 512


class BatcherClosed(RuntimeError):
    """The batcher is shutting down and takes no new requests."""


@dataclass
class EncodedRequest:
    """A request after ``pipe.preprocess``: its rows (one per window and label-group pass) and their metadata.

    ``cost`` is the request's work in **token-labels**: per record, its text tokens times its schema labels (at
    least 1: a QA record reads its question), summed over records; the server's ``--max-request-cost`` budget.
    """

    records: int
    inputs: dict[str, torch.Tensor]  # the request's rows, padded to its own longest
    metas: list[Any]  # FeatureMeta per row
    post: dict[str, Any]  # decoding options (threshold, return_scores)
    report: Any  # the call's EncodingReport
    cost: int
    record_rows: list[range]  # rows of each record (consecutive)
    record_len: list[int]  # longest row of each record: its decode grid's size

    @property
    def windows(self) -> int:
        return len(self.metas)


@dataclass(eq=False)
class _Job:
    req: EncodedRequest
    future: Future
    enqueued: float
    next_row: int = 0
    started: float | None = None
    logits: dict[int, torch.Tensor] = field(default_factory=dict)  # finished rows of unfinished records
    rows_left: list[int] = field(default_factory=list)  # per record
    answers: list[dict | None] = field(default_factory=list)
    failed: bool = False

    def remaining(self) -> int:
        return self.req.windows - self.next_row


@dataclass
class BatcherStats:
    requests: int = 0  # answered (or failed)
    records: int = 0
    windows: int = 0  # rows run through the model
    batches: int = 0  # forward passes
    largest_batch: int = 0  # most rows in one pass (never above max_batch_size)
    cancelled_requests: int = 0  # dropped because their client disconnected (or their future was cancelled)
    dropped_windows: int = 0  # rows of cancelled requests that never ran


def request_cost(metas: list[Any]) -> int:
    """Token-labels of an encoding (see :class:`EncodedRequest`): text tokens x labels per record, summed."""
    labels: dict[int, dict[int, int]] = {}  # record -> schema group -> labels in it
    tokens: dict[int, int] = {}
    for m in metas:
        labels.setdefault(m.record_index, {})[m.schema_group] = len(m.tags)
        tokens[m.record_index] = len(m.token_offsets)
    return sum(tokens[r] * max(1, sum(groups.values())) for r, groups in labels.items())


class DynamicBatcher:
    """Shares forward passes between concurrent requests (see the module docstring).

    Args:
        pipe: a ``UniversalIEPipeline`` (any backend); its ``preprocess`` / ``forward`` / ``postprocess`` are used.
        max_wait_ms: how long a new request's first pass waits for company; ``0`` runs whatever is queued now.
        max_batch_size: rows (windows) per forward pass, whatever the requests.
        batching: ``False`` runs requests one at a time (for comparison; same worker, same answers).
    """

    def __init__(
        self,
        pipe: Any,
        max_wait_ms: float = 5.0,
        max_batch_size: int = 32,
        batching: bool = True,
        clock: Callable[[], float] = time.monotonic,
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
        self._clock = clock
        self._jobs: list[_Job] = []  # unanswered requests, oldest first
        self._waits: deque[float] = deque(maxlen=_RECENT_WAITS)  # submit -> first pass, seconds
        self._closed = False
        self._cond = threading.Condition()
        self._worker = threading.Thread(target=self._run, name="ldnet-batcher", daemon=True)
        self._worker.start()

    # -- client side ---------------------------------------------------------------------------------------
    def encode(self, records: list[dict], **options: Any) -> EncodedRequest:
        """Encode ``records`` (unified records with their schema) for :meth:`enqueue`; raises the pipeline's
        input errors (``RecordError`` / ``ValueError`` / ``TypeError``, naming record and field)."""
        pipe = self.pipe
        pre, _, post = pipe._sanitize_parameters(**options)
        post = {**pipe._postprocess_params, **post}
        report = EncodingReport()
        encoded = pipe.preprocess(list(records), **{**pipe._preprocess_params, **pre}, _report=report)
        metas = encoded["meta"]
        rows: dict[int, list[int]] = {}
        for i, m in enumerate(metas):
            rows.setdefault(m.record_index, []).append(i)
        if sorted(rows) != list(range(len(records))) or any(r != list(range(r[0], r[-1] + 1)) for r in rows.values()):
            raise RuntimeError("universal-ie: the encoding's rows are not grouped by record")  # a broken processor
        record_rows = [range(rows[r][0], rows[r][-1] + 1) for r in range(len(records))]
        return EncodedRequest(
            records=len(records),
            inputs=encoded["model_inputs"],
            metas=metas,
            post=post,
            report=report,
            cost=request_cost(metas),
            record_rows=record_rows,
            record_len=[max(metas[i].length for i in rr) for rr in record_rows],
        )

    def enqueue(self, req: EncodedRequest) -> Future:
        """Queue an encoded request; the future resolves to one answer per record (cancel it to drop the work)."""
        job = _Job(req, Future(), self._clock(), rows_left=[len(r) for r in req.record_rows],
                   answers=[None] * req.records)
        with self._cond:
            if self._closed:
                raise BatcherClosed("the server is shutting down")
            self._jobs.append(job)
            self._cond.notify_all()
        return job.future

    def submit(self, records: list[dict], **options: Any) -> Future:
        """:meth:`encode` + :meth:`enqueue`."""
        return self.enqueue(self.encode(records, **options))

    def __call__(self, records: list[dict], timeout: float | None = None, **options: Any) -> list[dict]:
        return self.submit(records, **options).result(timeout)

    def cancel(self, future: Future) -> bool:
        """Drop a queued request (its rows not yet run are never run); True when it was still unanswered."""
        cancelled = future.cancel()
        with self._cond:
            self._cond.notify_all()  # the worker drops it (and counts it) at its next look at the queue
        return cancelled

    def pending(self) -> int:
        """Requests not answered yet (queued or running)."""
        with self._cond:
            return len(self._jobs)

    def queue_stats(self) -> dict[str, Any]:
        """Queue length and queue time: pending requests and windows, the oldest pending request's age, and the
        p50 / p95 wait (submit -> first forward pass) of the last requests, in seconds."""
        now = self._clock()
        with self._cond:
            jobs = list(self._jobs)
            waits = sorted(self._waits)
        return {
            "pending_requests": len(jobs),
            "pending_windows": sum(j.remaining() for j in jobs),
            "oldest_pending_s": round(now - min(j.enqueued for j in jobs), 3) if jobs else 0.0,
            "wait_p50_s": round(statistics.median(waits), 3) if waits else None,
            "wait_p95_s": round(waits[min(len(waits) - 1, int(0.95 * len(waits)))], 3) if waits else None,
            "waits_counted": len(waits),
        }

    def close(self, timeout: float | None = None) -> None:
        """Stop taking requests, finish every queued one, then stop the worker."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._worker.join(timeout)

    # -- worker side ---------------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    self._drop_cancelled()
                    if not any(j.remaining() for j in self._jobs):
                        if self._closed and not self._jobs:
                            return
                        self._cond.wait()
                        continue
                    wait = self._wait_time()
                    if wait <= 0:
                        break
                    self._cond.wait(wait)
                rows = self._take_rows()
            self._execute(rows)

    def _drop_cancelled(self) -> None:
        for job in [j for j in self._jobs if j.future.cancelled()]:
            self._jobs.remove(job)
            self.stats.cancelled_requests += 1
            self.stats.dropped_windows += job.remaining()
            logger.info("request cancelled: %d of its %d windows dropped", job.remaining(), job.req.windows)

    def _wait_time(self) -> float:
        """Seconds to wait for company before the next pass (0: run now)."""
        if not self.batching or self._closed:
            return 0.0
        if sum(j.remaining() for j in self._jobs) >= self.max_batch_size:
            return 0.0
        fresh = [j.enqueued for j in self._jobs if j.started is None]
        if not fresh:  # everything waiting has had its first pass: no reason to wait
            return 0.0
        return min(fresh) + self.max_wait - self._clock()

    def _take_rows(self) -> list[tuple[_Job, int]]:
        """The next pass: up to ``max_batch_size`` rows, one of each waiting request in turn (oldest first)."""
        active = [j for j in self._jobs if j.remaining()]
        limit = self.max_batch_size
        if not self.batching:
            active = active[:1]
        else:
            fresh = [j for j in active if j.started is None]
            if fresh and len(fresh) < len(active):
                # newcomers while others run: their windows first, in a quick pass (a quarter of the usual size),
                # so a short request waits for the pass in flight and one small pass, not two full ones
                active = fresh + [j for j in active if j.started is not None]
                limit = max(1, self.max_batch_size // 4)
        rows: list[tuple[_Job, int]] = []
        while active and len(rows) < limit:
            for job in list(active):
                if len(rows) == limit:
                    break
                take = 1 if self.batching else min(job.remaining(), self.max_batch_size)
                rows += [(job, job.next_row + k) for k in range(take)]
                job.next_row += take
                if not job.remaining():
                    active.remove(job)
        now = self._clock()
        for job in dict.fromkeys(j for j, _ in rows):
            if job.started is None:
                job.started = now
                self._waits.append(now - job.enqueued)
        return rows

    def _forward(self, rows: list[tuple[_Job, int]]) -> list[torch.Tensor]:
        """Logits of ``rows`` in one pass, each cropped to its record's decode size ``[3, n, n]``."""
        keys = list(rows[0][0].req.inputs)
        if any(list(j.req.inputs) != keys for j, _ in rows):
            raise ValueError("universal-ie: requests with different model inputs (images) cannot share a pass")
        # every row padded to its record's longest window at least, so a record decodes on the grid size a direct
        # pipeline call gives it
        length = max(j.req.record_len[_record_of(j, r)] for j, r in rows)
        pad_id = getattr(self.pipe.processor.tokenizer, "pad_token_id", None) or 0
        batch: dict[str, torch.Tensor] = {}
        for key in keys:
            parts = [j.req.inputs[key][r] for j, r in rows]
            if key in _SEQ_KEYS:
                out = parts[0].new_full((len(parts), length), pad_id if key == "input_ids" else 0)
                for b, ((j, r), x) in enumerate(zip(rows, parts)):
                    n = j.req.metas[r].length
                    out[b, :n] = x[:n]
                batch[key] = out
            else:
                batch[key] = torch.stack(parts)
        metas = [j.req.metas[r] for j, r in rows]
        logits = self.pipe.forward({"model_inputs": batch, "meta": metas, "single": False})["logits"]
        out_rows = []
        for b, (j, r) in enumerate(rows):
            n = j.req.record_len[_record_of(j, r)]
            out_rows.append(logits[b, :, :n, :n].clone())
        return out_rows

    def _execute(self, rows: list[tuple[_Job, int]]) -> None:
        jobs = list(dict.fromkeys(j for j, _ in rows))
        try:
            results = list(zip(rows, self._forward(rows)))
        except Exception as exc:  # noqa: BLE001 - attributed to the request at fault below
            if len(jobs) == 1:
                self._fail(jobs[0], exc)
                return
            logger.info("a pass over %d requests failed (%s); running them one by one", len(jobs), exc)
            results = []
            for job in jobs:
                mine = [(j, r) for j, r in rows if j is job]
                try:
                    results += list(zip(mine, self._forward(mine)))
                except Exception as one_exc:  # noqa: BLE001
                    self._fail(job, one_exc)
        self.stats.batches += 1
        self.stats.windows += len(rows)
        self.stats.largest_batch = max(self.stats.largest_batch, len(rows))
        for (job, r), logits in results:
            if job.failed or job.future.cancelled():
                continue
            rec = _record_of(job, r)
            job.logits[r] = logits
            job.rows_left[rec] -= 1
            if job.rows_left[rec] == 0:
                try:
                    job.answers[rec] = self._decode(job, rec)
                except Exception as exc:  # noqa: BLE001
                    self._fail(job, exc)
                    continue
            if all(a is not None for a in job.answers):
                self._finish(job)

    def _decode(self, job: _Job, rec: int) -> dict:
        req = job.req
        rows = req.record_rows[rec]
        grid = torch.stack([job.logits.pop(r) for r in rows])
        metas = [dataclasses.replace(req.metas[r], record_index=0) for r in rows]
        return self.pipe.postprocess({"logits": grid, "label_drop_probs": None, "meta": metas, "single": False},
                                     **req.post)[0]

    def _finish(self, job: _Job) -> None:
        with self._cond:
            if job in self._jobs:
                self._jobs.remove(job)
        self.stats.requests += 1
        self.stats.records += job.req.records
        cut = [job.req.metas[rr[0]].record_id for rr, a in zip(job.req.record_rows, job.answers)
               if a.get(DECODE_TRUNCATED)]
        if cut:
            logger.warning("universal-ie: the decode step budget ran out for records %s; their answers are partial "
                           "and flagged %r", cut[:10], DECODE_TRUNCATED)
        if job.future.set_running_or_notify_cancel():
            job.future.set_result(list(job.answers))

    def _fail(self, job: _Job, exc: BaseException) -> None:
        job.failed = True
        job.logits.clear()
        with self._cond:
            if job in self._jobs:
                self._jobs.remove(job)
        self.stats.requests += 1
        if job.future.set_running_or_notify_cancel():
            job.future.set_exception(exc)


def _record_of(job: _Job, row: int) -> int:
    return job.req.metas[row].record_index

