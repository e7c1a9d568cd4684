"""SkillSession: on-demand binding, the tool loop, the cap, checks, hints, routing."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import BaseModel

from gems_graph.skills import SkillRegistry, SkillSession, arun_tool_loop, route_by_triggers, run_tool_loop


class ScriptedToolModel(GenericFakeChatModel):
    """Replays scripted AIMessages and records which tools were bound on each turn."""

    bound: list[list[str]] = []
    schemas: list[list[dict]] = []

    def bind_tools(self, tools: Any, **kwargs: Any):
        from langchain_core.utils.function_calling import convert_to_openai_tool

        schemas = [convert_to_openai_tool(t) for t in tools]
        self.bound.append([t["function"]["name"] for t in schemas])
        self.schemas.append(schemas)
        return self


def call(tool: str, i: int = 0, **args) -> dict:
    return {"name": tool, "args": args, "id": f"call-{tool}-{i}", "type": "tool_call"}


@pytest.fixture(scope="module")
def registry() -> SkillRegistry:
    return SkillRegistry()


def test_catalog_text_has_names_and_descriptions_only(registry):
    text = SkillSession(registry).catalog_text()
    for name, _desc in registry.catalog():
        assert f"- {name}: " in text
    assert "# Spatial layout" not in text  # instructions are not shown up front
    assert "at most 2" in text


def test_load_skill_schema_is_enum_of_catalog(registry):
    tools = SkillSession(registry).tools()
    assert [t.name for t in tools] == ["load_skill", "read_skill_resource"]
    schema = tools[0].args_schema.model_json_schema()
    assert schema["properties"]["name"]["enum"] == registry.names()


def test_load_returns_instructions_and_binds_tools(registry):
    s = SkillSession(registry, prompt="a red cube left of a blue ball")
    msg = s.handle(call("load_skill", name="spatial-layout"))
    assert isinstance(msg, ToolMessage) and msg.status == "success"
    assert "# Spatial layout" in msg.content and "layout_objects" in msg.content
    assert "regions.md" in msg.content
    assert s.loaded == ["spatial-layout"]
    assert "layout_objects" in [t.name for t in s.tools()]
    out = s.handle(
        call(
            "layout_objects",
            objects=["red cube", "blue ball"],
            relations=[{"subject": "red cube", "relation": "left of", "object": "blue ball"}],
        )
    )
    assert out.status == "success" and "red cube: left half" in out.content
    assert s.added_checks == [
        {
            "id": "spatial-layout-1",
            "source": "skill:spatial-layout",
            "question": "Is every object in the position the prompt gives it relative to the other objects?",
        }
    ]


def test_skill_tool_unavailable_before_loading(registry):
    s = SkillSession(registry)
    msg = s.handle(call("layout_objects", objects=["a"]))
    assert msg.status == "error" and "load the skill that provides it first (spatial-layout)" in msg.content


def test_cap_of_two(registry):
    s = SkillSession(registry, max_skills=2)
    assert s.handle(call("load_skill", 1, name="counting")).status == "success"
    assert s.handle(call("load_skill", 2, name="negation")).status == "success"
    again = s.handle(call("load_skill", 3, name="counting"))
    assert again.status == "success" and "already loaded" in again.content
    third = s.handle(call("load_skill", 4, name="text-rendering"))
    assert third.status == "error" and "at most 2" in third.content
    assert s.loaded == ["counting", "negation"]


@pytest.mark.parametrize(
    "name, words",
    [
        ("../counting", "cannot contain"),
        ("counting/x", "cannot contain"),
        ("nope", "unknown skill 'nope'"),
        (None, "non-empty string"),
        (3, "non-empty string"),
    ],
)
def test_bad_names_come_back_as_error_messages(registry, name, words):
    s = SkillSession(registry)
    msg = s.handle(call("load_skill", name=name))
    assert msg.status == "error" and words in msg.content and msg.tool_call_id == "call-load_skill-0"
    assert s.loaded == [] and s.added_checks == [] and s.hints == {}


def test_read_resource_tool(registry):
    s = SkillSession(registry)
    before = s.handle(call("read_skill_resource", name="spatial-layout", file="regions.md"))
    assert before.status == "error" and "before reading" in before.content
    s.handle(call("load_skill", name="spatial-layout"))
    ok = s.handle(call("read_skill_resource", name="spatial-layout", file="regions.md"))
    assert ok.status == "success" and "Region vocabulary" in ok.content
    esc = s.handle(call("read_skill_resource", name="spatial-layout", file="../SKILL.md"))
    assert esc.status == "error" and "outside" in esc.content


def test_unknown_tool_and_bad_args(registry):
    s = SkillSession(registry)
    assert s.handle(call("rm_rf")).status == "error"
    s.handle(call("load_skill", name="spatial-layout"))
    bad = s.handle(call("layout_objects", objects="not a list", relations=[{"relation": "inside"}]))
    assert bad.status == "error" and bad.content.startswith("Error:")


def test_checks_filled_from_prompt_and_hints_merged(registry):
    prompt = 'a sign saying "OPEN 24H" and a mug reading "Cafe", a street with no cars'
    s = SkillSession(registry, prompt=prompt)
    s.load("text-rendering")
    s.load("negation")
    qs = [c["question"] for c in s.added_checks]
    assert 'Does the image show the text "OPEN 24H" spelled exactly, with no extra or missing letters?' in qs
    assert any('"Cafe"' in q for q in qs)
    assert "Is the image free of any cars?" in qs
    ids = [c["id"] for c in s.added_checks]
    assert len(ids) == len(set(ids)) and "exact-text-1" in ids
    assert {c["source"] for c in s.added_checks} == {"skill:text-rendering", "skill:negation"}
    assert "garbled text" in s.hints["negative_prompt"]
    rec = s.record()
    assert rec["loaded"] == ["text-rendering", "negation"] and rec["checks"] == s.added_checks


def test_negative_prompts_joined_across_skills(registry):
    s = SkillSession(registry, max_skills=3)
    for n in ("aesthetic-drawing", "photorealistic-people", "text-rendering"):
        s.load(n)
    neg = s.hints["negative_prompt"]
    assert "watermark" in neg and "extra fingers" in neg and "garbled text" in neg


def test_placeholder_template_without_match_adds_nothing(registry):
    s = SkillSession(registry, prompt="a poster of a tiger")
    s.load("text-rendering")
    assert [c["question"] for c in s.added_checks] == ["Is all text in the image legible and free of garbled letters?"]


def test_tool_loop_with_scripted_model_two_skills(registry):
    model = ScriptedToolModel(
        messages=iter(
            [
                AIMessage("", tool_calls=[call("load_skill", 1, name="spatial-layout"), call("load_skill", 2, name="counting")]),
                AIMessage(
                    "",
                    tool_calls=[
                        call(
                            "layout_objects",
                            3,
                            objects=["cat 1", "cat 2", "dog"],
                            relations=[
                                {"subject": "cat 1", "relation": "left of", "object": "dog"},
                                {"subject": "cat 2", "relation": "left of", "object": "dog"},
                            ],
                        )
                    ],
                ),
                AIMessage("two cats on the left, one dog on the right"),
            ]
        )
    )
    model.bound, model.schemas = [], []
    s = SkillSession(registry, prompt="two cats to the left of a dog")
    msgs = [SystemMessage(s.catalog_text()), HumanMessage("two cats to the left of a dog")]
    res = run_tool_loop(model, s, msgs)
    final, history = res.message, res.messages
    assert res.answer is None
    assert final.content == "two cats on the left, one dog on the right"
    assert model.bound[0] == ["load_skill", "read_skill_resource"]
    assert model.bound[1] == ["load_skill", "read_skill_resource", "layout_objects"]
    enum = model.schemas[0][0]["function"]["parameters"]["properties"]["name"]["enum"]
    assert enum == registry.names()
    tool_msgs = [m for m in history if isinstance(m, ToolMessage)]
    assert [m.status for m in tool_msgs] == ["success"] * 3
    assert "# Counting" in tool_msgs[1].content
    assert s.loaded == ["spatial-layout", "counting"]
    assert any(c["question"] == "Are there exactly two cats in the image?" for c in s.added_checks)


async def test_async_tool_loop_refuses_third_skill(registry):
    model = ScriptedToolModel(
        messages=iter(
            [
                AIMessage("", tool_calls=[call("load_skill", i, name=n) for i, n in enumerate(["negation", "counting", "text-rendering"])]),
                AIMessage("done"),
            ]
        )
    )
    model.bound, model.schemas = [], []
    s = SkillSession(registry)
    res = await arun_tool_loop(model, s, [HumanMessage("x")])
    final, history = res.message, res.messages
    assert final.content == "done"
    statuses = [m.status for m in history if isinstance(m, ToolMessage)]
    assert statuses == ["success", "success", "error"]


def test_tool_loop_stops_after_max_turns(registry):
    model = ScriptedToolModel(
        messages=iter([AIMessage("", tool_calls=[call("load_skill", i, name="counting")]) for i in range(3)] + [AIMessage("final")])
    )
    model.bound, model.schemas = [], []
    res = run_tool_loop(model, SkillSession(registry), [HumanMessage("x")], max_turns=3)
    assert res.message.content == "final" and len(model.bound) == 3


def test_empty_registry_binds_nothing(tmp_path):
    s = SkillSession(SkillRegistry(include_builtin=False))
    assert s.tools() == [] and s.catalog_text() == ""


@pytest.mark.parametrize(
    "prompt, expected",
    [
        ("a red cube to the left of a blue sphere", ["attribute-binding", "spatial-layout"]),
        ('a sign that says "HELLO"', ["text-rendering"]),
        ("three cats", ["counting"]),
        ("a photo of a dog", []),
        ("a cake without candles", ["negation"]),
        ("the animal that symbolises Australia", ["world-knowledge"]),
    ],
)
def test_route_by_triggers(registry, prompt, expected):
    assert sorted(route_by_triggers(prompt, registry)) == expected


def test_route_limit_and_order(registry):
    names = route_by_triggers('a poster saying "SALE" with the word "NOW" beside three red apples', registry, limit=2)
    assert len(names) == 2 and names[0] == "text-rendering"


class Plan(BaseModel):
    prompt: str


def test_tool_loop_with_final_schema(registry):
    model = ScriptedToolModel(
        messages=iter(
            [
                AIMessage("", tool_calls=[call("load_skill", 1, name="text-rendering")]),
                AIMessage("", tool_calls=[call("Plan", 2, wrong="x")]),  # invalid: repaired next turn
                AIMessage("", tool_calls=[call("Plan", 3, prompt='a sign that says "HI"')]),
            ]
        )
    )
    model.bound, model.schemas = [], []
    s = SkillSession(registry, prompt='a sign that says "HI"')
    res = run_tool_loop(model, s, [HumanMessage('a sign that says "HI"')], final_schema=Plan)
    assert res.answer == Plan(prompt='a sign that says "HI"')
    assert model.bound[0] == ["load_skill", "read_skill_resource", "Plan"]
    errors = [m for m in res.messages if isinstance(m, ToolMessage) and m.status == "error"]
    assert len(errors) == 1 and "prompt" in errors[0].content
    assert s.loaded == ["text-rendering"]
    assert any('"HI"' in c["question"] for c in s.added_checks)


def test_tool_loop_final_schema_forced_after_max_turns(registry):
    model = ScriptedToolModel(
        messages=iter(
            [AIMessage("", tool_calls=[call("load_skill", i, name="counting")]) for i in range(2)]
            + [AIMessage("", tool_calls=[call("Plan", 9, prompt="p")])]
        )
    )
    model.bound, model.schemas = [], []
    res = run_tool_loop(model, SkillSession(registry), [HumanMessage("x")], final_schema=Plan, max_turns=2)
    assert res.answer == Plan(prompt="p") and model.bound[-1] == ["Plan"]
