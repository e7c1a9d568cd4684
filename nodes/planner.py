"""Planner: writes the first generation prompt from the user's prompt.

The skill catalog (names and descriptions) is in its system prompt and its model is
bound with ``load_skill``; instructions load only for the skills it picks (see
``nodes.skill_planning``). Its user prompt carries the generator's prompting guide
(``resolve_prompting_guide``: the generator's own, or the context's replacement), the
way a person writing the prompt would read the model card first. Its reply is
structured (``PlannedPrompt``). If the model cannot produce one even after a repair,
the user's prompt is used as is and the failure is noted in state, so a weak planner
never stops a run.
"""

from __future__ import annotations

import functools
import os
import uuid
from dataclasses import fields
from pathlib import Path
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.runtime import Runtime
from langgraph.types import Overwrite
from pydantic import BaseModel, Field

from gems_graph import prompt_labels as labels
from gems_graph.context import GemsContext
from gems_graph.errors import one_line
from gems_graph.events import emit
from gems_graph.memory import MemoryStoreError, generator_family
from gems_graph.memory.access import lessons_text, store_for_run
from gems_graph.models.llm import StructuredOutputError, invoke_structured
from gems_graph.models.metering import metering
from gems_graph.models.registry import (
    chat_limits,
    chat_models,
    check_spec,
    generators,
    resolve_chat_model,
    resolve_generator,
    resolve_prompting_guide,
)
from gems_graph.nodes.critic import CHECK_RULES
from gems_graph.nodes.generator import model_prompt, plan_round
from gems_graph.nodes.skill_planning import generation_from_hints, plan_with_skills
from gems_graph.persistence.artifacts import new_run_folder, write_run_json
from gems_graph.persistence.home import default_runs_dir
from gems_graph.settings import effective_context
from gems_graph.skills import default_registry
from gems_graph.skills.registry import learned_fingerprint
from gems_graph.state import GemsState
from gems_graph.usage import UsageRecord, add_usage
from gems_graph.validation import validate_prompt

PLANNER_SYSTEM_PROMPT = """\
You are the planner of an agent that drives a text-to-image model.
Rewrite the user's request into one generation prompt that the image model will
follow exactly: name every object with its count, colour and other attributes next
to it, state spatial relations explicitly, and keep everything the user asked for.
Do not add objects the user did not ask for. Keep it under 120 words."""

#: ``guide`` is ``labels.guide_block`` of the generator's prompting guide ("" without one).
PLANNER_USER_PROMPT = f"""\
{labels.USER_REQUEST}: {{prompt}}
{{guide}}{{extra}}
Write the generation prompt."""


class PlannedPrompt(BaseModel):
    """The planner's answer."""

    reasoning: str = Field(default="", description="Brief reasoning about what the image must contain.")
    prompt: str = Field(description="The prompt to send to the image generator.")
    unsupported: list[str] = Field(default_factory=list, description="Words or parts of the request the prompt could not express.")
    guidance: float | None = Field(
        default=None,
        description=(
            "Guidance scale to start with, or null for the generator's default. Set it only when a "
            "lesson from past runs says a guidance change fixed a similar prompt."
        ),
    )


class PlannedPromptAndChecks(PlannedPrompt):
    """The planner's answer with the checks the image will be verified on (``decomposition="planner"``)."""

    checks: list[str] = Field(
        default_factory=list,
        description="Atomic yes/no checks of the user's request for a visual verifier. " + " ".join(CHECK_RULES.split()),
    )


@functools.lru_cache(maxsize=16)
def _cached_registry(dirs: tuple[str, ...], env_path: str, learned: tuple[tuple[str, int], ...], builtin: bool) -> Any:
    return default_registry(dirs, include_builtin=builtin)


def skill_registry(dirs: tuple[str, ...], builtin: bool = True) -> Any:
    """The skill registry for these folders, parsed once per process (SKILL.md parsing is not free)
    and again when ``$GEMS_SKILLS_PATH`` or the learned skills change."""
    return _cached_registry(dirs, os.environ.get("GEMS_SKILLS_PATH", ""), learned_fingerprint(), builtin)


def recall_lessons(ctx: GemsContext, prompt: str, family: str, runtime: Runtime[GemsContext], notes: list[str]) -> list[dict[str, Any]]:
    """Lessons of past runs most like this prompt, of this generator family unless
    ``recall_all_families``; a broken store is noted, not fatal."""
    if ctx.recall_k == 0:
        return []
    try:
        store = store_for_run(ctx.memory, runtime.store)
        found = store.recall(prompt, k=ctx.recall_k, generator_family=None if ctx.recall_all_families else family)
    except MemoryStoreError as exc:
        notes.append(f"memory: recall failed ({one_line(exc)})")
        return []
    return [{"id": x["id"], "text": x["text"], "similarity": round(float(x.get("similarity", 0.0)), 4)} for x in found]


def _plan_first_prompt(ctx: GemsContext, prompt: str, runtime: Runtime[GemsContext], notes: list[str]) -> dict[str, Any]:
    """Recall lessons, load skills and write the first prompt (every model call of the planner)."""
    model = resolve_chat_model(ctx.chat_model, chat_limits(ctx))
    # The generator says its own family (lessons are filed under it) and how to prompt it; the
    # registry caches the instance, so the generator node reuses it.
    family = generator_family(resolve_generator(ctx.generator))
    guide = resolve_prompting_guide(ctx)
    recalled = recall_lessons(ctx, prompt, family, runtime, notes)
    if recalled:
        emit(runtime, "lessons_recalled", lessons=[{"id": r["id"], "text": r["text"]} for r in recalled])
    user_prompt = PLANNER_USER_PROMPT.format(prompt=prompt, guide=labels.guide_block(guide), extra=lessons_text(recalled))
    schema = PlannedPromptAndChecks if ctx.decomposition == "planner" else PlannedPrompt
    plan = plan_with_skills(
        model,
        prompt=prompt,
        system_prompt=PLANNER_SYSTEM_PROMPT,
        user_prompt=user_prompt,
        schema=schema,
        registry=skill_registry(tuple(ctx.skills_dirs), ctx.builtin_skills),
        max_skills=ctx.max_skills,
        routing=ctx.skill_routing,
    )
    if plan.session.loaded:
        emit(runtime, "skills_loaded", skills=list(plan.session.loaded))
    generation = generation_from_hints(plan.session.hints, ctx)
    planned_checks = None
    try:
        answer = cast(PlannedPrompt | None, plan.answer)  # the skill loop validated it against the schema
        thought = None
        if answer is None:
            reply = invoke_structured(model, schema, plan.messages)
            answer, thought = reply.value, reply.thought
        planned_checks = answer.checks if isinstance(answer, PlannedPromptAndChecks) else None
        first_prompt = model_prompt(answer.prompt, ctx, notes, "planner") or prompt
        thought = thought or answer.reasoning or None
        if answer.unsupported:
            notes.append("planner: could not express: " + ", ".join(answer.unsupported))
        if answer.guidance is not None and answer.guidance >= 0 and ctx.guidance is None:  # the user's setting wins
            generation["guidance"] = float(answer.guidance)
    except StructuredOutputError as exc:
        first_prompt, thought = prompt, None
        notes.append(f"planner: {one_line(exc)}; using the user's prompt as is")

    return {
        "first_prompt": first_prompt,
        "planned_checks": planned_checks,
        "thought": thought,
        "generation": generation,
        "plan": plan,
        "recalled": recalled,
        "family": family,
    }


def planner(state: GemsState, config: RunnableConfig, runtime: Runtime[GemsContext]) -> dict[str, Any]:
    ctx = effective_context(state, runtime.context)
    prompt = validate_prompt(state.get("prompt"), ctx.max_prompt_chars)
    # An unknown backend (say, a typo in a Studio assistant's settings) fails here, with the
    # CLI's message, before a run folder is made.
    check_spec(ctx.generator, generators)
    check_spec(ctx.chat_model, chat_models)
    check_spec(ctx.critic_spec, chat_models)
    configurable = config.get("configurable") or {}
    run_id, run_dir = new_run_folder(
        Path(ctx.artifact_root) if ctx.artifact_root else default_runs_dir(),
        str(configurable.get("thread_id") or uuid.uuid4().hex),
        str(configurable.get("checkpoint_ns") or ""),
        thread_ran_before=bool(state.get("run_id")),
    )

    emit(runtime, "run_started", run_dir=str(run_dir))
    notes: list[str] = []
    try:
        with metering() as meter:
            planned = _plan_first_prompt(ctx, prompt, runtime, notes)
    except Exception as exc:
        # The run exists (its folder, its thread): say in run.json why it stopped, then let the runner mark it failed.
        write_run_json(str(run_dir), {"run_id": str(run_id), "prompt": prompt, "status": "failed", "error": one_line(exc)})
        raise
    usage = meter.record("planner", 1)
    first_prompt, thought, generation = planned["first_prompt"], planned["thought"], planned["generation"]
    plan, recalled, family = planned["plan"], planned["recalled"], planned["family"]

    settings = {
        k: v for k, v in ((f.name, getattr(ctx, f.name)) for f in fields(ctx)) if v is None or isinstance(v, (str, int, float, bool))
    }
    emit(runtime, "planned", prompt=first_prompt, run_dir=str(run_dir))
    tasks = plan_round(ctx, run_dir=str(run_dir), round_index=1, prompt=first_prompt, seed_offset=0, generation=generation)
    emit(runtime, "round_started", round=1, prompt=first_prompt, candidates=len(tasks))
    return {
        "prompt": prompt,
        "run_id": str(run_id),
        "run_dir": str(run_dir),
        "settings": settings,
        "round_index": 1,
        "round_tasks": tasks,
        "current_prompt": first_prompt,
        "current_thought": thought,
        "planned_checks": planned["planned_checks"],
        "generation": generation,
        "recalled_lessons": recalled,
        "generator_family": family,
        **plan.state_update(),
        "seed_offset": 0,
        "pending": None,
        "status": "running",
        "error": None,
        **(clean_slate(notes, usage) if state.get("run_id") else {"notes": notes, "usage": [usage]}),
    }


def clean_slate(notes: list[str], usage: UsageRecord) -> dict[str, Any]:
    """What a new run on a thread that already ran must not inherit from the last one."""
    return {
        "rounds": Overwrite([]),
        "notes": Overwrite(notes),
        "usage": Overwrite(add_usage(None, [usage])),
        "checks": [],
        "best": None,
        "best_image": None,
        "score": None,
        "rounds_used": 0,
        "lessons_written": [],
        "feedback": None,
    }
