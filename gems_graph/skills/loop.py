"""The tool-calling loop a node runs with a ``SkillSession``.

Tools are re-bound every turn because loading a skill adds tools. With
``final_schema`` (e.g. the planner's ``PlannedPrompt``) the schema is bound as one
more tool and the loop ends when the model calls it - the same shape as
``with_structured_output`` via tool calling, so a model can load skills and answer
in one conversation. Without it, the loop ends on the first reply without tool calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from pydantic import BaseModel, ValidationError

from gems_graph.skills.binding import SkillSession


@dataclass
class ToolLoopResult:
    #: The model's last message.
    message: AIMessage
    #: Everything: the input messages, every AI turn and every tool result.
    messages: list[BaseMessage] = field(default_factory=list)
    #: The parsed ``final_schema`` answer, or None if the model never gave a valid one.
    answer: BaseModel | None = None


def _step(
    ai: AIMessage, session: SkillSession, final_schema: type[BaseModel] | None, history: list[BaseMessage]
) -> tuple[bool, BaseModel | None]:
    """Handle one AI turn; return (done, answer)."""
    history.append(ai)
    calls = list(getattr(ai, "tool_calls", None) or [])
    if not calls:
        return True, None
    final_name = final_schema.__name__ if final_schema is not None else None
    answer, replies = None, []
    for tc in calls:
        if final_schema is not None and tc.get("name") == final_name:
            try:
                answer = final_schema.model_validate(tc.get("args") or {})
                replies.append(ToolMessage(content="Answer received.", tool_call_id=tc.get("id") or "", name=final_name))
            except ValidationError as e:
                msg = " ".join(str(e).split())[:500]
                replies.append(ToolMessage(content=f"Error: {msg}", tool_call_id=tc.get("id") or "", name=final_name, status="error"))
        else:
            replies.append(session.handle(tc))
    history.extend(replies)
    return answer is not None, answer


def _tools(session: SkillSession, final_schema: type[BaseModel] | None) -> list[Any]:
    return [*session.tools(), *([final_schema] if final_schema is not None else [])]


def run_tool_loop(
    model: Any, session: SkillSession, messages: Sequence[BaseMessage], *, final_schema: type[BaseModel] | None = None, max_turns: int = 6
) -> ToolLoopResult:
    """Let ``model`` call skill tools (and finally ``final_schema``) for at most ``max_turns`` turns.

    After ``max_turns`` the model is asked once more with only ``final_schema`` bound
    (or with no tools). Tool errors go back to the model as error ``ToolMessage``s.
    """
    history = list(messages)
    for _ in range(max_turns):
        tools = _tools(session, final_schema)
        ai = (model.bind_tools(tools) if tools else model).invoke(history)
        done, answer = _step(ai, session, final_schema, history)
        if done:
            return ToolLoopResult(ai, history, answer)
    last = model.bind_tools([final_schema]) if final_schema is not None else model
    ai = last.invoke(history)
    _, answer = _step(ai, session, final_schema, history)
    return ToolLoopResult(ai, history, answer)


async def arun_tool_loop(
    model: Any, session: SkillSession, messages: Sequence[BaseMessage], *, final_schema: type[BaseModel] | None = None, max_turns: int = 6
) -> ToolLoopResult:
    """Async ``run_tool_loop``."""
    history = list(messages)
    for _ in range(max_turns):
        tools = _tools(session, final_schema)
        ai = await (model.bind_tools(tools) if tools else model).ainvoke(history)
        done, answer = _step(ai, session, final_schema, history)
        if done:
            return ToolLoopResult(ai, history, answer)
    last = model.bind_tools([final_schema]) if final_schema is not None else model
    ai = await last.ainvoke(history)
    _, answer = _step(ai, session, final_schema, history)
    return ToolLoopResult(ai, history, answer)
