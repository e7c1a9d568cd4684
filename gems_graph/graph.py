"""Wiring only: START -> planner -> generator (xK via Send) -> critic -> refiner | remember -> END.

``remember`` writes the run's lessons to the experience store when the run ends.
With ``human_feedback`` on, critic -> human_review (an interrupt) -> refiner | remember.

``build_graph()`` returns the builder; ``graph`` is compiled without a checkpointer
for ``langgraph.json`` (``langgraph dev`` supplies its own); ``compile_graph()`` is
for apps, the CLI and notebooks, with SQLite by default.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig, ensure_config
from langgraph.errors import GraphBubbleUp
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import get_runtime
from langgraph.types import Overwrite

from gems_graph.context import GemsContext
from gems_graph.errors import redact_values, scrub
from gems_graph.nodes.critic import critic, route_after_critic
from gems_graph.nodes.generator import agenerator, fan_out, generator
from gems_graph.nodes.human_review import human_review, route_after_review
from gems_graph.nodes.planner import planner
from gems_graph.nodes.refiner import refiner
from gems_graph.nodes.remember import remember
from gems_graph.state import GemsInput, GemsOutput, GemsState

#: Threads for the sync nodes of async runs. They mostly wait on chat-model calls, so one
#: process with many runs in flight needs many; the event loop's default pool
#: (min(32, CPUs + 4) threads) would cap how many runs make progress at once.
NODE_THREADS = 256
_node_pool: ThreadPoolExecutor | None = None
_node_pool_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _node_pool
    with _node_pool_lock:
        if _node_pool is None:
            _node_pool = ThreadPoolExecutor(max_workers=NODE_THREADS, thread_name_prefix="gems-node")
        return _node_pool


class SyncAsyncNode(Runnable[Any, Any]):
    """A node with its own sync and async implementations, each called as
    ``fn(input, runtime=..., [config=...])``.

    Public APIs only: LangGraph takes any ``Runnable`` as a node, and ``get_runtime()`` is
    the run's runtime inside one. A plain function has one implementation (LangGraph runs a
    sync one's async path on the event loop's default pool), and ``RunnableLambda`` injects
    no runtime. Like LangGraph's wrapping of a function, it opens no run of its own in
    callbacks and traces: the node's run is LangGraph's."""

    def __init__(self, func: Callable[..., Any], afunc: Callable[..., Awaitable[Any]], *, name: str) -> None:
        self.func, self.afunc, self.name = func, afunc, name
        self._takes_config = "config" in inspect.signature(func).parameters

    def _injected(self, config: RunnableConfig | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"runtime": get_runtime()}
        if self._takes_config:
            kwargs["config"] = ensure_config(config)
        return kwargs

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return self.func(input, **self._injected(config))

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return await self.afunc(input, **self._injected(config))


def threaded_node(fn: Callable[..., Any]) -> SyncAsyncNode:
    """``fn`` as a node whose async path runs it on the graph's node pool (context kept).

    An error leaving the node is redacted first (``gems_graph.errors.scrub``): LangGraph
    keeps a failed task's error in the checkpoint store, and a server may have echoed a key."""
    fn = _scrubbing(fn)

    @functools.wraps(fn)
    async def afn(*args: Any, **kwargs: Any) -> Any:
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(_pool(), call)

    return SyncAsyncNode(fn, afn, name=fn.__name__)


def _scrubbing(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def node(*args: Any, **kwargs: Any) -> Any:
        try:
            return redacted_update(fn(*args, **kwargs))
        except GraphBubbleUp:  # interrupts and commands are control flow, not errors
            raise
        except Exception as exc:
            scrub(exc)
            raise

    return node


def redacted_update(update: Any) -> Any:
    """A node's state update with every string redacted: a model that echoes the API key in
    a reply must not get it into the state, the checkpoints or the lessons made from them."""
    if not isinstance(update, dict):
        return update
    return {k: Overwrite(redact_values(v.value)) if isinstance(v, Overwrite) else redact_values(v) for k, v in update.items()}


def build_graph() -> StateGraph[GemsState, GemsContext, GemsInput, GemsOutput]:
    builder = StateGraph(GemsState, context_schema=GemsContext, input_schema=GemsInput, output_schema=GemsOutput)
    builder.add_node("planner", threaded_node(planner))
    # Both paths, so `ainvoke` awaits the backend (and a batching backend sees every run's
    # requests at once) while `invoke` stays sync; LangGraph's own wrapping of a sync node
    # would run it on the event loop's small default thread pool. A generator task is a
    # ``Send`` payload (``CandidateTask``), not state: declaring the state as its input keeps
    # the payload's keys out of the graph's channels and Studio's schema.
    builder.add_node("generator", SyncAsyncNode(generator, agenerator, name="generator"), input_schema=GemsState)
    builder.add_node("critic", threaded_node(critic))
    builder.add_node("refiner", threaded_node(refiner))
    builder.add_node("human_review", human_review)
    builder.add_node("remember", threaded_node(remember))
    builder.add_edge(START, "planner")
    builder.add_conditional_edges("planner", fan_out, ["generator"])
    builder.add_edge("generator", "critic")
    builder.add_conditional_edges("critic", route_after_critic, ["human_review", "refiner", "remember"])
    builder.add_conditional_edges("human_review", route_after_review, ["refiner", "remember"])
    builder.add_edge("remember", END)
    builder.add_conditional_edges("refiner", fan_out, ["generator"])
    return builder


def compile_graph(
    checkpointer: Any = None, store: Any = None, **kwargs: Any
) -> CompiledStateGraph[GemsState, GemsContext, GemsInput, GemsOutput]:
    """Compile with the given checkpointer/store (e.g. from ``gems_graph.persistence.checkpoint``)."""
    return build_graph().compile(checkpointer=checkpointer, store=store, name="gems", **kwargs)


graph = compile_graph()
