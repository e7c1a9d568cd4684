"""What Studio's round thumbnails cost in checkpoint bytes: the same runs with and without them.

Runs the shapes world's demo prompts through the real graph with a SQLite checkpointer,
once with ``studio_thumbnails=0`` and once at each size asked for, and prints the bytes
of checkpoints plus pending writes per round judged (what a thread costs the database),
and writes them to ``--out`` (``benchmarks/results/studio_thumbnails.json``).

    .venv/bin/python benchmarks/studio_thumbnails.py [--sides 0 96 192] [--rounds 5] [--out FILE]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
from pathlib import Path

from record import write_result

from gems_graph import GemsContext, compile_graph, open_checkpointer

OUT = Path(__file__).parent / "results" / "studio_thumbnails.json"

PROMPTS = [
    "a photo of a red circle and a blue triangle",
    "a photo of two green squares",
    "a photo of a yellow circle left of a blue square",
]


def bytes_per_round(side: int, rounds: int, workdir: Path) -> tuple[float, int]:
    """(checkpoint + write bytes per round judged, rounds judged) for the prompts at ``side``."""
    db = workdir / f"checkpoints-{side}.sqlite"
    context = GemsContext(max_rounds=rounds, memory="none", studio_thumbnails=side, artifact_root=str(workdir / f"runs-{side}"))
    judged = 0
    with open_checkpointer(str(db)) as saver:
        app = compile_graph(checkpointer=saver)
        for i, prompt in enumerate(PROMPTS):
            out = app.invoke({"prompt": prompt}, {"configurable": {"thread_id": f"t{side}-{i}"}}, context=context)
            judged += out["rounds_used"]
    with sqlite3.connect(db) as conn:
        total = conn.execute("select coalesce(sum(length(checkpoint)) + sum(length(metadata)), 0) from checkpoints").fetchone()[0]
        total += conn.execute("select coalesce(sum(length(value)), 0) from writes").fetchone()[0]
    return total / max(judged, 1), judged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sides", type=int, nargs="+", default=[0, 96, 192])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = None
        print(f"{'studio_thumbnails':>18} {'rounds':>7} {'bytes/round':>12} {'added':>8}")
        for side in args.sides:
            per_round, judged = bytes_per_round(side, args.rounds, Path(tmp))
            base = per_round if base is None else base
            added = round(per_round - base)
            rows.append({"side": side, "rounds_judged": judged, "bytes_per_round": round(per_round), "added_bytes": added})
            print(f"{side:>18} {judged:>7} {per_round:>12.0f} {per_round - base:>+8.0f}")
    write_result({"prompts": PROMPTS, "max_rounds": args.rounds, "rows": rows}, args.out)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
