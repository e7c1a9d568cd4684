"""Concurrent ``generate`` calls become ``generate_batch`` calls.

The graph fans a round out with one ``Send`` branch per candidate; LangGraph runs
the branches in parallel threads, and other runs in the same process call the same
cached backend too. A backend that makes several images at once more cheaply (a
diffusers pipeline, an image server that takes ``n``) puts a ``BatchCoalescer`` in
front of its ``generate_batch``: calls arriving within ``window`` seconds of the
first share one batch. The node keeps one branch per candidate (a failure stays on
its candidate, each result is checkpointed as it lands, Studio shows every branch),
and never needs to know which backends batch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any

from PIL import Image

from gems_graph.models.generator import GenerationError, GenerationRequest

#: ``generate_batch``: one result per request, in order; an exception in place of an image it could not make.
RunBatch = Callable[[list[GenerationRequest]], list[Any]]


class BatchCoalescer:
    """Collects concurrent requests per ``key`` and runs them through ``run_batch`` together.

    The first caller of a key leads: it waits ``window`` seconds, then runs batches
    of up to ``max_batch`` until that key's queue is empty, handing each caller its
    own result. Requests with different keys never share a batch and are led
    independently (an image server takes one prompt per request, so those run in
    parallel rather than queue behind each other).
    """

    def __init__(
        self, run_batch: RunBatch, *, window: float = 0.05, max_batch: int = 8, key: Callable[[GenerationRequest], Hashable] | None = None
    ) -> None:
        self.run_batch = run_batch
        self.max_batch = max(1, int(max_batch))
        self.window = window if self.max_batch > 1 else 0.0
        self._key = key or (lambda request: None)
        self._queues: dict[Hashable, list[tuple[GenerationRequest, Future]]] = {}
        self._lock = threading.Lock()

    def submit(self, request: GenerationRequest) -> Image.Image:
        """One image; blocks until the batch it joined is done. Raises what ``run_batch`` gave for it."""
        key = self._key(request)
        future: Future = Future()
        with self._lock:
            lead = key not in self._queues
            self._queues.setdefault(key, []).append((request, future))
        if lead:
            self._drain(key)
        result = future.result()
        if isinstance(result, BaseException):
            raise result
        return result

    def _drain(self, key: Hashable) -> None:
        if self.window > 0:
            time.sleep(self.window)
        while True:
            with self._lock:
                queue = self._queues[key]
                batch, rest = queue[: self.max_batch], queue[self.max_batch :]
                if not batch:
                    del self._queues[key]
                    return
                self._queues[key] = rest
            requests = [r for r, _ in batch]
            try:
                results: list[Any] = list(self.run_batch(requests))
            except BaseException as exc:  # noqa: BLE001 - handed to every waiting caller
                results = [exc] * len(batch)
            if len(results) < len(batch):
                missing = GenerationError(f"the batch returned {len(results)} results for {len(batch)} requests")
                results += [missing] * (len(batch) - len(results))
            for (_, fut), res in zip(batch, results):
                fut.set_result(res)
