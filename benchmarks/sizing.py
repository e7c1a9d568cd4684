"""The sizing for a day's prompts, from one set of inputs and storage measured on real shapes runs.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sizing.py [--prompts 6] [--vlm-latency 1.0]

Stated inputs (flags): prompts a day; rounds a prompt R (images a prompt, one candidate
a round); checks a prompt; one VLM latency c for every call, in the run time and the VLM
servers alike; the modelled GPU (batches of B images taking L seconds); requests a VLM
replica serves at once; runs in flight a GPU needs to stay busy at c (64 at c = 1 s:
``benchmarks/throughput.py --chat-latency 1.0 --ns 64`` kept the modelled GPU at 100%,
where 16 gave 39% and 32 gave 78%); runs one driver process keeps in flight (64, the
most measured in one process).

Measured here: ``--prompts`` shapes-world runs (its generator, chat model and critic, the
dev split, at most R rounds, memory off) through the compiled graph on a SQLite
checkpointer, counting each run's checkpoint rows and bytes (LangGraph's ``checkpoints``
and ``writes`` tables) and its artifact files (images, ``run.json``). Rows and bytes are
fitted as a fixed part per run plus a part per round, so runs that passed early still
size an R-round run. The shapes model's images are 32x32: the artifact bytes are what
this world writes, and a real model's PNGs (about 1-2 MB at 1024x1024) scale the image
storage by their size.

Derived: prompts/s; images/s and GPUs at B/L images/s each; the run time
T = R x L + 3R x c (planner or refiner, the verifications of a round at once, and the
compression: three calls one after another a round) and, by Little's law, the runs in
flight and driver processes; VLM calls a prompt 2 + checks x R + 2 x (R - 1) and the VLM
replicas; checkpoint rows written a second and database growth a day.
Writes ``benchmarks/results/sizing.json``; ``benchmarks/tables.py`` renders its table.
"""

from __future__ import annotations

import argparse
import math
import sqlite3
import tempfile
import time
from pathlib import Path

from record import RESULTS, write_result

SECONDS_A_DAY = 86_400


def measure(prompts: int, rounds: int) -> dict:
    """Checkpoint rows and bytes and artifact bytes of real shapes runs, as a fixed part plus a part per round."""
    import os

    with tempfile.TemporaryDirectory(prefix="gems-sizing-") as home:
        os.environ["GEMS_HOME"] = home
        from gems_graph.context import GemsContext
        from gems_graph.graph import compile_graph
        from gems_graph.persistence.checkpoint import open_checkpointer
        from gems_graph.shapes.suite import dev_split

        db = Path(home) / "checkpoints.sqlite"
        items = dev_split()[:: max(1, len(dev_split()) // prompts)][:prompts]
        runs = []
        started = time.perf_counter()
        with open_checkpointer(str(db)) as saver:
            app = compile_graph(checkpointer=saver)
            for i, item in enumerate(items):
                ctx = GemsContext(max_rounds=rounds, memory="none", seed=item.seed)
                config = {"configurable": {"thread_id": f"sizing-{i}"}}
                app.invoke({"prompt": item.prompt}, config, context=ctx)
                out = app.get_state(config).values
                run_dir = Path(out["run_dir"])
                files = [p for p in run_dir.rglob("*") if p.is_file()]
                runs.append(
                    {
                        "thread": f"sizing-{i}",
                        "rounds": out["rounds_used"],
                        "images": sum(len(r["candidates"]) for r in out["rounds"]),
                        "image_bytes": sum(p.stat().st_size for p in files if p.suffix == ".png"),
                        "other_bytes": sum(p.stat().st_size for p in files if p.suffix != ".png"),
                    }
                )
        with sqlite3.connect(db) as conn:
            for run in runs:
                t = run["thread"]
                run["checkpoint_rows"], run["checkpoint_bytes"] = conn.execute(
                    "SELECT count(*), coalesce(sum(length(checkpoint) + length(metadata)), 0) FROM checkpoints WHERE thread_id = ?", (t,)
                ).fetchone()
                run["write_rows"], run["write_bytes"] = conn.execute(
                    "SELECT count(*), coalesce(sum(length(value)), 0) FROM writes WHERE thread_id = ?", (t,)
                ).fetchone()
        seconds = time.perf_counter() - started

    def fit(key: str) -> dict:
        """``key`` = fixed + per_round x rounds, least squares (a proportional split when every run had the same rounds)."""
        xs, ys = [r["rounds"] for r in runs], [r[key] for r in runs]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        var = sum((x - mx) ** 2 for x in xs)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var if var else my / mx
        return {"fixed": round(my - slope * mx, 1), "per_round": round(slope, 1)}

    images = sum(r["images"] for r in runs)
    return {
        "prompts": len(runs),
        "seconds": round(seconds, 1),
        "rounds_used": [r["rounds"] for r in runs],
        "bytes_per_image": round(sum(r["image_bytes"] for r in runs) / images),
        "other_artifact_bytes_per_run": round(sum(r["other_bytes"] for r in runs) / len(runs)),
        "checkpoint_rows": fit("checkpoint_rows"),
        "write_rows": fit("write_rows"),
        "checkpoint_bytes": fit("checkpoint_bytes"),
        "write_bytes": fit("write_bytes"),
    }


def at_rounds(fitted: dict, rounds: int) -> float:
    return fitted["fixed"] + fitted["per_round"] * rounds


def size(inputs: dict, measured: dict) -> list[dict]:
    """The sizing rows: each a quantity, its value and how it follows from the inputs."""
    R, c = inputs["rounds"], inputs["vlm_latency_s"]
    prompts_s = inputs["prompts_per_day"] / SECONDS_A_DAY
    images_s = prompts_s * R
    gpu_rate = inputs["gpu_batch"] / inputs["gpu_batch_s"]
    gpus = math.ceil(images_s / gpu_rate)
    t_run = R * inputs["gpu_batch_s"] + 3 * R * c
    in_flight = math.ceil(prompts_s * t_run)
    busy = max(in_flight, gpus * inputs["runs_per_gpu"])
    calls = 2 + inputs["checks"] * R + 2 * (R - 1)
    calls_s = prompts_s * calls
    rows = at_rounds(measured["checkpoint_rows"], R) + at_rounds(measured["write_rows"], R)
    db_bytes = at_rounds(measured["checkpoint_bytes"], R) + at_rounds(measured["write_bytes"], R)
    artifact_bytes = R * measured["bytes_per_image"] + measured["other_artifact_bytes_per_run"]
    return [
        {"quantity": "prompts/s", "value": round(prompts_s, 1), "how": f"{inputs['prompts_per_day']:,} / 86,400 s"},
        {"quantity": "images/s", "value": round(images_s, 1), "how": f"prompts/s x R = {R}"},
        {
            "quantity": "GPUs",
            "value": gpus,
            "how": f"images/s / {gpu_rate:g} images/s a GPU (B = {inputs['gpu_batch']}, L = {inputs['gpu_batch_s']:g} s)",
        },
        {"quantity": "run time T", "value": f"{t_run:g} s", "how": f"R x L + 3R x c, c = {c:g} s"},
        {"quantity": "runs in flight, at the least", "value": in_flight, "how": "prompts/s x T (Little's law, unloaded)"},
        {
            "quantity": "runs in flight to keep the GPUs busy",
            "value": busy,
            "how": f"GPUs x {inputs['runs_per_gpu']} runs a GPU (measured at c = {c:g} s)",
        },
        {
            "quantity": "driver processes",
            "value": math.ceil(busy / inputs["runs_per_process"]),
            "how": f"runs in flight / {inputs['runs_per_process']} a process",
        },
        {
            "quantity": "VLM calls/s",
            "value": round(calls_s),
            "how": f"prompts/s x (2 + checks x R + 2(R - 1)) = {calls} a prompt, {inputs['checks']} checks",
        },
        {
            "quantity": "VLM replicas",
            "value": math.ceil(calls_s * c / inputs["vlm_in_flight"]),
            "how": f"calls/s x c / {inputs['vlm_in_flight']} requests a replica serves at once",
        },
        {
            "quantity": "checkpoint rows written/s",
            "value": round(prompts_s * rows),
            "how": f"prompts/s x {rows:.0f} rows an R-round run (checkpoints + writes)",
        },
        {
            "quantity": "database growth a day",
            "value": f"{inputs['prompts_per_day'] * db_bytes / 1e9:.1f} GB",
            "how": f"prompts a day x {db_bytes / 1e3:.1f} KB an R-round run (SQLite; prune finished threads)",
        },
        {
            "quantity": "artifacts a day (shapes-sized)",
            "value": f"{inputs['prompts_per_day'] * artifact_bytes / 1e9:.1f} GB",
            "how": f"prompts a day x (R x {measured['bytes_per_image']} B an image"
            f" + {measured['other_artifact_bytes_per_run']} B of run.json and notes)",
        },
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prompts", type=int, default=6, help="Shapes runs to measure storage on.")
    p.add_argument("--prompts-per-day", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=3, help="R: rounds (images) a prompt.")
    p.add_argument("--checks", type=int, default=6, help="Checks a prompt.")
    p.add_argument("--vlm-latency", type=float, default=1.0, help="c: seconds a VLM call, everywhere.")
    p.add_argument("--gpu-batch", type=int, default=8, help="B: images in one GPU batch (modelled).")
    p.add_argument("--gpu-batch-seconds", type=float, default=1.0, help="L: seconds a GPU batch takes (modelled).")
    p.add_argument("--vlm-in-flight", type=int, default=50, help="Requests one VLM replica serves at once.")
    p.add_argument("--runs-per-gpu", type=int, default=64, help="Runs in flight that keep one GPU busy at the VLM latency.")
    p.add_argument("--runs-per-process", type=int, default=64, help="Runs one driver process keeps in flight.")
    p.add_argument("--out", type=Path, default=RESULTS / "sizing.json")
    a = p.parse_args()
    inputs = {
        "prompts_per_day": a.prompts_per_day,
        "rounds": a.rounds,
        "checks": a.checks,
        "vlm_latency_s": a.vlm_latency,
        "gpu_batch": a.gpu_batch,
        "gpu_batch_s": a.gpu_batch_seconds,
        "vlm_in_flight": a.vlm_in_flight,
        "runs_per_gpu": a.runs_per_gpu,
        "runs_per_process": a.runs_per_process,
    }
    measured = measure(a.prompts, a.rounds)
    rows = size(inputs, measured)
    for r in rows:
        print(f"{r['quantity']:32} {r['value']!s:>10}  {r['how']}")
    write_result({"inputs": inputs, "measured": measured, "rows": rows}, a.out)


if __name__ == "__main__":
    main()
