"""``gems skills list | show NAME | validate PATH`` (and ``learn``, mounted from ``gems_graph.app.learn_cli``).

Mounted on the ``gems`` CLI as ``gems skills``.
Errors print one line (``file:line: problem`` for invalid skills) on stderr and exit 2,
like every other bad input of ``gems``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer

from gems_graph.skills.model import SKILL_FILE, SkillError, SkillValidationError
from gems_graph.skills.parser import parse_skill_file
from gems_graph.skills.registry import SkillRegistry, default_registry, skill_folders
from gems_graph.terminal import fail

skills_app = typer.Typer(help="List, show and validate agent skills (SKILL.md folders).", no_args_is_help=True)

SkillsDir = Annotated[
    Optional[list[Path]], typer.Option("--skills-dir", help="Extra folder of skills (repeatable); overrides built-ins of the same name.")
]


def _fail(problem: str | SkillError) -> None:
    """One line on stderr, exit 2. Validation errors already read ``file:line: problem``."""
    fail(problem, prefixed=not isinstance(problem, SkillValidationError))


def _registry(dirs: list[Path] | None) -> SkillRegistry:
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            reg = default_registry(dirs or [])
        for w in caught:
            typer.echo(f"warning: {w.message}", err=True)
        return reg
    except SkillError as e:
        _fail(e)
        raise  # unreachable


@skills_app.command("list")
def list_skills(skills_dir: SkillsDir = None, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List skills: name, where it comes from, and its description."""
    reg = _registry(skills_dir)
    if as_json:
        typer.echo(
            json.dumps([{"name": s.name, "description": s.description, "origin": s.origin, "path": str(s.path)} for s in reg], indent=2)
        )
        return
    for s in reg:
        origin = "" if s.origin == "builtin" else f"  [{s.origin}]"
        typer.echo(f"{s.name}{origin}\n    {' '.join(s.description.split())}")


def _learned_trial(folder: Path) -> dict | None:
    """The trial figures ``gems skills learn`` wrote beside a skill it kept, if any."""
    try:
        trial = json.loads((folder / "learned.json").read_text(encoding="utf-8")).get("trial")
    except (OSError, ValueError, AttributeError):
        return None
    needed = ("prompts", "budget", "score_without", "score_with", "images_without", "images_with")
    return trial if isinstance(trial, dict) and all(isinstance(trial.get(k), (int, float)) for k in needed) else None


@skills_app.command("show")
def show_skill(name: str, skills_dir: SkillsDir = None) -> None:
    """Show a skill: metadata, checks, tools, hints, reference files and instructions."""
    reg = _registry(skills_dir)
    try:
        s = reg.get(name)
    except SkillError as e:
        _fail(e)
        return
    typer.echo(f"name: {s.name}\norigin: {s.origin}\npath: {s.file}")
    typer.echo(f"description: {' '.join(s.description.split())}")
    trial = _learned_trial(s.path)
    if trial:
        typer.echo(
            f"learned: kept after a trial on {trial['prompts']} prompt(s), budget {trial['budget']}: score "
            f"{trial['score_without']:.2f} -> {trial['score_with']:.2f}, images {trial['images_without']:.2f} -> {trial['images_with']:.2f}"
        )
    if s.triggers:
        typer.echo(f"triggers: {', '.join(s.triggers)}")
    for c in s.checks:
        typer.echo(f"check: {c.question}")
    if s.tools:
        typer.echo(f"tools: {', '.join(s.tools)}")
    for k, v in s.hints.items():
        typer.echo(f"hint {k}: {v}")
    if s.references():
        typer.echo(f"references: {', '.join(s.references())}")
    typer.echo("")
    typer.echo(s.instructions)


@skills_app.command("validate")
def validate(path: Path) -> None:
    """Validate a SKILL.md, a skill folder, or a folder of skill folders."""
    if path.is_file():
        targets = [path]
    elif path.is_dir():
        folders = skill_folders(path)
        if not folders:
            _fail(f"{path}: no {SKILL_FILE} in it or in its sub-folders")
        targets = [f / SKILL_FILE for f in folders]
    else:
        _fail(f"{path}: no such file or folder")
        return
    for t in targets:
        try:
            s = parse_skill_file(t, origin=str(path))
        except SkillError as e:
            _fail(e)
            return
        extra = f", tools: {', '.join(s.tools)}" if s.tools else ""
        typer.echo(f"ok: {s.name} ({t}) - {len(s.triggers)} triggers, {len(s.checks)} checks{extra}")
