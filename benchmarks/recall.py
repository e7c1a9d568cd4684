"""Experience recall latency against the size of the store.

Fills an embedded Chroma store (the default: all-MiniLM-L6-v2 embeddings, on disk)
with 10, 200 and 2000 lessons written the way runs write them, then times
``store.recall`` for prompts the store has never seen (so no embedding cache hits),
as the planner calls it: k=3 of the run's generator family. Prints the median and
the 90th percentile per size, and beside them the median of the query's embedding
alone (the same queries, embedded again by a fresh embedder with no cache), so what
Chroma adds is the difference; writes ``benchmarks/results/recall.json``. Target:
median <= 15 ms at 2000 lessons.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/recall.py [--sizes 10 200 2000] [--queries 40]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from record import RESULTS, write_result

from gems_graph.memory import open_experience_store
from gems_graph.memory.embeddings import MiniLMEmbeddings
from gems_graph.memory.store import normalize_lesson

FAMILIES = ("shapes", "z-image", "flux")
FIXES = ("laid the objects out explicitly", "moved the second object", "named each colour twice", "tried a new seed")
OBJECTS = (
    "cat", "dog", "horse", "bicycle", "car", "bus", "train", "boat", "bird", "sheep", "cow", "elephant", "bear",
    "zebra", "giraffe", "backpack", "umbrella", "handbag", "suitcase", "kite", "skateboard", "surfboard", "bottle",
    "cup", "fork", "banana", "apple", "orange", "broccoli", "carrot", "pizza", "donut", "cake", "chair", "couch",
    "bed", "laptop", "clock", "vase", "teddy bear", "toaster", "book", "scissors", "airplane", "bench",
)  # fmt: skip
COLOURS = ("red", "blue", "green", "yellow", "purple", "orange", "black", "white", "pink", "brown")
RELATIONS = ("left of", "right of", "above", "below", "next to", "behind")


def random_prompt(rng: np.random.Generator) -> str:
    a, b = rng.choice(len(OBJECTS), 2, replace=False)
    n = int(rng.integers(1, 5))
    first = f"{n} {rng.choice(COLOURS)} {OBJECTS[a]}{'s' if n > 1 else ''}"
    return f"a photo of {first} {rng.choice(RELATIONS)} a {rng.choice(COLOURS)} {OBJECTS[b]}"


def lessons(n: int, rng: np.random.Generator) -> list[dict]:
    out = []
    for i in range(n):
        prompt = random_prompt(rng)
        fix = FIXES[i % len(FIXES)]
        out.append(
            normalize_lesson(
                {
                    "text": f"For '{prompt}': the first image missed a check; {fix} fixed it in round {2 + i % 3}.",
                    "prompt": prompt,
                    "generator_family": FAMILIES[i % len(FAMILIES)],
                    "failed_checks": [f"Is there {prompt.split(' and ')[-1]}?"],
                    "fix": fix,
                    "rounds": 2 + i % 3,
                    "status": "passed",
                }
            )
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 200, 2000])
    ap.add_argument("--queries", type=int, default=40)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    queries = [random_prompt(rng) for _ in range(args.queries)]
    print(f"{'lessons':>8} {'median ms':>10} {'p90 ms':>8} {'embedding alone, median ms':>27}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            store = open_experience_store(f"chroma:{Path(tmp) / str(size)}")
            batch = lessons(size, np.random.default_rng(size))
            for start in range(0, size, 500):
                store.add(batch[start : start + 500])
            store.recall("warm up the embedding model", k=3, generator_family="shapes")
            times, embed_times = [], []
            embedder = MiniLMEmbeddings()  # no cache of its own: every query is embedded
            for q in queries:
                t0 = time.perf_counter()
                found = store.recall(q, k=3, generator_family="shapes")
                t1 = time.perf_counter()
                embedder.embed_query(q)
                embed_times.append((time.perf_counter() - t1) * 1000)
                times.append((t1 - t0) * 1000)
                assert found, "recall found nothing"
            row = {
                "lessons_written": size,
                "lessons": store.count(),
                "median_ms": statistics.median(times),
                "p90_ms": statistics.quantiles(times, n=10)[-1],
                "embed_median_ms": statistics.median(embed_times),
            }
            rows.append(row)
            print(f"{row['lessons']:>8} {row['median_ms']:>10.1f} {row['p90_ms']:>8.1f} {row['embed_median_ms']:>27.1f}", flush=True)
    print("target: median <= 15 ms at 2000 lessons")
    write_result({"queries": args.queries, "k": 3, "rows": rows}, RESULTS / "recall.json")


if __name__ == "__main__":
    main()
