"""Wiring only: START -> planner -> generator (xK via Send) -> critic -> refiner | remember -> END.

``remember`` writes the run's lessons to the experience store when the run ends.
With ``human_feedback`` on, critic -> human_review (an interrupt) -> refiner | remember.

``build_graph()`` returns the builder; ``graph`` is compiled without a checkpointer
for ``langgraph.json`` (``langgraph dev`` supplies its own); ``compile_graph()`` is
for apps, the CLI and notebooks, with SQLite by default.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph

from gems_graph.context import GemsContext
from gems_graph.state import GemsInput, GemsOutput, GemsState
from nodes.critic import critic, route_after_critic
from nodes.generator import fan_out, generator
from nodes.human_review import human_review, route_after_review
from nodes.planner import planner
from nodes.refiner import refiner
from nodes.remember import remember


def build_graph() -> StateGraph:
    builder = StateGraph(GemsState, context_schema=GemsContext, input_schema=GemsInput, output_schema=GemsOutput)
    builder.add_node("planner", planner)
    # A generator task is a ``Send`` payload (``CandidateTask``), not state: declaring the
    # state as its input keeps the payload's keys out of the graph's channels and Studio's schema.
    builder.add_node("generator", generator, input_schema=GemsState)
    builder.add_node("critic", critic)
    builder.add_node("refiner", refiner)
    builder.add_node("human_review", human_review)
    builder.add_node("remember", remember)
    builder.add_edge(START, "planner")
    builder.add_conditional_edges("planner", fan_out, ["generator"])
    builder.add_edge("generator", "critic")
    builder.add_conditional_edges("critic", route_after_critic, ["human_review", "refiner", "remember"])
    builder.add_conditional_edges("human_review", route_after_review, ["refiner", "remember"])
    builder.add_edge("remember", END)
    builder.add_conditional_edges("refiner", fan_out, ["generator"])
    return builder


def compile_graph(checkpointer: Any = None, store: Any = None, **kwargs: Any):
    """Compile with the given checkpointer/store (e.g. from ``gems_graph.persistence.checkpoint``)."""
    return build_graph().compile(checkpointer=checkpointer, store=store, name="gems", **kwargs)


graph = compile_graph()
