"""``gems serve-generator`` under concurrent clients: failures, images/s, latency, batch sizes.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/serve_generator.py [--clients 1,4,16] [--seconds 15] [--steps 4]
    .venv/bin/python benchmarks/serve_generator.py --model modelled-gpu: --clients 1,4,16,64


One server process (``gems serve-generator shapes`` at its defaults: one worker, batches of
up to 8 across clients) on loopback; for each N, N clients in this process, each its own ``images-api:``
generator (the client ``gems run`` uses, retries included), ask for one image after another
with their own prompts and seeds for ``--seconds``. Printed per N: requests, failures (the
target is zero at the defaults), images/s against the batched ideal, p50/p99 request latency,
and the mean batch size from ``/metrics``. The ideals are measured first on the same model:
one image alone, and one full batch (``--max-batch`` images in one ``generate_batch``).
``--model modelled-gpu:`` serves a modelled GPU instead (``benchmarks/modelled_gpu.py``: one
second a batch of up to 8 images), where the model and not this machine's CPU is the limit.
Writes ``benchmarks/results/serve_generator.json`` (``serve_generator_modelled.json`` for the
modelled GPU): figures, command, commit, machine.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import modelled_gpu  # noqa: F401 - registers modelled-gpu: here (the server gets it through GEMS_PLUGINS)
from record import RESULTS, write_result

from gems_graph.backends.images_api import ImagesApiGenerator
from gems_graph.backends.server import BATCH_WINDOW, MAX_BATCH, served_model_name
from gems_graph.models.generator import GenerationError, GenerationRequest
from gems_graph.models.registry import resolve_generator

PROMPTS = (
    "a red circle",
    "two blue squares",
    "a green triangle left of a yellow circle",
    "three red squares",
    "a blue circle above a red square",
)


def _ideal(generator, steps: int, batch: int) -> tuple[float, float]:
    """(images/s alone, images/s in full batches), best of three, on ``generator`` directly."""
    alone, batched = [], []
    for trial in range(3):
        t = time.perf_counter()
        generator.generate(GenerationRequest(PROMPTS[0], seed=trial, steps=steps))
        alone.append(time.perf_counter() - t)
        t = time.perf_counter()
        generator.generate_batch([GenerationRequest(PROMPTS[i % len(PROMPTS)], seed=i, steps=steps) for i in range(batch)])
        batched.append(time.perf_counter() - t)
    return 1 / min(alone), batch / min(batched)


def _batches(root: str) -> tuple[float, float]:
    """(pipeline calls, images in them) so far, from ``/metrics``."""
    values = dict(line.rsplit(" ", 1) for line in httpx.get(root + "/metrics").text.splitlines() if line and not line.startswith("#"))
    return float(values["gems_batch_size_count"]), float(values["gems_batch_size_sum"])


def _serve(spec: str) -> tuple[subprocess.Popen, str]:
    """``gems serve-generator SPEC`` on a free loopback port, once it answers ``/health``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "gems_graph.app.cli", "serve-generator", spec, "--port", str(port)]
    here = str(Path(__file__).resolve().parent)
    path = os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL, env={**os.environ, "GEMS_PLUGINS": "modelled_gpu", "PYTHONPATH": path})
    root = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(root + "/health", timeout=1).status_code == 200:
                return proc, root
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("serve-generator did not start")


def _load(root: str, model: str, clients: int, seconds: float, steps: int) -> dict:
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def client(k: int) -> None:
        gen = ImagesApiGenerator(root + "/v1", model, max_batch=1)
        seed = k * 100_000
        while time.monotonic() < end:
            seed += 1
            t = time.perf_counter()
            try:
                gen.generate(GenerationRequest(PROMPTS[k % len(PROMPTS)], seed=seed, steps=steps))
                with lock:
                    latencies.append(time.perf_counter() - t)
            except GenerationError as exc:
                with lock:
                    failures.append(str(exc))
        gen.close()

    calls0, images0 = _batches(root)
    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - started
    calls1, images1 = _batches(root)
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return {
        "clients": clients,
        "requests": len(latencies) + len(failures),
        "failures": len(failures),
        "first_failure": failures[0] if failures else None,
        "images_per_second": round(len(latencies) / took, 2),
        "p50_s": round(q[49], 3),
        "p99_s": round(q[98], 3),
        "mean_batch": round((images1 - images0) / max(calls1 - calls0, 1), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="1,4,16", help="comma-separated numbers of concurrent clients")
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds of load per number of clients")
    parser.add_argument("--steps", type=int, default=4, help="inference steps per image")
    parser.add_argument("--model", default="shapes", help="the generator spec served: shapes, or modelled-gpu: (a modelled GPU)")
    parser.add_argument("--out", type=Path, help="result file (default: benchmarks/results/serve_generator[_modelled].json)")
    a = parser.parse_args()
    modelled = a.model.startswith("modelled-gpu")
    out = a.out or RESULTS / ("serve_generator_modelled.json" if modelled else "serve_generator.json")
    alone, batched = _ideal(resolve_generator(a.model), a.steps, MAX_BATCH)
    proc, root = _serve(a.model)
    name = served_model_name(a.model)
    try:
        _load(root, name, 1, 2.0, a.steps)  # warm-up: the server loads the model
        print(f"{a.model}, {a.steps} steps, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
        print(f"ideal: {alone:.1f} images/s alone, {batched:.1f} images/s in batches of {MAX_BATCH}")
        rows = []
        for n in (int(x) for x in a.clients.split(",")):
            row = _load(root, name, n, a.seconds, a.steps)
            row["share_of_batched_ideal"] = round(row["images_per_second"] / batched, 3)
            rows.append(row)
            print(
                f"{n:3d} clients: {row['requests']:4d} requests, {row['failures']} failed, {row['images_per_second']:6.1f} images/s "
                f"({row['share_of_batched_ideal']:.0%} of batched ideal), p50 {row['p50_s']:.3f} s, p99 {row['p99_s']:.3f} s, "
                f"mean batch {row['mean_batch']}"
            )
    finally:
        proc.terminate()
        proc.wait(15)
    result = {
        "model": a.model,
        "steps": a.steps,
        "server": {"max_concurrency": 1, "max_batch": MAX_BATCH, "batch_window": BATCH_WINDOW},
        "ideal_images_per_second": {"alone": round(alone, 2), "batched": round(batched, 2)},
        "rows": rows,
    }
    write_result(result, out)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
