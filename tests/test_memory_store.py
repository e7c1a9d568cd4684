"""The experience store's contract, run against embedded Chroma, a ``chroma run``
server on loopback, and LangGraph's ``BaseStore`` (InMemoryStore with an index)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gems_graph.memory import MemoryStoreError, NullExperienceStore, open_experience_store
from tests.conftest_memory import *  # noqa: F401,F403 (fixtures)
from tests.conftest_memory import make_lesson

COUNT = "For 'two red circles' the count was wrong; fixed by adding 'exactly two' to the prompt."
COUNT_DUP = "For 'two red circles' the count was wrong, fixed by adding 'exactly two' to the prompt"
POSITION = "For 'a blue square above a green triangle' the position failed; fixed by saying 'at the top of the image'."
TEXT = "For 'a sign that says OPEN' the letters were garbled; fixed by putting the text in quotes."


def test_add_and_recall_ranks_by_similarity(store):
    ids = store.add([make_lesson(COUNT), make_lesson(POSITION), make_lesson(TEXT)])
    assert len(set(ids)) == 3 and store.count() == 3
    got = store.recall("three red circles in a row", k=2, generator_family="shapes")
    assert [g["id"] for g in got][0] == ids[0]
    assert len(got) == 2
    assert all(-1.0 <= g["similarity"] <= 1.0 for g in got)
    assert got[0]["similarity"] >= got[1]["similarity"]


def test_recall_filters_to_family(store):
    store.add([make_lesson(COUNT, family="z-image-turbo"), make_lesson(POSITION, family="shapes")])
    got = store.recall("two red circles", k=3, generator_family="shapes")
    assert [g["generator_family"] for g in got] == ["shapes"]
    assert {g["generator_family"] for g in store.recall("two red circles", k=3)} == {"shapes", "z-image-turbo"}
    assert store.recall("two red circles", k=3, generator_family="flux") == []


def test_near_duplicate_merges_and_bumps_uses(store):
    first = store.add([make_lesson(COUNT)])[0]
    second = store.add([make_lesson(COUNT_DUP)])[0]
    assert second == first
    assert store.count() == 1
    kept = store.get(first)
    assert kept["uses"] == 2
    assert kept["text"] == COUNT_DUP  # the newer text wins
    # the same text for another family is a different lesson
    store.add([make_lesson(COUNT, family="flux-dev")])
    assert store.count() == 2


def test_size_cap_evicts_least_useful(store):
    store.max_lessons = 2
    a, b = store.add([make_lesson(COUNT), make_lesson(POSITION)])
    store.add([make_lesson(COUNT_DUP)])  # a now has uses=2
    c = store.add([make_lesson(TEXT)])[0]
    assert store.count() == 2
    left = {l["id"] for l in store.list(10)}
    assert left == {a, c}  # b: fewest uses, oldest
    assert store.get(b) is None


def test_get_forget_clear_list(store):
    ids = store.add([make_lesson(COUNT), make_lesson(POSITION)])
    assert store.get(ids[0])["text"] == COUNT
    assert store.get("nope") is None
    assert store.forget(ids[0]) is True
    assert store.forget(ids[0]) is False
    assert [l["id"] for l in store.list(10)] == [ids[1]]
    assert store.clear() == 1
    assert store.count() == 0 and store.list(10) == []
    assert store.recall("anything", k=3) == []


def test_export_import_roundtrip(store, tmp_path, embeddings):
    store.add([make_lesson(COUNT, skills=["counting"], failed_checks=["Are there two circles?"]), make_lesson(POSITION)])
    path = tmp_path / "lessons.jsonl"
    assert store.export_jsonl(path) == 2
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert {r["text"] for r in rows} == {COUNT, POSITION}
    assert "similarity" not in rows[0]
    other = open_experience_store(f"chroma:{tmp_path / 'other'}", embeddings=embeddings)
    assert len(other.import_jsonl(path)) == 2
    assert other.count() == 2
    assert sorted(l["skills"] for l in other.list(10)) == [[], ["counting"]]
    # re-importing adds nothing and does not count as new evidence
    store.import_jsonl(path)
    assert store.count() == 2 and {l["uses"] for l in store.list(10)} == {1}


def test_import_rejects_bad_file_whole(store, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": COUNT}) + "\n{not json\n")
    with pytest.raises(MemoryStoreError, match="bad.jsonl:2"):
        store.import_jsonl(bad)
    assert store.count() == 0
    with pytest.raises(MemoryStoreError, match="cannot read"):
        store.import_jsonl(tmp_path / "missing.jsonl")


def test_null_store_remembers_nothing():
    s = open_experience_store("none")
    assert isinstance(s, NullExperienceStore)
    assert s.add([make_lesson(COUNT)]) == [] and s.recall("two red circles") == [] and s.count() == 0


def test_default_spec_is_embedded_under_gems_home(gems_home, embeddings):
    s = open_experience_store(None, embeddings=embeddings)
    s.add([make_lesson(COUNT)])
    assert (gems_home / "memory" / "chroma.sqlite3").is_file()
    assert open_experience_store("chroma", embeddings=embeddings).count() == 1


def test_missing_corrupt_and_unreachable_stores_fail_in_one_line(tmp_path, embeddings):
    with pytest.raises(MemoryStoreError, match="no memory store at"):
        open_experience_store(f"chroma:{tmp_path / 'absent'}", create=False)
    bad = tmp_path / "corrupt"
    bad.mkdir()
    (bad / "chroma.sqlite3").write_bytes(b"this is not a database" * 100)
    with pytest.raises(MemoryStoreError, match="corrupt") as e:
        open_experience_store(f"chroma:{bad}", embeddings=embeddings)
    assert str(bad) in str(e.value) and "\n" not in str(e.value)
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(MemoryStoreError, match="is a file"):
        open_experience_store(f"chroma:{afile}")
    from tests.servers import free_port

    port = free_port()
    with pytest.raises(MemoryStoreError, match=f"cannot reach Chroma server at http://127.0.0.1:{port}") as e:
        open_experience_store(f"chroma://127.0.0.1:{port}")
    assert "\n" not in str(e.value)
    with pytest.raises(MemoryStoreError, match="unknown memory spec"):
        open_experience_store("redis")


def test_runtime_store_with_an_index_is_used_by_default(embeddings, gems_home):
    from langgraph.store.memory import InMemoryStore

    from gems_graph.memory.langgraph_store import LangGraphExperienceStore

    indexed = InMemoryStore(index={"dims": 384, "embed": embeddings, "fields": ["text"]})
    s = open_experience_store(None, store=indexed, embeddings=embeddings)
    assert isinstance(s, LangGraphExperienceStore)
    s.add([make_lesson(COUNT)])
    assert s.recall("two red circles", k=1, generator_family="shapes")[0]["text"] == COUNT
    assert isinstance(open_experience_store("store", store=indexed), LangGraphExperienceStore)
    # a store without an index cannot rank by similarity: the embedded Chroma is used
    plain = open_experience_store(None, store=InMemoryStore(), embeddings=embeddings)
    assert not isinstance(plain, LangGraphExperienceStore)
    with pytest.raises(MemoryStoreError, match="needs a LangGraph store"):
        open_experience_store("store")
    with pytest.raises(MemoryStoreError, match="needs a LangGraph store with a vector index"):  # asked for by name: say so
        open_experience_store("store", store=InMemoryStore())


async def test_async_wrappers(store):
    ids = await store.aadd([make_lesson(COUNT)])
    got = await store.arecall("two red circles", k=1, generator_family="shapes")
    assert [g["id"] for g in got] == ids


def test_recall_puts_a_lesson_with_a_fix_ahead_of_a_more_similar_one_without(store):
    # "Passed at once" lessons mostly restate their prompt, so they embed closer to a
    # new prompt than a lesson saying what fixed a failure, which is the useful one.
    plain = make_lesson("For 'a photo of two red circles' every check passed in round 1.")
    fixed = make_lesson(
        "For 'a photo of two red circles': strategy raise-guidance worked in round 2 (score +0.50).",
        fix="guidance None->5.5 (same prompt)",
        score_gain=0.5,
    )
    unrelated = make_lesson(TEXT, fix="put the words in quotes", score_gain=1.0)
    store.add([plain, fixed, unrelated])
    got = store.recall("a photo of two red circles", k=2, generator_family="shapes")
    assert [g["text"] for g in got] == [fixed["text"], plain["text"]]  # a fix first; similarity still gates
    assert got[0]["similarity"] < got[1]["similarity"]


def test_recall_of_a_family_is_its_nearest_whether_common_or_rare(store):
    """Recall fetches the nearest of any family and filters; a rare family still gets its own nearest."""
    colours = ["red", "blue", "green", "yellow", "purple", "orange", "black", "white"]
    shapes = ["circles", "squares", "triangles", "stars"]
    texts = [f"For '{n} {c} {s}' the count was wrong; fixed by saying exactly {n}." for n in (2, 3) for c in colours for s in shapes]
    store.add([make_lesson(t, family="rare" if i % 16 == 0 else "common", prompt=t) for i, t in enumerate(texts)])
    stored_rare = [l for l in store.list(limit=1000) if l["generator_family"] == "rare"]
    assert 3 <= len(stored_rare) < store.count() / 4  # rare: the nearest of any family need not hold three
    rare = store.recall("two red circles", k=3, generator_family="rare")
    assert len(rare) == 3 and {g["generator_family"] for g in rare} == {"rare"}
    common = store.recall("two red circles", k=3, generator_family="common")
    assert {g["generator_family"] for g in common} == {"common"}
    assert common[0]["similarity"] >= common[-1]["similarity"]


@pytest.mark.parametrize("runtime", ["onnx", "torch"])
def test_the_store_embeds_as_sentence_transformers_does(runtime, monkeypatch, tmp_path):
    # MiniLM runs on ONNX Runtime (exported once into the cache folder) or on torch, through
    # its own modules rather than ``encode``: the vectors must stay the ones that model gives,
    # so stores written before still match.
    from gems_graph.memory import embeddings

    monkeypatch.setenv("GEMS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("GEMS_EMBEDDING_RUNTIME", runtime)
    embeddings._onnx_session.cache_clear()
    try:
        texts = ["a photo of two red circles left of a blue square", "short", "For 'x': named each colour twice."]
        ours = np.asarray(embeddings.MiniLMEmbeddings().embed_documents(texts))
        exported = list((tmp_path / "cache").glob("all-MiniLM-L6-v2-*.onnx"))
        assert len(exported) == (1 if runtime == "onnx" else 0)
    finally:
        embeddings._onnx_session.cache_clear()
    reference = embeddings._load_minilm().encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    assert ours.shape == (3, 384)
    assert np.abs(ours - reference).max() < 1e-5
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
