"""``gems serve-generator``'s queue: bounded, batching across clients, and measured.

Handler threads (one per connection) put their images here and wait on futures;
``workers`` threads (``--max-concurrency``) take the oldest image and the queued images
that can share its pipeline call (same ``key``), up to ``max_batch``, after waiting up
to ``window`` seconds from its arrival for company, and run them in one call. So the
requests of many agents become one ``generate_batch`` on the GPU.

Why not ``BatchCoalescer``: there the first caller leads and runs batches until the
queue is empty, which suits a round's candidates in one process, but under a server's
steady load one client's answer would wait for everyone's batches, and nothing would
bound what waits. Here workers run batches, handlers only wait, the queue holds at
most ``max_queue`` images (``QueueFull`` past it: 503 with ``Retry-After``), and a
waiting image whose client has gone or whose time is up is cancelled and never run.
The result rule is ``batching.run_batch``'s.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from gems_graph.backends.batching import run_batch

#: Batch-size histogram buckets (``/metrics``).
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
#: Queue-wait histogram buckets, in seconds.
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0)
#: Seconds over which ``images_per_second`` is measured.
RATE_WINDOW = 60.0


class QueueFull(Exception):
    """The queue holds ``max_queue`` images: the request gets 503 with ``Retry-After``."""


@dataclass
class _Job:
    item: Any
    run: Callable[[list[Any]], list[Any]]
    key: Hashable | None  # None: never shares a batch
    future: Future = field(default_factory=Future)
    queued_at: float = field(default_factory=time.monotonic)


class _Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.count += 1
        self.total += value
        for i, edge in enumerate(self.buckets):
            if value <= edge:
                self.counts[i] += 1

    def lines(self, name: str) -> list[str]:
        out = [f'{name}_bucket{{le="{edge:g}"}} {n}' for edge, n in zip(self.buckets, self.counts)]
        out += [f'{name}_bucket{{le="+Inf"}} {self.count}', f"{name}_sum {self.total:g}", f"{name}_count {self.count}"]
        return out


class ServingQueue:
    """A bounded FIFO of images, run in batches by ``workers`` threads."""

    def __init__(self, *, max_queue: int, max_batch: int, window: float, workers: int) -> None:
        if max_queue < 1 or max_batch < 1 or workers < 1 or window < 0:
            raise ValueError("max_queue, max_batch and max_concurrency must be >= 1 and batch_window >= 0")
        self.max_queue, self.max_batch, self.window = max_queue, max_batch, window
        self._pending: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self.running = 0
        self.batches = _Histogram(BATCH_BUCKETS)
        self.waits = _Histogram(WAIT_BUCKETS)
        self.images = 0
        self.failed = 0
        self.dropped: dict[str, int] = {"queue_full": 0, "client_gone": 0, "deadline": 0}
        self._done: deque[float] = deque()
        self._workers = [threading.Thread(target=self._work, name=f"gems-serve-{i}", daemon=True) for i in range(workers)]
        for t in self._workers:
            t.start()

    @property
    def depth(self) -> int:
        """Images waiting to start (cancelled ones not counted)."""
        with self._cond:
            return sum(1 for j in self._pending if not j.future.cancelled())

    def put(self, items: list[Any], run: Callable[[list[Any]], list[Any]], key: Hashable | None) -> list[Future]:
        """Queue ``items`` (all or none); ``run(batch)`` makes one result per item, an exception in place of a failure."""
        with self._cond:
            waiting = sum(1 for j in self._pending if not j.future.cancelled())
            if waiting + len(items) > self.max_queue:
                self.dropped["queue_full"] += 1
                raise QueueFull(f"queue full: {waiting} images waiting (serve-generator --max-queue {self.max_queue})")
            jobs = [_Job(item, run, key) for item in items]
            self._pending.extend(jobs)
            self._cond.notify_all()
        return [j.future for j in jobs]

    def cancel(self, futures: list[Future], reason: str) -> None:
        """Drop the images of ``futures`` that have not started (``reason``: client_gone, deadline)."""
        cancelled = sum(1 for f in futures if f.cancel())
        with self._cond:
            self.dropped[reason] += cancelled
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            for job in self._pending:
                job.future.cancel()
            self._pending.clear()
            self._cond.notify_all()

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            results = run_batch(batch[0].run, [j.item for j in batch])
            with self._cond:
                self.running -= len(batch)
                self.batches.observe(len(batch))
                now = time.monotonic()
                for res in results:
                    if isinstance(res, BaseException):
                        self.failed += 1
                    else:
                        self.images += 1
                        self._done.append(now)
            for job, res in zip(batch, results):
                job.future.set_result(res)

    def _next_batch(self) -> list[_Job] | None:
        """The oldest image and those that can join it, once its window has passed or the batch is full."""
        with self._cond:
            while True:
                while self._pending and self._pending[0].future.cancelled():
                    self._pending.popleft()
                if self._closed:
                    return None
                if not self._pending:
                    self._cond.wait()
                    continue
                head = self._pending[0]
                left = head.queued_at + self.window - time.monotonic()
                if head.key is not None and left > 0 and self._companions(head) < self.max_batch:
                    self._cond.wait(left)
                    continue
                batch = self._take(head)
                if batch:
                    self.running += len(batch)
                    started = time.monotonic()
                    for job in batch:
                        self.waits.observe(started - job.queued_at)
                    return batch

    def _companions(self, head: _Job) -> int:
        return sum(1 for j in self._pending if j.key == head.key and not j.future.cancelled())

    def _take(self, head: _Job) -> list[_Job]:
        batch: list[_Job] = []
        kept: deque[_Job] = deque()
        for job in self._pending:
            joins = job is head or (head.key is not None and job.key == head.key and job.run is head.run)
            if joins and len(batch) < self.max_batch:
                if job.future.set_running_or_notify_cancel():
                    batch.append(job)
            elif not job.future.cancelled():
                kept.append(job)
        self._pending = kept
        return batch

    def images_per_second(self) -> float:
        """Images made over the last ``RATE_WINDOW`` seconds, per second."""
        with self._cond:
            cutoff = time.monotonic() - RATE_WINDOW
            while self._done and self._done[0] < cutoff:
                self._done.popleft()
            return len(self._done) / RATE_WINDOW

    def prometheus(self) -> str:
        """The queue's figures in Prometheus' text format (``GET /metrics``)."""
        rate = self.images_per_second()
        depth = self.depth
        with self._cond:
            lines = [
                "# HELP gems_queue_depth Images waiting to start.",
                "# TYPE gems_queue_depth gauge",
                f"gems_queue_depth {depth}",
                "# HELP gems_queue_capacity Images the queue holds at most (--max-queue).",
                "# TYPE gems_queue_capacity gauge",
                f"gems_queue_capacity {self.max_queue}",
                "# HELP gems_images_running Images in a pipeline call now.",
                "# TYPE gems_images_running gauge",
                f"gems_images_running {self.running}",
                "# HELP gems_images_total Images made.",
                "# TYPE gems_images_total counter",
                f"gems_images_total {self.images}",
                "# HELP gems_image_failures_total Images the generator could not make.",
                "# TYPE gems_image_failures_total counter",
                f"gems_image_failures_total {self.failed}",
                f"# HELP gems_images_per_second Images made per second over the last {RATE_WINDOW:g} s.",
                "# TYPE gems_images_per_second gauge",
                f"gems_images_per_second {rate:g}",
                "# HELP gems_dropped_total Requests refused (queue_full) or images dropped before they ran (client_gone, deadline).",
                "# TYPE gems_dropped_total counter",
                *(f'gems_dropped_total{{reason="{k}"}} {v}' for k, v in self.dropped.items()),
                "# HELP gems_batch_size Images per pipeline call.",
                "# TYPE gems_batch_size histogram",
                *self.batches.lines("gems_batch_size"),
                "# HELP gems_queue_wait_seconds Seconds an image waited before its pipeline call.",
                "# TYPE gems_queue_wait_seconds histogram",
                *self.waits.lines("gems_queue_wait_seconds"),
            ]
        return "\n".join(lines) + "\n"
