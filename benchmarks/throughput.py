"""Throughput with many runs in flight in one process (async ``ainvoke`` of the compiled graph).

Modelled backends (``gems_graph.testing``): a GPU image server that takes
``--batch-latency`` seconds per batch of up to ``--max-batch`` images and coalesces
concurrent requests from different runs (``BatchingGpuModel``), and a VLM endpoint
that takes ``--chat-latency`` seconds per call (``LatencyChatModel``). Every run is
the GEMS loop (1 candidate a round, skills and memory off) that passes at round
``--rounds``, so each run makes exactly that many images.

For each N, N runs are kept in flight (a finished run is replaced at once); after a
warm-up, images and VLM calls are counted over ``--window`` seconds. The ideal is
what the generator's batching allows:

    ideal images/s = min(B / L,  N * R / T_run)      T_run = R * L + 3R * c

(B batch size, L batch latency, R rounds, c chat latency; a run waits on 3 chat
calls in sequence a round: planner, decompose and one wave of parallel
verifications in round 1; compress, refine and verifications in each later round).
The modelled critic asks 2 checks, so a run makes 4R VLM calls (planner, decompose,
2 verifications a round, compress and refine between rounds): ideal VLM calls/s is
4 x ideal images/s. Target: at N = 64,
at least 85% of the ideal, with the batches full.

The real shapes model on the CPU follows (its own chat model), at 1, 2 and 4 runs in
flight in this process, then against ``gems serve-generator shapes`` with two workers
(``--max-concurrency 2``: two batches at once; clients' images are coalesced into
batches) on loopback. In one process its ``generate`` makes one image at a time, so the
figures beside images/s are the seconds an image took while the generator was busy
and the share of the window it was busy. Every model call runs on its share of the
thread budget (``gems_graph.models.cpu_threads``; the budget is printed). Measured
inside the window, so CPU contention from other processes slows every row alike.

Writes ``benchmarks/results/throughput.json``.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/throughput.py [--ns 1,4,16,64] [--shapes-ns 1,2,4]
        [--server-workers 2] [--server-ns 4] [--no-shapes] [--no-modelled]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langgraph.checkpoint.memory import InMemorySaver
from record import RESULTS, write_result

from gems_graph.context import GemsContext
from gems_graph.graph import compile_graph
from gems_graph.testing import BatchingGpuModel, LatencyChatModel, loop_handler


def loop_context(generator: Any, chat_model: Any, rounds: int, root: Path) -> GemsContext:
    return GemsContext(
        generator=generator,
        chat_model=chat_model,
        max_rounds=rounds,
        candidates_per_round=1,
        max_skills=0,
        memory="none",
        refiner_images=0,
        artifact_root=str(root),
    )


async def keep_in_flight(n: int, ctx: GemsContext, prompts: list[str], warmup: float, window: float) -> tuple[float, float, int]:
    """Keep ``n`` runs going; return (window start, window end, runs finished in the window)."""
    graph = compile_graph(checkpointer=InMemorySaver())
    ids = itertools.count()
    finished: list[float] = []

    async def slot() -> None:
        while True:
            i = next(ids)
            config = {"configurable": {"thread_id": f"run-{i}"}, "recursion_limit": 10 + 4 * ctx.max_rounds}
            await graph.ainvoke({"prompt": prompts[i % len(prompts)]}, config, context=ctx)
            finished.append(time.perf_counter())

    tasks = [asyncio.create_task(slot()) for _ in range(n)]
    await asyncio.sleep(warmup)
    start = time.perf_counter()
    await asyncio.sleep(window)
    end = time.perf_counter()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for t in tasks:  # a run that failed (not cancelled) would make the figures meaningless
        if not t.cancelled() and t.exception() is not None:
            raise t.exception()
    return start, end, sum(1 for f in finished if start <= f <= end)


def occupied(spans: list[tuple[float, float]], start: float, end: float) -> float:
    """Seconds of [start, end] covered by at least one span."""
    total, reach = 0.0, start
    for a, b in sorted(spans):
        a, b = max(a, reach), min(b, end)
        if b > a:
            total += b - a
            reach = b
    return total


def in_window(times: list[float], start: float, end: float) -> int:
    return sum(1 for t in times if start <= t <= end)


def modelled(args: argparse.Namespace, root: Path) -> list[dict[str, Any]]:
    B, L, c, R = args.max_batch, args.batch_latency, args.chat_latency, args.rounds
    t_run = R * L + 3 * R * c
    rows = []
    for n in args.ns:
        gpu = BatchingGpuModel(L, B)
        chat = LatencyChatModel(handler=loop_handler(fix_at_round=R), latency=c)
        ctx = loop_context(_SyncOnly(gpu) if args.sync_generator else gpu, chat, R, root / f"n{n}")
        warmup = args.warmup if args.warmup is not None else 1.5 * t_run
        start, end, runs = asyncio.run(keep_in_flight(n, ctx, ["a red square"], warmup, args.window))
        secs = end - start
        images = in_window(gpu.image_times, start, end) / secs
        calls = in_window(chat.call_times, start, end) / secs
        ideal = min(B / L, n * R / t_run)
        calls_per_image = 4  # 4R calls per run of R images (see above)
        batches = gpu.batches[len(gpu.batches) // 4 :] or [0]  # past the ramp-up
        rows.append(
            {
                "n": n,
                "images_s": images,
                "ideal_images_s": ideal,
                "vlm_s": calls,
                "ideal_vlm_s": ideal * calls_per_image,
                "efficiency": images / ideal,
                "mean_batch": statistics.mean(batches),
                "runs_s": runs / secs,
            }
        )
        print(
            f"N={n:>3}  images/s {images:6.2f} (ideal {ideal:6.2f}, {100 * images / ideal:5.1f}%)  "
            f"VLM calls/s {calls:7.2f} (ideal {ideal * calls_per_image:7.2f})  mean batch {statistics.mean(batches):4.1f}/{B}",
            flush=True,
        )
    return rows


def shapes(args: argparse.Namespace, root: Path) -> list[dict[str, Any]]:
    from gems_graph.models.cpu_threads import thread_budget
    from gems_graph.models.generator import GenerationRequest
    from gems_graph.models.registry import resolve_chat_model, resolve_generator
    from gems_graph.shapes.suite import dev_split

    gen = resolve_generator("shapes")
    gen.generate(GenerationRequest(prompt="a red circle", seed=0))  # load the weights before timing
    prompts = [it.prompt for it in dev_split()][:16]
    chat = resolve_chat_model("shapes")
    print(f"shapes model: thread budget {thread_budget()} (gems_graph.models.cpu_threads)", flush=True)
    rows = [_shapes_row(args, root / f"shapes{n}", n, gen, chat, prompts, "in this process") for n in args.shapes_ns]
    if args.server_workers:
        proc, url = _serve(args.server_workers)
        try:
            from gems_graph.backends.images_api import ImagesApiGenerator

            remote = ImagesApiGenerator(url + "/v1", "shapes", max_batch=1)
            where = f"{args.server_workers} workers of one gems serve-generator"
            rows += [_shapes_row(args, root / f"served{n}", n, remote, chat, prompts, where) for n in args.server_ns]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return rows


def _shapes_row(args: argparse.Namespace, root: Path, n: int, gen: Any, chat: Any, prompts: list[str], where: str) -> dict[str, Any]:
    timed = _TimedGenerator(gen)
    calls_timer = _CallTimes()
    ctx = loop_context(timed, chat.model_copy(update={"callbacks": [calls_timer]}), args.rounds, root)
    start, end, runs = asyncio.run(keep_in_flight(n, ctx, prompts, args.shapes_warmup, args.shapes_window))
    secs = end - start
    images = sum(1 for _, b in timed.spans if start <= b <= end) / secs
    # In one process the model makes one image at a time (calls queue on its lock): the union
    # of the calls' spans is when it was working, and each image took busy time / images.
    busy = occupied(timed.spans, start, end) / secs
    per_image = busy / images if images else float("nan")
    calls = in_window(calls_timer.times, start, end) / secs
    print(
        f"shapes N={n:>2} ({where})  images/s {images:5.3f} (1/{per_image:.2f}s while busy, "
        f"generator busy {100 * busy:5.1f}%)  chat calls/s {calls:6.2f}",
        flush=True,
    )
    return {"n": n, "where": where, "images_s": images, "seconds_per_image_busy": per_image, "vlm_s": calls, "busy": busy}


def _serve(workers: int) -> tuple[Any, str]:
    """``gems serve-generator shapes --max-concurrency WORKERS`` on a free loopback port, once it answers."""
    import socket
    import subprocess
    import sys

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "gems_graph", "serve-generator", "shapes", "--port", str(port), "--max-concurrency", str(workers)]
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(1200):
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("serve-generator did not start")


class _SyncOnly:
    """The generator without its ``agenerate``: how a backend that declares no async path is run."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.family = inner, inner.family

    def generate(self, request: Any) -> Any:
        return self.inner.generate(request)


class _CallTimes(BaseCallbackHandler):
    """When each chat-model call ended."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.times.append(time.perf_counter())


class _TimedGenerator:
    """Wraps a generator to record when each image started and ended."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.family, self.spans = inner, inner.family, []

    def generate(self, request: Any) -> Any:
        start = time.perf_counter()
        image = self.inner.generate(request)
        self.spans.append((start, time.perf_counter()))
        return image


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ns", default="1,4,16,64", help="Runs in flight, comma-separated.")
    p.add_argument("--batch-latency", type=float, default=1.0, help="Seconds per generator batch (L).")
    p.add_argument("--max-batch", type=int, default=8, help="Largest batch the generator runs (B).")
    p.add_argument("--chat-latency", type=float, default=0.2, help="Seconds per VLM call (c).")
    p.add_argument("--rounds", type=int, default=3, help="Rounds (= images) per run (R).")
    p.add_argument("--window", type=float, default=20.0, help="Seconds measured per N.")
    p.add_argument("--warmup", type=float, default=None, help="Seconds before measuring (default 1.5 runs).")
    p.add_argument("--shapes-ns", default="1,2,4", help="Runs in flight with the real shapes model.")
    p.add_argument("--server-workers", type=int, default=2, help="Workers of the served shapes model (0: skip).")
    p.add_argument("--server-ns", default="4", help="Runs in flight against the served shapes model.")
    p.add_argument("--shapes-window", type=float, default=40.0)
    p.add_argument("--shapes-warmup", type=float, default=10.0)
    p.add_argument("--no-shapes", action="store_true", help="Skip the real shapes model.")
    p.add_argument("--no-modelled", action="store_true", help="Skip the modelled backends.")
    p.add_argument(
        "--sync-generator", action="store_true", help="Hide the modelled GPU's agenerate: the node calls it on a thread (for comparison)."
    )
    args = p.parse_args()
    args.ns = [int(x) for x in args.ns.split(",") if x]
    args.shapes_ns = [int(x) for x in args.shapes_ns.split(",") if x]
    args.server_ns = [int(x) for x in args.server_ns.split(",") if x]
    B, L, c, R = args.max_batch, args.batch_latency, args.chat_latency, args.rounds
    print(f"modelled: batch {B} images per {L:g} s (ideal {B / L:g} images/s), VLM {c:g} s a call, {R} rounds a run", flush=True)
    with tempfile.TemporaryDirectory(prefix="gems-throughput-") as tmp:
        result = {"modelled": {"max_batch": B, "batch_latency_s": L, "chat_latency_s": c, "rounds": R}}
        if not args.no_modelled:
            result["modelled"]["rows"] = modelled(args, Path(tmp))
        if not args.no_shapes:
            result["shapes"] = {"rounds": R, "window_s": args.shapes_window, "rows": shapes(args, Path(tmp))}
    write_result(result, RESULTS / "throughput.json")


if __name__ == "__main__":
    main()
