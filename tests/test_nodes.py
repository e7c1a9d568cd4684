"""Each node on its own, called as LangGraph calls it, with a scripted chat model."""

from __future__ import annotations

from pathlib import Path

import pytest
from langgraph.runtime import Runtime
from PIL import Image
from pydantic import ValidationError

from gems_graph.context import GemsContext
from gems_graph.models.llm import StructuredOutputError, invoke_structured
from gems_graph.nodes.critic import Decomposition, critic, pick_best
from gems_graph.nodes.generator import generator, plan_round
from gems_graph.nodes.planner import PlannedPrompt, planner
from gems_graph.nodes.refiner import RefinedPrompt, clip_experience, refiner
from gems_graph.persistence.artifacts import save_png
from gems_graph.testing import ColourGenerator, ScriptedChatModel, last_text, loop_handler


def runtime(events: list | None = None, **ctx) -> Runtime:
    return Runtime(context=GemsContext(**ctx), stream_writer=(events.append if events is not None else lambda _: None))


def test_planner_sets_up_the_run_and_plans_round_one(tmp_path):
    events: list = []
    model = ScriptedChatModel(handler=loop_handler())
    out = planner(
        {"prompt": "  a red square  "},
        {"configurable": {"thread_id": "abc"}},
        runtime(events, chat_model=model, artifact_root=str(tmp_path), candidates_per_round=3, seed=5),
    )
    assert out["prompt"] == "a red square" and out["current_prompt"] == "a red square"
    assert out["run_dir"] == str(tmp_path / "abc") and Path(out["run_dir"]).is_dir()
    assert [t["seed"] for t in out["round_tasks"]] == [5, 6, 7]
    assert {e["event"] for e in events} >= {"planned", "round_started"}
    assert out["settings"]["candidates_per_round"] == 3 and "chat_model" not in out["settings"]  # objects are not saved


def test_planner_falls_back_to_the_users_prompt_when_the_model_cannot_answer(tmp_path):
    model = ScriptedChatModel(handler=lambda messages, tools: "I refuse to use tools")
    out = planner(
        {"prompt": "a red square"},
        {"configurable": {"thread_id": "x"}},
        runtime(chat_model=model, artifact_root=str(tmp_path), max_skills=0),
    )
    assert out["current_prompt"] == "a red square"
    assert "did not fit the schema after one repair" in out["notes"][0]


def test_structured_output_gets_exactly_one_repair():
    replies = iter(["not json", PlannedPrompt(prompt="fixed")])
    model = ScriptedChatModel(handler=lambda m, t: next(replies))
    from langchain_core.messages import HumanMessage

    assert invoke_structured(model, PlannedPrompt, [HumanMessage("go")]).value.prompt == "fixed"
    assert "could not be read" in model.calls[-1][1]
    bad = ScriptedChatModel(handler=lambda m, t: "still not json")
    with pytest.raises(StructuredOutputError):
        invoke_structured(bad, PlannedPrompt, [HumanMessage("go")])
    assert len(bad.calls) == 2


def test_generator_saves_the_png_and_records_a_candidate(tmp_path):
    events: list = []
    (task,) = plan_round(
        GemsContext(seed=3, guidance=2.5),
        run_dir=str(tmp_path),
        round_index=1,
        prompt="a red square",
        seed_offset=0,
        generation={"negative_prompt": "blur"},
    )
    gen = ColourGenerator()
    out = generator(task, runtime(events, generator=gen))
    (cand,) = out["pending"]
    assert cand["error"] is None and cand["seed"] == 3
    assert cand["params"] == {"guidance": 2.5, "negative_prompt": "blur"}
    assert Image.open(cand["image"]["path"]).size == (16, 16) and len(cand["image"]["sha256"]) == 64
    assert gen.calls[0].negative_prompt == "blur" and gen.calls[0].guidance == 2.5
    assert events[-1]["event"] == "candidate_ready"


def test_generator_retries_transient_errors_and_records_the_rest(tmp_path):
    class Flaky:
        family = "flaky"
        calls = 0

        def generate(self, request):
            self.calls += 1
            if self.calls < 3:
                raise ConnectionError("server busy")
            return Image.new("RGB", (8, 8))

    (task,) = plan_round(GemsContext(), run_dir=str(tmp_path), round_index=1, prompt="p", seed_offset=0, generation={})
    flaky = Flaky()
    (cand,) = generator(task, runtime(generator=flaky))["pending"]
    assert cand["error"] is None and flaky.calls == 3
    (bad,) = generator(task, runtime(generator=ColourGenerator(fail_all=True)))["pending"]
    assert bad["image"] is None and "simulated generator failure" in bad["error"]


def _state_with_candidates(tmp_path, colours):
    cands = []
    for i, colour in enumerate(colours):
        ref = save_png(Image.new("RGB", (16, 16), colour), tmp_path / f"c{i}.png") if colour else None
        cands.append(
            {
                "round": 1,
                "index": i,
                "prompt": "a red square",
                "seed": i,
                "params": {},
                "image": ref,
                "verdicts": [],
                "score": None,
                "error": None if colour else "boom",
            }
        )
    return {
        "prompt": "a red square",
        "run_dir": str(tmp_path),
        "round_index": 1,
        "current_prompt": "a red square",
        "pending": cands,
        "rounds": [],
        "settings": {},
    }


def test_critic_decomposes_once_verifies_every_candidate_and_keeps_the_best(tmp_path):
    model = ScriptedChatModel(handler=loop_handler())
    state = _state_with_candidates(tmp_path, [(0, 0, 255), (255, 0, 0), None])
    out = critic(state, runtime(chat_model=model, max_rounds=3))
    assert [c["question"] for c in out["checks"]] == ["Is there a square?", "Is the square red?"]
    judged = out["rounds"][0]["candidates"]
    assert [c["score"] for c in judged] == [0.5, 1.0, None]
    assert out["best"]["index"] == 1 and out["status"] == "passed"
    decompositions = [c for c in model.calls if "Decomposition" in c[0]]
    assert len(decompositions) == 1
    # Second visit: checks exist, no new decomposition.
    out2 = critic(
        {**state, "checks": out["checks"], "round_index": 2, "pending": [{**state["pending"][0], "round": 2}]},
        runtime(chat_model=model, max_rounds=3),
    )
    assert "checks" not in out2 and len([c for c in model.calls if "Decomposition" in c[0]]) == 1


def test_ties_keep_the_earliest_and_errors_never_win():
    def cand(r, i, passed, err=None):
        return {
            "round": r,
            "index": i,
            "verdicts": [{"check_id": "c1", "passed": passed, "answer": "", "probability": None}],
            "error": err,
            "score": float(passed),
        }

    first = cand(1, 0, True)
    assert pick_best(None, [first, cand(1, 1, True)]) is first
    assert pick_best(first, [cand(2, 0, True)]) is first
    assert pick_best(None, [cand(1, 0, True, err="x")]) is None


def test_refiner_compresses_then_writes_the_next_prompt_without_raw_thoughts(tmp_path):
    seen = []
    base = loop_handler(fix_at_round=2)

    def handler(messages, tools):
        seen.append((tools, last_text(messages)))
        return base(messages, tools)

    model = ScriptedChatModel(handler=handler)
    state = _state_with_candidates(tmp_path, [(0, 0, 255)])
    judged = critic(state, runtime(chat_model=model))
    rnd = {**judged["rounds"][0], "thought": "SECRET LONG REASONING " * 50}
    out = refiner({**state, **judged, "rounds": [rnd], "seed_offset": 0, "generation": {}}, runtime(chat_model=model))
    assert out["rounds"][0]["experience"] and len(out["rounds"][0]["experience"].split()) < 100
    assert out["current_prompt"] == "a red square FIXED" and out["round_index"] == 2
    assert out["seed_offset"] == 1 and out["round_tasks"][0]["seed"] == 1000
    refine_text = [t for tools, t in seen if "RefinedPrompt" in tools][0]
    assert "SECRET" not in refine_text  # only the compressed experience travels on
    compress_text = [t for tools, t in seen if "Experience" in tools][0]
    assert "SECRET" in compress_text


def test_experiences_are_clipped_under_100_words():
    assert len(clip_experience("word " * 300).split()) == 100
    assert clip_experience("short one") == "short one"


def test_refined_guidance_is_carried_into_the_next_round(tmp_path):
    def handler(messages, tools):
        if "RefinedPrompt" in tools:
            return RefinedPrompt(prompt="p2", guidance=7.5, new_seed=False)
        return loop_handler()(messages, tools)

    model = ScriptedChatModel(handler=handler)
    state = _state_with_candidates(tmp_path, [(0, 0, 255)])
    judged = critic(state, runtime(chat_model=model))
    out = refiner({**state, **judged, "seed_offset": 0, "generation": {}}, runtime(chat_model=model))
    assert out["generation"] == {"guidance": 7.5} and out["round_tasks"][0]["generation"]["guidance"] == 7.5
    assert out["seed_offset"] == 0


def test_decomposition_schema_requires_checks():
    with pytest.raises(ValidationError):
        Decomposition.model_validate({})


def test_a_planned_guidance_reaches_round_one_unless_the_user_set_one(tmp_path):
    def handler(messages, tools):
        if "PlannedPrompt" in tools:
            return PlannedPrompt(prompt="a red square", guidance=6.0)
        return loop_handler()(messages, tools)

    for user_guidance, expected in ((None, 6.0), (3.0, 3.0)):
        out = planner(
            {"prompt": "a red square"},
            {"configurable": {"thread_id": f"g{user_guidance}"}},
            runtime(chat_model=ScriptedChatModel(handler=handler), artifact_root=str(tmp_path), max_skills=0, guidance=user_guidance),
        )
        assert [t["generation"]["guidance"] for t in out["round_tasks"]] == [expected]
