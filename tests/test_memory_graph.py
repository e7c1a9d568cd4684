"""Memory across runs through the real graph: a run writes lessons, the next one recalls them."""

from __future__ import annotations

from gems_graph.context import GemsContext
from gems_graph.graph import compile_graph
from gems_graph.memory import open_experience_store
from gems_graph.testing import ColourGenerator, ScriptedChatModel, last_text, loop_handler


def run(tmp_path, prompt, seen, **ctx):
    base = loop_handler(fix_at_round=2)

    def handler(messages, tools):
        if "PlannedPrompt" in tools or "RefinedPrompt" in tools:
            seen.append(last_text(messages))
        return base(messages, tools)

    context = GemsContext(
        generator=ColourGenerator(), chat_model=ScriptedChatModel(handler=handler), artifact_root=str(tmp_path / "runs"), **ctx
    )
    return compile_graph().invoke({"prompt": prompt}, context=context)


def test_a_second_run_recalls_what_the_first_learned(tmp_path, gems_home):
    first_seen: list[str] = []
    first = run(tmp_path, "a red square", first_seen)
    assert first["status"] == "passed"
    store = open_experience_store("chroma", create=False)
    assert store.count() >= 1
    lesson = store.list(10)[0]
    assert lesson["generator_family"] == "test-colour" and lesson["prompt"] == "a red square"

    second_seen: list[str] = []
    second = run(tmp_path, "a red square, please", second_seen)
    assert second["status"] == "passed"
    assert "Lessons from past runs:" in second_seen[0]  # the planner read them
    assert lesson["text"] in second_seen[0]
    assert any("Lessons from past runs:" in t for t in second_seen[1:])  # and so did the refiner


def test_recall_is_filtered_to_the_same_generator_family(tmp_path):
    run(tmp_path, "a red square", [])

    class OtherFamily(ColourGenerator):
        family = "other"

    seen: list[str] = []
    context = GemsContext(
        generator=OtherFamily(),
        chat_model=ScriptedChatModel(handler=lambda m, t: (seen.append(last_text(m)), loop_handler(fix_at_round=2)(m, t))[1]),
        artifact_root=str(tmp_path / "runs"),
    )
    compile_graph().invoke({"prompt": "a red square"}, context=context)
    assert "Lessons from past runs" not in seen[0]


def test_memory_off_writes_and_recalls_nothing(tmp_path, gems_home):
    seen: list[str] = []
    run(tmp_path, "a red square", seen, memory="none")
    assert not (gems_home / "memory").exists()
    assert "Lessons from past runs" not in seen[0]
