"""The graph's state: its input, its output, and the channels a run is checkpointed by.

The records it holds (``Candidate``, ``Round``, ...) are in ``gems_graph.records``:
references, never image bytes. A round costs a few KB of checkpoint, the same at
round 10 as at round 2 (see ``rounds``).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Annotated, Any, NotRequired, cast

from langchain_core.messages import AnyMessage
from langgraph.channels.delta import DeltaChannel
from langgraph.graph.message import Messages, add_messages
from pydantic import ConfigDict, with_config

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


def latest_write(left: Any, writes: Sequence[Any]) -> Any:
    """The last value written wins (``LastValue``'s rule, in a ``DeltaChannel``)."""
    return writes[-1]


#: For values written far less often than a checkpoint is taken (what planning sets,
#: each round's tasks): kept in the writes that set them, not in every checkpoint.
STORED_WHEN_WRITTEN: DeltaChannel[Any] = DeltaChannel(latest_write)


def merge_round_writes(left: list[Round] | None, writes: list[list[Round]]) -> list[Round]:
    """``merge_rounds`` over a batch of writes, as ``DeltaChannel`` replays them."""
    merged = list(left or [])
    for right in writes:
        merged = merge_rounds(merged, right)
    return merged


# Field docstrings become the descriptions in the graph's JSON schema (Studio's input form).
# Set by the decorator: a `__pydantic_config__` line in the body reads as a key to type checkers.
_FIELD_DOCS = with_config(ConfigDict(use_attribute_docstrings=True))


@_FIELD_DOCS
class GemsInput(TypedDict):
    """What a caller passes: the prompt, and optionally per-run overrides."""

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


@_FIELD_DOCS
class GemsOutput(TypedDict, total=False):
    """What a caller gets back."""

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


def merge_message_writes(left: list[AnyMessage] | None, writes: list[list[AnyMessage]]) -> list[AnyMessage]:
    """``add_messages`` over a batch of writes, as ``DeltaChannel`` replays them."""
    # add_messages is typed over any message-like input; given messages, it returns messages.
    merged = cast(Messages, list(left or []))
    for right in writes:
        merged = add_messages(merged, cast(Messages, right))
    return cast(list[AnyMessage], merged)


@_FIELD_DOCS
class GemsState(GemsInput, total=False):
    """The whole state of one run (a thread)."""

    run_id: str
    """The run's id: the thread id that names its checkpoints and its run folder."""
    run_dir: str
    """The run folder: images, run.json, report.html."""
    settings: Annotated[dict[str, Any], STORED_WHEN_WRITTEN]
    """The context a run started with (serialisable fields only), so a resume uses the same backends."""
    checks: Annotated[list[Check], STORED_WHEN_WRITTEN]
    """The atomic yes/no checks every image is verified on (decomposed once, plus skills' and the user's)."""
    round_index: int
    """Index (1-based) of the round being generated or judged."""
    current_prompt: str
    """The generation prompt of the round in flight."""
    current_thought: str | None
    """The planner's or refiner's reasoning behind the current prompt (kept with the round, never recalled raw)."""
    generation: dict[str, Any]
    """Generation settings the refiner may change between rounds (e.g. guidance)."""
    seed_offset: int
    """Added to every seed; the refiner moves it to try new seeds."""
    round_tasks: Annotated[list[dict[str, Any]], STORED_WHEN_WRITTEN]
    """The candidates the generator will make this round (one ``Send`` each)."""
    pending: Annotated[list[Candidate], merge_pending]
    """Candidates of the round in flight, made but not yet judged."""
    rounds: Annotated[list[Round], DeltaChannel(merge_round_writes)]
    """Every judged round: prompt, candidates with verdicts, experience. Checkpointed as the
    writes that changed it, so a checkpoint costs the same at round 10 as at round 2."""
    best: Candidate | None
    """The best candidate so far: most checks passed, then the highest mean score."""
    best_image: str | None
    """Absolute path of the best image so far."""
    score: float | None
    """The best candidate's score in [0, 1]."""
    rounds_used: int
    """Rounds judged so far."""
    status: Status
    """running | passed | threshold_met | exhausted | accepted | failed."""
    error: str | None
    """Why the run failed, in one line."""
    skills: list[str]
    """Skills the planner loaded."""
    skill_checks: list[Check]
    """Checks the loaded skills add."""
    planned_checks: list[str] | None
    """The checks the planner wrote with its prompt (``decomposition="planner"``); None: the critic decomposes."""
    drafted_refinement: dict[str, Any] | None
    """The next round as the critic drafted it with its verdicts (``refiner_calls="with_critic"``:
    ``RefinedPrompt``'s fields and the reasoning), until the refiner takes it."""
    skill_hints: dict[str, Any]
    """Generation hints the loaded skills give (e.g. steps, guidance)."""
    recalled_lessons: Annotated[list[dict[str, Any]], STORED_WHEN_WRITTEN]
    """Lessons from past runs recalled at planning ({id, text, similarity})."""
    generator_family: str
    """The generator's declared family (lessons are filed and recalled under it)."""
    lessons_written: list[str]
    """Ids of the lessons this run wrote to the experience store at its end."""
    feedback: str | None
    """A person's note for the refiner (from a review), until the refiner reads it."""
    notes: Annotated[list[str], operator.add]
    """What the run wants a person to know: words a model did not understand, fallbacks taken, feedback given."""
    messages: Annotated[list[AnyMessage], DeltaChannel(merge_message_writes)]
    """One message per round with its prompt, scores and thumbnails, for LangGraph Studio's
    thread view (``studio_thumbnails`` sets their size; 0 keeps none)."""
    usage: Annotated[RunUsage, DeltaChannel(add_usage_writes)]
    """What the run cost: chat calls, tokens and images, per node and per round. Nodes write
    ``[UsageRecord]``; the value is their sum, checkpointed as the writes, so a resumed run
    keeps counting from where it stopped."""
