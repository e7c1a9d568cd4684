"""The graph's state: its input, its output, and the channels a run is checkpointed by.

The records it holds (``Candidate``, ``Round``, ...) are in ``gems_graph.records``:
references, never image bytes. A round costs a few KB of checkpoint, the same at
round 10 as at round 2 (see ``rounds``).
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, NotRequired

from langgraph.channels.delta import DeltaChannel
from pydantic import ConfigDict

# typing_extensions' TypedDict: pydantic (Studio's input form) rejects typing's on Python < 3.12.
from typing_extensions import TypedDict

from gems_graph.records import Candidate, Check, Round, Status
from gems_graph.usage import RunUsage, add_usage_writes


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
    usage: RunUsage
    """What the run used: chat calls, input and output tokens, images sent to the chat model
    and images generated, in total, by node and by round (``gems_graph.usage``)."""


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
    #: Nodes write ``[UsageRecord]``; the value is their sum (``RunUsage``), checkpointed as
    #: the writes, so a resumed run keeps counting from where it stopped.
    usage: Annotated[RunUsage, DeltaChannel(add_usage_writes)]
