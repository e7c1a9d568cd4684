"""Orchestration overhead of the GEMS graph, with instant backends and SQLite checkpoints.

Runs the loop for 1..10 rounds (and once for 50) with a generator that returns a
prepared image and a scripted chat model, memory and skills off, so what is measured
is LangGraph + our nodes + the SQLite checkpointer. Prints, per round count, the
median wall time per round, the checkpoint bytes per round, and the bytes the last
round added (flat: round 10 adds no more than round 2). Targets: <= 10 ms a round,
<= 8 KB a round, round 10 within 10% of round 2.

    .venv/bin/python benchmarks/overhead.py [--repeats 5] [--postgres postgresql://user:pw@host/db]

``--postgres URL`` measures the same with that database as the checkpointer (each run
its own thread; bytes are those of the run's thread in LangGraph's tables).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from PIL import Image

from gems_graph.context import GemsContext
from gems_graph.graph import compile_graph
from gems_graph.persistence.checkpoint import open_checkpointer
from gems_graph.testing import ScriptedChatModel, loop_handler


class PreparedImage:
    """Returns the same small image instantly."""

    family = "bench"

    def __init__(self) -> None:
        self.image = Image.new("RGB", (64, 64), (10, 10, 200))

    def generate(self, request):
        return self.image


def db_bytes(path: Path) -> int:
    """Bytes LangGraph stored: serialised checkpoints, their metadata and pending writes.

    (The SQLite file itself also holds page slack and a write-ahead log, so its size
    says more about SQLite than about what a round adds.)
    """
    import sqlite3

    with sqlite3.connect(path) as conn:
        ckpt = conn.execute("select coalesce(sum(length(checkpoint) + length(metadata)), 0) from checkpoints").fetchone()[0]
        writes = conn.execute("select coalesce(sum(length(value)), 0) from writes").fetchone()[0]
    return ckpt + writes


def postgres_thread_bytes(url: str, thread_id: str) -> int:
    """``db_bytes`` for one thread of a Postgres checkpointer: checkpoints, metadata, channel blobs, writes."""
    import psycopg

    with psycopg.connect(url) as conn:
        return sum(
            conn.execute(query, (thread_id,)).fetchone()[0]
            for query in (
                "select coalesce(sum(octet_length(checkpoint::text) + octet_length(metadata::text)), 0)"
                " from checkpoints where thread_id = %s",
                "select coalesce(sum(octet_length(blob)), 0) from checkpoint_blobs where thread_id = %s",
                "select coalesce(sum(octet_length(blob)), 0) from checkpoint_writes where thread_id = %s",
            )
        )


def one_run(rounds: int, workdir: Path, index: int, postgres: str | None = None) -> tuple[float, int]:
    db = workdir / f"ckpt_{rounds}_{index}.sqlite"
    thread_id = f"b{rounds}-{index}-{os.getpid()}-{time.time_ns()}"  # unique in a database that outlives the run
    context = GemsContext(
        generator=PreparedImage(),
        chat_model=ScriptedChatModel(handler=loop_handler(fix_at_round=None)),
        artifact_root=str(workdir / "runs"),
        max_rounds=rounds,
        memory="none",
        max_skills=0,
    )
    with open_checkpointer(postgres or str(db)) as saver:
        app = compile_graph(checkpointer=saver)
        start = time.perf_counter()
        out = app.invoke({"prompt": "a red square"}, {"configurable": {"thread_id": thread_id}}, context=context)
        elapsed = time.perf_counter() - start
    assert out["rounds_used"] == rounds, out
    return elapsed, postgres_thread_bytes(postgres, thread_id) if postgres else db_bytes(db)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--postgres", metavar="URL", help="checkpoint to this postgresql:// database instead of SQLite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        os.environ["GEMS_HOME"] = str(workdir / "home")
        one_run(1, workdir, 99, args.postgres)  # warm-up: imports, first compile
        print(f"{'rounds':>6} {'ms/round (median)':>18} {'KB/round':>9} {'KB added by the last round':>27}")
        per_round_ms, per_round_kb, total_bytes = [], [], {0: 0}
        for rounds in [*range(1, 11), 50]:
            times, sizes = zip(*(one_run(rounds, workdir, i, args.postgres) for i in range(args.repeats if rounds <= 10 else 1)))
            ms = statistics.median(times) * 1000 / rounds
            total_bytes[rounds] = statistics.median(sizes)
            kb = total_bytes[rounds] / 1024 / rounds
            last = (total_bytes[rounds] - total_bytes.get(rounds - 1, total_bytes[rounds] * (rounds - 1) / rounds)) / 1024
            if rounds <= 10:
                per_round_ms.append(ms)
                per_round_kb.append(kb)
            print(f"{rounds:>6} {ms:>18.1f} {kb:>9.1f} {last:>27.1f}")
        added = {n: (total_bytes[n] - total_bytes[n - 1]) / 1024 for n in range(2, 11)}
        print(
            f"overall (1-10 rounds): median {statistics.median(per_round_ms):.1f} ms/round (target <= 10), "
            f"max {max(per_round_kb):.1f} KB/round (target <= 8), "
            f"round 10 adds {added[10]:.1f} KB vs round 2 {added[2]:.1f} KB ({(added[10] / added[2] - 1) * 100:+.0f}%, target within 10%)"
        )


if __name__ == "__main__":
    main()
