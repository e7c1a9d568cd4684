"""``gems memory ...``: inspect, search, export and wipe the lessons store.

Mounted by ``gems_graph.app.cli`` as ``app.add_typer(memory_app, name="memory")``.
Inspection commands never create a store: a missing or corrupt one is a one-line
error with exit code 2, as is an unreadable import file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Optional

import typer

from gems_graph.memory.store import ExperienceStore, MemoryStoreError, memory_is_off, strip_lesson
from gems_graph.terminal import fail

memory_app = typer.Typer(
    help="Lessons remembered across runs (Chroma by default, under $GEMS_HOME/memory).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)

_SPEC_HELP = "Store: 'chroma' (default, $GEMS_HOME/memory), 'chroma:PATH', 'chroma://host:port'."


class _State:
    spec: Optional[str] = None


def _store(create: bool = False) -> ExperienceStore:
    if memory_is_off(_State.spec):
        fail("memory is off ('--memory none'): nothing to show")
    # Imported here: the store's modules pull in the embedding stack, and `gems --help` must not.
    from gems_graph.memory.open_store import open_experience_store

    try:
        return open_experience_store(_State.spec, create=create)
    except MemoryStoreError as e:
        fail(str(e))


def _line(lesson: Mapping[str, Any]) -> str:
    sim = f" sim={lesson['similarity']:.2f}" if "similarity" in lesson else ""
    text = lesson["text"] if len(lesson["text"]) <= 100 else lesson["text"][:97] + "..."
    return f"{lesson['id']}  [{lesson['generator_family']}] uses={lesson['uses']}{sim}  {text}"


@memory_app.callback()
def main(memory: Optional[str] = typer.Option(None, "--memory", envvar="GEMS_MEMORY", help=_SPEC_HELP)) -> None:
    """Lessons remembered across runs."""
    _State.spec = memory


@memory_app.command("list")
def list_(
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="Most lessons to show, newest first."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """List lessons, newest first."""
    store = _store()
    try:
        lessons = store.list(limit)
    except MemoryStoreError as e:
        fail(str(e))
    for l in lessons:
        typer.echo(json.dumps(l, ensure_ascii=False) if as_json else _line(l))
    if not as_json:
        typer.echo(f"{len(lessons)} of {store.count()} lesson(s) in {getattr(store, 'where', store)}", err=True)


@memory_app.command()
def search(
    query: str = typer.Argument(..., help="A prompt to find lessons for."),
    k: int = typer.Option(5, "--k", "-k", min=1, help="How many lessons."),
    family: Optional[str] = typer.Option(None, "--family", help="Only this generator family (e.g. shapes)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """Lessons most similar to QUERY (what the planner would recall)."""
    if not query.strip():
        fail("empty query")
    store = _store()
    try:
        lessons = store.recall(query, k=k, generator_family=family)
    except MemoryStoreError as e:
        fail(str(e))
    for l in lessons:
        typer.echo(json.dumps(l, ensure_ascii=False) if as_json else _line(l))


@memory_app.command()
def show(lesson_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Print one lesson as JSON."""
    store = _store()
    try:
        lesson = store.get(lesson_id)
    except MemoryStoreError as e:
        fail(str(e))
    if lesson is None:
        fail(f"no lesson {lesson_id!r}")
    typer.echo(json.dumps(strip_lesson(lesson), ensure_ascii=False, indent=2))


@memory_app.command()
def forget(lesson_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Delete one lesson."""
    store = _store()
    try:
        ok = store.forget(lesson_id)
    except MemoryStoreError as e:
        fail(str(e))
    if not ok:
        fail(f"no lesson {lesson_id!r}")
    typer.echo(f"forgot {lesson_id}")


@memory_app.command()
def clear(yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask.")) -> None:
    """Delete every lesson."""
    store = _store()
    if not yes and not typer.confirm(f"Delete all {store.count()} lesson(s) in {getattr(store, 'where', store)}?"):
        fail("not confirmed; nothing deleted", code=1)
    try:
        n = store.clear()
    except MemoryStoreError as e:
        fail(str(e))
    typer.echo(f"deleted {n} lesson(s)")


@memory_app.command("export")
def export_(file: str = typer.Argument(..., metavar="FILE", help="JSONL file to write.")) -> None:
    """Write every lesson to FILE, one JSON object a line."""
    store = _store()
    try:
        n = store.export_jsonl(file)
    except MemoryStoreError as e:
        fail(str(e))
    except OSError as e:
        fail(f"cannot write {file}: {e.strerror or e}")
    typer.echo(f"exported {n} lesson(s) to {file}")


@memory_app.command("import")
def import_(file: str = typer.Argument(..., metavar="FILE", help="JSONL file from 'gems memory export'.")) -> None:
    """Add the lessons in FILE (near-duplicates merge; nothing is added if a line is bad)."""
    from pathlib import Path

    if not Path(file).is_file():
        fail(f"no such file {file}")
    store = _store(create=True)
    try:
        ids = store.import_jsonl(file)
    except MemoryStoreError as e:
        fail(str(e))
    typer.echo(f"imported {len(ids)} lesson(s); the store now holds {store.count()}")
