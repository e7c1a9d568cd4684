"""GEMS inside larger LangChain / LangGraph apps: a subgraph node adapter and a tool.

* ``gems_subgraph_node``: the compiled GEMS graph as one node of a parent graph
  whose state has other keys. It maps parent state -> ``GemsInput`` and
  ``GemsOutput`` -> a parent update, and is called with the parent's config, so it
  is a real subgraph: its steps stream with ``subgraphs=True``, custom events come
  through, it shares the parent's checkpointer, and with ``human_feedback`` on its
  review interrupt pauses the parent (resume the parent with ``Command(resume=...)``).
* ``as_tool``: a LangChain ``BaseTool`` that runs GEMS as a standalone run (its own
  thread id, so its own run folder) and returns a JSON string with the best image
  path, score and status, for any tool-calling agent.

Both work sync and async (``invoke``/``ainvoke``/``astream``); sync nodes of the
GEMS graph run in worker threads under asyncio, so many runs can be in flight.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from langgraph.runtime import CONFIG_KEY_RUNTIME
from pydantic import BaseModel, Field

from gems_graph.context import GemsContext
from gems_graph.records import PAUSED
from gems_graph.state import GemsInput, GemsOutput

InputFrom = str | Callable[[Mapping[str, Any]], GemsInput]
OutputTo = str | Callable[[GemsOutput, Mapping[str, Any]], dict[str, Any]]
ContextFrom = GemsContext | Callable[[Mapping[str, Any]], GemsContext] | None


def _default_graph() -> Any:
    from gems_graph.graph import graph  # compiled without a checkpointer: a subgraph inherits the parent's

    return graph


def _pick_context(context: ContextFrom, state: Mapping[str, Any], config: RunnableConfig) -> GemsContext:
    if isinstance(context, GemsContext):
        return context
    if callable(context):
        return context(state)
    # The parent's own runtime context, when the parent graph is configured with a GemsContext.
    runtime = (config.get("configurable") or {}).get(CONFIG_KEY_RUNTIME)
    parent = getattr(runtime, "context", None)
    return parent if isinstance(parent, GemsContext) else GemsContext()


def gems_subgraph_node(
    compiled_graph: Any = None,
    *,
    input_from: InputFrom = "prompt",
    output_to: OutputTo = "gems",
    context: ContextFrom = None,
    name: str = "gems",
) -> RunnableLambda:
    """A parent-graph node that runs GEMS on part of the parent state.

    ``input_from`` is the parent key that holds the prompt, or a function
    ``parent_state -> GemsInput`` (prompt and optional ``max_rounds``, ``seed`` ...).
    ``output_to`` is the parent key that receives the whole ``GemsOutput`` dict, or a
    function ``(gems_output, parent_state) -> parent update``. ``context`` is a
    ``GemsContext``, a function ``parent_state -> GemsContext``, or None (use the
    parent's runtime context if it is a ``GemsContext``, else the defaults).

    Example::

        class Story(TypedDict, total=False):
            scene: str
            illustration: str
            quality: float

        def to_story(out, state):
            return {"illustration": out["best_image"], "quality": out["score"]}

        builder = StateGraph(Story)
        builder.add_node("write", write_scene)
        builder.add_node("illustrate", gems_subgraph_node(
            input_from=lambda s: {"prompt": s["scene"], "max_rounds": 3},
            output_to=to_story,
            context=GemsContext(generator="shapes", chat_model="shapes")))
        builder.add_edge(START, "write")
        builder.add_edge("write", "illustrate")

    Each call keeps its own run folder, named after the parent's thread, this node
    and its task (``<thread>-<node>-<task>``), so a parent may call GEMS many times
    in one thread; a resumed parent finds the same folder again.
    """

    def to_input(state: Mapping[str, Any]) -> dict[str, Any]:
        payload = {"prompt": state[input_from]} if isinstance(input_from, str) else dict(input_from(state))
        if not payload.get("prompt"):
            raise ValueError("gems_subgraph_node: the mapped GEMS input has no 'prompt'")
        return payload

    def to_update(out: GemsOutput, state: Mapping[str, Any]) -> dict[str, Any]:
        return {output_to: dict(out)} if isinstance(output_to, str) else output_to(out, state)

    # Resolved now, not per call: LangGraph finds a subgraph among a node's closure
    # variables, which is what makes xray drawings and ``get_state(subgraphs=True)`` work.
    graph = compiled_graph or _default_graph()

    def run(state: Mapping[str, Any], config: RunnableConfig) -> dict[str, Any]:
        out = graph.invoke(to_input(state), config, context=_pick_context(context, state, config))
        return to_update(out, state)

    async def arun(state: Mapping[str, Any], config: RunnableConfig) -> dict[str, Any]:
        out = await graph.ainvoke(to_input(state), config, context=_pick_context(context, state, config))
        return to_update(out, state)

    return RunnableLambda(run, afunc=arun, name=name)


class GenerateImageArgs(BaseModel):
    """Arguments the agent's model fills in."""

    prompt: str = Field(description="What the image must show: objects, counts, colours, positions, text.")
    max_rounds: int | None = Field(default=None, ge=1, le=20, description="Most generate-verify-refine rounds (default from settings).")


TOOL_DESCRIPTION = (
    "Generate an image that follows a detailed prompt. The tool plans, generates, verifies every "
    "requirement of the prompt and refines until all pass. Returns JSON with best_image (a file "
    "path), score (fraction of checks passed), status and rounds."
)


def tool_result(out: Mapping[str, Any], thread_id: str) -> str:
    """The JSON the tool returns: only what an agent needs to decide what to say next.

    A run that stopped at a human review (``human_feedback``) is ``paused``, with the
    round it waits on: the image is not final until someone answers.
    """
    interrupts = out.get("__interrupt__") or []
    review = next((getattr(i, "value", None) for i in interrupts if isinstance(getattr(i, "value", None), dict)), None)
    return json.dumps(
        {
            "status": PAUSED if interrupts else out.get("status"),
            **({"paused_after_round": review.get("round") if review else None} if interrupts else {}),
            "best_image": out.get("best_image"),
            "score": out.get("score"),
            "rounds": out.get("rounds_used"),
            "run_dir": out.get("run_dir"),
            "run_id": thread_id,
            "error": out.get("error"),
        }
    )


def as_tool(
    graph: Any = None, *, context: GemsContext | None = None, name: str = "generate_image", description: str = TOOL_DESCRIPTION
) -> BaseTool:
    """GEMS as a LangChain tool; each call is a standalone run with a fresh thread id.

    ``graph`` defaults to the exported graph (no checkpointer); pass
    ``compile_graph(checkpointer=...)`` for durable runs. Failures raise
    ``ToolException`` so the agent gets the message instead of a crash.
    """
    ctx = context or GemsContext()

    def _inputs(prompt: str, max_rounds: int | None) -> dict[str, Any]:
        return {"prompt": prompt, **({"max_rounds": max_rounds} if max_rounds else {})}

    def _config() -> tuple[str, RunnableConfig]:
        thread_id = uuid.uuid4().hex[:12]
        return thread_id, {"configurable": {"thread_id": thread_id}, "run_name": name}

    def generate(prompt: str, max_rounds: int | None = None) -> str:
        thread_id, config = _config()
        try:
            out = (graph or _default_graph()).invoke(_inputs(prompt, max_rounds), config, context=ctx)
        except ValueError as exc:
            raise ToolException(str(exc)) from exc
        return tool_result(out, thread_id)

    async def agenerate(prompt: str, max_rounds: int | None = None) -> str:
        thread_id, config = _config()
        try:
            out = await (graph or _default_graph()).ainvoke(_inputs(prompt, max_rounds), config, context=ctx)
        except ValueError as exc:
            raise ToolException(str(exc)) from exc
        return tool_result(out, thread_id)

    return StructuredTool.from_function(
        func=generate, coroutine=agenerate, name=name, description=description, args_schema=GenerateImageArgs, handle_tool_error=True
    )
