"""The loop as a whole: early stop, exhausted rounds, best selection, Send fan-out, failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from gems_graph.context import GemsContext
from gems_graph.graph import build_graph, compile_graph, graph
from gems_graph.testing import ColourGenerator, ScriptedChatModel, loop_handler


def run(generator, handler, tmp_path, **ctx):
    model = ScriptedChatModel(handler=handler)
    context = GemsContext(generator=generator, chat_model=model, artifact_root=str(tmp_path / "runs"), **ctx)
    app = compile_graph(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t1"}}
    out = app.invoke({"prompt": "a red square"}, config, context=context)
    return out, app.get_state(config).values, model


def test_stops_early_when_every_check_passes(tmp_path):
    gen = ColourGenerator()
    out, state, _ = run(gen, loop_handler(fix_at_round=2), tmp_path)
    assert out["status"] == "passed"
    assert out["rounds_used"] == 2
    assert out["score"] == 1.0
    assert "FIXED" in state["rounds"][1]["prompt"]
    assert len(gen.calls) == 2
    assert Path(out["best_image"]).exists()
    assert state["rounds"][0]["experience"]  # round 1 was compressed before refining
    run_json = json.loads((Path(out["run_dir"]) / "run.json").read_text())
    assert run_json["status"] == "passed" and len(run_json["rounds"]) == 2


def test_runs_out_of_rounds_and_keeps_the_earliest_of_equal_candidates(tmp_path):
    gen = ColourGenerator()
    out, state, _ = run(gen, loop_handler(fix_at_round=None), tmp_path, max_rounds=3)
    assert out["status"] == "exhausted"
    assert out["rounds_used"] == 3 and len(state["rounds"]) == 3
    assert out["score"] == 0.5
    assert out["best"]["round"] == 1 and out["best"]["index"] == 0  # exact tie: earliest wins


def test_k_candidates_fan_out_with_their_own_seeds_and_the_best_is_kept(tmp_path):
    gen = ColourGenerator(lucky_seeds={2})
    out, state, _ = run(gen, loop_handler(), tmp_path, candidates_per_round=3, max_rounds=2)
    cands = state["rounds"][0]["candidates"]
    assert [c["seed"] for c in cands] == [0, 1, 2]
    assert out["status"] == "passed" and out["rounds_used"] == 1
    assert out["best"]["index"] == 2
    assert len({c["image"]["sha256"] for c in cands}) == 3


def test_a_failing_candidate_is_recorded_and_does_not_sink_the_others(tmp_path):
    gen = ColourGenerator(fail_seeds={1}, lucky_seeds={0})
    out, state, _ = run(gen, loop_handler(), tmp_path, candidates_per_round=2, generation_retries=1)
    cands = state["rounds"][0]["candidates"]
    assert cands[1]["error"] and "simulated generator failure" in cands[1]["error"]
    assert cands[1]["image"] is None and cands[1]["score"] is None
    assert cands[0]["error"] is None and out["status"] == "passed"


def test_a_round_where_every_candidate_fails_ends_the_run_as_failed(tmp_path):
    gen = ColourGenerator(fail_all=True)
    out, state, _ = run(gen, loop_handler(), tmp_path, candidates_per_round=2, generation_retries=1)
    assert out["status"] == "failed"
    assert "every candidate of round 1 failed" in out["error"]
    assert out["best_image"] is None


def test_state_holds_references_not_bytes(tmp_path):
    _, state, _ = run(ColourGenerator(), loop_handler(fix_at_round=3), tmp_path)
    # The one exception: each round's bounded thumbnails in `messages`, for Studio's thread view.
    blob = json.dumps({k: v for k, v in state.items() if k != "messages"}, default=str)
    assert "base64" not in blob and len(blob) < 20_000
    ref = state["rounds"][0]["candidates"][0]["image"]
    assert set(ref) == {"path", "sha256", "width", "height"}


def test_per_run_input_overrides_the_context(tmp_path):
    model = ScriptedChatModel(handler=loop_handler())
    context = GemsContext(generator=ColourGenerator(), chat_model=model, artifact_root=str(tmp_path), max_rounds=5)
    out = compile_graph().invoke({"prompt": "a red square", "max_rounds": 2, "seed": 7}, context=context)
    assert out["rounds_used"] == 2 and out["best"]["seed"] == 7


def test_extra_checks_from_the_user_are_verified_too(tmp_path):
    model = ScriptedChatModel(handler=loop_handler())
    context = GemsContext(generator=ColourGenerator(lucky_seeds={0}), chat_model=model, artifact_root=str(tmp_path))
    app = compile_graph(checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "x"}}
    app.invoke({"prompt": "a red square", "extra_checks": ["Is the background plain?"]}, cfg, context=context)
    checks = app.get_state(cfg).values["checks"]
    assert checks[-1] == {"id": "u1", "question": "Is the background plain?", "source": "user"}


def test_exported_graph_has_the_four_nodes_and_no_checkpointer():
    drawn = graph.get_graph()
    assert {"planner", "generator", "critic", "refiner"} <= set(drawn.nodes)
    assert graph.checkpointer is None
    edges = {(e.source, e.target, e.conditional) for e in drawn.edges}
    assert ("critic", "refiner", True) in edges and ("critic", "remember", True) in edges
    assert ("remember", "__end__", False) in edges
    assert build_graph().context_schema is GemsContext


def test_the_refiner_sees_the_trajectory_and_images(tmp_path):
    seen = []
    base = loop_handler(fix_at_round=3)

    def handler(messages, tools):
        if "RefinedPrompt" in tools:
            from gems_graph.testing import attached_images, last_text

            seen.append((last_text(messages), len(attached_images(messages))))
        return base(messages, tools)

    run(ColourGenerator(), handler, tmp_path)
    text, n_images = seen[-1]
    assert "Round 1 prompt" in text and "Round 2 prompt" in text
    assert "failed: Is the square red?" in text and "passed: Is there a square?" in text
    assert n_images == 2


@pytest.mark.parametrize("prompt", ["", "   ", "a\x00b"])
def test_the_graph_rejects_bad_prompts(prompt, tmp_path):
    context = GemsContext(
        generator=ColourGenerator(), chat_model=ScriptedChatModel(handler=loop_handler()), artifact_root=str(tmp_path / "runs")
    )
    with pytest.raises(ValueError):
        compile_graph().invoke({"prompt": prompt}, context=context)
    assert not (tmp_path / "runs").exists()


def test_a_second_run_on_the_same_thread_starts_clean_in_its_own_folder(tmp_path):
    """Studio users send a new prompt to the same thread; apps call the graph twice per thread."""
    model = ScriptedChatModel(handler=loop_handler(fix_at_round=2))
    context = GemsContext(generator=ColourGenerator(), chat_model=model, artifact_root=str(tmp_path / "runs"), memory="none")
    app = compile_graph(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t1"}}
    first = app.invoke({"prompt": "a red square"}, config, context=context)
    assert first["status"] == "passed" and first["rounds_used"] == 2
    first_files = {p: p.read_bytes() for p in Path(first["run_dir"]).rglob("*.png")}

    second = app.invoke({"prompt": "a small red square"}, config, context=context)
    state = app.get_state(config).values
    assert second["status"] == "passed" and second["rounds_used"] == 2  # judged afresh, not by the old best
    assert second["run_dir"] != first["run_dir"] and Path(second["run_dir"]).name == "t1-2"
    assert second["best_image"].startswith(second["run_dir"])
    assert [r["prompt"].split(" FIXED")[0] for r in state["rounds"]] == ["a small red square"] * 2
    assert sum(names == ["Decomposition"] for names, _ in model.calls) == 2  # checks of the new prompt
    assert not any("a red square" in n for n in state.get("notes") or [])
    assert {p: p.read_bytes() for p in Path(first["run_dir"]).rglob("*.png")} == first_files
    assert json.loads((Path(first["run_dir"]) / "run.json").read_text())["prompt"] == "a red square"
