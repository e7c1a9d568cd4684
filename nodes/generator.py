"""Generator: one ``Send`` branch per candidate, each with its own seed.

``fan_out`` (the conditional edge after the planner and the refiner) sends one
``CandidateTask`` per candidate. Each branch calls the generator backend with
retries on transient errors, stores the PNG under the run folder and returns a
``Candidate``. A failure is recorded on that candidate only; the others go on.

The node has a sync path (``generator``, for ``invoke``/``stream``) and an async one
(``agenerator``, for ``ainvoke``/``astream``). The async path awaits a backend that
declares ``agenerate`` (e.g. one behind a ``BatchCoalescer``), so many runs in
flight in one process hand their requests to the backend at once and it can batch
them; a backend without it is called on a thread.

A task with an ``edit`` (the refiner chose to edit) asks the backend's ``edit`` for
an edit of the source image inside the region's mask instead; the mask is saved
beside the result and the candidate records its parent, region and mask. Retries
and failures are handled the same way as for a generation.
"""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple, NotRequired, TypedDict

from langgraph.runtime import Runtime
from langgraph.types import Send
from PIL import Image

from gems_graph.context import GemsContext
from gems_graph.errors import one_line
from gems_graph.events import emit
from gems_graph.models.generator import EditRequest, GenerationError, GenerationRequest, generation_seconds, region_mask, supports_editing
from gems_graph.models.registry import generation_limits, resolve_editor, resolve_generator
from gems_graph.models.retry import Deadline, acall_with_retry, call_with_retry
from gems_graph.persistence.artifacts import candidate_path, save_png
from gems_graph.records import Candidate, EditRecord, ImageRef
from gems_graph.state import GemsState
from gems_graph.text import keep_start
from gems_graph.usage import usage_record


class EditTask(TypedDict):
    """An edit the refiner asked for: which candidate, its image, where, how hard."""

    parent: dict[str, int]
    source: ImageRef
    #: (left, top, right, bottom) as fractions of the image; None edits the whole image.
    region: list[float] | None
    strength: float
    #: Checks the edit cannot change (``EditRecord.kept_checks``); absent: every check is asked again.
    kept_checks: NotRequired[list[str]]


class CandidateTask(TypedDict):
    """What one generator branch needs (the ``Send`` payload)."""

    run_dir: str
    round: int
    index: int
    prompt: str
    seed: int
    generation: dict[str, Any]
    retries: int
    #: Present when this candidate is an edit of an earlier one.
    edit: NotRequired[EditTask]


def candidate_seed(base_seed: int, seed_offset: int, index: int) -> int:
    return base_seed + 1000 * seed_offset + index


def model_prompt(text: str, ctx: GemsContext, notes: list[str], who: str) -> str:
    """An image prompt a model wrote, stripped and cut to ``max_model_prompt_chars`` (with a note
    in ``notes``): it is shown, diffed, stored every round and sent to the generator."""
    kept, cut = keep_start(text.strip(), ctx.max_model_prompt_chars)
    if cut:
        notes.append(f"{who}: the model's prompt had {len(text.strip())} characters; kept the first {len(kept)} (max_model_prompt_chars)")
    return kept


def plan_round(
    ctx: GemsContext,
    *,
    run_dir: str,
    round_index: int,
    prompt: str,
    seed_offset: int,
    generation: dict[str, Any],
    edit: EditTask | None = None,
) -> list[CandidateTask]:
    """The candidates of the next round, decided by the planner or refiner and kept in state.

    Keeping the plan in state (rather than in the edge) lets a failed round be
    retried on resume, and lets Studio show what each branch will make. With
    ``edit``, every candidate is an edit of the same source, each with its own seed.
    """
    params = {
        k: v for k, v in {"width": ctx.width, "height": ctx.height, "steps": ctx.steps, "guidance": ctx.guidance}.items() if v is not None
    }
    params.update(generation)
    tasks = [
        CandidateTask(
            run_dir=run_dir,
            round=round_index,
            index=k,
            prompt=prompt,
            seed=candidate_seed(ctx.seed, seed_offset, k),
            generation=params,
            retries=ctx.generation_retries,
        )
        for k in range(ctx.candidates_per_round)
    ]
    if edit is not None:
        for task in tasks:
            task["edit"] = edit
    return tasks


def fan_out(state: GemsState) -> list[Send]:
    """Route to ``generator`` once per planned candidate of the round."""
    return [Send("generator", task) for task in state["round_tasks"]]


def _backend(task: CandidateTask, ctx: GemsContext) -> Any:
    """The editor for an edit task, the generator for a generation."""
    limits = generation_limits(ctx)
    return resolve_editor(ctx, limits) if "edit" in task else resolve_generator(ctx.generator, limits)


def generator(task: CandidateTask, runtime: Runtime[GemsContext]) -> dict[str, Any]:
    ctx = runtime.context or GemsContext()
    request = _request(task)
    path = candidate_path(task["run_dir"], task["round"], task["index"], task["seed"])
    image_ref, error, made = None, None, _Made(request.params(), None)
    try:
        backend = _backend(task, ctx)
        deadline = Deadline(ctx.generation_deadline)
        if "edit" in task:
            made, edit_request = _edit_of(task["edit"], request, path, backend)
            image = call_with_retry(lambda: backend.edit(edit_request), attempts=task["retries"], deadline=deadline)
        else:
            image = call_with_retry(lambda: backend.generate(request), attempts=task["retries"], deadline=deadline)
    except Exception as exc:  # noqa: BLE001 - recorded on the candidate, never lost
        error = f"{type(exc).__name__}: {one_line(exc)}"
    else:
        # Our own disk failing (full, read-only) fails the run, resumably, rather than the
        # candidate: a resume makes the image again once there is room.
        image_ref = save_png(image, path)
    return _finish(task, made, image_ref, error, runtime, generation_seconds(image) if image_ref else None)


async def agenerator(task: CandidateTask, runtime: Runtime[GemsContext]) -> dict[str, Any]:
    """``generator`` for async runs: awaits ``agenerate`` where the backend declares it (edits run on a thread)."""
    ctx = runtime.context or GemsContext()
    request = _request(task)
    path = candidate_path(task["run_dir"], task["round"], task["index"], task["seed"])
    image_ref, error, made = None, None, _Made(request.params(), None)
    try:
        backend = _backend(task, ctx)
        deadline = Deadline(ctx.generation_deadline)
        agenerate = getattr(backend, "agenerate", None)
        if "edit" in task:
            made, edit_request = await asyncio.to_thread(_edit_of, task["edit"], request, path, backend)
            image = await asyncio.to_thread(
                call_with_retry, lambda: backend.edit(edit_request), attempts=task["retries"], deadline=deadline
            )
        elif callable(agenerate):
            image = await acall_with_retry(lambda: agenerate(request), attempts=task["retries"], deadline=deadline)
        else:
            image = await asyncio.to_thread(call_with_retry, lambda: backend.generate(request), attempts=task["retries"], deadline=deadline)
    except Exception as exc:  # noqa: BLE001 - recorded on the candidate, never lost
        error = f"{type(exc).__name__}: {one_line(exc)}"
    else:  # as in ``generator``: a disk that cannot take the image fails the run, resumably
        image_ref = await asyncio.to_thread(save_png, image, path)  # PNG encoding is CPU work: off the loop
    return _finish(task, made, image_ref, error, runtime, generation_seconds(image) if image_ref else None)


class _Made(NamedTuple):
    """How the image was asked for: its parameters, and the edit record of an edit."""

    params: dict[str, Any]
    edit: EditRecord | None


def _request(task: CandidateTask) -> GenerationRequest:
    gen = dict(task["generation"])
    return GenerationRequest(
        prompt=task["prompt"],
        seed=task["seed"],
        width=gen.pop("width", None),
        height=gen.pop("height", None),
        steps=gen.pop("steps", None),
        guidance=gen.pop("guidance", None),
        negative_prompt=gen.pop("negative_prompt", None),
        extra=gen,
    )


def _finish(
    task: CandidateTask, made: _Made, image_ref: Any, error: str | None, runtime: Runtime[GemsContext], seconds: float | None = None
) -> dict[str, Any]:
    candidate = Candidate(
        round=task["round"],
        index=task["index"],
        prompt=task["prompt"],
        seed=task["seed"],
        params=made.params,
        image=image_ref,
        verdicts=[],
        score=None,
        error=error,
    )
    if "edit" in task:
        edit = task["edit"]
        candidate["edit"] = made.edit or EditRecord(
            parent=edit["parent"], source=edit["source"], region=edit["region"], mask=None, strength=edit["strength"]
        )
        if edit.get("kept_checks"):
            candidate["edit"]["kept_checks"] = list(edit["kept_checks"])
    emit(
        runtime,
        "candidate_ready",
        round=task["round"],
        index=task["index"],
        seed=task["seed"],
        image=image_ref["path"] if image_ref else None,
        error=error,
        edit="edit" in task,
    )
    made_one = int(image_ref is not None)
    usage = usage_record(
        "generator", task["round"], images_generated=made_one, untimed_images=made_one * (seconds is None), generation_seconds=seconds
    )
    return {"pending": [candidate], "usage": [usage]}


def _edit_of(edit: EditTask, request: GenerationRequest, path: Any, backend: Any) -> tuple[_Made, EditRequest]:
    """Load the source, save the region's mask beside the result, and build the edit request."""
    if not supports_editing(backend):
        raise GenerationError(f"generator {type(backend).__name__} does not edit images")
    with Image.open(edit["source"]["path"]) as im:
        source = im.convert("RGB")
    mask = region_mask(source.width, source.height, edit["region"]) if edit["region"] is not None else None
    mask_ref = save_png(mask, path.with_name(path.stem + "_mask.png")) if mask is not None else None
    record = EditRecord(parent=edit["parent"], source=edit["source"], region=edit["region"], mask=mask_ref, strength=edit["strength"])
    if edit.get("kept_checks"):
        record["kept_checks"] = list(edit["kept_checks"])
    edit_request = EditRequest(
        image=source,
        prompt=request.prompt,
        seed=request.seed,
        mask=mask,
        strength=edit["strength"],
        steps=request.steps,
        guidance=request.guidance,
        negative_prompt=request.negative_prompt,
        extra=request.extra,
    )
    return _Made(edit_request.params(), record), edit_request
