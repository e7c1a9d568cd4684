"""The records of a run: images as references, checks, verdicts, candidates, rounds, and their one ranking.

Records are ``TypedDict``s so that checkpoints, ``langgraph dev``'s JSON API,
Studio and ``run.json`` all see the same plain JSON without custom serialisers.
Images are ``ImageRef``s (a path under the run folder plus its sha256); bytes are
read only at the moment a chat model is called. Kept apart from the graph state
(``gems_graph.state``) so that readers of records (memory, reports, the CLI's help)
do not import LangGraph.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired

# typing_extensions' TypedDict: pydantic (Studio's input form) rejects typing's on Python < 3.12.
from typing_extensions import TypedDict

Status = Literal["running", "passed", "threshold_met", "exhausted", "failed", "accepted"]
#: How candidates that pass as many checks are ordered: by mean P(yes), then the earliest
#: ("probability"), or the earliest alone ("earliest", the paper's rule).
TieBreak = Literal["probability", "earliest"]
#: A run's status (never the state's) while a human review waits for its answer.
PAUSED = "paused"
FINAL_STATUSES = ("passed", "threshold_met", "exhausted", "failed", "accepted")


class ImageRef(TypedDict):
    """A PNG on disk: where it is and what it is (so a resumed run can verify it)."""

    path: str
    sha256: str
    width: int
    height: int


class Check(TypedDict):
    """One atomic yes/no question the image must pass."""

    id: str
    question: str
    #: Where it came from: "prompt" (decomposition), "user", or "skill:<name>".
    source: str


class Verdict(TypedDict):
    check_id: str
    passed: bool
    answer: str
    #: Probability of "yes" when the model gives log-probabilities, else None.
    probability: float | None
    #: False when the critic got no answer (the call failed): not a "no", and kept out of
    #: the score. Absent means answered.
    answered: NotRequired[bool]


class EditRecord(TypedDict):
    """How an edit candidate was made from its parent: which image, where, how hard."""

    #: The candidate that was edited (``round`` and ``index``).
    parent: dict[str, int]
    source: ImageRef
    #: (left, top, right, bottom) as fractions of the image; None edits the whole image.
    region: list[float] | None
    #: The mask the generator got (white = repaint), saved beside the result.
    mask: ImageRef | None
    strength: float
    #: Checks about objects wholly outside the region, as the refiner named them: with
    #: ``edit_verification="changed"`` they keep the parent's verdicts instead of being asked again.
    kept_checks: NotRequired[list[str]]


class Candidate(TypedDict):
    """One image of one round, with how it was made and how it was judged."""

    round: int
    index: int
    prompt: str
    seed: int
    params: dict[str, Any]
    image: ImageRef | None
    verdicts: list[Verdict]
    #: Fraction of checks passed (0..1); None until judged or when generation failed.
    score: float | None
    error: str | None
    #: Present when the image is an edit of an earlier candidate rather than a generation.
    edit: NotRequired[EditRecord]


class Round(TypedDict):
    index: int
    prompt: str
    candidates: list[Candidate]
    #: Compressed lesson of this round (< 100 words), written by the refiner.
    experience: str | None
    #: The reasoning that produced this round's prompt, kept for compression only.
    thought: str | None


def is_answered(v: Verdict) -> bool:
    return v.get("answered", True)


def is_failed(v: Verdict) -> bool:
    """The critic answered "no" (an unanswered check is not a failure of the image)."""
    return is_answered(v) and not v["passed"]


def verdict_score(verdicts: list[Verdict]) -> float | None:
    """Fraction of the answered checks that passed; None when none was answered."""
    answered = [v for v in verdicts if is_answered(v)]
    return sum(v["passed"] for v in answered) / len(answered) if answered else None


def rank_key(candidate: Candidate, tie_break: TieBreak = "probability") -> tuple[int, float]:
    """How candidates are ranked everywhere: checks passed, then (under ``tie_break``
    "probability") mean P(yes), 1/0 where no probability is known. Under "earliest" the
    second part is 0, so among equal pass counts the earliest is kept (``best_candidate``)."""
    verdicts = [v for v in candidate.get("verdicts") or [] if is_answered(v)]
    if tie_break == "earliest":
        return sum(v["passed"] for v in verdicts), 0.0
    probs = [v["probability"] if v["probability"] is not None else float(v["passed"]) for v in verdicts]
    return sum(v["passed"] for v in verdicts), (sum(probs) / len(probs) if probs else 0.0)


def best_candidate(candidates: list[Candidate], best: Candidate | None = None, tie_break: TieBreak = "probability") -> Candidate | None:
    """The best judged candidate, starting from ``best``: a later one must rank strictly
    higher to replace it, so the earliest wins exact ties (the critic's and the paper's rule)."""
    for cand in candidates:
        if (
            cand.get("error") is None
            and cand.get("score") is not None
            and (best is None or rank_key(cand, tie_break) > rank_key(best, tie_break))
        ):
            best = cand
    return best


def round_best(rnd: Round, tie_break: TieBreak = "probability") -> Candidate | None:
    """The best candidate of one round (``best_candidate``'s rule)."""
    return best_candidate(rnd.get("candidates") or [], tie_break=tie_break)
