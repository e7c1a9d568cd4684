"""Human in the loop: pause after the critic, accept an image or send feedback to the refiner."""

from __future__ import annotations

from pathlib import Path

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from gems_graph.context import GemsContext
from gems_graph.graph import compile_graph
from gems_graph.testing import ColourGenerator, ScriptedChatModel, last_text, loop_handler


def setup(tmp_path, handler=None):
    context = GemsContext(
        generator=ColourGenerator(),
        chat_model=ScriptedChatModel(handler=handler or loop_handler()),
        artifact_root=str(tmp_path),
        human_feedback=True,
        max_rounds=4,
        candidates_per_round=2,
    )
    return compile_graph(checkpointer=InMemorySaver()), {"configurable": {"thread_id": "h"}}, context


def test_pauses_with_candidates_and_verdicts_then_accept_stops_with_that_image(tmp_path):
    app, cfg, ctx = setup(tmp_path)
    out = app.invoke({"prompt": "a red square"}, cfg, context=ctx)
    (pause,) = out["__interrupt__"]
    assert pause.value["round"] == 1 and len(pause.value["candidates"]) == 2
    assert pause.value["candidates"][1]["verdicts"][1] == {"question": "Is the square red?", "passed": False}
    # Studio shows the images: a small thumbnail in the interrupt (in state only as the round's message), absolute paths.
    first = pause.value["candidates"][0]
    assert first["thumbnail"].startswith("data:image/png;base64,") and Path(first["image"]).is_absolute()
    state = app.get_state(cfg).values
    assert first["thumbnail"] not in str({k: v for k, v in state.items() if k != "messages"})
    final = app.invoke(Command(resume={"accept": True, "index": 1}), cfg, context=ctx)
    assert final["status"] == "accepted" and final["best"]["index"] == 1 and final["rounds_used"] == 1
    assert final["best_image"].endswith("candidate_01_seed1.png")


def test_feedback_reaches_the_refiner(tmp_path):
    seen = []
    base = loop_handler()

    def handler(messages, tools):
        if "RefinedPrompt" in tools:
            seen.append(last_text(messages))
        return base(messages, tools)

    app, cfg, ctx = setup(tmp_path, handler)
    app.invoke({"prompt": "a red square"}, cfg, context=ctx)
    out = app.invoke(Command(resume={"feedback": "make it <b>much</b> redder"}), cfg, context=ctx)
    assert "Feedback from a person: make it <b>much</b> redder" in seen[0]
    assert out["__interrupt__"][0].value["round"] == 2  # paused again after round 2
    state = app.get_state(cfg).values
    assert state["feedback"] is None  # used once, then cleared
    assert any("human feedback after round 1" in n for n in state["notes"])


def test_without_human_feedback_nothing_pauses(tmp_path):
    context = GemsContext(
        generator=ColourGenerator(), chat_model=ScriptedChatModel(handler=loop_handler(fix_at_round=2)), artifact_root=str(tmp_path)
    )
    out = compile_graph(checkpointer=InMemorySaver()).invoke(
        {"prompt": "a red square"}, {"configurable": {"thread_id": "n"}}, context=context
    )
    assert "__interrupt__" not in out and out["status"] == "passed"


def test_accepting_with_memory_off_leaves_a_final_run_json(tmp_path):
    import json
    from dataclasses import replace

    app, cfg, ctx = setup(tmp_path)
    ctx = replace(ctx, memory="none")
    app.invoke({"prompt": "a red square"}, cfg, context=ctx)
    final = app.invoke(Command(resume={"accept": True}), cfg, context=ctx)
    record = json.loads((Path(final["run_dir"]) / "run.json").read_text())
    assert record["status"] == "accepted" == final["status"]
