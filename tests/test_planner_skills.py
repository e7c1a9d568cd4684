"""Skills bound on demand through the real planner node, with a scripted tool-calling model."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from langchain_core.messages import AIMessage, SystemMessage, ToolMessage

from gems_graph.context import GemsContext
from gems_graph.graph import compile_graph
from gems_graph.nodes.planner import PlannedPrompt
from gems_graph.testing import ColourGenerator, ScriptedChatModel, loop_handler


def skill_loading_handler(wanted: list[str], seen: list[dict]):
    base = loop_handler(fix_at_round=None)

    def handle(messages, tools):
        if "PlannedPrompt" in tools and "load_skill" in tools:
            seen.append(
                {
                    "tools": list(tools),
                    "system": messages[0].content if isinstance(messages[0], SystemMessage) else "",
                    "tool_results": [m.content for m in messages if isinstance(m, ToolMessage)],
                }
            )
            if not any(isinstance(m, ToolMessage) for m in messages):
                return AIMessage(
                    content="", tool_calls=[{"name": "load_skill", "args": {"name": n}, "id": uuid.uuid4().hex[:6]} for n in wanted]
                )
            return PlannedPrompt(reasoning="followed the skills", prompt="three red squares, left third of the frame")
        return base(messages, tools)

    return handle


def run(handler, tmp_path, **ctx):
    context = GemsContext(
        generator=ColourGenerator(lucky_seeds={0}),
        chat_model=ScriptedChatModel(handler=handler),
        artifact_root=str(tmp_path),
        max_rounds=1,
        **ctx,
    )
    return compile_graph().invoke({"prompt": "three red squares on the left"}, context=context)


def test_only_descriptions_up_front_then_instructions_and_tools_on_demand(tmp_path):
    seen: list[dict] = []
    out = run(skill_loading_handler(["counting", "spatial-layout"], seen), tmp_path)
    first, second = seen[0], seen[1]
    # Turn 1: the catalog (names + descriptions) is in the system prompt, no instructions, no skill tools.
    assert "counting" in first["system"] and "spatial-layout" in first["system"]
    assert "layout_objects" not in first["tools"]
    # Turn 2: both skills' instructions came back as tool results, and spatial-layout's tool is bound.
    assert len(second["tool_results"]) == 2 and all(len(t) > 200 for t in second["tool_results"])
    assert "layout_objects" in second["tools"]
    assert out["status"] in ("passed", "exhausted")


def test_loaded_skills_and_their_checks_are_recorded_in_state(tmp_path):
    seen: list[dict] = []
    context = GemsContext(
        generator=ColourGenerator(lucky_seeds={0}),
        chat_model=ScriptedChatModel(handler=skill_loading_handler(["counting"], seen)),
        artifact_root=str(tmp_path),
        max_rounds=1,
    )
    app = compile_graph(checkpointer=__import__("langgraph.checkpoint.memory", fromlist=["InMemorySaver"]).InMemorySaver())
    cfg = {"configurable": {"thread_id": "s"}}
    app.invoke({"prompt": "three red squares on the left"}, cfg, context=context)
    state = app.get_state(cfg).values
    assert state["skills"] == ["counting"]
    skill_checks = [c for c in state["checks"] if c["source"] == "skill:counting"]
    assert skill_checks and all(c in state["checks"] for c in state["skill_checks"])
    assert state["settings"]["max_skills"] == 2


def test_the_cap_refuses_a_third_skill(tmp_path):
    seen: list[dict] = []
    out = run(skill_loading_handler(["counting", "spatial-layout", "negation"], seen), tmp_path)
    refused = [t for t in seen[1]["tool_results"] if "refused" in t]
    assert len(refused) == 1
    assert out["status"] in ("passed", "exhausted")


def test_max_skills_zero_plans_without_skills(tmp_path):
    seen: list[dict] = []
    run(skill_loading_handler(["counting"], seen), tmp_path, max_skills=0)
    assert seen == []  # the planner never bound load_skill


def test_a_user_skill_folder_is_routed_and_loaded_by_the_default_chat_model(tmp_path):
    """The shapes model picks skills from the catalog it is shown: the run's skill folders, not only the built-ins."""
    user = tmp_path / "skills" / "purple-care"
    user.mkdir(parents=True)
    user.joinpath("SKILL.md").write_text(
        "---\nname: purple-care\ndescription: Keep purple objects purple.\nmetadata:\n  triggers: [purple]\n---\n"
        "Name the colour of every purple object twice.\n"
    )
    app = compile_graph()
    out_state = app.invoke(
        {"prompt": "a photo of a purple triangle"},
        {"configurable": {"thread_id": uuid.uuid4().hex}},
        context=GemsContext(artifact_root=str(tmp_path / "runs"), skills_dirs=[str(tmp_path / "skills")], memory="none", max_rounds=1),
    )
    assert out_state["status"] in ("passed", "exhausted")
    run = json.loads((Path(out_state["run_dir"]) / "run.json").read_text())
    assert "purple-care" in run["skills"]
