"""Several runs finishing at once write the same embedded store: nothing is lost.

Workers are separate processes (spawned, as separate ``gems run``s would be). They use
LangChain's deterministic hash embeddings instead of MiniLM only so that three
processes don't each spend seconds loading the model; the store is real Chroma.
"""

from __future__ import annotations

import multiprocessing as mp

from langchain_core.embeddings import DeterministicFakeEmbedding

from gems_graph.memory import open_experience_store

WORKERS, PER_WORKER = 3, 5
SHARED = "a lesson every run learns"


def _worker(path: str, w: int) -> None:
    store = open_experience_store(f"chroma:{path}", embeddings=DeterministicFakeEmbedding(size=384))
    for i in range(PER_WORKER):
        store.add([{"text": f"worker {w} lesson {i}: keep the circles red", "prompt": f"prompt {w}.{i}", "generator_family": "shapes"}])
        store.recall(f"prompt {w}.{i}", k=3, generator_family="shapes")  # reads interleaved with others' writes
    # every worker confirms the same lesson: one record, and no lost increment of its uses
    store.add([{"text": SHARED, "prompt": "shared", "generator_family": "shapes"}])


def test_parallel_processes_lose_nothing(tmp_path):
    path = str(tmp_path / "memory")
    parent = open_experience_store(f"chroma:{path}", embeddings=DeterministicFakeEmbedding(size=384))
    parent.add([{"text": "seed lesson written before the workers", "generator_family": "shapes"}])
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(path, w)) for w in range(WORKERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0] * WORKERS
    expected = WORKERS * PER_WORKER + 2  # + the seed lesson + the shared one
    # the parent's store object predates the workers' writes and must see them all
    assert parent.count() == expected
    assert len(parent.recall("circles", k=50, generator_family="shapes")) == expected
    fresh = open_experience_store(f"chroma:{path}", embeddings=DeterministicFakeEmbedding(size=384))
    texts = {l["text"] for l in fresh.list(100)}
    assert {f"worker {w} lesson {i}: keep the circles red" for w in range(WORKERS) for i in range(PER_WORKER)} <= texts
    (shared,) = [l for l in fresh.list(100) if l["text"] == SHARED]
    assert shared["uses"] == WORKERS
