"""The cheaper modes of a run: the refiner's two answers in one call, fewer edit re-checks, and what generation took."""

from __future__ import annotations

from dataclasses import replace

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from gems_graph.app.runner import run_gems
from gems_graph.context import ConfigError, GemsContext
from gems_graph.presets import get_preset
from gems_graph.shapes.chat_model import ShapesChatModel
from gems_graph.shapes.render import draw
from gems_graph.testing import ColourGenerator, ScriptedChatModel, loop_handler
from gems_graph.usage import add_counts, usage_line, usage_record, zero_usage
from tests.servers import RecordingServer, json_reply
from tests.test_backends_images_api import _b64_png
from tests.test_editing import STEPS, DrawsWrongThenInpaints

SCENE = "a photo of a triangle left of a green square and four red circles"


def _shapes_run(tmp_path, name: str, **settings):
    ctx = GemsContext(artifact_root=str(tmp_path / name), **{"memory": "none", "max_rounds": 2, **settings})
    return run_gems(SCENE, ctx, InMemorySaver())


def _colour_run(tmp_path, handler, prompt: str = "a red square", **settings):
    """A run in the colour world with a scripted chat model (reporting 10 tokens in, 2 out a call),
    memory off unless ``settings`` say otherwise."""
    ctx = GemsContext(
        generator=ColourGenerator(),
        chat_model=ScriptedChatModel(handler=handler, usage=(10, 2)),
        artifact_root=str(tmp_path),
        **{"memory": "none", **settings},
    )
    return run_gems(prompt, ctx, InMemorySaver())


def _trajectory(result) -> list[tuple]:
    return [(r["prompt"], r["experience"], [c["score"] for c in r["candidates"]]) for r in result.state["rounds"]]


def test_combined_refiner_call_writes_the_same_rounds_with_half_the_calls(tmp_path):
    """The world's refiner reads the same facts either way, so the rounds match; the calls and uploads do not."""
    separate = _shapes_run(tmp_path, "separate", refiner_calls="separate")
    combined = _shapes_run(tmp_path, "combined", refiner_calls="combined")
    assert separate.state["rounds_used"] >= 2, "the scene must need refining for the comparison to mean anything"
    assert _trajectory(combined) == _trajectory(separate)
    refines = separate.state["rounds_used"] - 1
    before, after = (r.state["usage"]["nodes"]["refiner"] for r in (separate, combined))
    assert (before["calls"], after["calls"]) == (2 * refines, refines)
    assert after["images_sent"] == before["images_sent"] - refines  # the compression's image is not sent again
    assert after["input_tokens"] < before["input_tokens"]
    # The world's pipeline times its images, so a run says how long generation took.
    total = separate.state["usage"]["total"]
    assert total["untimed_images"] == 0 and total["generation_seconds"] > 0


def test_combined_call_keeps_an_experience_from_a_scripted_model(tmp_path):
    result = _colour_run(tmp_path, loop_handler(fix_at_round=2), refiner_calls="combined")
    assert result.status == "passed" and result.state["rounds_used"] == 2
    assert result.state["rounds"][0]["experience"] == "The square came out blue; say red explicitly."
    assert result.state["usage"]["nodes"]["refiner"]["calls"] == 1


def test_an_image_servers_inference_time_is_the_runs_generation_seconds(tmp_path):
    """SGLang Diffusion reports ``inference_time_s`` for a request; each image of it gets its share."""

    def respond(rec):
        n = rec.json()["n"]
        return json_reply(200, {"created": 0, "data": [{"b64_json": _b64_png((220, 10, 10))}] * n, "inference_time_s": 1.5})

    with RecordingServer(respond) as srv:
        ctx = GemsContext(
            generator=f"images-api:{srv.url}/v1#m?batch_window=0.5",
            chat_model=ScriptedChatModel(handler=loop_handler()),
            artifact_root=str(tmp_path),
            candidates_per_round=2,
            max_rounds=1,
            memory="none",
        )
        result = run_gems("a red square", ctx, InMemorySaver())
    total = result.state["usage"]["total"]
    assert len(srv.requests) == 1 and total["images_generated"] == 2
    assert total["generation_seconds"] == pytest.approx(1.5) and total["untimed_images"] == 0
    assert "(1.5 s of generation)" in usage_line(total)


def test_images_without_a_reported_time_leave_the_seconds_unknown():
    timed_one = usage_record("generator", 1, images_generated=1, generation_seconds=2.0)
    untimed = usage_record("generator", 1, images_generated=1, untimed_images=1, generation_seconds=None)
    assert add_counts(zero_usage(), untimed)["generation_seconds"] is None
    both = add_counts(timed_one, untimed)
    assert both["generation_seconds"] == 2.0 and "2.0+ s" in usage_line(both)


def test_the_paper_preset_keeps_two_refiner_calls():
    assert get_preset("gems-paper").values["refiner_calls"] == "separate"
    with pytest.raises(ConfigError, match="refiner_calls"):
        GemsContext(refiner_calls="one")


# -- the critic drafts the refiner's answer in its verification call -----------------------------


def test_the_critic_drafts_the_refiners_answer_with_its_verdicts(tmp_path):
    """One call a round judges the image and writes the next prompt: the world's rounds are the same
    as with the refiner's own call, and the refiner makes none."""
    combined = _shapes_run(tmp_path, "combined", refiner_calls="combined", verification="per_image", max_rounds=3)
    drafted = _shapes_run(tmp_path, "drafted", refiner_calls="with_critic", verification="per_image", max_rounds=3)
    assert combined.state["rounds_used"] >= 2, "the scene must need refining for the comparison to mean anything"
    assert _trajectory(drafted) == _trajectory(combined)
    rounds = drafted.state["rounds_used"]
    nodes = drafted.state["usage"]["nodes"]
    assert "refiner" not in nodes or nodes["refiner"]["calls"] == 0
    assert nodes["critic"]["images_sent"] == rounds  # each image once, for both the verdicts and the refinement
    assert drafted.state["usage"]["total"]["calls"] == combined.state["usage"]["total"]["calls"] - (rounds - 1)
    assert drafted.state.get("drafted_refinement") is None  # taken by the refiner, not left in the state
    # A structured reply has no answer tokens: the P(yes) comes from what the model wrote after each answer.
    verdicts = [v for r in drafted.state["rounds"] for c in r["candidates"] for v in c["verdicts"]]
    assert verdicts and all(v["probability"] is not None and (v["probability"] >= 0.5) == v["passed"] for v in verdicts)


def test_a_stated_probability_counts_only_where_it_agrees_with_its_answer():
    from gems_graph.nodes.critic import _answer_lines, stated_probability

    lines = _answer_lines(["c1", "c2", "c3"]).finditer("c1: yes 0.9\nc2: no (p=0.7)\nc3: no")
    assert [stated_probability(m.group(2).lower(), m.group(3)) for m in lines] == [0.9, None, None]


def test_a_drafted_run_writes_its_lesson_from_the_critics_experience(tmp_path):
    from gems_graph.memory.access import store_for_run

    memory = f"chroma:{tmp_path / 'mem'}"
    result = _colour_run(tmp_path, loop_handler(fix_at_round=2), memory=memory, refiner_calls="with_critic")
    assert result.status == "passed" and result.state["rounds_used"] == 2
    nodes = result.state["usage"]["nodes"]
    # The decomposition, then one call a round; neither the refiner nor remember asks.
    assert nodes["critic"]["calls"] == 3 and set(nodes) - {"critic", "planner", "generator"} <= {"refiner"}
    assert nodes.get("refiner", {"calls": 0})["calls"] == 0
    assert [r["prompt"] for r in result.state["rounds"]] == ["a red square", "a red square FIXED"]
    assert result.state["rounds"][-1]["experience"] == "The square came out blue; say red explicitly."
    assert any("round 2" in lesson["text"] for lesson in store_for_run(memory).list())


def test_a_draft_that_does_not_fit_leaves_the_round_to_the_critic_and_the_refiner(tmp_path):
    handler = loop_handler(fix_at_round=2)

    def no_drafts(messages, tools):
        return "I would rather not." if "DraftedRound" in tools else handler(messages, tools)

    result = _colour_run(tmp_path, no_drafts, refiner_calls="with_critic")
    assert result.status == "passed" and result.state["rounds_used"] == 2
    assert any("DraftedRound" in n and "verified the round alone" in n for n in result.state["notes"])
    assert result.state["usage"]["nodes"]["refiner"]["calls"] == 1  # it asked for the next prompt itself
    assert result.state["rounds"][0]["experience"] == "The square came out blue; say red explicitly."


def test_the_critic_does_not_draft_what_a_person_or_an_edit_comes_before():
    from gems_graph.nodes.critic import drafts_refinement

    made = [{"index": 0}]
    state = {"round_index": 1}
    ctx = GemsContext(refiner_calls="with_critic", memory="none", max_rounds=3)
    assert drafts_refinement(ctx, state, made)
    assert not drafts_refinement(GemsContext(refiner_calls="combined", memory="none"), state, made)
    assert not drafts_refinement(replace(ctx, human_feedback=True), state, made)
    assert not drafts_refinement(replace(ctx, critic_model="openai:gpt-4o"), state, made)
    assert not drafts_refinement(ctx, {"round_index": 3}, made), "a last round with no memory to write has nothing to draft for"
    assert drafts_refinement(replace(ctx, memory="chroma"), {"round_index": 3}, made)
    assert not drafts_refinement(ctx, state, made * 9), "more images than one call carries"
    with pytest.raises(ConfigError, match="'with_critic'"):
        GemsContext(refiner_calls="critic")


# -- an edit candidate re-verifies only what its edit can change ---------------------------

RELATION = "a photo of a red circle left of a blue triangle"


class BreaksTheCircleToo(DrawsWrongThenInpaints):
    """An editor that leaks: it inpaints the region, then also wipes the red circle outside it."""

    def edit(self, request):
        image = super().edit(request).copy()
        circle = (0, 0, 12, 12)  # WRONG_COLOUR's circle, at (5.5, 5.5) with radius 8's ink
        image.paste(draw([]).crop(circle), circle)
        return image


def _edit_run(tmp_path, generator, **ctx):
    context = GemsContext(
        generator=generator,
        chat_model=ShapesChatModel(),
        artifact_root=str(tmp_path),
        memory="none",
        max_skills=0,
        generation_retries=1,
        steps=STEPS,
        max_rounds=2,
        refiner_edits=True,
        **ctx,
    )
    return run_gems(RELATION, context, InMemorySaver())


def _edit_candidate(result) -> dict:
    cand = result.state["rounds"][1]["candidates"][0]
    assert cand.get("edit"), "round 2 must be an edit of round 1's image"
    return cand


def test_an_edit_keeps_the_verdicts_of_checks_wholly_outside_its_region(tmp_path):
    changed = _edit_run(tmp_path / "changed", DrawsWrongThenInpaints(), edit_verification="changed")
    everything = _edit_run(tmp_path / "all", DrawsWrongThenInpaints(), edit_verification="all")
    cand = _edit_candidate(changed)
    questions = {c["id"]: c["question"] for c in changed.state["checks"]}
    kept = cand["edit"]["kept_checks"]
    assert kept and all("triangle" not in questions[k] for k in kept)  # the triangle is what the edit repaints
    parent = {v["check_id"]: v["passed"] for v in changed.state["rounds"][0]["candidates"][0]["verdicts"]}
    by_id = {v["check_id"]: v for v in cand["verdicts"]}
    assert all(by_id[k]["passed"] == parent[k] and by_id[k]["answer"].startswith("kept from round 1") for k in kept)
    assert [v["check_id"] for v in cand["verdicts"]] == list(questions)  # every check has a verdict, in order
    asked = changed.state["usage"]["rounds"][1]["nodes"]["critic"]["calls"]
    assert asked == everything.state["usage"]["rounds"][1]["nodes"]["critic"]["calls"] - len(kept)
    assert "kept_checks" not in _edit_candidate(everything)["edit"]


def test_an_edit_that_breaks_an_object_outside_its_region_is_still_caught(tmp_path):
    """The circle's own presence check keeps its verdict, but the relation names the triangle the edit repainted,
    so it is asked again on the edited image, where the circle is gone."""
    result = _edit_run(tmp_path, BreaksTheCircleToo(), edit_verification="changed")
    cand = _edit_candidate(result)
    questions = {c["id"]: c["question"] for c in result.state["checks"]}
    relation = next(k for k, q in questions.items() if " left of " in q)
    assert relation not in cand["edit"]["kept_checks"]
    verdict = next(v for v in cand["verdicts"] if v["check_id"] == relation)
    assert not verdict["passed"] and not verdict["answer"].startswith("kept")
    assert cand["score"] < 1.0 and result.status != "passed"


def test_the_paper_preset_asks_an_edit_every_check():
    assert get_preset("gems-paper").values["edit_verification"] == "all"
    with pytest.raises(ConfigError, match="edit_verification"):
        GemsContext(edit_verification="some")


# -- the planner: skills picked by their triggers, checks written with the prompt ------------


def _planner_usage(result) -> dict:
    return result.state["usage"]["nodes"]["planner"]


def test_skills_picked_by_their_triggers_plan_in_one_call_without_the_catalog(tmp_path):
    """The world's planner picks skills by the same triggers, so the runs match; the calls and tokens do not."""
    by_model = _shapes_run(tmp_path, "model", skill_routing="model")
    by_triggers = _shapes_run(tmp_path, "triggers", skill_routing="triggers")
    assert by_model.state["skills"], "the scene must load skills for the comparison to mean anything"
    assert by_triggers.state["skills"] == by_model.state["skills"]
    assert by_triggers.state["skill_checks"] == by_model.state["skill_checks"]
    assert _trajectory(by_triggers) == _trajectory(by_model)
    before, after = _planner_usage(by_model), _planner_usage(by_triggers)
    assert (before["calls"], after["calls"]) == (2, 1)
    assert after["input_tokens"] < before["input_tokens"] / 2  # the catalog went twice; now the chosen skills go once


def test_triggered_skills_reach_the_model_as_loaded_instructions(tmp_path):
    seen: list[list] = []

    def handler(messages, tools):
        seen.append(list(messages))
        return loop_handler(fix_at_round=1)(messages, tools)

    result = _colour_run(tmp_path, handler, "exactly three red squares", skill_routing="triggers")
    assert result.state["skills"] == ["counting"]
    planning = seen[0]
    system = str(planning[0].content)
    assert "load_skill(name)" not in system and "attribute-binding" not in system  # no catalog
    assert any(getattr(m, "name", None) == "load_skill" and "# Skill: counting" in str(m.content) for m in planning)


def test_a_prompt_no_trigger_matches_plans_without_skills_in_one_call(tmp_path):
    """No skill is loaded either way; triggers routing also sends no catalog (the model's routing sends it to choose from)."""
    planner = {}
    for routing in ("triggers", "model"):
        ctx = GemsContext(artifact_root=str(tmp_path / routing), memory="none", max_rounds=1, skill_routing=routing)
        result = run_gems("a photo of a circle", ctx, InMemorySaver())
        assert result.state["skills"] == [] and _planner_usage(result)["calls"] == 1
        planner[routing] = _planner_usage(result)["input_tokens"]
    assert planner["triggers"] < planner["model"] / 2


def test_the_planner_writes_the_checks_and_the_critic_asks_them_without_decomposing(tmp_path):
    critic_decomposes = _shapes_run(tmp_path, "critic", decomposition="critic")
    planner_writes = _shapes_run(tmp_path, "planner", decomposition="planner")
    assert planner_writes.state["checks"] == critic_decomposes.state["checks"]
    assert _trajectory(planner_writes) == _trajectory(critic_decomposes)
    calls = [r.state["usage"]["total"]["calls"] for r in (critic_decomposes, planner_writes)]
    assert calls[1] == calls[0] - 1
    assert _planner_usage(planner_writes)["calls"] == _planner_usage(critic_decomposes)["calls"]


def test_a_planner_that_writes_no_checks_leaves_the_decomposition_to_the_critic(tmp_path):
    def no_checks(messages, tools):
        reply = loop_handler(fix_at_round=1)(messages, tools)
        return reply.model_copy(update={"checks": []}) if "PlannedPromptAndChecks" in tools else reply

    model = ScriptedChatModel(handler=no_checks)
    ctx = GemsContext(generator=ColourGenerator(), chat_model=model, artifact_root=str(tmp_path), memory="none", decomposition="planner")
    result = run_gems("a red square", ctx, InMemorySaver())
    assert [c["question"] for c in result.state["checks"] if c["source"] == "prompt"] == ["Is there a square?", "Is the square red?"]
    assert any("Decomposition" in names for names, _ in model.calls)


def test_the_paper_preset_keeps_the_planner_and_critic_calls():
    values = get_preset("gems-paper").values
    assert (values["skill_routing"], values["decomposition"]) == ("model", "critic")
    with pytest.raises(ConfigError, match="skill_routing"):
        GemsContext(skill_routing="keywords")
    with pytest.raises(ConfigError, match="decomposition"):
        GemsContext(decomposition="both")


# -- remember: the last round is compressed only when a lesson reads it ------------------------


def _memory_run(tmp_path, name: str, fix_at_round: int, prompt: str = "a red square"):
    from gems_graph.memory.access import store_for_run

    memory = f"chroma:{tmp_path / name / 'mem'}"
    result = _colour_run(tmp_path / name, loop_handler(fix_at_round=fix_at_round), prompt, memory=memory, refiner_calls="combined")
    return result, store_for_run(memory).list()


def test_a_run_that_passes_at_once_writes_its_lesson_without_a_call(tmp_path):
    result, lessons = _memory_run(tmp_path, "at-once", fix_at_round=2, prompt="a red square FIXED")
    assert result.state["rounds_used"] == 1 and result.status == "passed"
    assert "remember" not in result.state["usage"]["nodes"]
    (lesson,) = lessons
    assert "every check passed in round 1" in lesson["text"]


def test_a_run_fixed_later_still_has_its_last_round_compressed_for_the_lesson(tmp_path):
    result, lessons = _memory_run(tmp_path, "fixed", fix_at_round=2)
    assert result.state["rounds_used"] == 2 and result.status == "passed"
    assert result.state["usage"]["nodes"]["remember"]["calls"] == 1
    assert result.state["rounds"][-1]["experience"] == "The square came out blue; say red explicitly."
    assert any("round 2" in l["text"] for l in lessons)
