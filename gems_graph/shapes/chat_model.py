"""The shapes world's chat model: a deterministic ``BaseChatModel`` for every node request.

It is the embedded default the way SQLite is: not an LLM, but real enough to drive
every node through the same code a real model does (structured output via tool
calls, yes/no verification with log-probabilities, tool calling for skills). It
recognises a request by the tool it is asked to call (``PlannedPrompt``, or
``PlannedPromptAndChecks``, which it answers with the checks it would decompose),
``Decomposition``, ``Experience``, ``RefinedPrompt``, ``RefinedRound`` (both of the
last two in one answer; ``EditOrPrompt`` and ``EditOrRound`` when an edit is
offered), ``DraftedRound`` (the critic's answers, then the refiner's from them),
``load_skill``) or, for a
plain question with an image attached, verifies it by asking the world's learned
critic (``gems_graph.shapes.critic_model``), whose P(yes) is the verdict's
probability. It never looks at an image through the grader's pixel checker, except
as ``shapes-oracle`` (``judge="oracle"``), which exists for one ablation row.
It reads its inputs by the labels in ``gems_graph.prompt_labels``, the ones the
node prompts are formatted from.

It acts only on what its inputs say, as an LLM would. It can parse the world's
language and write both of its registers, but every move that needs knowledge of
how the image model follows prompts it takes only from a text it was given: the
generator's prompting guide (``labels.PROMPTING_GUIDE``), a loaded skill's
instructions or a recalled lesson. Each move is licensed by a named pattern those
texts are written to match (``LAYOUT_DIRECTIVE``, ``MOVE_DIRECTIVES``,
``KEEP_DIRECTIVE``), so removing a sentence removes the move:

* the planner writes the request in the world's terse phrasing (a generic rewrite),
  unless a loaded skill's instructions tell it to lay the objects out explicitly
  (``LAYOUT_DIRECTIVE``), or a recalled lesson says a move fixed the same kind of
  failure (a count, a relation, a missing object) on a similar prompt: then it
  writes the explicit layout register, every object with its own cell. The guide's
  moves are refinements (they say what to do when an image comes out wrong), so
  they do not change the first prompt;
* the refiner reads the failed checks of the last round and what the critic sees in the
  last image it is shown, and makes the first move that applies, in this order:
  moves that recalled lessons say worked, then the guide's moves in the order the
  guide states them (name a colour for a missing object whose colour was left open,
  ``add-colour``; lay out explicitly what failed, ``explicit-layout``, keeping the
  objects that are right where they were when the guide says so; move the objects
  still wrong in a layout, ``move``), and last the one move that needs no knowledge
  of the model, ``new-seed``: the last prompt again with a new seed. Without a guide
  or a lesson it only changes the seed;
* when it is offered an image to edit (``EDIT_SOURCE``, the generator edits), it
  reads what the critic sees in that image first: if one edit can fix every failed check and
  keep what passed, it answers that edit (``gems_graph.shapes.editing``: the
  wrong-colour object's box, or a free cell for a missing one where the relation
  holds); otherwise it regenerates as above.

Asked for a ``SkillDraft`` (``gems skills learn``), it writes the skill from the lesson
records it is given and from nothing else (``write_skill``): a move becomes an
instruction only when the records say it worked more often than not.

Offered a tool that makes pictures (by its description) and asked for one, it calls
the tool and then answers from the tool's result (``agent_turn``), so a tool-calling
agent built on it runs offline.

Words it does not know are returned as ``unsupported`` so the run summary reports them.

Every reply carries ``usage_metadata`` by one rule that needs no tokenizer download
(``usage_for``), so runs on this world report tokens as a hosted model's do: a token is
a run of letters and digits or one other non-space character (``TOKEN_PATTERN``) of
the messages' text, their tool calls' arguments and the offered tools' JSON schemas,
and each attached image costs ``IMAGE_TOKENS``; the reply's tokens are those of its
text and tool-call arguments.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import uuid
import zlib
from dataclasses import replace
from statistics import mean
from typing import Any, Literal

import numpy as np
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from PIL import Image

from gems_graph import prompt_labels as labels
from gems_graph.models.metering import count_images
from gems_graph.shapes.critic_model import critic_objects, critic_p_yes
from gems_graph.shapes.detect import Detection, detect, matches
from gems_graph.shapes.editing import MARGIN, cell_box, plan_edit
from gems_graph.shapes.grammar import (
    COLORS,
    COUNT_WORDS,
    PLACE_TOKEN,
    PLACES,
    PLURALS,
    SHAPES,
    SIZE_SYNONYMS,
    Scene,
    ShapesGrammarError,
    describe,
    normalize_words,
    parse_prompt,
)
from gems_graph.shapes.layout import cell_at, explicate, flatten
from gems_graph.shapes.questions import answer_question, checks_for_scene
from gems_graph.skills.binding import route_by_declared_triggers
from gems_graph.text import clip_words

#: The moves it knows how to make; which it may make, and in what order, it reads from its inputs.
MOVES = ("add-colour", "explicit-layout", "move", "new-seed")
#: The one move that needs no knowledge of the image model, tried last: the same prompt, a new seed.
NEW_SEED = "new-seed"
#: Moves the planner applies up front when a lesson says they fixed a similar failure.
PLANNABLE = ("explicit-layout",)
#: The instruction in a skill's text that makes the planner write an explicit layout.
LAYOUT_DIRECTIVE = re.compile(r"\blay (?:the |all |every )?(?:objects?|copies|things) out explicitly\b", re.I)
#: The sentence of a prompting guide that licenses each refinement move.
MOVE_DIRECTIVES: dict[str, re.Pattern[str]] = {
    "add-colour": re.compile(r"\bname a colou?r\b", re.I),
    "explicit-layout": LAYOUT_DIRECTIVE,
    "move": re.compile(r"\bmove (?:them|it|the objects?) to (?:other |another )?free cells?\b", re.I),
}
#: The clause, in the guide's sentence for a layout move, that makes it keep the objects already right in their cells.
KEEP_DIRECTIVE = re.compile(r"\bkeeping (?:those|the objects?|what)\b[^.]*?\bright\b", re.I)
_LOAD_SKILL = "load_skill"
#: The planner's answers: its prompt, or its prompt and the request's checks (``decomposition="planner"``).
PLAN_SCHEMAS = ("PlannedPrompt", "PlannedPromptAndChecks")
#: What one token is under the shapes chat model's usage rule: a word piece or one punctuation mark.
TOKEN_PATTERN = re.compile(r"[^\W_]+|[^\w\s]|_")
#: Input tokens charged for each attached image (a 16 x 16 grid of patches, as VLMs tile a small image).
IMAGE_TOKENS = 256


class ShapesChatModel(BaseChatModel):
    """Deterministic stand-in LLM for the offline shapes world (see module docstring)."""

    #: What looks at the images: ``"critic"``, the world's learned VLM (the default), or
    #: ``"oracle"``, the grader's pixel checker (``shapes-oracle``: an ablation only).
    judge: Literal["critic", "oracle"] = "critic"

    @property
    def _llm_type(self) -> str:
        return "gems-shapes"

    @property
    def supports_logprobs(self) -> bool:
        """Declared capability: verdicts carry P(yes) from the checker's confidence."""
        return True

    def bind_tools(self, tools: Any, *, tool_choice: Any = None, **kwargs: Any) -> Any:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], tool_choice=tool_choice, **kwargs)

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        tools = [t["function"]["name"] for t in kwargs.get("tools") or []]
        text = _human_text(messages)
        plan_schema = next((n for n in tools if n in PLAN_SCHEMAS), None)
        if _LOAD_SKILL in tools and plan_schema:
            message = self._plan_with_skills(messages, text, plan_schema)
        elif plan_schema:
            message = _tool_call(plan_schema, self._plan(text, _skill_texts(messages), plan_schema))
        elif "Decomposition" in tools:
            message = _tool_call("Decomposition", self._decompose(labels.find_field(text, labels.DESCRIPTION) or ""))
        elif "Experience" in tools:
            message = _tool_call("Experience", {"experience": self._compress(text)})
        elif round_schema := next((n for n in tools if n in ("RefinedRound", "EditOrRound")), None):
            message = _tool_call(round_schema, {**self._refine(text, _images(messages)), "experience": self._compress(text)})
        elif prompt_schema := next((n for n in tools if n in ("RefinedPrompt", "EditOrPrompt")), None):
            message = _tool_call(prompt_schema, self._refine(text, _images(messages)))
        elif "DraftedRound" in tools:
            message = _tool_call("DraftedRound", self._verify_and_refine(text, _images(messages)))
        elif "SkillDraft" in tools:
            message = _tool_call("SkillDraft", write_skill(text))
        elif len(tools) == 1 and (args := _constrained_answer(kwargs["tools"][0], text)) is not None:
            message = _tool_call(tools[0], args)
        elif labels.read_questions(text):
            message = self._verify_image(messages, text)
        elif (turn := agent_turn(kwargs.get("tools") or [], messages)) is not None:
            message = turn
        else:
            message = self._verify(messages, text)
        message.usage_metadata = usage_for(messages, kwargs.get("tools") or [], message)
        return ChatResult(generations=[ChatGeneration(message=message)])

    # -- planner ---------------------------------------------------------------------
    def _plan(self, text: str, skill_texts: dict[str, str] | None = None, schema: str = "PlannedPrompt") -> dict[str, Any]:
        """The request in the world's words; laid out explicitly when a skill or a lesson says so.
        Asked for checks too (``PlannedPromptAndChecks``), it writes the request's, as it decomposes."""
        request = labels.find_field(text, labels.USER_REQUEST) or ""
        plan = self._plan_request(request, text, skill_texts)
        return {**plan, **self._decompose(request)} if schema == "PlannedPromptAndChecks" else plan

    def _plan_request(self, request: str, text: str, skill_texts: dict[str, str] | None) -> dict[str, Any]:
        try:
            scene = parse_prompt(request)
        except ShapesGrammarError as exc:
            return {"reasoning": str(exc), "prompt": request, "unsupported": [request]}
        reasoning = f"{len(scene.objects)} object group(s), relation: {scene.relation or 'none'}"
        why = [
            f"the {name} skill says to lay the objects out explicitly"
            for name, body in (skill_texts or {}).items()
            if LAYOUT_DIRECTIVE.search(body)
        ]
        if not why:
            why = [
                f"a recalled lesson says {s} fixed {', '.join(sorted(k))} failures on a similar prompt"
                for s, k in _lesson_moves(text)
                if s in PLANNABLE and k & failure_kinds(scene)
            ][:1]
        if why:
            prompt = describe(explicate(scene, _rng(request)))
            reasoning += f"; strategy: explicit-layout, because {why[0]}"
        else:
            prompt = describe(scene)
        return {"reasoning": reasoning, "prompt": prompt, "guidance": None, "unsupported": list(scene.unknown_words)}

    def _plan_with_skills(self, messages: list[BaseMessage], text: str, schema: str) -> AIMessage:
        """First turn: load the skills whose triggers match; then answer the plan."""
        already = {m.name for m in messages if isinstance(m, ToolMessage)} | {
            c["args"].get("name") for m in messages if isinstance(m, AIMessage) for c in m.tool_calls
        }
        if not any(isinstance(m, ToolMessage) for m in messages):
            limit = _max_skills_in(messages)
            request = labels.find_field(text, labels.USER_REQUEST) or ""
            # The skills on offer are the catalog in the planner's prompt (the run's skill folders).
            catalog = labels.skill_catalog_triggers("\n".join(str(m.content) for m in messages if isinstance(m, SystemMessage)))
            wanted = [n for n in route_by_declared_triggers(request, catalog, limit=limit) if n not in already]
            if wanted:
                return AIMessage(
                    content="", tool_calls=[{"name": _LOAD_SKILL, "args": {"name": n}, "id": uuid.uuid4().hex[:8]} for n in wanted]
                )
        return _tool_call(schema, self._plan(text, _skill_texts(messages), schema))

    # -- critic ----------------------------------------------------------------------
    def _decompose(self, description: str) -> dict[str, Any]:
        try:
            return {"checks": checks_for_scene(parse_prompt(description))}
        except ShapesGrammarError:
            return {"checks": []}

    def _verify(self, messages: list[BaseMessage], text: str) -> AIMessage:
        images = _images(messages)
        # A bare question (a Soft-TIFA judge's) is the whole text; the critic labels it.
        question = labels.find_field(text, labels.QUESTION) or " ".join(text.split())
        question = re.sub(r"\s*Answer (?:only )?(?:with )?yes or no\.?\s*$", "", question, flags=re.I).strip()
        if not images or not question:
            return AIMessage(content="no")
        request = labels.find_field(text, labels.IMAGE_REQUEST) or ""
        yes, p_yes = self._answer(question, images[-1], request)
        token = "yes" if yes else "no"
        logprobs = {
            "content": [
                {
                    "token": token,
                    "logprob": math.log(max(p_yes if yes else 1 - p_yes, 1e-9)),
                    "top_logprobs": [
                        {"token": "yes", "logprob": math.log(max(p_yes, 1e-9))},
                        {"token": "no", "logprob": math.log(max(1 - p_yes, 1e-9))},
                    ],
                }
            ]
        }
        return AIMessage(content=token, response_metadata={"logprobs": logprobs})

    def _answer(self, question: str, image: Image.Image, request: str) -> tuple[bool, float]:
        """(yes, P(yes)) for one question: the learned critic's, or the pixel checker's for the oracle."""
        if self.judge == "oracle":
            return answer_question(question, image, request=request)
        p_yes = critic_p_yes(question, image, request)
        return p_yes >= 0.5, p_yes

    def _verify_image(self, messages: list[BaseMessage], text: str) -> AIMessage:
        """Every question of the block, one ``id: yes|no`` line each, with each answer token's log-probabilities;
        a question whose id names one of several images (``image2.c1``) is asked of that image."""
        images = _images(messages)
        if not images:
            return AIMessage(content="")
        request = labels.find_field(text, labels.IMAGE_REQUEST) or ""
        tokens: list[dict[str, Any]] = []
        for qid, question in labels.read_questions(text):
            yes, p_yes = self._answer(question, images[_asked_image(qid, len(images)) - 1], request)
            answer = "yes" if yes else "no"
            tops = [{"token": " yes", "logprob": math.log(max(p_yes, 1e-9))}, {"token": " no", "logprob": math.log(max(1 - p_yes, 1e-9))}]
            chosen = tops[0] if answer == "yes" else tops[1]
            prefix = "\n" if tokens else ""
            tokens += [{"token": f"{prefix}{qid}", "logprob": 0.0, "top_logprobs": []}, {"token": ":", "logprob": 0.0, "top_logprobs": []}]
            tokens.append({**chosen, "top_logprobs": tops})
        content = "".join(t["token"] for t in tokens)
        return AIMessage(content=content, response_metadata={"logprobs": {"content": tokens}})

    def _perceive(self, image: Image.Image) -> list[Detection]:
        """The objects the refiner sees in an image: the critic's answers to "is there a
        <colour> <shape> at the <place>?" for every place (the pixel checker's detections
        only for the oracle ablation)."""
        return detect(image) if self.judge == "oracle" else critic_objects(image)

    # -- refiner ---------------------------------------------------------------------
    def _compress(self, text: str) -> str:
        """The last round's experience (a compress request shows that round alone; a combined refine request, the trajectory)."""
        rounds = labels.round_prompts(text)
        failed_lines = labels.find_all(text, labels.FAILED)
        failed = failed_lines[-1] if failed_lines else ""
        strategy = re.search(r"strategy: ([a-z-]+)", labels.find_field(text, labels.REASONING) or "")
        tried = f"Tried strategy {strategy.group(1)}. " if strategy else ""
        if not failed or failed == labels.NONE:
            return f"{tried}Round {rounds[-1][0] if rounds else '?'} passed every check; keep this prompt."
        return f"{tried}It still failed: {failed}. Next: restate what failed, keep what passed, or change the seed."

    def _verify_and_refine(self, text: str, images: list[Image.Image]) -> dict[str, Any]:
        """The critic's answers with their P(yes), then the refiner's from them (``DraftedRound``): the round's
        best image (most yeses, then the highest mean P(yes)) with its passed and failed checks is the
        trajectory's last round."""
        request = labels.find_field(text, labels.ORIGINAL_REQUEST) or ""
        lines: list[str] = []
        by_image: dict[int, list[tuple[str, bool, float]]] = {}
        for qid, question in labels.read_questions(text):
            k = _asked_image(qid, len(images))
            yes, p_yes = self._answer(question, images[k - 1], request) if images else (False, 0.0)
            lines.append(f"{qid}: {'yes' if yes else 'no'} {p_yes:.3f}")
            by_image.setdefault(k, []).append((question, yes, p_yes))
        best = max(by_image, key=lambda k: (sum(y for _, y, _ in by_image[k]), mean(p for *_, p in by_image[k]), -k)) if by_image else 0
        passed = [q for q, y, _ in by_image.get(best, []) if y]
        failed = [q for q, y, _ in by_image.get(best, []) if not y]
        judged = f"{text}\n  {labels.PASSED}: {'; '.join(passed) or labels.NONE}\n  {labels.FAILED}: {'; '.join(failed) or labels.NONE}"
        seen = [images[best - 1]] if best else []
        return {"answers": "\n".join(lines), **self._refine(judged, seen), "experience": self._compress(judged)}

    def _refine(self, text: str, images: list[Image.Image]) -> dict[str, Any]:
        request = labels.find_field(text, labels.ORIGINAL_REQUEST) or ""
        rounds = labels.round_prompts(text)
        last_round, last_prompt = rounds[-1] if rounds else (1, request)
        failed_lines = labels.find_all(text, labels.FAILED)
        failed = failed_lines[-1] if failed_lines else ""
        failed = "" if failed == labels.NONE else failed
        try:
            scene = parse_prompt(request)
        except ShapesGrammarError:
            return {
                "reasoning": "strategy: new-seed; the request is outside this world",
                "prompt": last_prompt,
                "new_seed": True,
                "guidance": None,
            }
        if labels.find_field(text, labels.EDIT_SOURCE) is not None and images:
            # The image offered for editing is attached last, after the trajectory's.
            source, images = images[-1], images[:-1]
            seen = self._perceive(source)
            edit = plan_edit(scene, seen)
            if edit is not None:
                return {
                    "reasoning": f"strategy: edit; {edit.reason}; failed: {failed or labels.NONE}",
                    "action": "edit",
                    "region": edit.region(),
                    "prompt": edit.prompt,
                    "new_seed": True,
                    "guidance": None,
                    "unchanged_checks": unchanged_checks(labels.read_checks(text, labels.EDIT_CHECKS), seen, edit),
                }
        try:
            last = parse_prompt(last_prompt)
        except ShapesGrammarError:
            last = scene
        note = labels.find_field(text, labels.FEEDBACK)
        followed = follow_note(note, last, _rng(f"{request}#{last_round}#note")) if note else None
        if followed is not None:
            return {"reasoning": f"strategy: follow-note; the person asked: {note}", "prompt": followed, "new_seed": True, "guidance": None}
        perceived = self._perceive(images[-1]) if images else None
        guide = labels.find_block(text, labels.PROMPTING_GUIDE) or ""
        strategy = next(s for s in _move_order(text, guide) if _applies(s, scene, last, failed))
        # What was right is pinned to its cell only when the guide's sentence for the move says to keep it.
        kept = perceived if _keeps_what_was_right(guide, strategy) else None
        prompt = _apply(strategy, scene, last, failed, kept, _rng(f"{request}#{last_round}"))
        return {"reasoning": f"strategy: {strategy}; failed: {failed or labels.NONE}", "prompt": prompt, "new_seed": True, "guidance": None}


def _kinds(question: str) -> list[tuple[str | None, str]]:
    """The (colour or None, shape) of every object a question names ("the red circle", "squares")."""
    words = normalize_words(question)
    out = []
    for k, w in enumerate(words):
        shape = PLURALS.get(w, w)
        if shape in SHAPES:
            colour = words[k - 1] if k and words[k - 1] in COLORS else None
            out.append((colour, shape))
    return out


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int], by: int = MARGIN + 1) -> bool:
    """Do two boxes share pixels once each loses its ``by``-pixel rim (the margin boxes are grown by, and
    the pixel two neighbouring grid cells share)?"""
    a = (a[0] + by, a[1] + by, a[2] - by, a[3] - by)
    b = (b[0] + by, b[1] + by, b[2] - by, b[3] - by)
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def unchanged_checks(checks: list[tuple[str, str]], seen: list[Detection], edit: Any) -> list[str]:
    """The ids of the checks only about objects wholly outside the edit's box, as the refiner reads them.

    A check names kinds of object; it is unchanged when no object of those kinds is seen
    touching the box and the edit's prompt puts none in it (what the edit paints there).
    A check that names no object (a count of everything, say) may be changed by any edit."""

    inside: list[tuple[str | None, str]] = [(d.color, d.shape) for d in seen if _overlaps(d.box, edit.box)]
    try:
        painted = flatten(parse_prompt(edit.prompt))
    except ShapesGrammarError:
        return []
    inside += [(o.color, o.shape) for o in painted if o.place and _overlaps(cell_box(PLACES[o.place]), edit.box)]
    out = []
    for qid, question in checks:
        kinds = _kinds(question)
        touched = any(s == s2 and (c is None or c2 is None or c == c2) for c, s in kinds for c2, s2 in inside)
        if kinds and not touched:
            out.append(qid)
    return out


#: How it phrases each move it knows when it writes a skill; the layout sentence is the one
#: its planner acts on (``LAYOUT_DIRECTIVE``), so a learned skill changes a run only by saying it.
MOVE_SENTENCES = {
    "explicit-layout": "Lay the objects out explicitly: write every object on its own, with its own cell of the grid, "
    "instead of the terse phrasing.",
    "add-colour": "When an object whose colour was left open does not show, name a colour for it.",
    "move": "When objects in a layout come out wrong, move them to free cells, keeping what was right.",
    "new-seed": "The same prompt with a new seed.",
    "follow-note": "Change the prompt the way the person asked.",
    "edit": "Edit the one object that came out wrong and keep the rest of the image.",
}
#: How it names a move in a warning: never in the words of a directive, so a warning licenses nothing.
MOVE_NAMES = {
    "explicit-layout": "an explicit layout (every object in its own cell)",
    "add-colour": "naming a colour for an object left uncoloured",
    "move": "moving the wrong objects to free cells",
    "new-seed": "a new seed with the same prompt",
    "follow-note": "changing the prompt as a person asked",
    "edit": "editing the wrong object",
}
#: What prompts of each kind of failure ask for, in the skill's description.
KIND_ASKS = {
    "count": "exact numbers of objects",
    "relation": "objects placed relative to each other (left of, right of, above, below)",
    "presence": "several kinds of object at once",
    "attribute": "objects with given colours or sizes",
}


def write_skill(text: str) -> dict[str, Any]:
    """A ``SkillDraft`` from the lesson records it is given, and from nothing else.

    Moves are ranked by how often the records say they worked (weighted, as given);
    a move that worked more often than not becomes an instruction, in the sentence
    it uses for that move, and the others become warnings. The records of first
    prompts say whether the layout sentence comes first: when the first prompts it
    can read as laid out explicitly passed this kind at once more often than those in
    the terse phrasing. Triggers are the world's words of the
    failure kind that occur in the records' prompts (the numbers of a count, the
    relations of a relation), or the shapes the failed checks asked about.
    """
    kind = labels.find_field(text, labels.FAILURE_KIND) or "other"
    everything = labels.read_records(text)
    records = [r for r in everything if "first_prompt" not in r]
    firsts = [r for r in everything if "first_prompt" in r]
    tally: dict[str, list[float]] = {}
    for r in records:
        move = _move_name(str(r.get("move") or ""))
        if move not in MOVE_NAMES:  # a prompt change it cannot name as a move teaches it nothing to write
            continue
        w = float(r.get("weight") or 1.0)
        t = tally.setdefault(move, [0.0, 0.0])
        t[0 if r.get("worked") else 1] += w
    ranked = sorted(tally.items(), key=lambda kv: (-kv[1][0] / (sum(kv[1]) or 1.0), -sum(kv[1]), kv[0]))
    good = [(m, w, f) for m, (w, f) in ranked if w > f]
    bad = [(m, w, f) for m, (w, f) in ranked if w <= f]
    steps = [f"{MOVE_SENTENCES[m]} (worked {w:g} of {w + f:g} times)" for m, w, f in good]
    layout_first = _layout_first(firsts)
    if layout_first and MOVE_SENTENCES["explicit-layout"] not in " ".join(steps):
        steps.insert(0, f"{MOVE_SENTENCES['explicit-layout']} ({layout_first})")
    steps = [f"{i}. {step}" for i, step in enumerate(steps, 1)]
    asked = sorted({n for r in records for n in r.get("person_said") or []})
    if asked:
        steps.append(f"{len(steps) + 1}. People who reviewed such images asked: " + "; ".join(f'"{n}"' for n in asked[:3]) + ".")
    warnings = [f"{MOVE_NAMES[m][0].upper()}{MOVE_NAMES[m][1:]} fixed these only {w:g} of {w + f:g} times." for m, w, f in bad]
    prompts = [str(r.get("prompt") or "") for r in records + firsts]
    example = next((p for p in prompts if p), "")
    asks = KIND_ASKS.get(kind, "what these prompts asked for")
    description = (
        f"Learnt from {len(records)} past run lesson(s) where {kind} checks failed"
        + (f" and the first prompts of {len(firsts)} run(s) that asked for them" if firsts else "")
        + (f', e.g. "{clip_words(example, 16)}"' if example else "")
        + f". Use when the request asks for {asks}."
    )
    return {
        "description": description,
        "triggers": _kind_triggers(kind, records + firsts),
        "instructions": "\n".join(steps),
        "warnings": warnings,
    }


def _layout_first(firsts: list[dict[str, Any]]) -> str:
    """Whether first prompts laid out explicitly passed at once more often than first prompts in the
    terse phrasing: the figures that say so, or "" (then it writes nothing)."""
    tallies = {True: [0.0, 0.0], False: [0.0, 0.0]}  # explicit? -> [passed at once, did not]
    for r in firsts:
        try:
            explicit = parse_prompt(str(r.get("first_prompt") or "")).explicit
        except ShapesGrammarError:
            continue
        tallies[explicit][0 if r.get("passed_at_once") else 1] += float(r.get("weight") or 1.0)
    (lw, lf), (tw, tf) = tallies[True], tallies[False]
    if not (lw > 0 and tw + tf > 0 and lw / (lw + lf) > tw / (tw + tf)):
        return ""
    return f"first prompts laid out this way passed at once {lw:g} of {lw + lf:g} times, the others {tw:g} of {tw + tf:g}"


def _move_name(move: str) -> str:
    """The move a lesson names ("strategy explicit-layout" -> "explicit-layout"); the text itself for others."""
    m = re.search(r"strategy ([a-z-]+)", move)
    return m.group(1) if m else move


def _kind_triggers(kind: str, records: list[dict[str, Any]]) -> list[str]:
    """The world's words of this kind of failure in the records' prompts, most frequent first."""
    counts: dict[str, int] = {}
    for r in records:
        try:
            scene = parse_prompt(str(r.get("prompt") or ""))
        except ShapesGrammarError:
            continue
        if kind == "count":
            words = {COUNT_WORDS[o.count] for o in scene.objects if o.count > 1}
        elif kind == "relation":
            words = {rel for _, rel, _ in scene.relations}
        else:
            words = {w for q in r.get("failed") or [] for w in normalize_words(str(q)) if PLURALS.get(w, w) in SHAPES}
            words = {PLURALS.get(w, w) for w in words}
        for w in words:
            counts[w] = counts.get(w, 0) + 1
    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def follow_note(note: str, last: Scene, rng: np.random.Generator) -> str | None:
    """The last prompt changed as a person's note asks, read as an LLM would read it.

    The note names a shape and what to change about it: a size ("make the square
    large"), a colour ("make the triangle blue"), a place ("put the circle at the top
    left"). The change is made on the last prompt laid out explicitly (sizes and places
    belong to that register). None when the note names nothing this world draws.
    """
    words = normalize_words(note)
    shapes = {PLURALS.get(w, w) for w in words} & set(SHAPES)
    size = next((SIZE_SYNONYMS[w] for w in words if w in SIZE_SYNONYMS), None)
    colours = [w for w in words if w in COLORS]
    places = [w[len(PLACE_TOKEN) :] for w in words if w.startswith(PLACE_TOKEN) and w[len(PLACE_TOKEN) :] in PLACES]
    if not shapes or not (size or colours or places):
        return None
    try:
        layout = last if last.explicit else explicate(last, rng)
    except ValueError:  # more objects than an explicit layout has cells: the note cannot be laid out
        return None
    objects = list(layout.objects)
    # A colour the named shape already has picks which one; any other colour is the change.
    known = [c for c in colours if any(o.shape in shapes and o.color == c for o in objects)]
    new_colour = next((c for c in colours if c not in known), None)
    chosen = [i for i, o in enumerate(objects) if o.shape in shapes and (not known or o.color in known)]
    if not chosen:
        return None
    for i in chosen:
        objects[i] = replace(objects[i], size=size or objects[i].size, color=new_colour or objects[i].color)
    if places and len(chosen) == 1:
        taken = {o.place for k, o in enumerate(objects) if k != chosen[0]}
        if places[0] not in taken:
            objects[chosen[0]] = replace(objects[chosen[0]], place=places[0])
    return describe(replace(layout, objects=tuple(objects)))


def failure_kinds(scene: Scene) -> set[str]:
    """The kinds of check a scene is judged on: ``count``, ``relation``, ``presence``."""
    kinds = {"presence"}
    if any(o.count > 1 for o in scene.objects):
        kinds.add("count")
    if scene.relations:
        kinds.add("relation")
    return kinds


def _check_kinds(questions: str) -> set[str]:
    low = questions.lower()
    kinds = set()
    if "exactly" in low:
        kinds.add("count")
    if re.search(r"\b(left of|right of|above|below)\b", low):
        kinds.add("relation")
    if re.search(r"\bis there\b", low):
        kinds.add("presence")
    return kinds


def _lesson_moves(text: str) -> list[tuple[str, set[str]]]:
    """(move, kinds of failure it fixed) for every recalled lesson that names a move that worked.

    The kinds come from the checks the lesson says it fixed, or, when the lesson was
    clipped before them, from the prompt it was learnt on.
    """
    block = text.split(f"{labels.LESSONS}:", 1)[1] if f"{labels.LESSONS}:" in text else ""
    out = []
    for line in block.splitlines():
        m = re.search(r"strategy ([a-z-]+) (?:worked|fixed)", line)
        if not m or m.group(1) not in MOVES:
            continue
        fixed = line.split("It fixed:", 1)[1] if "It fixed:" in line else ""
        kinds = _check_kinds(fixed)
        if not kinds and (asked := re.search(r'For "([^"]+)"', line)):
            try:
                kinds = failure_kinds(parse_prompt(asked.group(1)))
            except ShapesGrammarError:
                kinds = set()
        out.append((m.group(1), kinds))
    return out


def _strategies_that_worked(text: str) -> list[str]:
    """Moves that recalled lessons say worked, most recent mention first, no repeats."""
    return list(dict.fromkeys(s for s, _ in _lesson_moves(text)))


def guide_moves(guide: str) -> list[str]:
    """The refinement moves a prompting guide licenses (``MOVE_DIRECTIVES``), in the order it states them."""
    found = [(m.start(), move) for move, pattern in MOVE_DIRECTIVES.items() if (m := pattern.search(guide))]
    return [move for _, move in sorted(found)]


def _keeps_what_was_right(guide: str, move: str) -> bool:
    """Whether the guide's sentence that licenses ``move`` also says to keep what came out right."""
    pattern = MOVE_DIRECTIVES.get(move)
    sentences = re.split(r"(?<=[.!?])\s+", guide)
    return pattern is not None and any(pattern.search(x) and KEEP_DIRECTIVE.search(x) for x in sentences)


def _move_order(text: str, guide: str) -> list[str]:
    """Moves that recalled lessons say worked, then the guide's, then a new seed (which always applies)."""
    return list(dict.fromkeys([*_strategies_that_worked(text), *guide_moves(guide), NEW_SEED]))


def _applies(strategy: str, scene: Scene, last: Scene, failed: str) -> bool:
    if strategy == "add-colour":
        return _missing_uncoloured(scene, failed) is not None
    if strategy == "explicit-layout":
        return bool(failed) and not last.explicit
    if strategy == "move":
        return bool(failed) and last.explicit
    return strategy == "new-seed"


def _apply(strategy: str, scene: Scene, last: Scene, failed: str, seen: list[Detection] | None, rng: np.random.Generator) -> str:
    if strategy == "add-colour":
        # The user left the colour open and the object did not show: naming one makes it salient.
        i = _missing_uncoloured(scene, failed)
        used = {o.color for o in scene.objects}
        colour = next(c for c in COLORS if c not in used)
        scene = replace(scene, objects=tuple(replace(o, color=colour) if k == i else o for k, o in enumerate(scene.objects)))
        if not last.explicit:
            return describe(scene)
    if strategy == "new-seed":
        return describe(last)
    keep = _cells_to_keep(scene, last, failed, seen)
    return describe(explicate(scene, rng, keep=keep))


def _cells_to_keep(scene: Scene, last: Scene, failed: str, seen: list[Detection] | None) -> dict[int, tuple[int, int]]:
    """Objects already right in the last image, pinned to the cells where they were drawn.

    An object is right when a detection matches it and, if the last prompt placed it,
    sits in the cell asked for. Nothing is pinned when the image is not shown, or
    when a relation failed (the objects must move).
    """
    if not seen or (scene.relations and re.search(r"\b(left of|right of|above|below)\b", failed.lower())):
        return {}
    asked = {i: PLACES[o.place] for i, o in enumerate(flatten(last)) if o.place}
    free = list(seen)
    keep: dict[int, tuple[int, int]] = {}
    for i, o in enumerate(flatten(scene)):
        match = next(
            (d for d in free if matches(d, o.shape, o.color, o.size) and (i not in asked or cell_at(d.cx, d.cy) == asked[i])),
            None,
        )
        if match is not None and cell_at(match.cx, match.cy) not in keep.values():
            keep[i] = cell_at(match.cx, match.cy)
            free.remove(match)
    return keep


def _missing_uncoloured(scene: Scene, failed: str) -> int | None:
    """The single object without a colour whose presence check failed ("Is there a triangle?")."""
    missing = set(re.findall(r"is there an? (?:(?:small|large) )?(\w+)\?", failed.lower()))
    for i, o in enumerate(scene.objects):
        if o.color is None and o.count == 1 and o.shape in missing:
            return i
    return None


def _rng(key: str) -> np.random.Generator:
    """Layout choices are a pure function of what was asked, so runs are reproducible."""
    return np.random.default_rng(zlib.crc32(key.encode("utf-8")))


def _skill_texts(messages: list[BaseMessage]) -> dict[str, str]:
    """Instructions of the skills loaded in this conversation, by the name they were loaded under."""
    names = {
        c["id"]: c["args"].get("name", "") for m in messages if isinstance(m, AIMessage) for c in m.tool_calls if c["name"] == _LOAD_SKILL
    }
    return {
        names[m.tool_call_id]: str(m.content)
        for m in messages
        if isinstance(m, ToolMessage) and m.tool_call_id in names and m.status != "error"
    }


def _constrained_answer(tool: dict[str, Any], text: str) -> dict[str, Any] | None:
    """Answer a schema it has no task for when the schema itself fixes the answer (every
    required field an enum or a constant, e.g. a health probe's ``answer: "ok"``): the
    value the request names, else the first allowed one. None when it cannot."""
    params = tool["function"].get("parameters") or {}
    props = params.get("properties") or {}
    args: dict[str, Any] = {}
    for name in params.get("required") or []:
        spec = props.get(name) or {}
        allowed = spec.get("enum") or ([spec["const"]] if "const" in spec else None)
        if not allowed:
            return None
        args[name] = next((v for v in allowed if isinstance(v, str) and re.search(rf"\b{re.escape(v)}\b", text)), allowed[0])
    return args


#: How a person asks for a picture; what follows is the picture's description.
_ASKING = re.compile(
    r"^\s*(?:please\s+)?(?:can you\s+|could you\s+)?(?:draw|make|create|generate|paint|render|show)\s+(?:me\s+)?"
    r"(?:(?:an?\s+)?(?:image|picture|photo|drawing|illustration)\s+of\s+)?",
    re.I,
)
_PICTURE_WORDS = re.compile(r"\b(image|picture|photo|draw|illustrat)", re.I)


def agent_turn(tools: list[dict[str, Any]], messages: list[BaseMessage]) -> AIMessage | None:
    """A tool-calling agent's turn, as an LLM takes it: call the offered tool that makes
    pictures when a person asks for one, and answer from its result once it returns.

    The tool is chosen by what its own description says (it makes images) and called
    with its one required text argument set to the picture asked for. None when no
    offered tool makes pictures or nobody asked for one.
    """
    last = messages[-1] if messages else None
    if isinstance(last, ToolMessage):
        return AIMessage(content=_tool_answer(str(last.content)))
    if not isinstance(last, HumanMessage):
        return None
    for tool in tools:
        fn = tool.get("function") or {}
        params = fn.get("parameters") or {}
        text_args = [n for n in params.get("required") or [] if (params.get("properties") or {}).get(n, {}).get("type") == "string"]
        if len(text_args) == 1 and _PICTURE_WORDS.search(f"{fn.get('name', '')} {fn.get('description', '')}"):
            request = _ASKING.sub("", _human_text(messages)).strip().rstrip(".!")
            return _tool_call(fn["name"], {text_args[0]: request})
    return None


def _tool_answer(result: str) -> str:
    """The agent's reply once the tool has answered: where the picture is, or what went wrong."""
    try:
        data = json.loads(result)
    except ValueError:
        return f"Done: {result}"
    if not isinstance(data, dict):
        return f"Done: {result}"
    if data.get("error") or not data.get("best_image"):
        return f"The picture could not be made ({data.get('status')}): {data.get('error') or 'no image'}"
    return f"Done: {data['best_image']} ({data.get('status')}, score {data.get('score')})"


def _max_skills_in(messages: list[BaseMessage]) -> int:
    """The planner's cap on skills, read from its instructions (default 2)."""
    m = re.search(r"at most (\d+)", " ".join(str(x.content) for x in messages if isinstance(x.content, str)))
    return int(m.group(1)) if m else 2


def _asked_image(qid: str, count: int) -> int:
    """Which of ``count`` attached images (1 = the first) a question asks about: the one its id names
    (``image2.c1``), else the last."""
    n = labels.image_of_question(qid)
    return n if n is not None and 1 <= n <= count else count


def count_tokens(text: str) -> int:
    """Tokens of ``text`` under ``TOKEN_PATTERN``."""
    return len(TOKEN_PATTERN.findall(text))


def _message_text(m: BaseMessage) -> str:
    parts = [m.content] if isinstance(m.content, str) else [b.get("text", "") for b in m.content if isinstance(b, dict)]
    if isinstance(m, AIMessage):
        parts += [json.dumps(c.get("args") or {}) for c in m.tool_calls]
    return "\n".join(p for p in parts if isinstance(p, str))


def usage_for(messages: list[BaseMessage], tools: list[dict[str, Any]], reply: AIMessage) -> UsageMetadata:
    """The call's usage under the module's rule (text, tool calls and tools as tokens, ``IMAGE_TOKENS`` an image)."""
    text_in = sum(count_tokens(_message_text(m)) for m in messages) + sum(count_tokens(json.dumps(t)) for t in tools)
    images = count_images(messages)
    out = count_tokens(_message_text(reply))
    total_in = text_in + IMAGE_TOKENS * images
    return UsageMetadata(input_tokens=total_in, output_tokens=out, total_tokens=total_in + out)


def _tool_call(name: str, args: dict[str, Any]) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": uuid.uuid4().hex[:8]}])


def _human_text(messages: list[BaseMessage]) -> str:
    for m in reversed(messages):
        if isinstance(m, HumanMessage):
            if isinstance(m.content, str):
                return m.content
            return "\n".join(b.get("text", "") for b in m.content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def _images(messages: list[BaseMessage]) -> list[Image.Image]:
    out = []
    for m in messages:
        for block in m.content if isinstance(m.content, list) else []:
            if isinstance(block, dict) and block.get("type") == "image_url":
                data = block["image_url"]["url"].split(",", 1)[1]
                out.append(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))
    return out


def from_spec(arg: str) -> ShapesChatModel:
    """``shapes`` (no argument): the world's chat model, verifying with the learned critic."""
    if arg:
        raise ValueError(f"the shapes chat model takes no argument, got {arg!r}")
    return ShapesChatModel()


def oracle_from_spec(arg: str) -> ShapesChatModel:
    """``shapes-oracle``: the same chat model judging with the grader's pixel checker.

    An ablation only (what the critic's errors cost): its verdicts are the grader's."""
    if arg:
        raise ValueError(f"the shapes-oracle chat model takes no argument, got {arg!r}")
    return ShapesChatModel(judge="oracle")
