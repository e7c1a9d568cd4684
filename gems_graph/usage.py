"""What a run costs: chat-model calls, their tokens, images sent to the model and images generated.

The one definition of usage accounting. Each node visit writes a ``UsageRecord``
(counted by ``gems_graph.models.metering`` for chat calls, by the generator node
for images); ``add_usage`` folds them into the run's ``RunUsage`` (the graph state's
``usage`` channel, ``run.json``'s ``usage``): a total, one entry per node and one
per round. Tokens are what the server reported (``AIMessage.usage_metadata``); a
call whose server reported none is counted in ``unreported_calls``, and a sum with
no reported call behind it is ``None`` (unknown), never an invented figure. Input
tokens include the images' tokens wherever the server counts them there (OpenAI and
vLLM do). ``generation_seconds`` is the model's own time for the images, as the backend
reported it (``gems_graph.models.generator.generation_seconds``: the pipeline's time, GPU
seconds on a GPU, or a server's ``inference_time_s``); an image whose backend reported
none is counted in ``untimed_images``, by the same rule as tokens. No LangGraph import, so reports and the eval read it cheaply.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

# typing_extensions' TypedDict: pydantic (Studio's schema) rejects typing's on Python < 3.12.
from typing_extensions import TypedDict

#: The counts, in the order they are shown.
COUNT_KEYS = (
    "calls",
    "unreported_calls",
    "input_tokens",
    "output_tokens",
    "images_sent",
    "images_generated",
    "untimed_images",
    "generation_seconds",
)


class Usage(TypedDict):
    """Counts for any slice of a run (a node visit, a node, a round, the whole run)."""

    #: Chat-model calls (a repair of an unreadable reply is a call; failed calls count too).
    calls: int
    #: Calls whose server reported no token counts: their tokens are in neither sum.
    unreported_calls: int
    #: Tokens the server reported for the calls' inputs (text and images); None when no call reported them.
    input_tokens: int | None
    #: Tokens the server reported for the replies; None when no call reported them.
    output_tokens: int | None
    #: Images attached to chat calls (an image sent twice counts twice).
    images_sent: int
    #: Images the generator (or editor) made.
    images_generated: int
    #: Images whose backend reported no time: their seconds are in no sum.
    untimed_images: int
    #: Seconds the model took for the timed images; None when no image was timed.
    generation_seconds: float | None


class UsageRecord(Usage):
    """What one node visit used: the node's name and the round it worked on."""

    node: str
    round: int


class RoundUsage(TypedDict):
    round: int
    total: Usage
    nodes: dict[str, Usage]


class RunUsage(TypedDict, total=False):
    """A run's usage: ``total``, by ``nodes`` (planner, generator, critic, refiner, remember) and by ``rounds``."""

    total: Usage
    nodes: dict[str, Usage]
    rounds: list[RoundUsage]


def zero_usage() -> Usage:
    return Usage(
        calls=0,
        unreported_calls=0,
        input_tokens=0,
        output_tokens=0,
        images_sent=0,
        images_generated=0,
        untimed_images=0,
        generation_seconds=0.0,
    )


def usage_record(node: str, round_index: int, **counts: Any) -> UsageRecord:
    """A node visit's record; counts not given are zero."""
    return UsageRecord(node=node, round=round_index, **{**zero_usage(), **counts})  # type: ignore[typeddict-item]


def add_counts(a: Usage, b: Usage) -> Usage:
    """``a + b``: a token sum stays unknown only while no call behind it reported tokens."""
    calls = a["calls"] + b["calls"]
    unreported = a["unreported_calls"] + b["unreported_calls"]
    known = calls == 0 or unreported < calls

    def tokens(key: str) -> int | None:
        return (a[key] or 0) + (b[key] or 0) if known else None  # type: ignore[literal-required]

    images = a["images_generated"] + b["images_generated"]
    untimed = a["untimed_images"] + b["untimed_images"]
    timed = images == 0 or untimed < images
    seconds = round((a["generation_seconds"] or 0.0) + (b["generation_seconds"] or 0.0), 6) if timed else None
    return Usage(
        calls=calls,
        unreported_calls=unreported,
        input_tokens=tokens("input_tokens"),
        output_tokens=tokens("output_tokens"),
        images_sent=a["images_sent"] + b["images_sent"],
        images_generated=images,
        untimed_images=untimed,
        generation_seconds=seconds,
    )


def counts_of(u: Any) -> Usage:
    """The counts of a record or summary (missing keys are zero), without its labels.

    A record written before images were timed has no ``generation_seconds``: its images are untimed."""
    u = u or {}
    counts = {k: u.get(k, 0) for k in COUNT_KEYS}
    if "generation_seconds" not in u:
        counts["generation_seconds"], counts["untimed_images"] = None, counts["images_generated"]
    return Usage(**counts)  # type: ignore[typeddict-item]


def add_usage(run: RunUsage | None, records: Iterable[UsageRecord]) -> RunUsage:
    """``run`` with ``records`` added (a new value; ``run`` is not changed).

    Only the node and round entries the records touch are rebuilt; the others are shared
    with ``run`` (never changed in place): the graph folds every node visit in, so
    rebuilding every round's entries made accounting grow with the rounds run."""
    run = run or {}
    total = counts_of(run.get("total"))
    nodes = dict(run.get("nodes") or {})
    rounds = {r["round"]: r for r in run.get("rounds") or []}
    touched: dict[int, dict[str, Usage]] = {}
    for rec in records:
        counts = counts_of(rec)
        total = add_counts(total, counts)
        nodes[rec["node"]] = add_counts(counts_of(nodes.get(rec["node"])), counts)
        per = touched.get(rec["round"])
        if per is None:
            before = rounds.get(rec["round"])
            per = touched[rec["round"]] = dict(before["nodes"]) if before else {}
        per[rec["node"]] = add_counts(counts_of(per.get(rec["node"])), counts)
    for index, per in touched.items():
        rounds[index] = RoundUsage(round=index, total=_sum(per.values()), nodes=per)
    return RunUsage(total=total, nodes=nodes, rounds=[rounds[i] for i in sorted(rounds)])


def add_usage_writes(run: RunUsage | None, writes: Sequence[list[UsageRecord]]) -> RunUsage:
    """``add_usage`` over a batch of node writes (the state channel's reducer)."""
    return add_usage(run, [rec for batch in writes for rec in batch or []])


def _sum(items: Iterable[Usage]) -> Usage:
    total = zero_usage()
    for u in items:
        total = add_counts(total, u)
    return total


def run_total(run: RunUsage | None) -> Usage:
    """The run's total (zero for a run that has none yet)."""
    return counts_of((run or {}).get("total"))


def tokens_text(u: Usage, key: str) -> str:
    """A token sum as a person should read it: the number, "unknown", or a lower bound."""
    value = u[key]  # type: ignore[literal-required]
    if value is None:
        return "unknown"
    return f"{value}+" if u["unreported_calls"] else str(value)


def seconds_text(u: Usage) -> str:
    """The generator's seconds as a person should read them: "12.3 s", "unknown", or a lower bound."""
    value = u["generation_seconds"]
    if value is None:
        return "unknown"
    return f"{value:.1f}+ s" if u["untimed_images"] else f"{value:.1f} s"


def usage_line(u: Usage) -> str:
    """One line: "12 chat calls, 3456 input / 789 output tokens, 8 images sent, 5 images generated (12.3 s)"."""
    line = (
        f"{u['calls']} chat calls, {tokens_text(u, 'input_tokens')} input / {tokens_text(u, 'output_tokens')} output tokens, "
        f"{u['images_sent']} images sent, {u['images_generated']} images generated"
    )
    if u["images_generated"] and u["generation_seconds"] is not None:
        line += f" ({seconds_text(u)} of generation)"
    if u["unreported_calls"] and u["input_tokens"] is not None:
        line += f" ({u['unreported_calls']} calls without token counts)"
    return line
