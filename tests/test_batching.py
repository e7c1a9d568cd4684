"""Many runs in flight in one process: the generator node's async path reaches a batching backend.

``BatchCoalescer`` coalesces concurrent requests into batches; under ``ainvoke`` the
generator node awaits a backend's ``agenerate``, so requests from different runs
meet in one batch. The sync path (``invoke``) gives the same results.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from gems_graph.backends.batching import BatchCoalescer
from gems_graph.context import GemsContext
from gems_graph.graph import compile_graph
from gems_graph.models.generator import GenerationRequest
from gems_graph.testing import BatchingGpuModel, ColourGenerator, LatencyChatModel, ScriptedChatModel, loop_handler


async def test_concurrent_requests_share_batches_and_each_gets_its_own_image():
    gpu = BatchingGpuModel(batch_latency=0.2, max_batch_size=4)
    requests = [GenerationRequest(prompt="a square", seed=s) for s in range(8)]
    start = time.perf_counter()
    images = await asyncio.gather(*(gpu.agenerate(r) for r in requests))
    elapsed = time.perf_counter() - start

    assert sum(gpu.batches) == 8 and max(gpu.batches) == 4 and len(gpu.batches) <= 3
    assert elapsed < 3 * 0.2 + 0.3  # three batches at most, not eight calls
    painter = ColourGenerator()
    assert [im.tobytes() for im in images] == [painter.generate(r).tobytes() for r in requests]


def test_a_failing_request_fails_alone_and_a_failing_batch_fails_all_of_it():
    def run_batch(reqs):
        if any(r.prompt == "explode" for r in reqs):
            raise RuntimeError("out of GPU memory")
        return [ValueError("refused") if r.seed == 1 else ColourGenerator().generate(r) for r in reqs]

    batcher = BatchCoalescer(run_batch, window=0.05, max_batch=4)
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(batcher.submit, GenerationRequest(prompt="ok", seed=s)) for s in range(3)]
        assert futures[0].result(5).size == (16, 16) and futures[2].result(5).size == (16, 16)
        with pytest.raises(ValueError, match="refused"):
            futures[1].result(5)
    assert batcher.batches == [3]
    with pytest.raises(RuntimeError, match="out of GPU memory"):
        batcher.submit(GenerationRequest(prompt="explode", seed=0))


def _context(generator, chat, tmp_path) -> GemsContext:
    return GemsContext(
        generator=generator,
        chat_model=chat,
        max_rounds=3,
        max_skills=0,
        memory="none",
        refiner_images=0,
        artifact_root=str(tmp_path / "runs"),
    )


def _outcome(state) -> tuple:
    return state["status"], state["rounds_used"], state["best"]["image"]["sha256"]


async def test_runs_in_flight_coalesce_into_batches_and_match_sync_runs(tmp_path):
    # A short batch window, so on a busy machine the runs' planners need not finish within one batch.
    gpu = BatchingGpuModel(batch_latency=0.3, max_batch_size=64, window=0.5)
    chat = LatencyChatModel(handler=loop_handler(fix_at_round=2), latency=0.05)
    ctx = _context(gpu, chat, tmp_path)
    graph = compile_graph(checkpointer=InMemorySaver())
    runs = 40  # more than any default thread pool (at most 32 threads): a sync node could not batch them all

    def config(i, kind):
        return {"configurable": {"thread_id": f"{kind}-{i}"}, "recursion_limit": 30}

    start = time.perf_counter()
    states = await asyncio.gather(*(graph.ainvoke({"prompt": "a red square"}, config(i, "async"), context=ctx) for i in range(runs)))
    elapsed = time.perf_counter() - start

    assert all(s["status"] == "passed" and s["rounds_used"] == 2 for s in states)
    assert sum(gpu.batches) == 2 * runs, gpu.batches
    assert max(gpu.batches) > 32  # requests of more runs than threads met in one batch
    assert elapsed < 10 * (0.3 + 0.5)  # a handful of batches, not 80 images one at a time

    sync = [graph.invoke({"prompt": "a red square"}, config(i, "sync"), context=ctx) for i in range(2)]
    assert [_outcome(s) for s in sync] == [_outcome(s) for s in states[:2]]


async def test_a_backend_without_agenerate_still_runs_under_ainvoke(tmp_path):
    gen = ColourGenerator()
    ctx = _context(gen, ScriptedChatModel(handler=loop_handler(fix_at_round=2)), tmp_path)
    graph = compile_graph(checkpointer=InMemorySaver())
    state = await graph.ainvoke({"prompt": "a red square"}, {"configurable": {"thread_id": "t"}}, context=ctx)
    assert state["status"] == "passed" and len(gen.calls) == 2
