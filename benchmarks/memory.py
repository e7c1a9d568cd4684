"""Does remembering across runs help? Cold vs warm on the shapes world, and recall latency.

Three phases, every run through the real graph (planner recall, run-end lessons):

1. **learn**: prompts A, each run with its own empty store; the lessons each run
   writes are gathered into one shared store.
2. **control**: prompts B (same GenEval categories, other shapes and colours, no
   prompt of A), each with its own empty store: how B goes with nothing to recall.
3. **warm**: the same prompts B with the shared store: the planner and refiner see
   the recalled lessons (and warm runs keep adding theirs, as in real use).

Control and warm run the *same* prompts with the same seeds, so their difference is
what memory did. Prints accuracy (runs whose every check passed), mean rounds to pass
and mean rounds for each phase, and the median latency of ``store.recall`` for new
prompts (goal < 50 ms), and writes them to ``--out``
(``benchmarks/results/memory.json``), with the prompts whose outcome memory changed.
Goal: warm needs fewer rounds than control for the same or better accuracy.

    .venv/bin/python benchmarks/memory.py [--per-category 5] [--rounds 5] [--workdir DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from record import write_result

from gems_graph.app.runner import run_gems
from gems_graph.context import GemsContext
from gems_graph.memory import generator_family, open_experience_store
from gems_graph.models.registry import resolve_generator
from gems_graph.persistence.checkpoint import open_checkpointer
from gems_graph.shapes.grammar import describe
from gems_graph.shapes.render import sample_scene

OUT = Path(__file__).parent / "results" / "memory.json"
RECALL_GOAL_MS = 50.0

#: Categories where a first image is often wrong, so a loop has something to fix.
CATEGORIES = ("position", "color_attr", "counting", "two_object")


def prompt_sets(per_category: int) -> tuple[list[str], list[str]]:
    """Prompts A (learn) and B (control, warm): same categories, distinct prompts, no repeats."""

    def draw(seed: int, avoid: set[str]) -> list[str]:
        rng = np.random.default_rng(seed)
        out: list[str] = []
        for category in CATEGORIES:
            picked = 0
            for _ in range(per_category * 50):
                prompt = describe(sample_scene(rng, category))
                if prompt not in avoid and prompt not in out:
                    out.append(prompt)
                    picked += 1
                    if picked == per_category:
                        break
        return out

    learn = draw(1, set())
    return learn, draw(2, set(learn))


def run_phase(name: str, prompts: list[str], args: argparse.Namespace, shared: Any, workdir: Path) -> dict[str, Any]:
    """learn/control: a private empty store per run (learn then hands its lessons over); warm: the shared one."""
    results = []
    with open_checkpointer(str(workdir / f"{name}.sqlite")) as saver:
        for i, prompt in enumerate(prompts):
            private = workdir / f"{name}-memory-{i}"
            memory = f"chroma:{args.store_dir}" if name == "warm" else f"chroma:{private}"
            ctx = GemsContext(
                generator=args.generator,
                chat_model=args.chat_model,
                max_rounds=args.rounds,
                seed=args.seed,
                artifact_root=str(workdir / "runs"),
                memory=memory,
            )
            t0 = time.perf_counter()
            res = run_gems(prompt, ctx, saver, thread_id=f"{name}-{i}")
            seconds = time.perf_counter() - t0
            if name == "learn":
                store = open_experience_store(memory)
                store.export_jsonl(private / "lessons.jsonl")
                shared.import_jsonl(private / "lessons.jsonl")
            values = res.state
            recalled = len(values.get("recalled_lessons") or [])
            rounds = values.get("rounds_used", 0)
            results.append({"prompt": prompt, "status": res.status, "rounds": rounds, "seconds": seconds})
            print(
                f"  {name:7s} {i + 1:2d}/{len(prompts)} {res.status:9s} rounds={rounds} recalled={recalled} {seconds:5.1f}s  {prompt}",
                flush=True,
            )
    passed = [r for r in results if r["status"] == "passed"]
    return {
        "phase": name,
        "outcomes": [{"prompt": r["prompt"], "status": r["status"], "rounds": r["rounds"]} for r in results],
        "runs": len(results),
        "accuracy": len(passed) / max(1, len(results)),
        "rounds_to_pass": statistics.mean(r["rounds"] for r in passed) if passed else float("nan"),
        "mean_rounds": statistics.mean(r["rounds"] for r in results) if results else float("nan"),
        "seconds": statistics.mean(r["seconds"] for r in results) if results else float("nan"),
    }


def _figure(value: Any) -> Any:
    """A float rounded for the result file; NaN (no run passed) as null, which JSON can hold."""
    if not isinstance(value, float):
        return value
    return None if value != value else round(value, 3)


def changed_outcomes(control: dict[str, Any], warm: dict[str, Any]) -> list[dict[str, Any]]:
    """The prompts whose status or rounds differ between control and warm (the same prompts, the same seeds)."""
    return [
        {
            "prompt": c["prompt"],
            "control": {"status": c["status"], "rounds": c["rounds"]},
            "warm": {"status": w["status"], "rounds": w["rounds"]},
        }
        for c, w in zip(control["outcomes"], warm["outcomes"], strict=True)
        if (c["status"], c["rounds"]) != (w["status"], w["rounds"])
    ]


def recall_latency(store: Any, prompts: list[str], family: str, k: int) -> float:
    store.recall("warm up the embedding model", k=k, generator_family=family)
    times = []
    for p in prompts:
        t0 = time.perf_counter()
        store.recall(p + " ", k=k, generator_family=family)  # new text: no embedding cache hit
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-category", type=int, default=5, help="prompts per category in each phase")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--k", type=int, default=3, help="lessons recalled per run (for the latency figure)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--generator", default="shapes")
    ap.add_argument("--chat-model", default="shapes")
    ap.add_argument("--workdir", default=None, help="keep runs and the store here (default: a temp folder)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    started = time.perf_counter()

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="gems-bench-memory-"))
    workdir.mkdir(parents=True, exist_ok=True)
    args.store_dir = str(workdir / "memory")
    shared = open_experience_store(f"chroma:{args.store_dir}")
    learn, later = prompt_sets(args.per_category)
    print(
        f"memory benchmark: generator={args.generator} chat_model={args.chat_model} rounds={args.rounds} "
        f"prompts: {len(learn)} to learn from, {len(later)} run as control and warm"
    )
    print(f"workdir: {workdir}")
    rows = [run_phase("learn", learn, args, shared, workdir)]
    learnt = shared.count()
    print(f"  lessons in the shared store after learning: {learnt}")
    rows.append(run_phase("control", later, args, shared, workdir))
    rows.append(run_phase("warm", later, args, shared, workdir))
    family = generator_family(resolve_generator(args.generator))
    latency = recall_latency(shared, later, family, args.k)

    print()
    print(f"{'phase':7s} {'runs':>4s} {'accuracy':>9s} {'rounds-to-pass':>15s} {'mean rounds':>12s} {'s/run':>7s}")
    for r in rows:
        print(
            f"{r['phase']:7s} {r['runs']:4d} {r['accuracy']:9.2f} {r['rounds_to_pass']:15.2f} {r['mean_rounds']:12.2f} {r['seconds']:7.1f}"
        )
    print(f"recall latency: median {latency:.1f} ms over {len(later)} prompts (k={args.k}, {shared.count()} lessons)")
    changed = changed_outcomes(rows[1], rows[2])
    result = {
        "generator": args.generator,
        "chat_model": args.chat_model,
        "per_category": args.per_category,
        "max_rounds": args.rounds,
        "lessons_learnt": learnt,
        "phases": [{k: _figure(v) for k, v in r.items() if k != "outcomes"} for r in rows],
        "changed": changed,
        "recall": {"median_ms": round(latency, 1), "k": args.k, "lessons": shared.count(), "goal_ms": RECALL_GOAL_MS},
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_result(result, args.out)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
