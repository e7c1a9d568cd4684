"""The ``gems`` command line: ``gems run PROMPT`` and friends.

Bad input (empty prompt, control characters, too long, unknown backend, bad flag
values) gives a one-line error and exit code 2 before anything is written.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Optional

import typer
from rich.console import Console

from gems_graph.context import ConfigError, GemsContext
from gems_graph.registry import BackendLoadError, UnknownBackendError, chat_models, check_spec, generators
from gems_graph.validation import InvalidPromptError, validate_prompt

app = typer.Typer(help="GEMS: agent-native text-to-image generation with memory and skills, on LangGraph.",
                  no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  pretty_exceptions_enable=False)
err = Console(stderr=True, highlight=False)


def fail(message: str, code: int = 2) -> None:
    err.print(f"[red]error:[/red] {message}", markup=True, soft_wrap=True)
    raise typer.Exit(code)


@app.callback()
def main() -> None:
    """GEMS command line."""


@app.command()
def run(
    prompt: Optional[str] = typer.Argument(None, help="What the image should show."),
    generator: Optional[str] = typer.Option(None, "--generator", "-g", help="Generator spec (default: shapes)."),
    chat_model: Optional[str] = typer.Option(None, "--chat-model", "-m", help="Chat-model spec for planner and refiner (default: shapes)."),
    critic_model: Optional[str] = typer.Option(None, "--critic-model", help="Chat-model spec for the critic (default: --chat-model)."),
    rounds: Optional[int] = typer.Option(None, "--rounds", "-r", help="Most rounds (default 5)."),
    candidates: Optional[int] = typer.Option(None, "--candidates", "-k", help="Images per round (default 1)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Base seed (default 0)."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Artifact root (default $GEMS_HOME/runs)."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Continue the run with this id."),
    checkpoint_db: Optional[str] = typer.Option(None, "--checkpoint-db", help="SQLite path or postgresql:// URL (default $GEMS_HOME/checkpoints.sqlite)."),
    skills_dir: Optional[list[str]] = typer.Option(None, "--skills-dir", help="Folder of user skills (repeatable)."),
    max_skills: Optional[int] = typer.Option(None, "--max-skills", help="Most skills per prompt (default 2; 0 = off)."),
    memory: Optional[str] = typer.Option(None, "--memory", help="Experience store: chroma (default), chroma:PATH, chroma://host:port, none."),
    config: Optional[str] = typer.Option(None, "--config", help="gems.toml to read (default: $GEMS_CONFIG, ./gems.toml, $GEMS_HOME/gems.toml)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout and nothing else there."),
) -> None:
    """Run the GEMS loop on PROMPT and print where the best image and run.json are."""
    from gems_graph.checkpoint import open_checkpointer
    from gems_graph.config import context_kwargs
    from gems_graph.runner import UnknownRunError, run_gems, saved_settings

    if resume is None:
        try:
            prompt = validate_prompt(prompt if prompt is not None else "", 4000)
        except InvalidPromptError as exc:
            fail(str(exc))
    elif prompt is not None:
        fail("give either a PROMPT or --resume ID, not both")
    flags = {"generator": generator, "chat_model": chat_model, "critic_model": critic_model, "max_rounds": rounds,
             "candidates_per_round": candidates, "seed": seed, "artifact_root": out,
             "skills_dirs": skills_dir or None, "max_skills": max_skills, "memory": memory}
    flags = {k: v for k, v in flags.items() if v is not None}
    try:
        # Precedence: flags > (a resumed run's own settings) > GEMS_* env > gems.toml > defaults.
        layered = context_kwargs({}, config_path=config)
        if resume is not None:
            with open_checkpointer(checkpoint_db) as saver:
                layered.update(saved_settings(saver, resume))
        context = GemsContext(**{**layered, **flags})
        if prompt is not None:
            validate_prompt(prompt, context.max_prompt_chars)
        check_spec(context.generator, generators)
        check_spec(context.chat_model, chat_models)
        check_spec(context.critic_spec, chat_models)
    except (ConfigError, UnknownBackendError, BackendLoadError, InvalidPromptError, UnknownRunError, TypeError) as exc:
        fail(str(exc))

    show = _ProgressPrinter(enabled=not as_json)
    try:
        with open_checkpointer(checkpoint_db) as saver:
            result = run_gems(prompt, context, saver, thread_id=resume, resume=resume is not None, on_event=show)
    except UnknownRunError as exc:
        fail(str(exc))
    except (UnknownBackendError, BackendLoadError, InvalidPromptError) as exc:
        fail(str(exc))
    if result.state.get("run_dir"):
        from gems_graph.report import write_report

        write_report(result.state["run_dir"])
    summary = result.summary()
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        _print_summary(summary)
    if result.status == "failed":
        if not as_json:
            err.print(f"[red]failed:[/red] {summary['error']}\nresume with: gems run --resume {result.thread_id}")
        raise typer.Exit(1)


class _ProgressPrinter:
    """Turns the nodes' custom stream events into lines on stderr."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, ev: dict[str, Any]) -> None:
        if not self.enabled:
            return
        kind = ev.get("event")
        if kind == "planned":
            err.print(f"[bold]run folder[/bold] {ev['run_dir']}")
        elif kind == "checks":
            err.print("[bold]checks[/bold]: " + " | ".join(ev["checks"]))
        elif kind == "round_started":
            err.rule(f"round {ev['round']}")
            err.print(f"prompt: {ev['prompt']}", markup=False)
        elif kind == "candidate_ready":
            where = ev["image"] or f"[red]{ev['error']}[/red]"
            err.print(f"  candidate {ev['index']} (seed {ev['seed']}): {where}")
        elif kind == "verdicts" and ev.get("score") is not None:
            err.print(f"  candidate {ev['index']}: score {ev['score']:.2f}  passed {ev['passed']}  failed {ev['failed']}")
        elif kind == "new_prompt":
            err.print(f"  experience: {ev['experience']}", markup=False)
        elif kind == "skills_loaded":
            err.print(f"skills: {', '.join(ev.get('skills') or [])}")
        elif kind == "lessons_recalled":
            err.print(f"recalled lessons: {len(ev.get('lessons') or [])}")


def _print_summary(summary: dict[str, Any]) -> None:
    err.rule("result")
    out = Console(highlight=False)
    out.print(f"status: {summary['status']}  score: {summary['score']}  rounds: {summary['rounds']}")
    out.print(f"best image: {summary['best_image']}")
    out.print(f"run.json: {summary['run_json']}")
    out.print(f"report: {summary['report']}")
    out.print(f"run id: {summary['thread_id']}")
    for note in summary["notes"]:
        out.print(f"note: {note}", markup=False)


def _mount_subcommands() -> None:
    from gems_graph.skills.cli import skills_app

    from gems_graph.memory.cli import memory_app

    from gems_graph.backends.cli import doctor_command, serve_generator_command
    from gems_graph.report import report_command

    app.command("serve-generator", help="Serve a generator spec over HTTP (JSON in, PNG out; /health).")(serve_generator_command)
    app.command("doctor", help="Check the configured backends: imports, device, endpoints, structured output, logprobs.")(doctor_command)

    from gems_graph.eval.cli import eval_command

    app.command("eval", help="Compare single / rewrite / search / loop / gems at equal image budgets on a suite.")(eval_command)
    app.command("report", help="Write RUN_DIR/report.html: rounds, images, checks, experiences, score chart.")(report_command)
    app.add_typer(skills_app, name="skills", help="List, show and validate skills.")
    app.add_typer(memory_app, name="memory", help="Inspect, search, export or wipe the lessons kept across runs.")


_mount_subcommands()

if __name__ == "__main__":  # pragma: no cover
    app()
