"""GEMS composed into larger apps: a parent graph node, a tool for an agent, many async runs."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition

from gems_graph.app.compose import as_tool, gems_subgraph_node
from gems_graph.context import GemsContext
from gems_graph.graph import compile_graph
from gems_graph.testing import ColourGenerator, ScriptedChatModel, loop_handler


def colour_context(tmp_path, fix_at_round=2, **kw) -> GemsContext:
    return GemsContext(
        generator=ColourGenerator(),
        chat_model=ScriptedChatModel(handler=loop_handler(fix_at_round=fix_at_round)),
        artifact_root=str(tmp_path / "runs"),
        memory="none",
        **kw,
    )


class Story(TypedDict, total=False):
    """A parent app's state: nothing in common with GemsState."""

    scene: str
    illustration: str
    quality: float
    log: list[str]


def write_scene(state: Story) -> dict[str, Any]:
    return {"scene": "a red square", "log": ["wrote the scene"]}


def parent_graph(node, checkpointer=None):
    builder = StateGraph(Story)
    builder.add_node("write", write_scene)
    builder.add_node("illustrate", node)
    builder.add_edge(START, "write")
    builder.add_edge("write", "illustrate")
    builder.add_edge("illustrate", END)
    return builder.compile(checkpointer=checkpointer)


def to_story(out, state):
    return {"illustration": out["best_image"], "quality": out["score"], "log": [*state["log"], f"gems: {out['status']}"]}


def test_gems_runs_as_a_node_of_a_parent_graph_with_different_state(tmp_path):
    node = gems_subgraph_node(
        input_from=lambda s: {"prompt": s["scene"], "max_rounds": 3}, output_to=to_story, context=colour_context(tmp_path)
    )
    app = parent_graph(node, InMemorySaver())
    config = {"configurable": {"thread_id": "story-1"}}
    out = app.invoke({}, config)
    assert out["quality"] == 1.0 and Path(out["illustration"]).is_file()
    assert out["log"] == ["wrote the scene", "gems: passed"]
    assert set(out) == {"scene", "illustration", "quality", "log"}  # no GEMS keys leak into the parent
    # A real subgraph: its node updates stream nested under the parent's node.
    namespaces = {ns for ns, _ in app.stream({}, {"configurable": {"thread_id": "story-2"}}, subgraphs=True)}
    assert () in namespaces and any(ns and ns[0].startswith("illustrate:") for ns in namespaces)


def test_two_gems_nodes_in_one_parent_thread_keep_their_own_run_folders(tmp_path):
    builder = StateGraph(Story)
    builder.add_node("write", write_scene)
    builder.add_node(
        "first",
        gems_subgraph_node(
            output_to=lambda out, s: {"illustration": out["best_image"]},
            input_from=lambda s: {"prompt": s["scene"]},
            context=colour_context(tmp_path),
        ),
    )
    builder.add_node(
        "second",
        gems_subgraph_node(
            output_to=lambda out, s: {"log": [out["best_image"]]},
            input_from=lambda s: {"prompt": "a small " + s["scene"].removeprefix("a ")},
            context=colour_context(tmp_path),
        ),
    )
    builder.add_edge(START, "write")
    builder.add_edge("write", "first")
    builder.add_edge("first", "second")
    out = builder.compile(checkpointer=InMemorySaver()).invoke({}, {"configurable": {"thread_id": "book"}})
    first, second = Path(out["illustration"]).parent.parent, Path(out["log"][0]).parent.parent
    assert first.name.startswith("book-first-") and second.name.startswith("book-second-")
    first, second = Path(out["illustration"]), Path(out["log"][0])
    assert json.loads((first.parent.parent / "run.json").read_text())["prompt"] == "a red square"
    assert json.loads((second.parent.parent / "run.json").read_text())["prompt"] == "a small red square"


def test_the_default_mapping_puts_the_whole_output_under_one_key(tmp_path):
    class Parent(TypedDict, total=False):
        prompt: str
        gems: dict

    builder = StateGraph(Parent)
    builder.add_node("gems", gems_subgraph_node(context=colour_context(tmp_path)))
    builder.add_edge(START, "gems")
    out = builder.compile().invoke({"prompt": "a red square"})
    assert out["gems"]["status"] == "passed" and out["gems"]["rounds_used"] == 2


def test_the_parents_gems_context_is_used_when_none_is_given(tmp_path):
    class Parent(TypedDict, total=False):
        prompt: str
        gems: dict

    builder = StateGraph(Parent, context_schema=GemsContext)
    builder.add_node("gems", gems_subgraph_node())
    builder.add_edge(START, "gems")
    out = builder.compile().invoke({"prompt": "a red square"}, context=colour_context(tmp_path, fix_at_round=3))
    assert out["gems"]["rounds_used"] == 3


class AgentState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def agent_handler(messages, tools):
    """Call the tool once with the user's request, then answer from the tool's JSON."""
    last = messages[-1]
    if isinstance(last, ToolMessage):
        result = json.loads(last.content)
        return AIMessage(content=f"Done: {result['best_image']} (score {result['score']}, {result['status']})")
    assert "generate_image" in tools
    return AIMessage(content="", tool_calls=[{"name": "generate_image", "id": "call_1", "args": {"prompt": last.content, "max_rounds": 3}}])


def agent_graph(tool):
    model = ScriptedChatModel(handler=agent_handler).bind_tools([tool])
    builder = StateGraph(AgentState)
    builder.add_node("agent", lambda s: {"messages": [model.invoke(s["messages"])]})
    builder.add_node("tools", ToolNode([tool]))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile()


def test_a_tool_calling_agent_uses_gems_as_a_tool(tmp_path):
    tool = as_tool(context=colour_context(tmp_path))
    assert tool.name == "generate_image" and "prompt" in tool.args
    out = agent_graph(tool).invoke({"messages": [HumanMessage("a red square")]})
    tool_msg = next(m for m in out["messages"] if isinstance(m, ToolMessage))
    result = json.loads(tool_msg.content)
    assert result["status"] == "passed" and result["score"] == 1.0 and result["rounds"] == 2
    assert Path(result["best_image"]).is_file()
    assert out["messages"][-1].content.startswith(f"Done: {result['best_image']}")


def test_the_tool_reports_bad_input_to_the_agent_instead_of_crashing(tmp_path):
    tool = as_tool(context=colour_context(tmp_path))
    reply = tool.invoke({"type": "tool_call", "id": "x", "name": "generate_image", "args": {"prompt": "   "}})
    assert isinstance(reply, ToolMessage) and "empty" in reply.content.lower()


async def test_the_tool_runs_async(tmp_path):
    tool = as_tool(context=colour_context(tmp_path))
    result = json.loads(await tool.ainvoke({"prompt": "a red square"}))
    assert result["status"] == "passed"


async def test_many_runs_in_flight_with_ainvoke_give_distinct_results(tmp_path):
    context = colour_context(tmp_path, fix_at_round=None)
    app = compile_graph(checkpointer=InMemorySaver())

    async def one(i: int):
        config = {"configurable": {"thread_id": f"run-{i}-{uuid.uuid4().hex[:6]}"}}
        return await app.ainvoke({"prompt": f"a red square number {i}", "max_rounds": i + 1, "seed": 100 * i}, config, context=context)

    outs = await asyncio.gather(*(one(i) for i in range(5)))
    assert [o["rounds_used"] for o in outs] == [1, 2, 3, 4, 5]
    assert [o["best"]["seed"] for o in outs] == [100 * i for i in range(5)]
    assert all(f"number {i}" in o["best"]["prompt"] for i, o in enumerate(outs))
    assert len({o["run_dir"] for o in outs}) == 5 and len({o["best_image"] for o in outs}) == 5


async def test_astream_yields_custom_events_as_the_run_goes(tmp_path):
    events = []
    async for chunk in compile_graph().astream(
        {"prompt": "a red square"}, context=colour_context(tmp_path, fix_at_round=3), stream_mode="custom"
    ):
        events.append(chunk)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_started" and "planned" in kinds and kinds[-1] == "run_finished"
    assert kinds.count("round_started") == 3 and kinds.count("candidate_ready") == 3
    assert events[-1]["status"] == "passed"


async def test_astream_of_a_parent_graph_carries_the_subgraphs_custom_events(tmp_path):
    node = gems_subgraph_node(input_from="scene", output_to=to_story, context=colour_context(tmp_path))
    app = parent_graph(node)
    seen = [(ns, chunk) async for ns, chunk in app.astream({}, stream_mode="custom", subgraphs=True)]
    assert any(chunk.get("event") == "run_finished" for _, chunk in seen)
    assert all(ns and ns[0].startswith("illustrate:") for ns, _ in seen)


def test_human_review_inside_the_subgraph_pauses_and_resumes_the_parent(tmp_path):
    from langgraph.types import Command

    node = gems_subgraph_node(
        input_from="scene", output_to=to_story, context=colour_context(tmp_path, fix_at_round=None, human_feedback=True)
    )
    app = parent_graph(node, InMemorySaver())
    config = {"configurable": {"thread_id": "review-1"}}
    paused = app.invoke({}, config)
    assert paused["__interrupt__"][0].value["round"] == 1
    paused = app.invoke(Command(resume={"feedback": "make it red"}), config)
    assert paused["__interrupt__"][0].value["round"] == 2
    out = app.invoke(Command(resume={"accept": True}), config)
    assert out["log"] == ["wrote the scene", "gems: accepted"] and Path(out["illustration"]).is_file()


def test_the_default_gems_node_is_a_subgraph_langgraph_can_see_into(tmp_path):
    """As the README writes it (no compiled graph passed): xray shows GEMS's nodes, get_state the inner state."""
    app = parent_graph(gems_subgraph_node(input_from="scene", output_to=to_story, context=colour_context(tmp_path)), InMemorySaver())
    inner = set(app.get_graph(xray=1).nodes)
    assert {"illustrate:planner", "illustrate:critic", "illustrate:refiner"} <= inner
    # Paused inside GEMS (a review interrupt), the parent's state shows the inner run's state.
    reviewed = parent_graph(
        gems_subgraph_node(
            input_from="scene", output_to=to_story, context=colour_context(tmp_path, fix_at_round=None, human_feedback=True)
        ),
        InMemorySaver(),
    )
    cfg = {"configurable": {"thread_id": "peek"}}
    reviewed.invoke({}, cfg)
    inner_state = reviewed.get_state(cfg, subgraphs=True).tasks[0].state
    assert inner_state.values["prompt"] == "a red square" and inner_state.next == ("human_review",)


def test_calling_gems_twice_inside_one_node_and_again_on_the_same_thread_never_reuses_a_folder(tmp_path):
    node = gems_subgraph_node(input_from="scene", output_to=lambda out, s: {"log": [out["run_dir"]]}, context=colour_context(tmp_path))

    def twice(state, config):
        first = node.invoke({"scene": "a red square"}, config)["log"][0]
        second = node.invoke({"scene": "a blue square"}, config)["log"][0]
        return {"log": [*(state.get("log") or []), first, second]}

    builder = StateGraph(Story)
    builder.add_node("twice", twice)
    builder.add_edge(START, "twice")
    app = builder.compile(checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "album"}}
    folders = app.invoke({"log": []}, cfg)["log"]
    folders += app.invoke({"log": []}, cfg)["log"]
    assert len(set(folders)) == 4, folders
    prompts = [json.loads((Path(f) / "run.json").read_text())["prompt"] for f in folders]
    assert prompts == ["a red square", "a blue square", "a red square", "a blue square"]
