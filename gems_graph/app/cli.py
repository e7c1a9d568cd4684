"""The ``gems`` command line: ``gems run PROMPT`` and friends.

Bad input (empty prompt, control characters, too long, unknown backend, bad flag
values, a folder that cannot be written) gives a one-line error and exit code 2
before anything is written. A run that fails on the way (an endpoint down, a
backend error) ends ``failed`` with one line, exit code 1 and the command that
resumes it. ``main`` is the one error boundary: any other exception is printed as
one line too, and only ``--debug`` shows the traceback.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sqlite3
import sys
import time
import typing
import uuid
from pathlib import Path
from typing import Any, Optional

import typer
import typer.main
from rich.markup import escape

from gems_graph import terminal
from gems_graph.context import ConfigError, GemsContext, StopRule
from gems_graph.errors import one_line, redact
from gems_graph.models.cpu_threads import CpuThreadsError, thread_budget
from gems_graph.models.embedding_runtime import EmbeddingRuntimeError, embedding_runtime
from gems_graph.terminal import PAUSED_EXIT_CODE, console, fail
from gems_graph.usage import usage_line
from gems_graph.validation import InvalidPromptError, validate_prompt

app = typer.Typer(
    help="GEMS: agent-native text-to-image generation with memory and skills, on LangGraph.",
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
err = console(stderr=True)


_DEBUG = "--debug"
#: Set by ``main`` when ``--debug`` was given anywhere on the command line.
debug_mode = False


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"gems-graph {version('gems-graph')}")
        raise typer.Exit()


@app.callback()
def callback(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    debug: bool = typer.Option(False, _DEBUG, help="Show tracebacks instead of one-line errors (also after a subcommand)."),
) -> None:
    """GEMS command line."""


def main(argv: list[str] | None = None) -> None:
    """The ``gems`` console script: the CLI's one error boundary."""
    global debug_mode
    args = list(sys.argv[1:] if argv is None else argv)
    debug = debug_mode = terminal.show_tracebacks = _DEBUG in args
    args = [a for a in args if a != _DEBUG]
    terminal.warnings_as_lines()
    # psycopg logs a lost connection again as it closes; the run's own error line says it once.
    logging.getLogger("psycopg").setLevel(logging.ERROR)
    try:
        # Bad GEMS_CPU_THREADS, GEMS_WORKER_PROCESSES or GEMS_EMBEDDING_RUNTIME: bad input, before anything runs.
        thread_budget()
        embedding_runtime()
        command = typer.main.get_command(app)
        name_metavars(command)
        code = command.main(args=args, prog_name="gems", standalone_mode=False)
    except (KeyboardInterrupt, typer.Abort):
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the boundary: one line unless --debug
        if is_command_line_error(exc):
            sys.exit(report_command_line_error(exc))
        if debug:
            raise
        code, message = describe_failure(exc)
        err.print(f"[red]error:[/red] {escape(message)}", markup=True, soft_wrap=True)
        err.print("(run with --debug to see the traceback)")
        sys.exit(code)
    if isinstance(code, int) and code:
        sys.exit(code)


#: Options whose value is a backend spec (``shapes``, ``diffusers:ID``, ``openai-compatible:URL#MODEL``).
_SPEC_OPTIONS = {"generator", "editor", "chat_model", "critic_model", "spec"}


def name_metavars(command: Any) -> None:
    """Help names what a value is (SPEC, INTEGER, PATH, the choices), never a Python type (``<list[Path]>``)."""
    for param in command.params:
        described = getattr(param, "type_descriptor", None)
        if param.param_type_name == "argument":
            param.display_type_rich = lambda ctx=None: ""  # the name says it; no "<str>" beside it
        if param.metavar is not None or described is None or getattr(param, "is_flag", False):
            continue
        annotation = described.annotation
        if described.is_list:
            (annotation,) = typing.get_args(annotation) or (str,)
        if described.is_choice:
            param.metavar = "[" + "|".join(str(c) for c in described.choices or ()) + "]"
        elif param.param_type_name == "argument":
            param.metavar = (param.name or "value").upper()
        elif param.name in _SPEC_OPTIONS:
            param.metavar = "SPEC"
        elif described.is_path or annotation is Path:
            param.metavar = "PATH"
        else:
            param.metavar = {int: "INTEGER", float: "NUMBER"}.get(annotation, "TEXT")
    for sub in getattr(command, "commands", {}).values():
        name_metavars(sub)


def is_command_line_error(exc: BaseException) -> bool:
    """A parsing error of the command line (Typer's own Click): it knows its message and exit code."""
    return all(hasattr(exc, name) for name in ("format_message", "exit_code", "show"))


def report_command_line_error(exc: Any) -> int:
    """A bad flag or value as one line (not Click's usage block); a bare group still shows its help."""
    if type(exc).__name__ == "NoArgsIsHelpError":
        exc.show()
        return int(exc.exit_code)
    ctx = getattr(exc, "ctx", None)
    hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
    err.print(f"[red]error:[/red] {escape(one_line(exc.format_message()))}{hint}", markup=True)
    return int(exc.exit_code)


def describe_failure(exc: BaseException) -> tuple[int, str]:
    """(exit code, one line) for an error that reached the boundary: 2 for bad input, else 1."""
    from gems_graph.models.registry import UnknownBackendError

    if isinstance(exc, (ConfigError, UnknownBackendError, InvalidPromptError, CpuThreadsError, EmbeddingRuntimeError)):
        return 2, one_line(exc)
    if isinstance(exc, sqlite3.DatabaseError):
        return 1, (
            f"a database file is damaged or not a database ({one_line(exc)}); move it aside "
            "(the checkpoints under $GEMS_HOME, or --checkpoint-db) and run again"
        )
    if isinstance(exc, OSError) and exc.filename:
        return 2, f"cannot use {exc.filename}: {exc.strerror or one_line(exc)}"
    if isinstance(exc, UnicodeError):
        return 2, f"the input is not valid text ({one_line(exc)})"
    return 1, f"{type(exc).__name__}: {one_line(exc)}"


#: Runs started together check the same missing folders; each check removes what it made.
_FOLDER_CHECK_ATTEMPTS = 20


def writable_folder(path: str | os.PathLike[str], what: str) -> Path:
    """Check that ``path`` is, or can be made, a folder files can be written in; else a one-line error.

    The folders it creates to find out are removed again: a run that stops on a later
    check leaves nothing behind (the run creates them for real).
    """
    folder = Path(path).expanduser()
    missing = [p for p in [folder, *folder.parents] if not p.exists()]
    try:
        for attempt in range(_FOLDER_CHECK_ATTEMPTS):
            try:
                folder.mkdir(parents=True, exist_ok=True)
                probe = folder / f".gems-write-test-{uuid.uuid4().hex[:8]}"
                probe.write_bytes(b"")
                probe.unlink()
                break
            except (FileNotFoundError, FileExistsError):
                # Another run's check made or removed the folder in between: look again.
                if attempt == _FOLDER_CHECK_ATTEMPTS - 1:
                    raise
                time.sleep(random.uniform(0.001, 0.02))
    except OSError as exc:
        fail(f"{what} {folder} is not a folder that can be written ({exc.strerror or one_line(exc)})")
    finally:
        for created in missing:  # deepest first
            try:
                created.rmdir()
            except OSError:
                pass
    return folder


@app.command()
def run(
    prompt: Optional[str] = typer.Argument(None, help="What the image should show."),
    generator: Optional[str] = typer.Option(None, "--generator", "-g", help="Generator spec (default: shapes)."),
    editor: Optional[str] = typer.Option(
        None, "--editor", help="Generator spec of the model that edits, with --edits (default: the generator)."
    ),
    chat_model: Optional[str] = typer.Option(None, "--chat-model", "-m", help="Chat-model spec for planner and refiner (default: shapes)."),
    critic_model: Optional[str] = typer.Option(None, "--critic-model", help="Chat-model spec for the critic (default: --chat-model)."),
    prompting_guide: Optional[str] = typer.Option(
        None,
        "--prompting-guide",
        help="How to prompt the image model, shown to the planner and refiner in place of the generator's own guide; 'none' shows none.",
    ),
    rounds: Optional[int] = typer.Option(None, "--rounds", "-r", help="Most rounds (default 5)."),
    candidates: Optional[int] = typer.Option(None, "--candidates", "-k", help="Images per round (default 1)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Base seed (default 0)."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Artifact root (default $GEMS_HOME/runs)."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Continue the run with this id."),
    checkpoint_db: Optional[str] = typer.Option(
        None, "--checkpoint-db", help="SQLite path or postgresql:// URL (default $GEMS_HOME/checkpoints.sqlite)."
    ),
    skills_dir: Optional[list[str]] = typer.Option(None, "--skills-dir", help="Folder of user skills (repeatable)."),
    max_skills: Optional[int] = typer.Option(None, "--max-skills", help="Most skills per prompt (default 2; 0 = off)."),
    memory: Optional[str] = typer.Option(
        None, "--memory", help="Experience store: chroma (default), chroma:PATH, chroma://host:port, none."
    ),
    steps: Optional[int] = typer.Option(None, "--steps", help="Denoising steps (default: the generator's)."),
    guidance: Optional[float] = typer.Option(None, "--guidance", help="Guidance scale (default: the generator's)."),
    width: Optional[int] = typer.Option(None, "--width", help="Image width (default: the generator's)."),
    height: Optional[int] = typer.Option(None, "--height", help="Image height (default: the generator's)."),
    stop_rule: Optional[StopRule] = typer.Option(
        None, "--stop-rule", help="When the loop ends: every check passes (default) or the score reaches --threshold."
    ),
    edits: Optional[bool] = typer.Option(
        None, "--edits/--no-edits", help="Let the refiner edit the best image instead of regenerating, when the generator edits."
    ),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Score that ends the run under --stop-rule threshold."),
    config: Optional[str] = typer.Option(
        None, "--config", help="gems.toml to read (default: $GEMS_CONFIG, ./gems.toml, $GEMS_HOME/gems.toml)."
    ),
    human_feedback: Optional[bool] = typer.Option(
        None,
        "--human-feedback/--no-human-feedback",
        help="After each round, show the candidates and ask: accept [INDEX], a note for the refiner, or Enter to go on.",
    ),
    preset: Optional[str] = typer.Option(
        None, "--preset", help="Named settings in place of the defaults, e.g. gems-paper (the official GEMS setup); flags override it."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout and nothing else there."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines; only the result."),
) -> None:
    """Run the GEMS loop on PROMPT and print where the best image and run.json are."""
    from gems_graph.app.runner import UnknownRunError, run_gems, saved_settings
    from gems_graph.config import context_kwargs
    from gems_graph.memory.chroma_store import check_embedded_store
    from gems_graph.memory.open_store import parse_memory_spec
    from gems_graph.memory.store import MemoryStoreError
    from gems_graph.models.registry import BackendLoadError, UnknownBackendError, chat_models, check_spec, generators
    from gems_graph.persistence.checkpoint import (
        CheckpointStoreError,
        MissingCheckpointStoreError,
        check_checkpointer,
        damaged_store_error,
        open_checkpointer,
    )
    from gems_graph.persistence.home import gems_home
    from gems_graph.persistence.run_lock import RunBusyError, hold_run
    from gems_graph.skills.model import SkillError
    from gems_graph.skills.registry import default_registry

    if resume is None:
        try:  # the length limit is checked once the settings are known (gems.toml may raise it)
            prompt = validate_prompt(prompt if prompt is not None else "", sys.maxsize)
        except InvalidPromptError as exc:
            fail(str(exc))
    elif prompt is not None:
        fail("give either a PROMPT or --resume ID, not both")
    flags = {
        "generator": generator,
        "chat_model": chat_model,
        "critic_model": critic_model,
        "prompting_guide": prompting_guide,
        "max_rounds": rounds,
        "candidates_per_round": candidates,
        "seed": seed,
        "artifact_root": out,
        "skills_dirs": skills_dir or None,
        "max_skills": max_skills,
        "memory": memory,
        "steps": steps,
        "guidance": guidance,
        "width": width,
        "height": height,
        "stop_rule": stop_rule,
        "score_threshold": threshold,
        "human_feedback": human_feedback,
        "refiner_edits": edits,
        "editor": editor,
    }
    flags = {k: v for k, v in flags.items() if v is not None}
    from gems_graph.config import unknown_env

    for warning in unknown_env():
        err.print(f"[yellow]warning:[/yellow] {warning}", soft_wrap=True)
    try:
        # Precedence: flags > (a resumed run's own settings) > GEMS_* env > gems.toml > preset > defaults.
        # The flags go in too: a preset's per-family sizes follow the generator they name.
        layered = context_kwargs(flags, config_path=config, preset=preset)
        if resume is not None:
            try:
                with open_checkpointer(checkpoint_db, create=False) as saver:
                    try:
                        layered.update(saved_settings(saver, resume))
                    except UnknownRunError:
                        raise
                    except Exception as exc:  # noqa: BLE001 - rows that do not decode: a damaged store
                        raise damaged_store_error(checkpoint_db, exc) from exc
            except MissingCheckpointStoreError as exc:
                raise UnknownRunError(f"no run with id {resume!r}: {exc}") from None
            except CheckpointStoreError as exc:
                raise CheckpointStoreError(f"cannot resume run {resume!r}: {exc}") from None
        context = GemsContext(**{**layered, **flags})
        if prompt is not None:
            validate_prompt(prompt, context.max_prompt_chars)
        check_spec(context.generator, generators)
        if context.editor is not None:
            check_spec(context.editor, generators)
        check_spec(context.chat_model, chat_models)
        check_spec(context.critic_spec, chat_models)
        home = gems_home()
        if home.exists() and not home.is_dir():
            raise ConfigError(f"GEMS_HOME {home} is not a folder that can be written (it is a file)")
        memory_kind, memory_where = parse_memory_spec(context.memory)
        if memory_kind == "embedded":
            check_embedded_store(memory_where)
        for folder in context.skills_dirs:
            if not Path(folder).expanduser().is_dir():
                raise ConfigError(f"skills folder {folder} not found (--skills-dir or skills_dirs)")
        if context.max_skills and context.skills_dirs:
            default_registry(context.skills_dirs)  # a skill that does not parse is bad input, found before a run folder exists
        check_checkpointer(checkpoint_db)
    except (
        ConfigError,
        UnknownBackendError,
        BackendLoadError,
        InvalidPromptError,
        UnknownRunError,
        TypeError,
        CheckpointStoreError,
        MemoryStoreError,
        SkillError,
    ) as exc:
        fail(str(exc))
    writable_folder(context.artifact_root or gems_home() / "runs", "--out" if out else "the runs folder")

    show = _ProgressPrinter(enabled=not (as_json or quiet))
    thread_id = resume or uuid.uuid4().hex[:12]
    try:
        with hold_run(thread_id, checkpoint_db), open_checkpointer(checkpoint_db) as saver:
            result = run_gems(
                prompt, context, saver, thread_id=thread_id, resume=resume is not None, on_event=show, on_review=ask_for_review
            )
    except RunBusyError as exc:
        fail(str(exc), code=1)
    except UnknownRunError as exc:
        fail(str(exc))
    except (UnknownBackendError, BackendLoadError, InvalidPromptError, CheckpointStoreError) as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        err.print(f"interrupted; resume with: gems run --resume {thread_id}")
        raise typer.Exit(130) from None
    if result.exception is not None and debug_mode:
        raise result.exception
    if result.state.get("run_dir"):
        from gems_graph.persistence.report import ReportError, write_report

        try:
            write_report(result.state["run_dir"])
        except (OSError, ReportError) as exc:  # a full disk must not hide the run id and the resume command
            if result.status != "failed":
                raise
            err.print(f"[yellow]warning:[/yellow] no report written ({escape(one_line(exc))})", soft_wrap=True)
    summary = result.summary()
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        _print_summary(summary)
    if result.review is not None:
        err.print(f"paused for review after round {result.review['round']}; resume with: gems run --resume {result.thread_id}")
        raise typer.Exit(PAUSED_EXIT_CODE)
    if result.status == "failed":
        err.print(f"[red]failed:[/red] {escape(redact(str(summary['error'])))}", markup=True, soft_wrap=True)
        err.print(f"resume with: gems run --resume {result.thread_id}", soft_wrap=True)
        raise typer.Exit(1)


class _ProgressPrinter:
    """Turns the nodes' custom stream events into lines on stderr."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.last_prompt: str | None = None

    def __call__(self, ev: dict[str, Any]) -> None:
        if not self.enabled:
            return
        kind = ev.get("event")
        if kind == "run_started":
            err.print(f"[bold]run folder[/bold] {ev['run_dir']}", soft_wrap=True)
            err.print("loading models ...")
        elif kind == "checks":
            err.print(
                "[bold]checks[/bold]: " + " | ".join(f"{c['id']} {c['question']}" if isinstance(c, dict) else c for c in ev["checks"]),
                soft_wrap=True,
            )
        elif kind == "round_started":
            err.rule(f"round {ev['round']}")
            err.print(f"prompt: {ev['prompt']}", markup=False, soft_wrap=True)
            if ev.get("action") == "edit":
                parent, region = ev.get("parent") or {}, ev.get("region")
                where = "region " + ", ".join(f"{v:.2f}" for v in region) if region else "the whole image"
                err.print(f"  edit: round {parent.get('round')} candidate {parent.get('index')}, {where}", markup=False, soft_wrap=True)
            elif self.last_prompt is not None:
                err.print(f"  change: {prompt_change(self.last_prompt, ev['prompt'])}", markup=False, soft_wrap=True)
            self.last_prompt = ev["prompt"]
        elif kind == "candidate_ready":
            where = escape(ev["image"]) if ev["image"] else f"[red]{escape(str(ev['error']))}[/red]"
            made = ", edit" if ev.get("edit") else ""
            err.print(f"  candidate {ev['index']} (seed {ev['seed']}{made}): {where}")
        elif kind == "verdicts" and ev.get("score") is not None:
            unanswered = f"  unanswered {' '.join(ev['unanswered'])}" if ev.get("unanswered") else ""
            err.print(
                f"  candidate {ev['index']}: score {ev['score']:.2f}  passed {' '.join(ev['passed']) or '-'}  "
                f"failed {' '.join(ev['failed']) or '-'}{unanswered}",
                markup=False,
            )
        elif kind == "new_prompt":
            err.print(f"  experience: {ev['experience']}", markup=False)
        elif kind == "skills_loaded":
            err.print(f"skills: {', '.join(ev.get('skills') or [])}")
        elif kind == "lessons_recalled":
            err.print(f"recalled lessons: {len(ev.get('lessons') or [])}")


@app.command("config")
def config_command(
    config: Optional[str] = typer.Option(
        None, "--config", help="gems.toml to read (default: $GEMS_CONFIG, ./gems.toml, $GEMS_HOME/gems.toml)."
    ),
    reference: bool = typer.Option(False, "--reference", help="Print a commented gems.toml with every key and its default instead."),
    preset: Optional[str] = typer.Option(None, "--preset", help="Show the settings with this preset (e.g. gems-paper) in effect."),
    generator: Optional[str] = typer.Option(
        None, "--generator", "-g", help="Generator spec to show them for (a preset's sizes and steps depend on it)."
    ),
) -> None:
    """Print the effective settings and where each came from (default, preset, file, env)."""
    from gems_graph.config import load_config, toml_assignment, unknown_env
    from gems_graph.config import reference as config_reference

    if reference:
        sys.stdout.write(config_reference())
        return
    try:
        loaded = load_config({"generator": generator}, config_path=config, preset=preset)
    except ConfigError as exc:
        fail(str(exc))
    out = console()
    out.print(f"# config file: {loaded.path or 'none'}", markup=False)
    if loaded.preset:
        out.print(f"# preset: {loaded.preset}", markup=False)
    for name, value in loaded.values.items():
        out.print(toml_assignment(name, value, comment=loaded.sources.get(name, "default")), markup=False)
    for warning in unknown_env():
        err.print(f"[yellow]warning:[/yellow] {warning}", soft_wrap=True)


def prompt_change(before: str, after: str) -> str:
    """What the refiner changed in the prompt, as the words it added and removed."""
    from gems_graph.memory.lessons import prompt_diff

    added, removed = prompt_diff(before, after)
    parts = [f"+ {'; '.join(added)}"] if added else []
    parts += [f"- {'; '.join(removed)}"] if removed else []
    return "  ".join(parts) or "same prompt, new seed"


def ask_for_review(review: dict[str, Any]) -> dict[str, Any] | None:
    """The terminal side of ``human_review``: show the round's candidates, read one answer line.

    ``accept`` (or ``a``) keeps the best image, ``accept N`` candidate N; any other text is
    a note for the refiner; an empty line goes on without one. End of input (Ctrl-D, or
    no terminal) leaves the run paused, to answer later with ``gems run --resume ID``.
    """
    err.rule(f"review of round {review['round']}")
    err.print(f"prompt: {review['prompt']}", markup=False, soft_wrap=True)
    for cand in review["candidates"]:
        failed = [v["question"] for v in cand["verdicts"] if not v["passed"]]
        score = "-" if cand["score"] is None else f"{cand['score']:.2f}"
        err.print(f"  [{cand['index']}] {cand['image'] or cand['error']}  score {score}", markup=False, soft_wrap=True)
        for question in failed:
            err.print(f"      failed: {question}", markup=False, soft_wrap=True)
    with_image = {cand["index"] for cand in review["candidates"] if cand["image"]}
    while True:
        err.print("accept [INDEX] | a note for the refiner | Enter to go on | Ctrl-D to pause: ", end="")
        line = sys.stdin.readline()
        if not line:
            err.print("")
            return None
        answer = line.strip()
        word, _, rest = answer.partition(" ")
        if word.lower() not in ("a", "accept"):
            return {"feedback": answer} if answer else {}
        if not rest.strip():
            return {"accept": True}
        if rest.strip().isdigit() and int(rest) in with_image:
            return {"accept": True, "index": int(rest)}
        # Asked again rather than failing the run: a typo is not a reason to lose the review.
        err.print(f"no candidate {rest.strip()!r} with an image; the candidates are {sorted(with_image)}", markup=False)


def _print_summary(summary: dict[str, Any]) -> None:
    err.rule("result")
    out = console()
    out.print(f"status: {summary['status']}  score: {summary['score']}  rounds: {summary['rounds']}")
    out.print(f"best image: {summary['best_image']}")
    out.print(f"run.json: {summary['run_json']}")
    out.print(f"report: {summary['report']}")
    out.print(f"run id: {summary['thread_id']}")
    out.print(f"usage: {usage_line(summary['usage'])}", markup=False, soft_wrap=True)
    for note in summary["notes"]:
        out.print(f"note: {note}", markup=False)


def _mount_subcommands() -> None:
    from gems_graph.backends.cli import doctor_command, serve_generator_command
    from gems_graph.memory.cli import memory_app
    from gems_graph.persistence.report import report_command
    from gems_graph.skills.cli import skills_app

    app.command("serve-generator", help="Serve a generator spec over HTTP (OpenAI images API, JSON in PNG out; /health).")(
        serve_generator_command
    )
    app.command("doctor", help="Check the configured backends: imports, device, endpoints, structured output, logprobs.")(doctor_command)

    from gems_graph.eval.cli import eval_command

    app.command("eval", help="Compare the methods (single ... gems) at equal image budgets on a suite.")(eval_command)
    app.command("report", help="Write RUN_DIR/report.html: rounds, images, checks, experiences, score chart.")(report_command)
    from gems_graph.app.learn_cli import learn_command

    skills_app.command("learn", help="Learn skills from past runs' lessons; keep each only if it helps on a dev split.")(learn_command)
    app.add_typer(skills_app, name="skills", help="List, show and validate skills; learn new ones from past runs.")
    app.add_typer(memory_app, name="memory", help="Inspect, search, export or wipe the lessons kept across runs.")


_mount_subcommands()

if __name__ == "__main__":  # pragma: no cover
    main()
