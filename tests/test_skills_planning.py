"""nodes/skill_planning.py: the planner's skill loop with scripted and offline models."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.utils.function_calling import convert_to_openai_tool

from gems_graph.context import GemsContext
from gems_graph.nodes.planner import PLANNER_SYSTEM_PROMPT, PLANNER_USER_PROMPT, PlannedPrompt
from gems_graph.nodes.skill_planning import generation_from_hints, merge_skill_checks, plan_with_skills
from gems_graph.skills import SkillRegistry
from gems_graph.testing import last_text

PROMPT = 'two red apples and a sign that says "FRESH"'


def plan(model, registry, **kw):
    return plan_with_skills(
        model,
        prompt=PROMPT,
        system_prompt=PLANNER_SYSTEM_PROMPT,
        user_prompt=PLANNER_USER_PROMPT.format(prompt=PROMPT, guide="", extra=""),
        schema=PlannedPrompt,
        registry=registry,
        **kw,
    )


@pytest.fixture(scope="module")
def registry():
    return SkillRegistry()


class Replay(GenericFakeChatModel):
    """Replays AIMessages (gems_graph.testing.ScriptedChatModel would turn an AIMessage into a
    tool call, since AIMessage is itself a pydantic model) and records every call."""

    seen: list = []

    def bind_tools(self, tools: Any, **kwargs: Any):
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools])

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self.seen.append(([t["function"]["name"] for t in kwargs.get("tools") or []], list(messages)))
        return super()._generate(messages, stop=stop, run_manager=run_manager)


def scripted(turns: list[Any]) -> tuple[Replay, list[tuple[list[str], list]]]:
    """A scripted model and the (tool names, messages) of every call it received."""
    m = Replay(messages=iter(turns), seen=[])
    return m, m.seen


def tc(tool, i, **args):
    return {"name": tool, "args": args, "id": f"t{i}"}


def test_two_skills_loaded_then_planned(registry):
    model, seen = scripted(
        [
            AIMessage("", tool_calls=[tc("load_skill", 1, name="counting"), tc("load_skill", 2, name="text-rendering")]),
            AIMessage("", tool_calls=[tc("PlannedPrompt", 3, prompt='exactly two red apples; a sign that says "FRESH"')]),
        ]
    )
    p = plan(model, registry)
    assert p.answer.prompt.startswith("exactly two red apples")
    tools_turn1, msgs1 = seen[0]
    assert tools_turn1 == ["load_skill", "read_skill_resource", "PlannedPrompt"]
    assert "- counting: " in msgs1[0].content and "# Counting" not in msgs1[0].content
    _, msgs2 = seen[1]
    assert any(isinstance(m, ToolMessage) and "# Counting" in m.content for m in msgs2)
    upd = p.state_update()
    assert upd["skills"] == ["counting", "text-rendering"]
    qs = [c["question"] for c in upd["skill_checks"]]
    assert "Are there exactly two red apples in the image?" in qs
    assert any('"FRESH"' in q for q in qs)
    assert "garbled text" in upd["skill_hints"]["negative_prompt"]


def test_prose_reply_falls_back_to_structured_call(registry):
    model, _ = scripted([AIMessage("I would draw apples.")])
    p = plan(model, registry)
    assert p.answer is None and p.session.loaded == []
    assert "User request:" in last_text(p.messages)


def test_no_skills_when_capped_at_zero(registry):
    p = plan(scripted([])[0], registry, max_skills=0)
    assert p.answer is None and p.state_update()["skills"] == []


def test_generation_hints_do_not_override_user_settings():
    hints = {"negative_prompt": "blur", "guidance": 7.0, "steps": 30}
    assert generation_from_hints(hints, GemsContext(guidance=3.0)) == {"negative_prompt": "blur", "steps": 30}


def test_merge_skill_checks():
    base = [{"id": "c1", "question": "Are there exactly two red apples in the image?", "source": "prompt"}]
    extra = [
        {"id": "counting-1", "question": "Are there exactly two red apples in the image?", "source": "skill:counting"},
        {"id": "counting-2", "question": "Are the apples separate?", "source": "skill:counting"},
    ]
    assert [c["id"] for c in merge_skill_checks(base, extra)] == ["c1", "counting-2"]
    # The same question in other words about the image is not asked twice.
    plain = [{"id": "c1", "question": "Are there exactly four red squares?", "source": "prompt"}]
    worded = [{"id": "counting-1", "question": "Are there exactly four red squares in the image?", "source": "skill:counting"}]
    assert [c["id"] for c in merge_skill_checks(plain, worded)] == ["c1"]
    other = [{"id": "counting-1", "question": "Are there exactly four red squares on the left?", "source": "skill:counting"}]
    assert [c["id"] for c in merge_skill_checks(plain, other)] == ["c1", "counting-1"]


def test_offline_shapes_model_routes_by_triggers(registry):
    shapes = pytest.importorskip("gems_graph.shapes.chat_model")
    model = shapes.ShapesChatModel()
    p = plan_with_skills(
        model,
        prompt="two red circles to the left of a blue square",
        system_prompt=PLANNER_SYSTEM_PROMPT,
        user_prompt=PLANNER_USER_PROMPT.format(prompt="two red circles to the left of a blue square", guide="", extra=""),
        schema=PlannedPrompt,
        registry=registry,
    )
    assert p.answer is not None and p.answer.prompt
    assert set(p.session.loaded) <= {"counting", "spatial-layout", "attribute-binding"} and p.session.loaded
