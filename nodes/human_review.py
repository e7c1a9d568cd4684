"""Human review: with ``human_feedback`` on, the run pauses after each critic visit.

The interrupt carries the round's candidates and verdicts. Resume with
``Command(resume={"accept": True})`` to stop with the best image (or
``{"accept": True, "index": k}`` for candidate k of the round), with
``{"feedback": "..."}`` to hand a note to the refiner, or with ``{}`` to go on as
the critic decided. Works the same from Python, the CLI and Studio.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from langchain_core.messages import AIMessage
from langgraph.types import interrupt

from gems_graph.context import GemsContext
from gems_graph.errors import redact
from gems_graph.models.llm import image_data_url
from gems_graph.records import Check, Round
from gems_graph.state import GemsState

#: Longest side of the thumbnails in the review payload: enough to judge in Studio, a few KB each.
#: They live in the interrupt only: LangGraph keeps it with the checkpoint's pending writes until
#: the person answers, never in the state channels, so checkpoints do not grow round by round.
THUMBNAIL_SIDE = 96
#: The run notes a review leaves; ``human_ratings`` reads them back for the run's lessons.
ACCEPTED_NOTE = "accepted by a person after round {round}"
FEEDBACK_NOTE = "human feedback after round {round}: {note}"
_FEEDBACK_NOTE_RE = re.compile(r"^human feedback after round \d+: (.+)$", re.S)


def _thumbnail(ref: Any, side: int = THUMBNAIL_SIDE) -> str | None:
    """A small data-URL preview of an image for a person to look at."""
    try:
        return image_data_url(ref, max_side=side)
    except OSError:
        return None


def round_message(this_round: Round, checks: list[Check], side: int) -> AIMessage:
    """One round as a chat message Studio renders: the prompt, each candidate's score and
    failed checks, and its thumbnail as an image block (``side`` pixels at most)."""
    questions = {c["id"]: c["question"] for c in checks}
    lines = [f"Round {this_round['index']}: {this_round['prompt']}"]
    images: list[dict[str, Any]] = []
    for cand in this_round["candidates"]:
        if cand["image"] is None:
            lines.append(f"candidate {cand['index']}: no image ({cand['error']})")
            continue
        failed = [questions.get(v["check_id"], v["check_id"]) for v in cand["verdicts"] if not v["passed"]]
        score = "-" if cand["score"] is None else f"{cand['score']:.2f}"
        lines.append(
            f"candidate {cand['index']} (seed {cand['seed']}): score {score}" + (f"; failed: {' | '.join(failed)}" if failed else "")
        )
        url = _thumbnail(cand["image"], side)
        if url is not None:
            images.append({"type": "image_url", "image_url": {"url": url}})
    return AIMessage(content=[{"type": "text", "text": "\n".join(lines)}, *images], name="gems", id=f"round-{this_round['index']}")


def review_payload(state: GemsState) -> dict[str, Any]:
    """What the person sees: each candidate with an absolute image path, a thumbnail
    Studio can render, its score and its verdicts."""
    last = state["rounds"][-1]
    questions = {c["id"]: c["question"] for c in state.get("checks") or []}
    return {
        "round": last["index"],
        "prompt": last["prompt"],
        "status": state.get("status"),
        "best_image": str(Path(best).resolve()) if (best := state.get("best_image")) else None,
        "candidates": [
            {
                "index": c["index"],
                "image": str(Path(c["image"]["path"]).resolve()) if c["image"] else None,
                "thumbnail": _thumbnail(c["image"]) if c["image"] else None,
                "score": c["score"],
                "error": c["error"],
                "verdicts": [{"question": questions.get(v["check_id"], v["check_id"]), "passed": v["passed"]} for v in c["verdicts"]],
            }
            for c in last["candidates"]
        ],
        "how_to_answer": {"accept": True, "index": "optional candidate index", "feedback": "a note for the refiner"},
    }


def human_review(state: GemsState) -> dict[str, Any]:
    answer = interrupt(review_payload(state))
    if answer is True:
        answer = {"accept": True}
    if not isinstance(answer, dict):
        answer = {"feedback": str(answer)} if answer else {}
    if answer.get("accept"):
        return _accept(state, answer.get("index"))
    note = str(answer.get("feedback") or "").strip()
    if not note:
        return {}
    max_rounds = int((state.get("settings") or {}).get("max_rounds") or GemsContext.max_rounds)
    more = state["round_index"] < max_rounds and state.get("status") != "failed"
    return {
        "feedback": note,
        "status": "running" if more else state.get("status"),
        "notes": [FEEDBACK_NOTE.format(round=state["round_index"], note=note)],
    }


def _accept(state: GemsState, index: Any) -> dict[str, Any]:
    best = state.get("best")
    if index is not None:
        chosen = [c for c in state["rounds"][-1]["candidates"] if c["index"] == int(index) and c["image"]]
        if not chosen:
            raise ValueError(f"no candidate {index!r} with an image in round {state['round_index']}")
        best = chosen[0]
    return {
        "status": "accepted",
        "best": best,
        "best_image": best["image"]["path"] if best and best["image"] else None,
        "score": best["score"] if best else None,
        "notes": [ACCEPTED_NOTE.format(round=state["round_index"])],
    }


def human_ratings(state: GemsState) -> tuple[str, list[str]]:
    """(rating, notes) a person gave in this run's reviews: ``"accepted"`` or ``""``, and
    their notes (redacted), stored with the run's lessons so they weigh in when skills are learnt."""
    notes = [m.group(1).strip() for n in state.get("notes") or [] if (m := _FEEDBACK_NOTE_RE.match(str(n)))]
    rating = "accepted" if state.get("status") == "accepted" else ""
    return rating, [redact(n) for n in notes]


def route_after_review(state: GemsState) -> Literal["refiner", "remember"]:
    return "refiner" if state.get("status") == "running" else "remember"
