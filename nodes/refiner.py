"""Refiner: compresses the last round into an experience, then writes the next prompt.

Two structured calls (``refiner_calls="separate"``, the paper's way). First the round's facts (prompt, passed and failed checks),
the reasoning that produced its prompt and its best image are compressed into an
experience of under 100 words: the raw reasoning is never passed on. Then the next
prompt is written from the original intent and the trajectory (each round's prompt,
failed and passed checks and experience, plus the last ``refiner_images`` images, or
every round's with -1 as in the paper), reinforcing what failed and protecting what passed.
The generator's prompting guide comes with them, as for the planner: how to prompt the
model is something the refiner knows only from what it is told.

With ``refiner_calls="combined"`` both happen in one structured call
(``RefinedRound``): the refine request also carries the last round's reasoning and
asks for its experience beside the next prompt, so the round's facts and images are
sent once instead of twice. The raw reasoning is still never passed on: only the
experience it returns is kept.

With ``refiner_calls="with_critic"`` the critic's verification call already wrote the
round's experience and a draft of the next prompt (``draft_request``,
``GemsState.drafted_refinement``): the refiner takes the draft and makes no call. It
asks the model itself where the draft cannot serve: a person's feedback came after
it, an edit is on offer, or the critic could not draft.

When the generator declares editing (``supports_editing``) and ``refiner_edits`` is
on, the second call also shows the best image so far with its failed and passed
checks and offers the edit move: repaint one region of that image (where the fault
is) instead of generating a new one, which keeps what already passed. The answer
says which (``action``); an edit makes the next round's candidates edits of that
image, judged by the critic like any other. A generator that does not edit is never
asked to: an "edit" answer for it is taken as "regenerate", with a note.
"""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field

from gems_graph import prompt_labels as labels
from gems_graph.context import GemsContext
from gems_graph.errors import one_line
from gems_graph.events import emit
from gems_graph.memory.access import lessons_text
from gems_graph.memory.trajectory import round_facts, trajectory_view
from gems_graph.models.generator import region_mask, supports_editing
from gems_graph.models.llm import StructuredOutputError, image_block, invoke_structured, text_block
from gems_graph.models.metering import metering
from gems_graph.models.registry import chat_limits, resolve_chat_model, resolve_editor, resolve_prompting_guide
from gems_graph.nodes.generator import EditTask, model_prompt, plan_round
from gems_graph.records import Candidate, Check, Round, TieBreak, is_answered, is_failed, round_best
from gems_graph.settings import effective_context
from gems_graph.state import GemsState
from gems_graph.text import clip_words

EXPERIENCE_WORD_LIMIT = 100

COMPRESS_SYSTEM_PROMPT = """\
You keep the memory of an agent that drives a text-to-image model. Compress one
round into an experience of under 100 words: what the prompt tried, which checks
passed and failed in the image, why it likely failed, and what to try next."""

COMPRESS_USER_PROMPT = f"""\
{labels.ORIGINAL_REQUEST}: {{prompt}}
{{facts}}
{labels.REASONING}: {{thought}}
Write the experience."""

REFINE_SYSTEM_PROMPT = """\
You are the refiner of an agent that drives a text-to-image model. Given the
original request and the trajectory so far, write the next generation prompt.
Restate every failed requirement explicitly and early in the prompt; keep what
already passed; do not add objects the request did not ask for. You may also ask
for a new random seed or a different guidance scale."""

#: ``guide`` is ``labels.guide_block`` of the generator's prompting guide ("" without one).
REFINE_USER_PROMPT = f"""\
{labels.ORIGINAL_REQUEST}: {{prompt}}
{{guide}}{{trajectory}}
{{lessons}}{{feedback}}{{edit}}Write the next prompt."""

#: ``refiner_calls="combined"``: the compression's instruction, added to the refiner's system prompt.
COMBINED_SYSTEM_PROMPT = """
Also compress the last round of the trajectory into an experience of under 100
words: what its prompt tried, which checks passed and failed in the image, why it
likely failed, and what to try next."""

#: The refine request with the last round's reasoning, for the combined call.
COMBINED_USER_PROMPT = f"""\
{labels.ORIGINAL_REQUEST}: {{prompt}}
{{guide}}{{trajectory}}
{labels.REASONING}: {{thought}}
{{lessons}}{{feedback}}{{edit}}Write the experience of the last round and the next prompt."""

EDIT_SYSTEM_PROMPT = """
The generator can also edit an image. Instead of a new prompt you may answer
action "edit": the image you may edit (shown last) is repainted inside one region
and kept as it is outside it. Give the region where the fault is (the wrong object,
or the empty place where a missing object should go) as [left, top, right, bottom]
fractions of the image, and as prompt the whole image as it should look after the
edit. Choose "edit" when one edit fixes every failed check and keeps what passed
(one object wrong or missing); choose "regenerate" with a new prompt when several
things are wrong or the objects are there but placed wrong."""

EDIT_OFFER = f"""{labels.EDIT_SOURCE}: round {{round}} candidate {{index}} (the best so far, attached last)
  {labels.EDIT_FAILED}: {{failed}}
  {labels.EDIT_PASSED}: {{passed}}
Where in that image is the fault? Edit it, or regenerate.
"""

#: With ``edit_verification="changed"``: the edit answer also names the checks it cannot change.
EDIT_KEEP_PROMPT = """
With an edit, also list as unchanged_checks the ids of the checks that are only about
objects wholly outside the region (and that the edit does not add there): they keep
their verdicts, the others are asked again on the edited image."""

#: How far an edit may move from its source: a region is repainted from noise (inpainting);
#: an edit without a region (img2img, instruction editors) keeps the image's layout.
REGION_STRENGTH = 1.0
WHOLE_IMAGE_STRENGTH = 0.6


#: ``refiner_calls="with_critic"``: the critic's instructions before the refiner's, for the call that does both.
WITH_CRITIC_SYSTEM_PROMPT = f"""\
You judge the images of an agent that drives a text-to-image model, then refine its
prompt. First, as a strict visual verifier, answer every question about the attached images
with a single word, yes or no, and how likely the answer is yes, from 0 to 1: in
answers, one line per question, its id, a colon, the answer and that probability (for
example "c1: yes 0.9" or "c2: no 0.2"). When several images are attached (image 1 first),
a question's id names the image it asks about ("{labels.IMAGE_CHECK_ID.format(image=2, check="c1")}"). The last round of the
trajectory is the one whose images are attached: its passed and failed checks are
your answers, for its best image. Then:
"""

#: The critic's request with ``refiner_calls="with_critic"``: ``questions`` is ``labels.questions_block``.
WITH_CRITIC_USER_PROMPT = f"""\
{labels.ORIGINAL_REQUEST}: {{prompt}}
{{guide}}{{trajectory}}
{labels.REASONING}: {{thought}}
{{lessons}}{{questions}}Answer every question, then write the experience of the last round and the next prompt."""


class Experience(BaseModel):
    """A compressed round."""

    experience: str = Field(description="Under 100 words: what was tried, what failed, what to try next.")


class RefinedPrompt(BaseModel):
    """The refiner's answer: the next prompt, and whether to change the seed or the guidance."""

    reasoning: str = Field(default="", description="Brief reasoning about what to change.")
    prompt: str = Field(description="The next prompt for the image generator.")
    new_seed: bool = Field(default=True, description="Use new random seeds next round.")
    guidance: float | None = Field(default=None, description="Guidance scale for the next round, or null to keep it.")


class EditOrPrompt(RefinedPrompt):
    """The refiner's answer when it is offered an edit: a new prompt, or an edit of the offered image.

    (Asked only then, so a model that cannot be offered one is not sent the edit fields.)"""

    action: Literal["regenerate", "edit"] = Field(
        default="regenerate", description="'regenerate' from the new prompt, or 'edit' the offered image."
    )
    region: list[float] | None = Field(
        default=None,
        description="For an edit: [left, top, right, bottom] of the region to repaint, as fractions 0..1 of the image; "
        "null edits the whole image.",
    )
    unchanged_checks: list[str] = Field(
        default_factory=list,
        description="For an edit: ids of the checks only about objects wholly outside the region, which the edit cannot change.",
    )


class RoundExperience(BaseModel):
    """The last round compressed, asked beside the next prompt."""

    experience: str = Field(description="Under 100 words, about the last round: what was tried, what failed, what to try next.")


class RefinedRound(RoundExperience, RefinedPrompt):
    """The combined call's answer: the next prompt and the last round's experience."""


class EditOrRound(RoundExperience, EditOrPrompt):
    """The combined call's answer when an edit is offered."""


class RoundAnswers(BaseModel):
    """The critic's yes/no answers, one line a question."""

    answers: str = Field(
        description='One line per question: its id, a colon, yes or no, and the probability of yes (for example "c1: yes 0.9").'
    )


class DraftedRound(RoundExperience, RefinedPrompt, RoundAnswers):
    """The critic's answers, then the next prompt and the round's experience (``refiner_calls="with_critic"``)."""


#: The refiner's schema by (combined call, edit offered).
REFINER_SCHEMAS: dict[tuple[bool, bool], type[RefinedPrompt]] = {
    (False, False): RefinedPrompt,
    (True, False): RefinedRound,
    (False, True): EditOrPrompt,
    (True, True): EditOrRound,
}


def clip_experience(text: str) -> str:
    """Under ``EXPERIENCE_WORD_LIMIT`` words, the ellipsis of a cut counted as one."""
    return clip_words(text, EXPERIENCE_WORD_LIMIT - 1)


def compress_round(
    model: Any, prompt: str, last: Round, checks: list[Check], tie_break: TieBreak = "probability"
) -> tuple[str, str | None]:
    """Return (experience, note); falls back to the bare facts if the model fails."""
    facts = round_facts(last, checks)
    content: list[str | dict[str, Any]] = [
        text_block(COMPRESS_USER_PROMPT.format(prompt=prompt, facts=facts, thought=last.get("thought") or "(none)"))
    ]
    best: Candidate | None = round_best(last, tie_break)
    if best is not None and best["image"] is not None:
        content.append(image_block(best["image"]))
    try:
        reply = invoke_structured(model, Experience, [SystemMessage(COMPRESS_SYSTEM_PROMPT), HumanMessage(content=content)])
        return clip_experience(reply.value.experience), None
    except StructuredOutputError as exc:
        return clip_experience(facts), f"refiner: compression failed ({one_line(exc)}); kept the round's facts"


def _lessons_block(state: GemsState) -> str:
    text = lessons_text(state.get("recalled_lessons") or [])
    return text + "\n" if text else ""


def prompting_guide_for(ctx: GemsContext) -> str | None:
    """The guide the planner was shown, resolved again (the registry caches the generator), so
    that it stays out of checkpointed state; a generator that cannot load gives none here."""
    try:
        return resolve_prompting_guide(ctx)
    except Exception:  # noqa: BLE001 - the generator node reports a generator that cannot load
        return None


def offers_edits(ctx: GemsContext) -> bool:
    """Whether the refiner may offer the edit move: edits are on and the editor (by default the generator) edits."""
    if not ctx.refiner_edits:
        return False
    try:
        return supports_editing(resolve_editor(ctx))
    except Exception:  # noqa: BLE001 - a generator that cannot even load is not offered edits; the generator node reports it
        return False


def edit_source(state: GemsState, ctx: GemsContext) -> Candidate | None:
    """The candidate the refiner may edit: the best so far, when edits are offered (``offers_edits``)."""
    best = state.get("best")
    if best is None or best.get("image") is None:
        return None
    return best if offers_edits(ctx) else None


def draft_request(state: GemsState, ctx: GemsContext, questions: str) -> str:
    """The critic's request with ``refiner_calls="with_critic"``: the refiner's (request, guide,
    trajectory, lessons) with the round in flight as the trajectory's last round, whose
    ``questions`` the model answers before it writes that round's experience and the next prompt."""
    rounds = list(state.get("rounds") or [])
    past = trajectory_view(rounds, state.get("checks") or [], max_images=0, tie_break=ctx.tie_break).text
    current = f"{labels.ROUND_PROMPT.format(index=state['round_index'])}: {state['current_prompt']}"
    return WITH_CRITIC_USER_PROMPT.format(
        prompt=state["prompt"],
        guide=labels.guide_block(prompting_guide_for(ctx)),
        trajectory=f"{past}\n\n{current}" if past else f"{labels.TRAJECTORY}:\n{current}",
        thought=state.get("current_thought") or "(none)",
        lessons=_lessons_block(state),
        questions=questions,
    )


def drafted(reply: DraftedRound, thought: str | None) -> dict[str, Any]:
    """What the refiner keeps of a ``DraftedRound`` (``GemsState.drafted_refinement``): the next round, and the reasoning."""
    return {**RefinedPrompt.model_validate(reply.model_dump()).model_dump(), "thought": thought or reply.reasoning or None}


def _edit_offer(source: Candidate, checks: list[Check], name_unchanged: bool = False) -> str:
    questions = {c["id"]: c["question"] for c in checks}
    failed = [questions.get(v["check_id"], v["check_id"]) for v in source["verdicts"] if is_failed(v)]
    passed = [questions.get(v["check_id"], v["check_id"]) for v in source["verdicts"] if v["passed"]]
    ids = labels.checks_block(labels.EDIT_CHECKS, [(c["id"], c["question"]) for c in checks]) if name_unchanged else ""
    offer = EDIT_OFFER.format(
        round=source["round"], index=source["index"], failed="; ".join(failed) or labels.NONE, passed="; ".join(passed) or labels.NONE
    )
    return offer + ids


def kept_checks(source: Candidate, reply: EditOrPrompt) -> list[str]:
    """The checks an edit keeps the parent's verdicts for: those the refiner named unchanged
    that the parent answered (an unanswered one is asked again, as are all the rest)."""
    named = {str(i).strip().lower() for i in reply.unchanged_checks}
    return [v["check_id"] for v in source["verdicts"] if v["check_id"].lower() in named and is_answered(v)]


def _edit_task(source: Candidate, reply: EditOrPrompt, keep: bool = False) -> EditTask:
    """The edit the refiner asked for; ``ValueError`` names what is wrong with its region.

    ``keep`` (``edit_verification="changed"``): the checks the edit cannot change keep the parent's verdicts."""
    image = source["image"]
    assert image is not None
    region = [float(v) for v in reply.region] if reply.region else None
    if region is not None:
        region_mask(image["width"], image["height"], region)  # validates the region
    strength = REGION_STRENGTH if region is not None else WHOLE_IMAGE_STRENGTH
    task = EditTask(parent={"round": source["round"], "index": source["index"]}, source=image, region=region, strength=strength)
    kept = kept_checks(source, reply) if keep and region is not None else []
    if kept:
        task["kept_checks"] = kept
    return task


def _ask_refiner(model: Any, state: GemsState, ctx: GemsContext, rounds: list[Round], source: Candidate | None, combined: bool) -> Any:
    """The refine call (``combined``: with the last round's reasoning, asking for its experience too)."""
    checks = state.get("checks") or []
    view = trajectory_view(rounds, checks, max_images=ctx.refiner_images, tie_break=ctx.tie_break)
    feedback = f"{labels.FEEDBACK}: {state['feedback']}\n" if state.get("feedback") else ""
    name_unchanged = ctx.edit_verification == "changed"
    offer = _edit_offer(source, checks, name_unchanged) if source is not None else ""
    content: list[str | dict[str, Any]] = [
        text_block(
            (COMBINED_USER_PROMPT if combined else REFINE_USER_PROMPT).format(
                prompt=state["prompt"],
                guide=labels.guide_block(prompting_guide_for(ctx)),
                trajectory=view.text,
                thought=rounds[-1].get("thought") or "(none)",
                lessons=_lessons_block(state),
                feedback=feedback,
                edit=offer,
            )
        )
    ]
    content += [image_block(ref) for ref in view.images]
    if source is not None:
        content.append(image_block(source["image"]))  # type: ignore[arg-type]
    system = (
        REFINE_SYSTEM_PROMPT
        + (COMBINED_SYSTEM_PROMPT if combined else "")
        + (EDIT_SYSTEM_PROMPT + (EDIT_KEEP_PROMPT if name_unchanged else "") if source is not None else "")
    )
    schema = REFINER_SCHEMAS[(combined, source is not None)]
    return invoke_structured(model, schema, [SystemMessage(system), HumanMessage(content=content)])


def refiner(state: GemsState, runtime: Runtime[GemsContext]) -> dict[str, Any]:
    """Compress the round and write the next one; its calls are counted under the round it refined."""
    with metering() as meter:
        update = _refine(state, runtime)
    return {**update, "usage": [meter.record("refiner", state["round_index"])]}


def _refine(state: GemsState, runtime: Runtime[GemsContext]) -> dict[str, Any]:
    ctx = effective_context(state, runtime.context)
    checks = state.get("checks") or []
    rounds = list(state.get("rounds") or [])
    notes: list[str] = []
    source = edit_source(state, ctx)
    generation = dict(state.get("generation") or {})
    seed_offset = state.get("seed_offset", 0)
    edit: EditTask | None = None
    # An experience already there was written by the critic with its verdicts (refiner_calls="with_critic").
    experience: str | None = rounds[-1].get("experience")
    draft = state.get("drafted_refinement")
    reply: RefinedPrompt | None = None
    if draft is not None and source is None and not state.get("feedback"):
        reply, thought = RefinedPrompt.model_validate(draft), draft.get("thought")
    else:
        model = resolve_chat_model(ctx.chat_model, chat_limits(ctx))
        combined = experience is None and ctx.refiner_calls != "separate"
        if experience is None and not combined:
            experience, note = compress_round(model, state["prompt"], rounds[-1], checks, ctx.tie_break)
            notes += [note] if note else []
            rounds[-1] = {**rounds[-1], "experience": experience}
        try:
            answer = _ask_refiner(model, state, ctx, rounds, source, combined)
            reply, thought = answer.value, answer.thought or answer.value.reasoning or None
            if isinstance(answer.value, RoundExperience):
                experience = clip_experience(answer.value.experience.strip() or round_facts(rounds[-1], checks))
        except StructuredOutputError as exc:
            notes.append(f"refiner: {one_line(exc)}; retrying the same prompt with new seeds")
            experience = experience or clip_experience(round_facts(rounds[-1], checks))
    if reply is None:
        next_prompt, thought = state["current_prompt"], None
        seed_offset += 1
    else:
        next_prompt = model_prompt(reply.prompt, ctx, notes, "refiner") or state["current_prompt"]
        if reply.guidance is not None and reply.guidance >= 0:
            generation["guidance"] = float(reply.guidance)
        # Only an answer to an edit offer can ask for one (``EditOrPrompt``).
        wants_edit = source is not None and isinstance(reply, EditOrPrompt) and reply.action == "edit"
        # An edit must look different from its source: a new seed, whatever the answer says.
        seed_offset += 1 if reply.new_seed or wants_edit else 0
        if wants_edit:
            try:
                edit = _edit_task(source, reply, ctx.edit_verification == "changed")  # type: ignore[arg-type]
            except ValueError as exc:
                notes.append(f"refiner: {one_line(exc)}; regenerating instead")
    last = {**rounds[-1], "experience": experience}

    next_round = state["round_index"] + 1
    tasks = plan_round(
        ctx, run_dir=state["run_dir"], round_index=next_round, prompt=next_prompt, seed_offset=seed_offset, generation=generation, edit=edit
    )
    move = {"action": "edit", "parent": edit["parent"], "region": edit["region"]} if edit else {"action": "regenerate"}
    emit(runtime, "new_prompt", round=next_round, prompt=next_prompt, experience=experience, **move)
    emit(runtime, "round_started", round=next_round, prompt=next_prompt, candidates=len(tasks), **move)
    return {
        "rounds": [last],
        "current_prompt": next_prompt,
        "current_thought": thought,
        "round_index": next_round,
        "round_tasks": tasks,
        "generation": generation,
        "seed_offset": seed_offset,
        "feedback": None,
        "drafted_refinement": None,
        "notes": notes,
    }
