"""Remember: at the end of a run, distill its experiences into lessons for later runs.

The last round is compressed first if the refiner never saw it (a run that passes
ends without refining), so the lesson can say which strategy fixed it; a run whose
first round passed every check needs no call for that (its lesson is the prompt that
passed). Lessons go
to the experience store (Chroma by default); a store failure is noted, never fatal.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from gems_graph.context import GemsContext
from gems_graph.errors import one_line
from gems_graph.events import emit
from gems_graph.memory import MemoryStoreError, distill_lessons, generator_family
from gems_graph.memory.access import store_for_run
from gems_graph.memory.lessons import reads_last_experience
from gems_graph.memory.store import memory_is_off
from gems_graph.models.metering import metering
from gems_graph.models.registry import chat_limits, resolve_chat_model, resolve_generator
from gems_graph.nodes.human_review import human_ratings
from gems_graph.nodes.refiner import compress_round
from gems_graph.persistence.artifacts import write_run_json
from gems_graph.settings import effective_context
from gems_graph.state import GemsState
from gems_graph.usage import add_usage


def remember(state: GemsState, runtime: Runtime[GemsContext]) -> dict[str, Any]:
    ctx = effective_context(state, runtime.context)
    rounds = list(state.get("rounds") or [])
    if memory_is_off(ctx.memory) or not rounds or state.get("best") is None:
        if state.get("run_dir"):  # the status may have changed since the critic wrote it (a person accepted)
            write_run_json(state["run_dir"], dict(state))
        return {}
    notes: list[str] = []
    update: dict[str, Any] = {}
    last = rounds[-1]
    if not last.get("experience") and reads_last_experience(rounds):
        with metering() as meter:
            experience, note = compress_round(
                resolve_chat_model(ctx.chat_model, chat_limits(ctx)), state["prompt"], last, state.get("checks") or []
            )
        last = {**last, "experience": experience}
        rounds[-1] = last
        update["rounds"] = [last]
        update["usage"] = [meter.record("remember", last["index"])]
        notes += [note] if note else []
    lessons = distill_lessons(
        state["prompt"],
        rounds,
        state.get("checks") or [],
        generator_family=state.get("generator_family") or generator_family(resolve_generator(ctx.generator)),
        skills=state.get("skills") or [],
        status=state.get("status") or "exhausted",
    )
    rating, human_notes = human_ratings(state)
    for lesson in lessons:  # a resumed run that writes them again confirms nothing new
        lesson["runs"] = [str(state.get("run_id") or "")] if state.get("run_id") else []
        lesson["rating"], lesson["human_notes"] = rating, human_notes
    ids: list[str] = []
    try:
        ids = store_for_run(ctx.memory, runtime.store).add(lessons) if lessons else []
    except MemoryStoreError as exc:
        notes.append(f"memory: could not write lessons ({one_line(exc)})")
    emit(runtime, "lessons_written", ids=ids)
    update.update({"lessons_written": ids, "notes": notes})
    write_run_json(
        state["run_dir"],
        {
            **state,
            "rounds": rounds,
            "lessons_written": ids,
            "notes": [*(state.get("notes") or []), *notes],
            "usage": add_usage(state.get("usage"), update.get("usage") or []),
        },
    )
    return update
