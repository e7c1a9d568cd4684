"""How the planner uses skills: catalog up front, instructions on demand.

The planner's system prompt gets the skill catalog (names and descriptions only).
Its chat model is bound with ``load_skill`` (an enum of the catalog),
``read_skill_resource``, the tools of skills loaded so far, and the planner's answer
schema (``PlannedPrompt``) as one more tool; the loop ends when the model calls the
answer schema. What loading added is returned for the graph state:

* ``skills``       - names of the loaded skills (shown in the run summary);
* ``skill_checks`` - ``Check`` dicts with ``source="skill:<name>"``; the critic adds
  them after decomposing the prompt (they must not go into ``checks`` directly,
  since a non-empty ``checks`` makes the critic skip decomposition);
* ``skill_hints``  - merged generation hints (negative prompt, guidance, ...); the
  ones the user did not set explicitly go into ``generation``.

A model that cannot call tools (``bind_tools`` not implemented), or whose replies in
the skill loop cannot be read even when asked again, plans without skills.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel

from gems_graph.context import SkillRouting
from gems_graph.models.llm import MalformedReplyError
from gems_graph.records import Check
from gems_graph.skills import SkillRegistry, SkillSession, ToolLoopResult, route_by_triggers, run_tool_loop

#: Added to the planner's system prompt, before the catalog.
SKILLS_SYSTEM_PROMPT = """\
Skills hold expert instructions for hard kinds of request (text, counts, layout,
people, ...). Before answering, load the skills that clearly apply to this request
with load_skill (none for a plain request), follow their instructions, use the tools
they provide, then give your answer."""

#: Added to the planner's system prompt instead, when the skills were picked by their triggers (``skill_routing="triggers"``).
PRELOADED_SKILLS_PROMPT = """\
The skills below were loaded for this request because it uses the words they are
for: follow their instructions, use the tools they provide, then give your answer."""

#: Generation settings a skill hint may set (the keys of ``GenerationRequest``).
GENERATION_HINTS = ("negative_prompt", "guidance", "steps", "width", "height")


@dataclass
class SkillPlan:
    """The planner's answer (or None) and what the skills contributed."""

    answer: BaseModel | None
    session: SkillSession
    #: The conversation so far; pass it to ``invoke_structured`` when ``answer`` is None.
    messages: list[BaseMessage]
    loop: ToolLoopResult | None = None

    def state_update(self) -> dict[str, Any]:
        return {"skills": self.session.loaded, "skill_checks": self.session.added_checks, "skill_hints": self.session.hints}


def planner_messages(session: SkillSession, system_prompt: str, user_prompt: str) -> list[BaseMessage]:
    catalog = session.catalog_text()
    system = f"{system_prompt}\n\n{SKILLS_SYSTEM_PROMPT}\n\n{catalog}" if catalog else system_prompt
    return [SystemMessage(system), HumanMessage(user_prompt)]


def plan_with_skills(
    model: Any,
    *,
    prompt: str,
    system_prompt: str,
    user_prompt: str,
    schema: type[BaseModel],
    registry: SkillRegistry,
    max_skills: int = 2,
    max_turns: int = 4,
    routing: SkillRouting = "model",
) -> SkillPlan:
    """Run the planner's skill loop; ``prompt`` is the user's prompt (fills check placeholders).

    ``routing="model"`` shows the model the catalog and lets it load skills (a call to
    choose, then one to answer); ``"triggers"`` loads the skills whose declared
    triggers occur in ``prompt`` before the first call, so planning is one call that
    carries those skills' instructions and no catalog.
    """
    session = SkillSession(registry, max_skills=max_skills, prompt=prompt)
    plain = [SystemMessage(system_prompt), HumanMessage(user_prompt)]
    if max_skills == 0 or not len(registry):
        return SkillPlan(None, session, plain)
    if routing == "triggers":
        names = route_by_triggers(prompt, registry, limit=max_skills)
        if not names:
            return SkillPlan(None, session, plain)
        messages = [SystemMessage(f"{system_prompt}\n\n{PRELOADED_SKILLS_PROMPT}"), HumanMessage(user_prompt), *session.preload(names)]
    else:
        messages = planner_messages(session, system_prompt, user_prompt)
    try:
        loop = run_tool_loop(model, session, messages, final_schema=schema, max_turns=max_turns)
    except (NotImplementedError, MalformedReplyError):
        # No tool calling, or unreadable replies: plan without skills (what loaded is dropped with them).
        return SkillPlan(None, SkillSession(registry, max_skills=max_skills, prompt=prompt), plain)
    history = loop.messages
    if loop.answer is None:
        # The model replied in prose: ask once more, keeping the loaded instructions in view.
        history = [*history, HumanMessage(user_prompt)]
    return SkillPlan(loop.answer, session, history, loop)


def generation_from_hints(hints: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Skill hints as generation settings; a value the user set in the context wins."""
    return {k: v for k, v in hints.items() if k in GENERATION_HINTS and getattr(ctx, k, None) is None}


def merge_skill_checks(checks: list[Check], skill_checks: list[Check] | None) -> list[Check]:
    """Decomposed/user checks plus skill checks, skipping questions already asked.

    "Are there exactly two apples?" and "... two apples in the image?" are one
    question: asked twice it would count twice in the score.
    """
    asked = {question_key(c["question"]) for c in checks}
    ids = {c["id"] for c in checks}
    out = list(checks)
    for c in skill_checks or []:
        key = question_key(c["question"])
        if key not in asked and c["id"] not in ids:
            out.append(c.copy())
            asked.add(key)
    return out


_IMAGE_PHRASE = re.compile(r"\b(?:in|of|within) (?:the|this) (?:image|picture|photo)\b")


def question_key(question: str) -> str:
    """A yes/no question with case, punctuation and "in the image" wording removed."""
    text = _IMAGE_PHRASE.sub(" ", question.lower())
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())
