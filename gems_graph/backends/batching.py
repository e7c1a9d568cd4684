"""Concurrent ``generate`` calls become ``generate_batch`` calls.

The graph fans a round out with one ``Send`` branch per candidate; LangGraph runs
the branches in parallel threads, and other runs in the same process call the same
cached backend too. A backend that makes several images at once more cheaply (a
diffusers pipeline, an image server that takes ``n``) puts a ``BatchCoalescer`` in
front of its ``generate_batch``: calls arriving within ``window`` seconds of the
first share one batch, and requests that arrive while a batch runs make up the next
one (with ``window=0`` a lone request never waits for company). The node keeps one
branch per candidate (a failure stays on its candidate, each result is checkpointed
as it lands, Studio shows every branch), and never needs to know which backends batch.

``asubmit`` is the same from the event loop: under ``ainvoke`` a waiting request
holds no thread (only the caller that leads a batch runs it in one), so the
requests of many runs in flight meet in one batch. A backend offers it as
``agenerate``, which the generator node awaits when a backend has it.
"""

from __future__ import annotations

import asyncio
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
        #: The size of every batch run: what coalescing achieved (benchmarks read it).
        self.batches: list[int] = []

    def _enqueue(self, request: GenerationRequest) -> tuple[Hashable, Future, bool]:
        key = self._key(request)
        future: Future = Future()
        with self._lock:
            lead = key not in self._queues
            self._queues.setdefault(key, []).append((request, future))
        return key, future, lead

    @staticmethod
    def _result(result: Any) -> Image.Image:
        if isinstance(result, BaseException):
            raise result
        return result

    def submit(self, request: GenerationRequest) -> Image.Image:
        """One image; blocks until the batch it joined is done. Raises what ``run_batch`` gave for it."""
        key, future, lead = self._enqueue(request)
        if lead:
            self._drain(key)
        return self._result(future.result())

    async def asubmit(self, request: GenerationRequest) -> Image.Image:
        """``submit`` for the event loop: waiting takes no thread; leading a batch takes one."""
        key, future, lead = self._enqueue(request)
        if lead:
            await asyncio.to_thread(self._drain, key)
        return self._result(await asyncio.wrap_future(future))

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
            self.batches.append(len(batch))
            for (_, fut), res in zip(batch, run_batch(self.run_batch, [r for r, _ in batch])):
                fut.set_result(res)


def run_batch(run: Callable[[list[Any]], list[Any]], items: list[Any]) -> list[Any]:
    """``run(items)`` with the batch contract: one result per item, in order, an exception in
    place of each image not made (a raised exception, or a result missing, stands for all)."""
    try:
        results: list[Any] = list(run(items))
    except BaseException as exc:  # noqa: BLE001 - handed to every waiting caller
        results = [exc] * len(items)
    if len(results) < len(items):
        missing = GenerationError(f"the batch returned {len(results)} results for {len(items)} requests")
        results += [missing] * (len(items) - len(results))
    return results[: len(items)]


def params_key(request: GenerationRequest) -> Hashable:
    """Requests that can share one pipeline call: the same parameters (prompts and seeds may differ)."""
    extra = tuple(sorted((k, repr(v)) for k, v in request.extra.items()))
    return (request.width, request.height, request.steps, request.guidance, request.negative_prompt, extra)
