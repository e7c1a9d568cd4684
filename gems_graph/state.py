"""Graph state: records of what happened, as references, never image bytes.

Records are ``TypedDict``s so that checkpoints, ``langgraph dev``'s JSON API,
Studio and ``run.json`` all see the same plain JSON without custom serialisers.
Images are ``ImageRef``s (a path under the run folder plus its sha256); bytes are
read only at the moment a chat model is called. A round costs a few KB of checkpoint,
the same at round 10 as at round 2 (see ``rounds``).
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, NotRequired

from langgraph.channels.delta import DeltaChannel
from pydantic import ConfigDict

# typing_extensions' TypedDict: pydantic (Studio's input form) rejects typing's on Python < 3.12.
from typing_extensions import TypedDict

Status = Literal["running", "passed", "threshold_met", "exhausted", "failed", "accepted"]
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


def rank_key(candidate: Candidate) -> tuple[int, float]:
    """How candidates are ranked everywhere: checks passed, then mean P(yes) (1/0 where
    no probability is known)."""
    verdicts = [v for v in candidate.get("verdicts") or [] if is_answered(v)]
    probs = [v["probability"] if v["probability"] is not None else float(v["passed"]) for v in verdicts]
    return sum(v["passed"] for v in verdicts), (sum(probs) / len(probs) if probs else 0.0)


def best_candidate(candidates: list[Candidate], best: Candidate | None = None) -> Candidate | None:
    """The best judged candidate, starting from ``best``: a later one must rank strictly
    higher to replace it, so the earliest wins ties (the critic's and the paper's rule)."""
    for cand in candidates:
        if cand.get("error") is None and cand.get("score") is not None and (best is None or rank_key(cand) > rank_key(best)):
            best = cand
    return best


def round_best(rnd: Round) -> Candidate | None:
    """The best candidate of one round (``best_candidate``'s rule)."""
    return best_candidate(rnd.get("candidates") or [])


def merge_pending(left: list[Candidate] | None, right: list[Candidate] | None) -> list[Candidate]:
    """Collect the candidates of the round in flight; ``None`` empties the list.

    Each ``Send`` branch of the generator adds one candidate; the critic files them
    into a ``Round`` and writes ``None`` to start the next round clean.
    """
    if right is None:
        return []
    return [*(left or []), *right]


def merge_rounds(left: list[Round] | None, right: list[Round] | None) -> list[Round]:
    """Add rounds, or replace a round with the same index (e.g. to add its experience)."""
    by_index = {r["index"]: r for r in (left or [])}
    for r in right or []:
        by_index[r["index"]] = r
    return [by_index[i] for i in sorted(by_index)]


def latest_write(left: Any, writes: list[Any]) -> Any:
    """The last value written wins (``LastValue``'s rule, in a ``DeltaChannel``)."""
    return writes[-1]


#: For values written far less often than a checkpoint is taken (what planning sets,
#: each round's tasks): kept in the writes that set them, not in every checkpoint.
STORED_WHEN_WRITTEN = DeltaChannel(latest_write)


def merge_round_writes(left: list[Round] | None, writes: list[list[Round]]) -> list[Round]:
    """``merge_rounds`` over a batch of writes, as ``DeltaChannel`` replays them."""
    merged = list(left or [])
    for right in writes:
        merged = merge_rounds(merged, right)
    return merged


class GemsInput(TypedDict):
    """What a caller passes: the prompt, and optionally per-run overrides."""

    # Field docstrings become the descriptions in the graph's JSON schema (Studio's input form).
    __pydantic_config__ = ConfigDict(use_attribute_docstrings=True)  # type: ignore[misc]

    prompt: str
    """What the image should show, as a user would write it."""
    max_rounds: NotRequired[int]
    """Rounds of generate -> judge -> refine at most (default: the context's, 5)."""
    candidates_per_round: NotRequired[int]
    """Images made in parallel each round (default: the context's, 1)."""
    seed: NotRequired[int]
    """Base seed of the run's images (default: the context's, 0)."""
    extra_checks: NotRequired[list[str]]
    """Extra yes/no questions to verify besides the ones decomposed from the prompt."""


class GemsOutput(TypedDict, total=False):
    """What a caller gets back."""

    __pydantic_config__ = ConfigDict(use_attribute_docstrings=True)  # type: ignore[misc]

    status: Status
    """passed | threshold_met | exhausted | accepted | failed (running while paused)."""
    best: Candidate | None
    """The best candidate of the run: most checks passed, then the highest mean score."""
    best_image: str | None
    """Absolute path of the best image (under run_dir)."""
    score: float | None
    """The best candidate's score in [0, 1]."""
    rounds_used: int
    """Rounds that ran."""
    run_dir: str
    """The run folder: images, run.json, report.html."""
    error: str | None
    """Why the run failed, in one line (None unless status is failed)."""


class GemsState(GemsInput, total=False):
    """The whole state of one run (a thread)."""

    run_id: str
    run_dir: str
    #: The context a run started with (serialisable fields only), so a resume uses the same backends.
    settings: Annotated[dict[str, Any], STORED_WHEN_WRITTEN]
    checks: Annotated[list[Check], STORED_WHEN_WRITTEN]
    #: Index (1-based) of the round being generated or judged.
    round_index: int
    current_prompt: str
    current_thought: str | None
    #: Generation settings the refiner may change between rounds (e.g. guidance).
    generation: dict[str, Any]
    #: Added to every seed; the refiner moves it to try new seeds.
    seed_offset: int
    #: The candidates the generator will make this round (one ``Send`` each).
    round_tasks: Annotated[list[dict[str, Any]], STORED_WHEN_WRITTEN]
    pending: Annotated[list[Candidate], merge_pending]
    #: Checkpointed as the writes that changed it (a ``DeltaChannel``), not as the whole
    #: list in every checkpoint: a checkpoint costs the same at round 10 as at round 2.
    rounds: Annotated[list[Round], DeltaChannel(merge_round_writes)]
    best: Candidate | None
    best_image: str | None
    score: float | None
    rounds_used: int
    status: Status
    error: str | None
    #: Skills the planner loaded, the checks they add, and their generation hints.
    skills: list[str]
    skill_checks: list[Check]
    skill_hints: dict[str, Any]
    #: Lessons from past runs recalled at planning ({id, text, similarity}).
    recalled_lessons: Annotated[list[dict[str, Any]], STORED_WHEN_WRITTEN]
    #: The generator's declared family (lessons are filed and recalled under it).
    generator_family: str
    #: Ids of the lessons this run wrote to the experience store at its end.
    lessons_written: list[str]
    #: Human feedback note for the refiner (from an interrupt), if any.
    feedback: str | None
    #: Words of the prompt a world-specific model did not understand.
    notes: Annotated[list[str], operator.add]
