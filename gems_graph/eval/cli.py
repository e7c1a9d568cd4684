"""``gems eval SUITE [PATH]``: the paper's comparison on a suite, resumable.

Mount with ``app.command("eval")(eval_command)``, or run ``eval_app`` on its own.
The Markdown table goes to stdout (``--json``: one JSON object instead); progress
and the paths written go to stderr. Bad settings exit with 2 before anything runs;
an interrupt exits with 130 and the same command resumes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from gems_graph.context import ConfigError
from gems_graph.eval.methods import METHODS
from gems_graph.eval.suites import SHAPES_SUITES, SUITES
from gems_graph.memory.store import memory_is_off
from gems_graph.terminal import console, fail

err = console(stderr=True)


def eval_command(
    suite: str = typer.Argument(..., help="shapes | shapes-hard | geneval | geneval2 | custom"),
    path: Optional[str] = typer.Argument(
        None, help="The suite's JSONL: evaluation_metadata.jsonl (geneval), geneval2_data.jsonl (geneval2), or your prompts (custom)."
    ),
    split: str = typer.Option(
        "dev", "--split", help="shapes and shapes-hard only: 'dev' (tuning) or 'test' (held out, for reported figures)."
    ),
    methods: Optional[str] = typer.Option(
        None, "--methods", help=f"Comma-separated subset of {','.join(METHODS)} (default: all; 'explicit' on the shapes suites only)."
    ),
    budget: Optional[int] = typer.Option(
        None, "--budget", "-n", min=1, help="Images per prompt: N candidates for search, N rounds for loop and gems (default 5)."
    ),
    samples: int = typer.Option(1, "--samples", min=1, help="Independent final images per prompt and method (GenEval usually uses 4)."),
    out: Optional[str] = typer.Option(
        None, "--out", "-o", help="Eval folder (default $GEMS_HOME/evals/<suite>-<split or file>); rerun to resume."
    ),
    concurrency: Optional[int] = typer.Option(
        None, "--concurrency", "-j", min=1, help="Tasks (prompt x method) in flight at once (default 1; with Ray: the cluster's CPU slots)."
    ),
    executor: str = typer.Option("local", "--executor", help="local (threads in this process) or ray (tasks on a Ray cluster)."),
    address: Optional[str] = typer.Option(
        None, "--address", help="Ray cluster address (HOST:PORT, ray://HOST:10001, auto); default $RAY_ADDRESS or a new local cluster."
    ),
    ray_cpus: float = typer.Option(1.0, "--ray-cpus", min=0.0, help="CPUs each Ray task reserves."),
    ray_gpus: float = typer.Option(0.0, "--ray-gpus", min=0.0, help="GPUs each Ray task reserves (0.25: four tasks share a GPU)."),
    generator: str = typer.Option("shapes", "--generator", "-g", help="Generator spec."),
    chat_model: str = typer.Option("shapes", "--chat-model", "-m", help="Chat-model spec for planner and refiner."),
    critic_model: Optional[str] = typer.Option(None, "--critic-model", help="Chat-model spec for the critic (default --chat-model)."),
    prompting_guide: Optional[str] = typer.Option(
        None, "--prompting-guide", help="Prompting guide for the planner and refiner in place of the generator's own; 'none' shows none."
    ),
    judge: Optional[str] = typer.Option(
        None,
        "--judge",
        help="VLM spec for Soft-TIFA scoring (geneval2, custom), e.g. openai-compatible:http://127.0.0.1:8000/v1#Qwen3-VL-8B-Instruct.",
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="Added to every prompt's seed."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N prompts."),
    per_category: Optional[int] = typer.Option(None, "--per-category", min=1, help="Only the first N prompts of each category."),
    category: Optional[list[str]] = typer.Option(None, "--category", help="Only this category (repeatable)."),
    memory: Optional[str] = typer.Option(
        None, "--memory", help="Memory spec for the gems method (default: a store inside the eval folder)."
    ),
    max_skills: Optional[int] = typer.Option(None, "--max-skills", min=0, help="Most skills per prompt for the gems method (default 2)."),
    skills_dir: Optional[list[str]] = typer.Option(None, "--skills-dir", help="Folder of user skills (repeatable)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Denoising steps override."),
    guidance: Optional[float] = typer.Option(None, "--guidance", help="Guidance scale override."),
    width: Optional[int] = typer.Option(None, "--width"),
    height: Optional[int] = typer.Option(None, "--height"),
    preset: Optional[str] = typer.Option(
        None,
        "--preset",
        help="Named settings, e.g. gems-paper (the official GEMS setup; methods default to single,gems); flags override it.",
    ),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary and paths as one JSON object on stdout."),
) -> None:
    """Compare single, rewrite, search, loop, loop+skills and gems on SUITE at an equal image budget."""
    from gems_graph.eval.harness import run_eval, select_items
    from gems_graph.eval.suites import SuiteError
    from gems_graph.eval.tasks import EXECUTORS, EvalConfig, EvalConfigError
    from gems_graph.models.registry import BackendLoadError, UnknownBackendError, chat_models, check_spec, generators
    from gems_graph.persistence.home import gems_home

    if suite not in SUITES:
        fail(f"unknown suite {suite!r}; known: {', '.join(SUITES)}")
    if suite not in SHAPES_SUITES and not path:
        fail(f"suite {suite!r} needs PATH (its JSONL file)")
    if suite == "geneval" and judge:
        fail("GenEval is scored by its official detector, not --judge; see docs/how-to/evaluation.md")
    if executor not in EXECUTORS:
        fail(f"unknown executor {executor!r}; known: {', '.join(EXECUTORS)}")
    if executor == "local" and address:
        fail("--address names a Ray cluster: use it with --executor ray")
    if executor == "ray":
        from gems_graph.eval.ray_executor import import_ray

        try:
            import_ray()  # fail before anything runs
        except EvalConfigError as exc:
            fail(str(exc))
    try:
        context, preset_values = preset_settings(preset, generator)
    except ConfigError as exc:
        fail(str(exc))
    budget = budget if budget is not None else preset_values.get("max_rounds", 5)
    max_skills = max_skills if max_skills is not None else preset_values.get("max_skills", 2)
    memory = memory if memory is not None else preset_values.get("memory")
    overrides = {"steps": steps, "guidance": guidance, "width": width, "height": height, "prompting_guide": prompting_guide}
    context.update({k: v for k, v in overrides.items() if v is not None})
    if methods is None:
        methods = "single,gems" if preset else ",".join(m for m in METHODS if suite in SHAPES_SUITES or m != "explicit")
    name = f"{suite}-{split}" if suite in SHAPES_SUITES else f"{suite}-{Path(path or '').stem}"
    cfg = EvalConfig(
        suite=suite,
        path=path,
        split=split,
        methods=[m.strip() for m in methods.split(",") if m.strip()],
        budget=budget,
        samples=samples,
        out=out or str(gems_home() / "evals" / name),
        generator=generator,
        chat_model=chat_model,
        critic_model=critic_model,
        judge=judge,
        concurrency=concurrency,
        seed=seed,
        limit=limit,
        per_category=per_category,
        categories=category,
        memory=memory,
        max_skills=max_skills,
        skills_dirs=list(skills_dir or []),
        context=context,
        progress=not no_progress,
        executor=executor,
        address=address,
        task_cpus=ray_cpus,
        task_gpus=ray_gpus,
    )
    try:
        check_spec(generator, generators)
        for spec in (chat_model, critic_model, judge):
            if spec:
                check_spec(spec, chat_models)
        n = len(select_items(cfg))
    except (SuiteError, UnknownBackendError, BackendLoadError) as exc:
        fail(str(exc))
    err.print(f"eval {name}: {n} prompts x {len(cfg.methods)} methods x {samples} sample(s) -> {cfg.out}")
    _memory_notes(cfg)
    try:
        result = run_eval(cfg)
    except (EvalConfigError, SuiteError) as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        err.print(
            f"[yellow]interrupted[/yellow]: finished tasks are saved in {cfg.out}/results.jsonl; run the same command again to resume"
        )
        raise typer.Exit(130) from None
    _print(result, as_json)


#: Preset values the eval owns: rounds are the budget, skills and memory its own options.
_EVAL_OWNED = ("max_rounds", "max_skills", "memory")


def preset_settings(preset: str | None, generator: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(``GemsContext`` fields a preset gives every run of an eval, with the generator's
    family sizes; the values of ``_EVAL_OWNED`` it sets, for the eval's own options)."""
    from gems_graph.presets import get_preset, preset_generation

    if not preset:
        return {}, {}
    chosen = get_preset(preset)
    context = {k: v for k, v in chosen.values.items() if k not in _EVAL_OWNED}
    context.update(preset_generation(chosen, generator)[1])
    return context, {k: chosen.values[k] for k in _EVAL_OWNED if k in chosen.values}


def _memory_notes(cfg: Any) -> None:
    """Say what ``gems`` means in this build: memory across prompts makes order matter."""
    from gems_graph.context import context_field_names

    if "gems" not in cfg.methods:
        return
    if "memory" not in context_field_names():
        err.print("note: this build's graph has no memory setting; 'gems' is the loop with skills")
    elif ((cfg.concurrency or 1) > 1 or cfg.executor == "ray") and not memory_is_off(cfg.memory):
        err.print(
            "note: 'gems' shares one memory across prompts; with --concurrency > 1 the order in which "
            "prompts finish (and so what each recalls) can differ between runs"
        )


def _print(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps({"summary": result["summary"], "paths": result["paths"], "errors": result["errors"]}) + "\n")
        return
    sys.stdout.write(result["table"])
    for what, where in result["paths"].items():
        err.print(f"{what}: {where}", markup=False)
    if result["errors"]:
        err.print(f"[yellow]{result['errors']} task(s) ended in an error[/yellow] (see results.json); a rerun retries them")


eval_app = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)
eval_app.command("eval")(eval_command)
