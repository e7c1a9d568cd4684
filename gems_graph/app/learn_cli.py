"""``gems skills learn``: distil the lessons of past runs into skills, kept only when they help.

1. Lessons are read from the experience store (``--memory``) and, with
   ``--from-eval DIR``, distilled from an eval folder's runs.
2. They are grouped by the kind of failure they concern (``gems_graph.skills.learning``),
   and the run's chat model writes one candidate skill per group
   (``gems_graph.skills.writing``), made safe and validated.
3. Each candidate is tried at the same budget on a dev split or ``--prompts FILE``
   against the skills without it (``gems_graph.eval.skill_trial``); it is kept when it
   adds ``--min-gain`` points or saves ``--min-saving`` of the images. ``--review``
   shows each kept candidate with its figures and asks before writing it.
4. Kept skills go to ``$GEMS_HOME/skills/learned/<name>/`` (``--out`` elsewhere):
   ``SKILL.md`` and ``learned.json`` (provenance and trial figures).

Lives in the app layer because it runs evals; mounted as ``gems skills learn``.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from gems_graph.errors import one_line
from gems_graph.terminal import console, fail

if TYPE_CHECKING:  # the CLI loads the memory package only when the command runs
    from gems_graph.memory.lessons import Lesson

err = console(stderr=True)


def _lessons(memory: str, from_eval: list[Path], model: Any) -> list[Lesson]:
    from gems_graph.eval.run_lessons import lessons_from_eval
    from gems_graph.memory.open_store import open_experience_store
    from gems_graph.memory.store import MemoryStoreError, memory_is_off

    lessons: list[Lesson] = []
    if not memory_is_off(memory):
        try:
            store = open_experience_store(memory or None, create=False)
            lessons += list(store.list(limit=store.count() or 1))
        except MemoryStoreError as exc:
            if not from_eval:
                fail(exc)
    for folder in from_eval:
        try:
            lessons += lessons_from_eval(folder, model)
        except FileNotFoundError as exc:
            fail(exc)
    return lessons


def review_candidate(text: str, figures: dict[str, Any]) -> bool:
    """The terminal review of a candidate, as ``--human-feedback`` reviews a round: show it
    and its figures, read one line; ``y``/``yes`` writes it, anything else (or end of input) does not."""
    err.rule(f"learned skill {figures['skill']}")
    err.print(text, markup=False, soft_wrap=True)
    err.print(
        f"trial on {figures['prompts']} prompt(s), budget {figures['budget']}: score {figures['score_without']:.2f} -> "
        f"{figures['score_with']:.2f}, images {figures['images_without']:.2f} -> {figures['images_with']:.2f} ({figures['why']})",
        markup=False,
    )
    err.print("write this skill? [y/N] ", end="")
    line = sys.stdin.readline()
    return line.strip().lower() in ("y", "yes")


def learn_command(
    memory: Annotated[
        str, typer.Option("--memory", help="Experience store to learn from (default: the one under $GEMS_HOME); 'none' for none.")
    ] = "",
    from_eval: Annotated[
        Optional[list[Path]], typer.Option("--from-eval", help="Also learn from an eval folder's runs (repeatable).")
    ] = None,
    chat_model: Annotated[
        str, typer.Option("--chat-model", "-m", help="Chat-model spec that writes the skills and runs the trials.")
    ] = "shapes",
    generator: Annotated[str, typer.Option("--generator", "-g", help="Generator spec of the trials.")] = "shapes",
    suite: Annotated[str, typer.Option("--suite", help="Suite the candidates are tried on (shapes, shapes-hard).")] = "shapes-hard",
    split: Annotated[str, typer.Option("--split", help="Its split: tried on 'dev', never on the split you report.")] = "dev",
    prompts: Annotated[Optional[Path], typer.Option("--prompts", help="Try on your prompt file (JSONL, the custom suite) instead.")] = None,
    budget: Annotated[int, typer.Option("--budget", "-n", min=1, help="Images per prompt in the trials.")] = 5,
    per_category: Annotated[Optional[int], typer.Option("--per-category", min=1, help="Trial prompts per category.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="At most N trial prompts.")] = None,
    min_gain: Annotated[float, typer.Option("--min-gain", help="Points of score a skill must add to be kept.")] = 1.0,
    min_saving: Annotated[
        float, typer.Option("--min-saving", min=0.0, max=1.0, help="Or the share of images it must save at no loss.")
    ] = 0.1,
    min_lessons: Annotated[int, typer.Option("--min-lessons", min=1, help="Fewest lessons of one kind that make a candidate.")] = 3,
    skills_dir: Annotated[
        Optional[list[Path]], typer.Option("--skills-dir", help="Extra skill folders the trials run with (repeatable).")
    ] = None,
    builtin_skills: Annotated[
        bool,
        typer.Option(
            "--builtin-skills/--no-builtin-skills",
            help="Try candidates beside the built-in skills (the default), or without them, for runs with builtin_skills = false.",
        ),
    ] = True,
    out: Annotated[Optional[Path], typer.Option("--out", help="Where kept skills go (default $GEMS_HOME/skills/learned).")] = None,
    trial_dir: Annotated[
        Optional[Path], typer.Option("--trial-dir", help="Keep the trials' eval folders here (default: a temporary folder).")
    ] = None,
    review: Annotated[bool, typer.Option("--review", help="Show each kept candidate with its figures and ask before writing it.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the candidates; try and write nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Learn skills from past runs' lessons; keep each only if it helps on a dev split."""
    from gems_graph.eval.skill_trial import TrialSettings, try_skill
    from gems_graph.eval.tasks import EvalConfigError
    from gems_graph.models.llm import StructuredOutputError
    from gems_graph.models.registry import BackendLoadError, resolve_chat_model
    from gems_graph.skills.learning import group_lessons
    from gems_graph.skills.model import SkillError
    from gems_graph.skills.registry import learned_skills_dir
    from gems_graph.skills.writing import draft_skill

    if prompts is not None and not prompts.is_file():
        fail(f"{prompts}: no such prompt file")
    for d in skills_dir or []:
        if not d.is_dir():
            fail(f"{d}: skills folder not found")
    try:
        model = resolve_chat_model(chat_model)
    except (ValueError, BackendLoadError) as exc:
        fail(exc)
    lessons = _lessons(memory, list(from_eval or []), model)
    groups = group_lessons(lessons, min_lessons=min_lessons)
    if not groups:
        fail(f"nothing to learn: {len(lessons)} lesson(s), and no kind of failure has {min_lessons} with a move that worked")
    report: dict[str, Any] = {"lessons": len(lessons), "candidates": []}
    candidates = []
    for g in groups:  # a group the chat model cannot write a safe skill for is reported, not fatal
        try:
            candidates.append(draft_skill(model, g))
        except (StructuredOutputError, SkillError) as exc:
            report["candidates"].append({"name": g.name, "kept": False, "why": f"not written: {one_line(exc)}"})
            if not as_json:
                typer.echo(f"rejected: {g.name} - not written: {one_line(exc)}")
    if dry_run:
        for c in candidates:
            report["candidates"].append({"name": c.name, "removed": list(c.removed), "text": c.text})
            if not as_json:
                typer.echo(c.text)
        if as_json:
            typer.echo(json.dumps(report, indent=2))
        return
    target = out or learned_skills_dir()
    with tempfile.TemporaryDirectory(prefix="gems-learn-") as tmp:
        root = trial_dir or Path(tmp)
        settings = TrialSettings(
            out=root / "evals",
            suite=suite,
            split=split,
            prompts=str(prompts) if prompts else None,
            budget=budget,
            per_category=per_category,
            limit=limit,
            generator=generator,
            chat_model=chat_model,
            skills_dirs=[str(d) for d in skills_dir or []],
            builtin_skills=builtin_skills,
            min_gain=min_gain,
            min_saving=min_saving,
        )
        for c in candidates:
            c.write(root / "candidates" / c.name)
            err.print(f"trying {c.name} ...", markup=False)
            try:
                result = try_skill(c.name, root / "candidates" / c.name, settings)
            except (EvalConfigError, ValueError) as exc:
                fail(f"trial of {c.name}: {one_line(exc)}")
            figures = result.figures()
            kept = result.kept and (not review or review_candidate(c.text, figures))
            why = result.why if result.kept == kept else "declined in review"
            entry: dict[str, Any] = {"name": c.name, "kept": kept, "why": why, "trial": figures, "removed": list(c.removed), "text": c.text}
            if kept:
                entry["path"] = str(c.write(target, figures))
            report["candidates"].append(entry)
            if not as_json:
                verdict = "kept" if kept else "rejected"
                typer.echo(
                    f"{verdict}: {c.name} - {why}; score {figures['score_without']:.2f} -> {figures['score_with']:.2f}, "
                    f"images {figures['images_without']:.2f} -> {figures['images_with']:.2f}" + (f" -> {entry['path']}" if kept else "")
                )
    if as_json:
        typer.echo(json.dumps(report, indent=2))
