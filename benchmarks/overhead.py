"""Orchestration overhead of the GEMS graph, with instant backends and SQLite checkpoints.

Runs the loop for 1..10 rounds (and once for 50) with a generator that returns a
prepared image and a scripted chat model, memory and skills off, so what is measured
is LangGraph + our nodes + the SQLite checkpointer. Beside each run it times the
floor, a bare LangGraph loop of the same shape on the same checkpointer whose nodes do
nothing (``bare_graph``), runs of the two interleaved so that the machine's load falls
on both alike. Prints, per round count, the median wall and CPU time per round of
both and their ratios, the checkpoint bytes per round, and the bytes the last round
added (flat: round 10 adds no more than round 2), and writes them to
``benchmarks/results/overhead.json``. Targets: within 1.5x of the floor, <= 8 KB a
round, round 10 within 10% of round 2.

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
from typing import Annotated

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from PIL import Image
from record import RESULTS, write_result
from typing_extensions import TypedDict

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


class BareState(TypedDict, total=False):
    prompt: str
    max_rounds: int
    round_index: int
    pending: Annotated[list[int], lambda left, right: [] if right is None else [*(left or []), *right]]
    rounds_used: int


def bare_graph(checkpointer):
    """The floor: a LangGraph loop of our graph's shape (planner -> generator via ``Send`` ->
    critic -> refiner | remember) whose nodes do nothing, on the same checkpointer."""

    def planner(state: BareState) -> dict:
        return {"round_index": 1}

    def fan_out(state: BareState) -> list[Send]:
        return [Send("generator", {"round_index": state["round_index"]})]

    def generator(task: dict) -> dict:
        return {"pending": [task["round_index"]]}

    def critic(state: BareState) -> dict:
        return {"pending": None, "rounds_used": state["round_index"]}

    def route(state: BareState) -> str:
        return "remember" if state["rounds_used"] >= state["max_rounds"] else "refiner"

    def refiner(state: BareState) -> dict:
        return {"round_index": state["round_index"] + 1}

    builder = StateGraph(BareState)
    builder.add_node("planner", planner)
    builder.add_node("generator", generator, input_schema=BareState)
    builder.add_node("critic", critic)
    builder.add_node("refiner", refiner)
    builder.add_node("remember", lambda state: {})
    builder.add_edge(START, "planner")
    builder.add_conditional_edges("planner", fan_out, ["generator"])
    builder.add_edge("generator", "critic")
    builder.add_conditional_edges("critic", route, ["refiner", "remember"])
    builder.add_conditional_edges("refiner", fan_out, ["generator"])
    builder.add_edge("remember", END)
    return builder.compile(checkpointer=checkpointer)


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


def one_run(rounds: int, workdir: Path, index: int, postgres: str | None = None, *, bare: bool = False) -> tuple[float, float, int]:
    """One run of ``rounds`` rounds, ours or (``bare``) the floor's: (wall seconds, CPU seconds, checkpoint bytes).

    CPU seconds are the process's, all threads (checkpoint writes run on LangGraph's
    background threads): on a shared machine they vary less than wall time, which
    also counts waiting for the disk and for other processes."""
    kind = "bare" if bare else "gems"
    db = workdir / f"ckpt_{kind}_{rounds}_{index}.sqlite"
    thread_id = f"{kind}{rounds}-{index}-{os.getpid()}-{time.time_ns()}"  # unique in a database that outlives the run
    config = {"configurable": {"thread_id": thread_id}}
    with open_checkpointer(postgres or str(db)) as saver:
        if bare:
            app = bare_graph(saver)
            start, cpu = time.perf_counter(), time.process_time()
            out = app.invoke({"prompt": "a red square", "max_rounds": rounds}, config)
        else:
            context = GemsContext(
                generator=PreparedImage(),
                chat_model=ScriptedChatModel(handler=loop_handler(fix_at_round=None)),
                artifact_root=str(workdir / "runs"),
                max_rounds=rounds,
                memory="none",
                max_skills=0,
            )
            app = compile_graph(checkpointer=saver)
            start, cpu = time.perf_counter(), time.process_time()
            out = app.invoke({"prompt": "a red square"}, config, context=context)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert out["rounds_used"] == rounds, out
    return elapsed, cpu, postgres_thread_bytes(postgres, thread_id) if postgres else db_bytes(db)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--postgres", metavar="URL", help="checkpoint to this postgresql:// database instead of SQLite")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        os.environ["GEMS_HOME"] = str(workdir / "home")
        for bare in (False, True):  # warm-up: imports, first compile
            one_run(1, workdir, 99, args.postgres, bare=bare)
        header = ("rounds", "ms/round", "bare", "ratio", "CPU ms/round", "bare", "ratio", "KB/round", "KB added by the last round")
        print(" ".join(f"{h:>{max(6, len(h))}}" for h in header))
        total_bytes = {0: 0}
        for rounds in [*range(1, 11), 50]:
            ours, bare = [], []
            for i in range(args.repeats if rounds <= 10 else 1):  # interleaved, so load changes hit both alike
                ours.append(one_run(rounds, workdir, i, args.postgres))
                bare.append(one_run(rounds, workdir, i, args.postgres, bare=True))
            row = {"rounds": rounds}
            for key, runs in (("", ours), ("bare_", bare)):
                row[f"{key}ms_per_round"] = statistics.median(t for t, _, _ in runs) * 1000 / rounds
                row[f"{key}cpu_ms_per_round"] = statistics.median(c for _, c, _ in runs) * 1000 / rounds
            total_bytes[rounds] = statistics.median(b for _, _, b in ours)
            row["kb_per_round"] = total_bytes[rounds] / 1024 / rounds
            before = total_bytes.get(rounds - 1, total_bytes[rounds] * (rounds - 1) / rounds)
            row["kb_last_round"] = (total_bytes[rounds] - before) / 1024
            rows.append(row)
            figures = (
                row["ms_per_round"],
                row["bare_ms_per_round"],
                row["ms_per_round"] / row["bare_ms_per_round"],
                row["cpu_ms_per_round"],
                row["bare_cpu_ms_per_round"],
                row["cpu_ms_per_round"] / row["bare_cpu_ms_per_round"],
                row["kb_per_round"],
                row["kb_last_round"],
            )
            cells = [f"{rounds:>6}", *(f"{x:>{max(6, len(h))}.{2 if h == 'ratio' else 1}f}" for h, x in zip(header[1:], figures))]
            print(" ".join(cells), flush=True)
    short = [r for r in rows if r["rounds"] <= 10]
    added = {n: (total_bytes[n] - total_bytes[n - 1]) / 1024 for n in range(2, 11)}
    summary = {
        key: statistics.median(r[key] for r in short)
        for key in ("ms_per_round", "bare_ms_per_round", "cpu_ms_per_round", "bare_cpu_ms_per_round")
    }
    summary |= {
        "ratio": summary["ms_per_round"] / summary["bare_ms_per_round"],
        "cpu_ratio": summary["cpu_ms_per_round"] / summary["bare_cpu_ms_per_round"],
        "max_kb_per_round": max(r["kb_per_round"] for r in short),
        "kb_added_round_2": added[2],
        "kb_added_round_10": added[10],
    }
    print(
        f"overall (1-10 rounds, medians): {summary['ms_per_round']:.1f} ms/round against {summary['bare_ms_per_round']:.1f} ms "
        f"for the bare LangGraph loop: {summary['ratio']:.2f}x the floor (target <= 1.5x); CPU {summary['cpu_ms_per_round']:.1f} "
        f"against {summary['bare_cpu_ms_per_round']:.1f} ms/round: {summary['cpu_ratio']:.2f}x; "
        f"max {summary['max_kb_per_round']:.1f} KB/round (target <= 8), "
        f"round 10 adds {added[10]:.1f} KB vs round 2 {added[2]:.1f} KB ({(added[10] / added[2] - 1) * 100:+.0f}%, target within 10%)"
    )
    if not args.postgres:
        write_result({"checkpointer": "sqlite", "repeats": args.repeats, "rows": rows, **summary}, RESULTS / "overhead.json")


if __name__ == "__main__":
    main()
