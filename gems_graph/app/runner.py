"""Running a GEMS graph to the end (or resuming it) with a durable checkpointer.

Shared by the CLI, notebooks and the eval harness: builds the context, picks the
thread, resumes a failed or crashed run, streams custom events to a callback and
returns the final state as a ``RunResult``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.types import Command

from gems_graph.context import GemsContext
from gems_graph.errors import one_line
from gems_graph.graph import compile_graph
from gems_graph.persistence.artifacts import write_run_json
from gems_graph.records import FINAL_STATUSES, PAUSED
from gems_graph.usage import RunUsage, Usage, run_total


class UnknownRunError(LookupError):
    """``--resume`` named a thread that has no checkpoint."""


@dataclass
class RunResult:
    thread_id: str
    state: dict[str, Any]
    #: What stopped a run that ended ``failed`` by raising (kept for ``--debug``).
    exception: BaseException | None = None
    #: The review a paused run waits for (``human_review``'s interrupt payload), if any.
    review: dict[str, Any] | None = None

    @property
    def status(self) -> str:
        """``paused`` while a review waits for its answer, else the state's status."""
        return PAUSED if self.review is not None else self.state.get("status", "unknown")

    @property
    def usage(self) -> RunUsage:
        """What the run used, in total, by node and by round (``gems_graph.usage``)."""
        return self.state.get("usage") or RunUsage()

    @property
    def usage_total(self) -> Usage:
        return run_total(self.state.get("usage"))

    def summary(self) -> dict[str, Any]:
        """The JSON the CLI prints with ``--json``."""
        s = self.state
        return {
            "thread_id": self.thread_id,
            "status": self.status,
            "paused_after_round": self.review["round"] if self.review is not None else None,
            "best_image": s.get("best_image"),
            "score": s.get("score"),
            "rounds": s.get("rounds_used", 0),
            "run_dir": s.get("run_dir"),
            "run_json": f"{s['run_dir']}/run.json" if s.get("run_dir") else None,
            "report": f"{s['run_dir']}/report.html" if s.get("run_dir") else None,
            "error": s.get("error"),
            "checks": [c["question"] for c in s.get("checks") or []],
            "notes": s.get("notes") or [],
            "skills": s.get("skills") or [],
            "recalled_lessons": [lesson.get("id") for lesson in s.get("recalled_lessons") or []],
            "usage": {**self.usage_total, "nodes": dict(self.usage.get("nodes") or {})},
        }


def saved_settings(checkpointer: Any, thread_id: str) -> dict[str, Any]:
    """The context fields a run was started with (spec strings only), to resume it alike."""
    snapshot = compile_graph(checkpointer=checkpointer).get_state({"configurable": {"thread_id": thread_id}})
    if not snapshot.values:
        raise UnknownRunError(f"no run with id {thread_id!r} in the checkpoint store")
    return dict(snapshot.values.get("settings") or {})


def run_gems(
    prompt: str | None,
    context: GemsContext,
    checkpointer: Any,
    *,
    thread_id: str | None = None,
    resume: bool = False,
    store: Any = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    inputs: dict[str, Any] | None = None,
    on_review: Callable[[dict[str, Any]], Any] | None = None,
) -> RunResult:
    """Run a new thread, or continue ``thread_id`` when ``resume`` is set.

    When the run pauses for a person (``human_feedback``), ``on_review`` gets the
    review payload and returns the answer (``{"accept": True}``, ``{"feedback": ...}``)
    to resume with, or None to leave the run paused; without it the run stays paused.
    """
    graph = compile_graph(checkpointer=checkpointer, store=store)
    thread_id = thread_id or uuid.uuid4().hex[:12]
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    payload: Any
    if resume:
        snapshot = graph.get_state(config)
        if not snapshot.values:
            raise UnknownRunError(f"no run with id {thread_id!r} in the checkpoint store")
        values = snapshot.values
        if not snapshot.next and values.get("status") == "failed":
            # Retry the failed round: replay the planner's edge, which fans out again.
            graph.update_state(config, {"status": "running", "error": None, "pending": None}, as_node="planner")
        elif not snapshot.next and values.get("status") in FINAL_STATUSES:
            return RunResult(thread_id, values)
        payload = None
    else:
        payload = {"prompt": prompt, **(inputs or {})}
    while True:
        try:
            for mode, chunk in graph.stream(payload, config, context=context, stream_mode=["custom", "updates"], durability="sync"):
                if mode == "custom" and on_event is not None:
                    on_event(cast(dict[str, Any], chunk))  # a "custom" chunk: what the node's emit() wrote
        except Exception as exc:  # noqa: BLE001 - a backend failure ends the run as failed, resumable
            return _failed(graph, config, thread_id, exc)
        snapshot = graph.get_state(config)
        review = next((i.value for task in snapshot.tasks for i in task.interrupts), None)
        answer = on_review(review) if review is not None and on_review is not None else None
        if answer is None:
            if review is not None and snapshot.values.get("run_dir"):
                write_run_json(snapshot.values["run_dir"], {**snapshot.values, "status": PAUSED})
            return RunResult(thread_id, snapshot.values, review=review)
        payload = Command(resume=answer)


def _failed(graph: Any, config: RunnableConfig, thread_id: str, exc: Exception) -> RunResult:
    """The run as it stood at its last checkpoint, marked failed with the error's one line.

    The checkpoint itself is left as it was, so ``--resume`` continues from the step that
    failed once the backend works again; ``run.json`` says failed meanwhile.
    """
    try:
        values = dict(graph.get_state(config).values)
    except Exception as store_exc:  # noqa: BLE001 - the checkpoint store itself is gone (a database down)
        # What the store last kept stays there; the resume starts from it once the store is back.
        error = f"the checkpoint store failed: {one_line(exc)}" + ("" if str(store_exc) == str(exc) else f"; then {one_line(store_exc)}")
        return RunResult(thread_id, {"run_id": thread_id, "status": "failed", "error": error}, exc)
    values.update(status="failed", error=one_line(exc))
    if values.get("run_dir"):
        try:
            write_run_json(values["run_dir"], values)
        except OSError:  # the disk that failed the run: the checkpoint still has it, and says it
            pass
    return RunResult(thread_id, values, exc)
