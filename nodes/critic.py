"""Critic: decomposes the original prompt into checks, verifies every candidate.

On its first visit it asks the critic model for atomic yes/no checks of the
*original* prompt (structured output). Every check of every candidate is then
asked as a plain yes/no question with the image attached, in parallel; where the
model returns log-probabilities (and ``verdict_probabilities`` is on), the verdict
carries P(yes). With ``verification="per_image"`` the checks of one image go in one
call instead, answered one ``id: yes|no`` line each (one image upload per candidate,
not one per check); P(yes) then comes from each answer's token. Candidates are ranked by ``gems_graph.state.rank_key`` under the
context's ``tie_break``; the best so far is kept (earliest wins an exact tie), and
the route decides: stop or refine. An edit candidate whose refiner named the checks
its edit cannot change (``edit_verification="changed"``) keeps its parent's verdicts
on those and is asked only the rest. With ``refiner_calls="with_critic"`` the round's
verification call also carries the refiner's request and drafts its answer
(``verify_and_draft``): the round's experience goes into the round, the next prompt
into ``drafted_refinement`` for the refiner.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langgraph.runtime import Runtime
from pydantic import BaseModel, Field

from gems_graph import prompt_labels as labels
from gems_graph.context import GemsContext
from gems_graph.errors import one_line
from gems_graph.events import emit
from gems_graph.memory.store import memory_is_off
from gems_graph.memory.trajectory import round_facts
from gems_graph.models.llm import (
    StructuredOutputError,
    answer_probabilities,
    image_block,
    invoke_structured,
    read_verdict,
    supports_logprobs,
    text_block,
    yes_probability,
)
from gems_graph.models.metering import carry_meter, metering
from gems_graph.models.registry import chat_limits, resolve_chat_model
from gems_graph.nodes.human_review import round_message
from gems_graph.nodes.refiner import (
    COMBINED_SYSTEM_PROMPT,
    REFINE_SYSTEM_PROMPT,
    WITH_CRITIC_SYSTEM_PROMPT,
    DraftedRound,
    clip_experience,
    draft_request,
    drafted,
    offers_edits,
)
from gems_graph.nodes.skill_planning import merge_skill_checks
from gems_graph.persistence.artifacts import write_run_json
from gems_graph.records import Candidate, Check, Round, TieBreak, Verdict, best_candidate, is_answered, is_failed, verdict_score
from gems_graph.settings import effective_context
from gems_graph.state import GemsState
from gems_graph.usage import add_usage

#: What a good check is, for whoever writes them (the critic's decomposition, or the planner's with ``decomposition="planner"``).
CHECK_RULES = """\
Each check asks about exactly one thing that can be seen: an object's presence, its
count, one attribute of one object, or one relation between two objects. Cover
everything the description asks for and nothing else. Phrase each as a question
whose correct answer is "yes" when the image matches."""

DECOMPOSE_SYSTEM_PROMPT = f"You turn an image description into atomic yes/no checks for a visual verifier.\n{CHECK_RULES}"

DECOMPOSE_USER_PROMPT = f"{labels.DESCRIPTION}: {{prompt}}\nList the checks."

VERIFY_SYSTEM_PROMPT = """\
You are a strict visual verifier. Look at the image and answer the question about
it with a single word: yes or no."""

#: The request is given as context: skill checks such as "Does each object keep the
#: colour the prompt gives it?" refer to it.
VERIFY_USER_PROMPT = f"{labels.IMAGE_REQUEST}: {{prompt}}\n{labels.QUESTION}: {{question}} Answer yes or no."

#: ``verification="per_image"``: every check of one image in one call.
VERIFY_IMAGE_SYSTEM_PROMPT = """\
You are a strict visual verifier. Look at the image and answer every question about
it with a single word, yes or no: one line per question, its id, a colon and the
answer (for example "c1: yes"), and nothing else."""

#: ``questions`` is ``labels.questions_block`` of the checks.
VERIFY_IMAGE_USER_PROMPT = f"{labels.IMAGE_REQUEST}: {{prompt}}\n{{questions}}Answer every question: one line each, id: yes or id: no."


#: ``verification="per_round"``: every check of several images in one call.
VERIFY_ROUND_SYSTEM_PROMPT = f"""\
You are a strict visual verifier. Several images are attached, numbered in the order
they come (image 1 first). Answer every question with a single word, yes or no: one
line per question, its id, a colon and the answer (for example
"{labels.IMAGE_CHECK_ID.format(image=2, check="c1")}: yes"), and nothing else. A
question's id names the image it asks about."""

#: The most images one ``per_round`` call carries (servers cap the images of a request); more go in parallel calls.
ROUND_IMAGES_PER_CALL = 8


def _answer_lines(ids: list[str]) -> re.Pattern[str]:
    """A line of a per-image reply: one of the check ids (markdown around it allowed), a separator, yes or
    no, and optionally the stated P(yes) after it (``c1: yes 0.9``, as ``DraftedRound``'s answers give it)."""
    names = "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True))
    stated = r"(?:[ \t]*[(,]?[ \t]*(?:p(?:\(yes\))?[ \t]*[=:][ \t]*)?(0(?:\.\d+)?|1(?:\.0+)?|\.\d+)\)?)?"
    return re.compile(rf"^[\s*>\-\"'`]*({names})[\s*\"'`]*[:=)\-.]+[\s*\"'`]*(yes|no)\b{stated}", re.I | re.M)


def stated_probability(answer: str, stated: str | None) -> float | None:
    """A P(yes) the model wrote beside its answer, kept only where it agrees with the answer."""
    if stated is None:
        return None
    p = float(stated)
    return p if (p >= 0.5) == (answer == "yes") else None


class Decomposition(BaseModel):
    """The critic's checks for a prompt."""

    checks: list[str] = Field(description="Atomic yes/no questions; 'yes' means the image matches.")


def decompose(model: BaseChatModel, prompt: str) -> list[Check]:
    reply = invoke_structured(
        model, Decomposition, [SystemMessage(DECOMPOSE_SYSTEM_PROMPT), HumanMessage(DECOMPOSE_USER_PROMPT.format(prompt=prompt))]
    )
    checks = prompt_checks(reply.value.checks)
    if not checks:
        raise StructuredOutputError("Decomposition: the model returned no checks")
    return checks


def prompt_checks(questions: list[str]) -> list[Check]:
    """The prompt's checks from a model's questions (blank and repeated ones dropped)."""
    kept = dict.fromkeys(q.strip() for q in questions if q and q.strip())
    return [Check(id=f"c{i}", question=q, source="prompt") for i, q in enumerate(kept, 1)]


def verify(model: BaseChatModel, check: Check, candidate: Candidate, prompt: str, probabilities: bool = True) -> Verdict:
    """Ask one check about one image; a failure (after the client's own retries) is recorded.

    ``probabilities=False`` asks for the answer alone and keeps the verdict binary (the paper)."""
    assert candidate["image"] is not None
    messages = [
        SystemMessage(VERIFY_SYSTEM_PROMPT),
        HumanMessage(
            content=[text_block(VERIFY_USER_PROMPT.format(prompt=prompt, question=check["question"])), image_block(candidate["image"])]
        ),
    ]
    asking = with_logprobs(model) if probabilities else model
    try:
        reply = asking.invoke(messages)
    except Exception as exc:  # noqa: BLE001 - an unanswered check is recorded as such, not as a "no"
        return _unanswered(check, f"error: {type(exc).__name__}: {one_line(exc)}")
    text = reply.text if isinstance(reply, AIMessage) else str(reply)
    probability = yes_probability(reply) if probabilities and isinstance(reply, AIMessage) else None
    verdict = read_verdict(text)
    if verdict is None and not text.strip() and probability is not None:
        verdict = probability >= 0.5  # the answer token's probabilities are the answer
    if verdict is None:  # "I cannot tell", "Yes, but no", "snowman": no answer, so no failed check either
        return Verdict(check_id=check["id"], passed=False, answer=text.strip()[:200], probability=None, answered=False)
    return Verdict(check_id=check["id"], passed=verdict, answer=text.strip()[:200], probability=probability)


def verify_image(model: BaseChatModel, checks: list[Check], candidate: Candidate, prompt: str, probabilities: bool = True) -> list[Verdict]:
    """Ask every check of one image in one call; a check the reply leaves out is asked alone (``verify``).

    Each answer's P(yes) comes from its answer token's log-probabilities
    (``answer_probabilities``) where the server returns them. A failed call is every
    check unanswered, as a failed call is in ``verify``."""
    assert candidate["image"] is not None
    questions = labels.questions_block([(c["id"], c["question"]) for c in checks])
    messages = [
        SystemMessage(VERIFY_IMAGE_SYSTEM_PROMPT),
        HumanMessage(
            content=[text_block(VERIFY_IMAGE_USER_PROMPT.format(prompt=prompt, questions=questions)), image_block(candidate["image"])]
        ),
    ]
    return _ask_together(model, messages, [(candidate, checks)], [[c["id"] for c in checks]], prompt, probabilities)[0]


def verify_round(
    model: BaseChatModel, asked: list[tuple[Candidate, list[Check]]], prompt: str, probabilities: bool = True
) -> list[list[Verdict]]:
    """Ask every check of several images in one call (``verification="per_round"``): the images
    attached in order, each question's id naming its image (``image2.c1``). One image is asked as
    ``verify_image`` asks it; a check the reply leaves out is asked alone."""
    if len(asked) == 1:
        return [verify_image(model, asked[0][1], asked[0][0], prompt, probabilities)]
    ids = _question_ids(asked)
    questions = labels.questions_block([(qid, c["question"]) for qids, (_, checks) in zip(ids, asked) for qid, c in zip(qids, checks)])
    content: list[str | dict[str, Any]] = [text_block(VERIFY_IMAGE_USER_PROMPT.format(prompt=prompt, questions=questions))]
    content += [image_block(cand["image"]) for cand, _ in asked]  # type: ignore[arg-type]
    messages = [SystemMessage(VERIFY_ROUND_SYSTEM_PROMPT), HumanMessage(content=content)]
    return _ask_together(model, messages, asked, ids, prompt, probabilities)


def _unanswered(check: Check, answer: str) -> Verdict:
    return Verdict(check_id=check["id"], passed=False, answer=answer, probability=None, answered=False)


def _ask_together(
    model: BaseChatModel,
    messages: list[Any],
    asked: list[tuple[Candidate, list[Check]]],
    ids: list[list[str]],
    prompt: str,
    probabilities: bool,
) -> list[list[Verdict]]:
    """One call answering many checks (``ids[i][j]`` names check j of image i): the verdicts, in
    order; a failed call is every check unanswered, as a failed call is in ``verify``."""
    asking = with_logprobs(model) if probabilities else model
    try:
        reply = asking.invoke(messages)
    except Exception as exc:  # noqa: BLE001 - unanswered, not "no"
        answer = f"error: {type(exc).__name__}: {one_line(exc)}"
        return [[_unanswered(c, answer) for c in checks] for _, checks in asked]
    text = reply.text if isinstance(reply, AIMessage) else str(reply)
    return _read_answers(model, text, reply if probabilities and isinstance(reply, AIMessage) else None, asked, ids, prompt, probabilities)


def _read_answers(
    model: BaseChatModel,
    text: str,
    reply: AIMessage | None,
    asked: list[tuple[Candidate, list[Check]]],
    ids: list[list[str]],
    prompt: str,
    probabilities: bool,
) -> list[list[Verdict]]:
    """The verdicts of ``id: yes|no`` lines (with ``probabilities``, P(yes) from ``reply``'s answer
    tokens, or without a reply the one written after the answer); a check the text leaves out is
    asked alone (``verify``)."""
    lines = list(_answer_lines([qid for qids in ids for qid in qids]).finditer(text))
    if reply is not None:
        probs = answer_probabilities(reply, len(lines))
    elif probabilities:  # no answer tokens (a structured reply): the P(yes) the model wrote, where it wrote one
        probs = [stated_probability(line.group(2).lower(), line.group(3)) for line in lines]
    else:
        probs = [None] * len(lines)
    by_id: dict[str, tuple[str, float | None]] = {}
    for line, p in zip(lines, probs):
        by_id.setdefault(line.group(1).lower(), (line.group(2).lower(), p))
    out = []
    for qids, (candidate, checks) in zip(ids, asked):
        verdicts = []
        for qid, check in zip(qids, checks):
            found = by_id.get(qid.lower())
            if found is None:
                verdicts.append(verify(model, check, candidate, prompt, probabilities))
            else:
                verdicts.append(Verdict(check_id=check["id"], passed=found[0] == "yes", answer=found[0], probability=found[1]))
        out.append(verdicts)
    return out


def _question_ids(asked: list[tuple[Candidate, list[Check]]]) -> list[list[str]]:
    """Each asked check's id in a request: its own with one image, ``IMAGE_CHECK_ID`` (``image2.c1``) with several."""
    if len(asked) == 1:
        return [[c["id"] for c in asked[0][1]]]
    return [[labels.IMAGE_CHECK_ID.format(image=n, check=c["id"]) for c in checks] for n, (_, checks) in enumerate(asked, 1)]


def verify_and_draft(
    model: BaseChatModel, candidates: list[Candidate], checks: list[Check], state: GemsState, ctx: GemsContext
) -> tuple[dict[int, list[Verdict]], DraftedRound, str | None]:
    """Verify the round's images and write the refiner's answer in one structured call
    (``refiner_calls="with_critic"``): (verdicts by candidate, the reply, the model's reasoning).

    A structured reply has no answer tokens to read P(yes) from, so the model is asked to
    write it after each answer (``c1: yes 0.9``); an answer without one (or with one that
    contradicts it) has none. A check the answers leave out is asked alone.
    ``StructuredOutputError`` when the reply does not fit."""
    asked = [(c, checks) for c in candidates]
    ids = _question_ids(asked)
    questions = labels.questions_block([(qid, c["question"]) for qids in ids for qid, c in zip(qids, checks)])
    content: list[str | dict[str, Any]] = [text_block(draft_request(state, ctx, questions))]
    content += [image_block(c["image"]) for c in candidates]  # type: ignore[arg-type]
    system = WITH_CRITIC_SYSTEM_PROMPT + REFINE_SYSTEM_PROMPT + COMBINED_SYSTEM_PROMPT
    reply = invoke_structured(model, DraftedRound, [SystemMessage(system), HumanMessage(content=content)])
    verdicts = _read_answers(model, reply.value.answers, None, asked, ids, state["prompt"], ctx.verdict_probabilities)
    return {c["index"]: v for c, v in zip(candidates, verdicts)}, reply.value, reply.thought


def drafts_refinement(ctx: GemsContext, state: GemsState, candidates: list[Candidate]) -> bool:
    """Whether this round's verification also drafts the refiner's answer (``refiner_calls="with_critic"``):
    only when a refinement may follow that nothing after the critic changes (no person's
    review, no edit offer), the critic is the chat model, and the images fit one call. The
    last round drafts too when memory is on: its experience is what the lesson would
    otherwise compress it for, in a call of its own."""
    return (
        ctx.refiner_calls == "with_critic"
        and (state["round_index"] < ctx.max_rounds or not memory_is_off(ctx.memory))
        and not ctx.human_feedback
        and ctx.critic_model in (None, ctx.chat_model)
        and 0 < len(candidates) <= ROUND_IMAGES_PER_CALL
        and not offers_edits(ctx)
    )


def with_logprobs(model: BaseChatModel) -> Any:
    """Ask for top log-probabilities where the endpoint supports them (soft verification)."""

    return model.bind(logprobs=True, top_logprobs=5) if supports_logprobs(model) else model


def pick_best(best: Candidate | None, candidates: list[Candidate], tie_break: TieBreak = "probability") -> Candidate | None:
    """Keep the best so far; a later candidate must be strictly better to replace it."""
    return best_candidate(candidates, best, tie_break)


def critic(state: GemsState, runtime: Runtime[GemsContext]) -> dict[str, Any]:
    with metering() as meter:
        update, checks, first_visit = _judge(state, runtime)
    usage = meter.record("critic", state["round_index"])
    update["usage"] = [usage]
    if first_visit:
        update["checks"] = checks  # written once: every checkpoint stores what changed
    this_round = update["rounds"][0]
    write_run_json(
        state["run_dir"],
        {
            **state,
            **update,
            "checks": checks,
            "rounds": _merged_rounds(state, this_round),
            "notes": [*(state.get("notes") or []), *update["notes"]],
            "usage": add_usage(state.get("usage"), [usage]),
        },
    )
    if update["status"] != "running":
        emit(
            runtime,
            "run_finished",
            status=update["status"],
            score=update["score"],
            best_image=update["best_image"],
            rounds=this_round["index"],
            error=update["error"],
        )
    return update


def _judge(state: GemsState, runtime: Runtime[GemsContext]) -> tuple[dict[str, Any], list[Check], bool]:
    """Decompose (first visit) and verify the round's candidates: the critic's model calls and their outcome."""
    ctx = effective_context(state, runtime.context)
    model = resolve_chat_model(ctx.critic_spec, chat_limits(ctx))
    notes: list[str] = []
    checks = list(state.get("checks") or [])
    first_visit = not checks
    if first_visit:
        try:
            # The planner's checks when it wrote them (decomposition="planner"), else a call of the critic's own.
            checks = prompt_checks(state.get("planned_checks") or []) or decompose(model, state["prompt"])
            if len(checks) > ctx.max_checks:  # each is asked of every candidate every round
                notes.append(f"critic: the decomposition gave {len(checks)} checks; kept the first {ctx.max_checks} (max_checks)")
                checks = checks[: ctx.max_checks]
        except StructuredOutputError as exc:
            notes.append(f"critic: {one_line(exc)}; falling back to one whole-prompt check")
            checks = [Check(id="c1", question=f"Does the image show: {state['prompt']}?", source="prompt")]
        for i, question in enumerate(state.get("extra_checks") or [], 1):
            checks.append(Check(id=f"u{i}", question=question, source="user"))
        checks = merge_skill_checks(checks, state.get("skill_checks"))
        emit(runtime, "checks", checks=[{"id": c["id"], "question": c["question"]} for c in checks])

    round_index = state["round_index"]
    candidates = sorted((c for c in state.get("pending") or [] if c["round"] == round_index), key=lambda c: c["index"])
    made = [c for c in candidates if c["error"] is None]
    draft: DraftedRound | None = None
    if drafts_refinement(ctx, state, made):
        try:
            by_candidate, draft, thought = verify_and_draft(model, made, checks, {**state, "checks": checks}, ctx)
        except Exception as exc:  # noqa: BLE001 - a bad reply or a failed call: the round is verified as without drafting
            notes.append(f"critic: {one_line(exc)}; verified the round alone, the refiner will ask for the next prompt")
    if draft is None:
        by_candidate = _verify_candidates(model, made, checks, ctx, state["prompt"], kept_verdicts(state, made))
    judged: list[Candidate] = []
    for cand in candidates:
        verdicts = by_candidate.get(cand["index"], [])
        judged.append({**cand, "verdicts": verdicts, "score": verdict_score(verdicts) if cand["error"] is None else None})
        emit(
            runtime,
            "verdicts",
            round=round_index,
            index=cand["index"],
            score=judged[-1]["score"],
            passed=[v["check_id"] for v in verdicts if v["passed"]],
            failed=[v["check_id"] for v in verdicts if is_failed(v)],
            unanswered=[v["check_id"] for v in verdicts if not is_answered(v)],
            error=cand["error"],
        )

    this_round = Round(
        index=round_index, prompt=state["current_prompt"], candidates=judged, experience=None, thought=state.get("current_thought")
    )
    if draft is not None:
        this_round["experience"] = clip_experience(draft.experience.strip() or round_facts(this_round, checks))
    best = pick_best(state.get("best"), judged, ctx.tie_break)
    status, error = _status(ctx, round_index, judged, best, checks)
    update: dict[str, Any] = {
        "rounds": [this_round],
        "pending": None,
        "best": best,
        "best_image": best["image"]["path"] if best and best["image"] else None,
        "score": best["score"] if best else None,
        "rounds_used": round_index,
        "status": status,
        "error": error,
        "notes": notes,
    }
    if draft is not None and status == "running":
        update["drafted_refinement"] = drafted(draft, thought)
    if ctx.studio_thumbnails:
        update["messages"] = [round_message(this_round, checks, ctx.studio_thumbnails)]
    return update, checks, first_visit


#: Shared by every run of the process (many runs in flight each verify several checks).
_VERIFY_POOL = ThreadPoolExecutor(max_workers=128, thread_name_prefix="gems-verify")


def kept_verdicts(state: GemsState, candidates: list[Candidate]) -> dict[int, dict[str, Verdict]]:
    """Per edit candidate, the parent's verdicts on the checks its edit cannot change (``EditRecord.kept_checks``).

    Only answered verdicts of a parent found in the state are kept; every other check is asked again."""
    parents: dict[tuple[Any, Any], Candidate] = {(c["round"], c["index"]): c for r in state.get("rounds") or [] for c in r["candidates"]}
    out: dict[int, dict[str, Verdict]] = {}
    for cand in candidates:
        edit: dict[str, Any] = dict(cand.get("edit") or {})
        key = edit.get("parent") or {}
        parent = parents.get((key.get("round"), key.get("index")))
        if parent is None or not edit.get("kept_checks"):
            continue
        keep = set(edit["kept_checks"])
        where = f"round {parent['round']} candidate {parent['index']}"
        out[cand["index"]] = {
            v["check_id"]: Verdict(**{**v, "answer": f"kept from {where} (outside the edit): {v['answer']}"})
            for v in parent["verdicts"]
            if v["check_id"] in keep and is_answered(v)
        }
    return out


def _verify_candidates(
    model: BaseChatModel,
    candidates: list[Candidate],
    checks: list[Check],
    ctx: GemsContext,
    prompt: str,
    kept: dict[int, dict[str, Verdict]] | None = None,
) -> dict[int, list[Verdict]]:
    """Every candidate's verdicts, in check order: one call per check, per image, or per round's images (``ctx.verification``).

    ``kept`` verdicts (an edit's parent's, on checks the edit cannot change) are not asked again."""
    p = ctx.verdict_probabilities
    kept = kept or {}
    asked = {c["index"]: [ch for ch in checks if ch["id"] not in kept.get(c["index"], {})] for c in candidates}
    answered: dict[int, dict[str, Verdict]] = {c["index"]: {} for c in candidates}
    todo = [c for c in candidates if asked[c["index"]]]
    if ctx.verification == "per_round":
        batches = [todo[i : i + ROUND_IMAGES_PER_CALL] for i in range(0, len(todo), ROUND_IMAGES_PER_CALL)]
        calls = [_bind(verify_round, model, [(c, asked[c["index"]]) for c in b], prompt, p) for b in batches]
        per_batch = _run_all(calls, ctx.verify_concurrency)
        for batch, verdict_lists in zip(batches, per_batch):
            for cand, verdicts in zip(batch, verdict_lists):
                answered[cand["index"]] = {v["check_id"]: v for v in verdicts}
    elif ctx.verification == "per_image":
        per_image = _run_all([_bind(verify_image, model, asked[c["index"]], c, prompt, p) for c in todo], ctx.verify_concurrency)
        for cand, verdicts in zip(todo, per_image):
            answered[cand["index"]] = {v["check_id"]: v for v in verdicts}
    else:
        jobs = [(c, ch) for c in candidates for ch in asked[c["index"]]]
        answers = _run_all([_bind(verify, model, ch, c, prompt, p) for c, ch in jobs], ctx.verify_concurrency)
        for (cand, _), verdict in zip(jobs, answers):
            answered[cand["index"]][verdict["check_id"]] = verdict
    return {c["index"]: [kept.get(c["index"], {}).get(ch["id"]) or answered[c["index"]][ch["id"]] for ch in checks] for c in candidates}


T = TypeVar("T")


def _bind(fn: Callable[..., T], *args: Any) -> Callable[[], T]:
    return lambda: fn(*args)


def _run_all(calls: list[Callable[[], T]], concurrency: int) -> list[T]:
    """Run calls on a shared pool (threads are costly to start), ``concurrency`` at a time, results in order."""
    if len(calls) <= 1 or concurrency <= 1:
        return [call() for call in calls]
    results: list[T] = []
    for start in range(0, len(calls), concurrency):
        batch = calls[start : start + concurrency]
        # The node's own thread takes the first call instead of idling on the pool.
        futures = [_VERIFY_POOL.submit(carry_meter(call)) for call in batch[1:]]
        results.append(batch[0]())
        results += [f.result() for f in futures]
    return results


def _merged_rounds(state: GemsState, this_round: Round) -> list[Round]:
    return [r for r in state.get("rounds") or [] if r["index"] != this_round["index"]] + [this_round]


def _status(
    ctx: GemsContext, round_index: int, judged: list[Candidate], best: Candidate | None, checks: list[Check]
) -> tuple[str, str | None]:
    if judged and all(c["error"] is not None for c in judged):
        first = judged[0]["error"]
        return "failed", f"every candidate of round {round_index} failed (first error: {first}); resume to retry the round"
    if judged and all(c["score"] is None for c in judged):
        first = next((v["answer"] for c in judged for v in c["verdicts"] if not is_answered(v)), "no checks")
        return "failed", (
            f"the critic could not judge round {round_index} ({first}); check the critic model's endpoint, then resume to retry the round"
        )
    if best is not None and best["score"] == 1.0:
        return "passed", None
    if ctx.stop_rule == "threshold" and best is not None and (best["score"] or 0.0) >= ctx.score_threshold:
        return "threshold_met", None
    if round_index >= ctx.max_rounds:
        return "exhausted", None
    return "running", None


def route_after_critic(state: GemsState) -> Literal["human_review", "refiner", "remember"]:
    """Ask a person first when human_feedback is on; else refine while the run goes on."""
    if (state.get("settings") or {}).get("human_feedback") and state.get("status") != "failed":
        return "human_review"
    return "refiner" if state.get("status") == "running" else "remember"
