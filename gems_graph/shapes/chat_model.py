"""The shapes world's chat model: a deterministic ``BaseChatModel`` for every node request.

It is the embedded default the way SQLite is: not an LLM, but real enough to drive
every node through the same code a real model does (structured output via tool
calls, yes/no verification with log-probabilities, tool calling for skills). It
recognises a request by the tool it is asked to call (``PlannedPrompt``,
``Decomposition``, ``Experience``, ``RefinedPrompt``, ``load_skill``) or, for a
plain question with an image attached, verifies it by running the pixel checker.

Refinement uses the strategies a real refiner would: name a colour for a missing
object whose colour the user left open, restate the failed part first, reorder the
two objects, use the inverse relation, raise guidance, new seeds; strategies that
recalled lessons say worked are preferred (the planner starts with one when it
applies before anything failed). Words it does not know are returned as
``unsupported`` so the run summary reports them.
"""

from __future__ import annotations

import base64
import io
import math
import re
import uuid
from dataclasses import replace
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from PIL import Image

from gems_graph.shapes.grammar import COLORS, INVERSE_RELATION, ObjectSpec, Scene, ShapesGrammarError, describe, parse_prompt
from gems_graph.shapes.questions import answer_question, checks_for_scene

#: Strategies in the order tried when nothing recalled says otherwise.
STRATEGIES = ("add-colour", "restate", "reorder", "inverse-relation", "raise-guidance", "new-seed")
#: Strategies the planner applies up front when a lesson says they worked. Not restate or
#: add-colour (they need a failure), nor raise-guidance: its round always had a new seed
#: too, so its lesson says little about guidance, and starting with it cost counting
#: prompts in ``benchmarks/memory.py``.
PLANNABLE = ("reorder", "inverse-relation")
MAX_GUIDANCE = 9.0
GUIDANCE_STEP = 1.5


class ShapesChatModel(BaseChatModel):
    """Deterministic stand-in LLM for the offline shapes world (see module docstring)."""

    default_guidance: float = 4.0

    @property
    def _llm_type(self) -> str:
        return "gems-shapes"

    def bind_tools(self, tools: Any, *, tool_choice: Any = None, **kwargs: Any) -> Any:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], tool_choice=tool_choice, **kwargs)

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        tools = [t["function"]["name"] for t in kwargs.get("tools") or []]
        text = _human_text(messages)
        if "load_skill" in tools and "PlannedPrompt" in tools:
            message = self._plan_with_skills(messages, tools, text)
        elif "PlannedPrompt" in tools:
            message = _tool_call("PlannedPrompt", self._plan(_field(text, "User request"), text))
        elif "Decomposition" in tools:
            message = _tool_call("Decomposition", self._decompose(_field(text, "Description")))
        elif "Experience" in tools:
            message = _tool_call("Experience", {"experience": self._compress(text)})
        elif "RefinedPrompt" in tools:
            message = _tool_call("RefinedPrompt", self._refine(text))
        else:
            message = self._verify(messages, text)
        return ChatResult(generations=[ChatGeneration(message=message)])

    # -- planner ---------------------------------------------------------------------
    def _plan(self, request: str, text: str = "") -> dict[str, Any]:
        """The request in the world's own words; a strategy recalled lessons say worked is applied up front."""
        try:
            scene = parse_prompt(request)
        except ShapesGrammarError as exc:
            return {"reasoning": str(exc), "prompt": request, "unsupported": [request]}
        reasoning = f"{len(scene.objects)} object group(s), relation: {scene.relation or 'none'}"
        prompt, guidance = describe(scene), None
        learned = [s for s in _strategies_that_worked(text) if s in PLANNABLE and _applies(s, scene, "")]
        if learned:
            prompt, guidance = _apply(learned[0], scene, "", self.default_guidance, 1)
            reasoning += f"; a recalled lesson says {learned[0]} worked, so starting with it"
        return {"reasoning": reasoning, "prompt": prompt, "guidance": guidance, "unsupported": list(scene.unknown_words)}

    def _plan_with_skills(self, messages: list[BaseMessage], tools: list[str], text: str) -> AIMessage:
        """First turn: load the skills whose triggers match; then answer the plan."""
        already = {m.name for m in messages if isinstance(m, ToolMessage)} | {
            c["args"].get("name") for m in messages if isinstance(m, AIMessage) for c in m.tool_calls
        }
        if not any(isinstance(m, ToolMessage) for m in messages):
            from gems_graph.skills.binding import route_by_triggers

            limit = _max_skills_in(messages)
            wanted = [n for n in route_by_triggers(_field(text, "User request"), limit=limit) if n not in already]
            if wanted:
                return AIMessage(content="", tool_calls=[
                    {"name": "load_skill", "args": {"name": n}, "id": uuid.uuid4().hex[:8]} for n in wanted
                ])
        return _tool_call("PlannedPrompt", self._plan(_field(text, "User request"), text))

    # -- critic ----------------------------------------------------------------------
    def _decompose(self, description: str) -> dict[str, Any]:
        try:
            return {"checks": checks_for_scene(parse_prompt(description))}
        except ShapesGrammarError:
            return {"checks": []}

    def _verify(self, messages: list[BaseMessage], text: str) -> AIMessage:
        images = _images(messages)
        if not images:
            return AIMessage(content="no")
        question = _field(text, "Question").replace("Answer yes or no.", "").strip()
        request = _field(text, "request") if "request:" in text else ""
        yes, p_yes = answer_question(question, images[-1], request=request)
        token = "yes" if yes else "no"
        logprobs = {
            "content": [{
                "token": token,
                "logprob": math.log(max(p_yes if yes else 1 - p_yes, 1e-9)),
                "top_logprobs": [
                    {"token": "yes", "logprob": math.log(max(p_yes, 1e-9))},
                    {"token": "no", "logprob": math.log(max(1 - p_yes, 1e-9))},
                ],
            }]
        }
        return AIMessage(content=token, response_metadata={"logprobs": logprobs})

    # -- refiner ---------------------------------------------------------------------
    def _compress(self, text: str) -> str:
        round_line = re.search(r"Round (\d+) prompt: (.*)", text)
        failed = _section(text, "failed")
        strategy = re.search(r"strategy: ([a-z-]+)", text)
        tried = f"Tried strategy {strategy.group(1)}. " if strategy else ""
        if not failed or failed == "none":
            return f"{tried}Round {round_line.group(1) if round_line else '?'} passed every check; keep this prompt."
        outcome = f"It still failed: {failed}."
        return f"{tried}{outcome} Next: restate the failed part first or change the layout words and seed."

    def _refine(self, text: str) -> dict[str, Any]:
        request = _field(text, "Original request")
        rounds = [int(n) for n in re.findall(r"Round (\d+) prompt", text)]
        folded = re.search(r"rounds 1-(\d+)", text)
        last_round = max(rounds + [int(folded.group(1)) if folded else 0]) or 1
        last_prompt = re.findall(r"Round \d+ prompt: (.*)", text)[-1] if rounds else request
        failed = _section_last(text, "failed")
        try:
            scene = parse_prompt(last_prompt)
        except ShapesGrammarError:
            scene = parse_prompt(request)
        order = _preferred_strategies(text)
        applicable = [s for s in order if _applies(s, scene, failed)]
        strategy = applicable[(last_round - 1) % len(applicable)] if applicable else "new-seed"
        prompt, guidance = _apply(strategy, scene, failed, self.default_guidance, last_round)
        return {
            "reasoning": f"strategy: {strategy}; failed: {failed or 'none'}",
            "prompt": prompt,
            "new_seed": True,
            "guidance": guidance,
        }


def _strategies_that_worked(text: str) -> list[str]:
    """Strategies that lessons in ``text`` say worked, most recent mention first, no repeats."""
    worked = re.findall(r"strategy ([a-z-]+) (?:worked|fixed)", text)
    return [s for s in dict.fromkeys(worked) if s in STRATEGIES]


def _preferred_strategies(text: str) -> list[str]:
    """Strategies that recalled lessons say worked come first, in the default order otherwise."""
    preferred = _strategies_that_worked(text)
    return preferred + [s for s in STRATEGIES if s not in preferred]


def _applies(strategy: str, scene: Scene, failed: str) -> bool:
    two = len(scene.objects) == 2
    if strategy == "add-colour":
        return _missing_uncoloured(scene, failed) is not None
    if strategy == "reorder":
        return two
    if strategy == "inverse-relation":
        return scene.relation is not None
    if strategy == "restate":
        return two and bool(failed)
    return True


def _apply(strategy: str, scene: Scene, failed: str, guidance: float, round_index: int) -> tuple[str, float | None]:
    objs = scene.objects
    if strategy == "add-colour":
        # The user left the colour open and the object did not show: naming one makes it salient.
        i = _missing_uncoloured(scene, failed)
        used = {o.color for o in objs}
        colour = next(c for c in COLORS if c not in used)
        recoloured = tuple(replace(o, color=colour) if k == i else o for k, o in enumerate(objs))
        return describe(Scene(recoloured, scene.relation)), None
    if strategy == "reorder" and not scene.relation:
        return describe(Scene((objs[1], objs[0]))), None
    if strategy in ("reorder", "inverse-relation") and scene.relation:
        return describe(Scene((objs[1], objs[0]), INVERSE_RELATION[scene.relation])), None
    if strategy == "restate":
        # Put the object named in the first failed check first.
        first = _object_named(failed, objs)
        if first is not None and first != 0:
            if scene.relation:
                return describe(Scene((objs[1], objs[0]), INVERSE_RELATION[scene.relation])), None
            return describe(Scene((objs[1], objs[0]))), None
        return describe(scene), None
    if strategy == "raise-guidance":
        return describe(scene), min(MAX_GUIDANCE, guidance + GUIDANCE_STEP * round_index)
    return describe(scene), None


def _missing_uncoloured(scene: Scene, failed: str) -> int | None:
    """The single object without a colour whose presence check failed ("Is there a triangle?")."""
    missing = set(re.findall(r"is there an? (\w+)\?", failed.lower()))
    for i, o in enumerate(scene.objects):
        if o.color is None and o.count == 1 and o.shape in missing:
            return i
    return None


def _object_named(failed: str, objs: tuple[ObjectSpec, ...]) -> int | None:
    low = failed.lower()
    for i, o in enumerate(objs):
        if o.shape in low and (o.color is None or o.color in low):
            return i
    return None


def _max_skills_in(messages: list[BaseMessage]) -> int:
    """The planner's cap on skills, read from its instructions (default 2)."""
    m = re.search(r"at most (\d+)", " ".join(str(x.content) for x in messages if isinstance(x.content, str)))
    return int(m.group(1)) if m else 2


def _tool_call(name: str, args: dict[str, Any]) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": uuid.uuid4().hex[:8]}])


def _human_text(messages: list[BaseMessage]) -> str:
    for m in reversed(messages):
        if isinstance(m, HumanMessage):
            if isinstance(m.content, str):
                return m.content
            return "\n".join(b.get("text", "") for b in m.content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def _field(text: str, label: str) -> str:
    m = re.search(rf"{re.escape(label)}:\s*(.*)", text)
    return m.group(1).strip() if m else text.strip()


def _section(text: str, label: str) -> str:
    m = re.search(rf"^\s*{label}: (.*)$", text, re.M)
    return m.group(1).strip() if m else ""


def _section_last(text: str, label: str) -> str:
    found = re.findall(rf"^\s*{label}: (.*)$", text, re.M)
    return found[-1].strip() if found else ""


def _images(messages: list[BaseMessage]) -> list[Image.Image]:
    out = []
    for m in messages:
        for block in m.content if isinstance(m.content, list) else []:
            if isinstance(block, dict) and block.get("type") == "image_url":
                data = block["image_url"]["url"].split(",", 1)[1]
                out.append(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))
    return out


def from_spec(arg: str) -> ShapesChatModel:
    """``shapes`` (no argument)."""
    if arg:
        raise ValueError(f"the shapes chat model takes no argument, got {arg!r}")
    return ShapesChatModel()
