"""Running an eval: every (prompt, sample, method) once, resumably, with a progress bar.

Each finished task is appended to ``<out>/results.jsonl`` at once (flushed and
fsynced), so an interrupted eval loses at most the tasks in flight; a rerun with the
same settings skips what is done and retries what ended in an error. The final files
are rebuilt from that log in suite order, and hold no wall times, so a resumed eval
writes the same ``results.json`` as an uninterrupted one:

* ``results.json``  settings, summary and one record per task (deterministic)
* ``results.md``    the table per method and per category
* ``plot.png|svg``  score vs images per prompt
* ``timings.json``  wall time per task (differs run to run by nature)
* ``geneval/<method>/`` or ``geneval2/<method>.json``  what the official scorers read
  (the GenEval2 file is rewritten as each prompt finishes, so it is never behind the log)
* ``runs/<method>/<task>/``  every run's images and ``run.json``

Tasks run on threads of this process (``executor="local"``, the default) or as Ray
tasks on a cluster (``executor="ray"``, ``gems_graph.eval.ray_executor``); both
use the same seeds, the same torch thread count (``EVAL_TORCH_THREADS``) and the same
log, so they write the same bytes and either can resume the other's eval. The Ray
cluster is connected to before anything is written: an address that cannot be reached
leaves no output folder.

Seeds: sample k of an item uses ``item.seed + seed + 10_000_000 * k`` as the run's
base seed, the same for every method, so methods are compared on the same noise.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from gems_graph.eval.methods import METHODS, MethodSettings
from gems_graph.eval.report import markdown, plot, summarize
from gems_graph.eval.scoring import make_scorer
from gems_graph.eval.suites import SHAPES_SUITES, EvalItem, load_suite
from gems_graph.eval.tasks import (
    EVAL_TORCH_THREADS,
    EXECUTORS,
    EvalConfig,
    EvalConfigError,
    ResultLog,
    run_task,
    spec_name,
    task_key,
)
from gems_graph.eval.writers import GenEval2File, geneval2_file_name, write_geneval, write_geneval2
from gems_graph.models.cpu_threads import pinned_threads


def select_items(cfg: EvalConfig) -> list[EvalItem]:
    items = load_suite(cfg.suite, cfg.path, split=cfg.split)
    if cfg.categories:
        items = [it for it in items if it.category in set(cfg.categories)]
    if cfg.per_category is not None:
        seen: dict[str, int] = {}
        kept = []
        for it in items:
            seen[it.category] = seen.get(it.category, 0) + 1
            if seen[it.category] <= cfg.per_category:
                kept.append(it)
        items = kept
    return items[: cfg.limit] if cfg.limit is not None else items


def run_eval(cfg: EvalConfig, *, on_record: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run (or finish) the eval in ``cfg.out``; return the summary and the paths written."""
    methods = list(dict.fromkeys(cfg.methods))
    if not methods or any(m not in METHODS for m in methods):
        raise EvalConfigError(f"methods must be a subset of {', '.join(METHODS)}; got {', '.join(cfg.methods) or 'none'}")
    if "explicit" in methods and cfg.suite not in SHAPES_SUITES:
        raise EvalConfigError(
            "the explicit method rewrites prompts in the shapes world's layout register: use it with the shapes suites only"
        )
    if cfg.budget < 1 or cfg.samples < 1 or (cfg.concurrency is not None and cfg.concurrency < 1):
        raise EvalConfigError("budget, samples and concurrency must be >= 1")
    if cfg.executor not in EXECUTORS:
        raise EvalConfigError(f"unknown executor {cfg.executor!r}; known: {', '.join(EXECUTORS)}")
    items = select_items(cfg)
    if not items:
        raise EvalConfigError("no prompts selected")
    with ExitStack() as session:
        if cfg.executor == "ray":
            from gems_graph.eval.ray_executor import ray_session

            session.enter_context(ray_session(cfg))
        with pinned_threads(EVAL_TORCH_THREADS):
            return _run(cfg, items, on_record)


def _run(cfg: EvalConfig, items: list[EvalItem], on_record: Callable[[dict[str, Any]], None] | None) -> dict[str, Any]:
    methods = list(dict.fromkeys(cfg.methods))
    out = Path(cfg.out).absolute()  # absolute: Ray workers run in other folders
    out.mkdir(parents=True, exist_ok=True)
    _check_or_write_settings(out, cfg)

    log = ResultLog(out / "results.jsonl")
    done = {k: r for k, r in log.load().items() if not r.get("error")}
    settings = MethodSettings(
        out=out,
        budget=cfg.budget,
        generator=cfg.generator,
        chat_model=cfg.chat_model,
        critic_model=cfg.critic_model,
        memory=cfg.memory,
        max_skills=cfg.max_skills,
        skills_dirs=list(cfg.skills_dirs),
        context=dict(cfg.context),
    )
    scorer = make_scorer(cfg.suite, cfg.judge)
    scored = cfg.suite in SHAPES_SUITES or (cfg.judge is not None and cfg.suite in ("geneval2", "custom"))
    # Prompt-major order: an interrupted eval has every method on its first prompts.
    tasks = [(it, k, m) for it in items for k in range(cfg.samples) for m in methods if task_key(m, it, k) not in done]
    official = _incremental_official_files(cfg, items, methods, out, done)

    # The official file first: whatever the log holds, the file holds too (a task killed
    # in between is redone on resume and its entry rewritten).
    results = OfficialFileFirst(log, official, out)
    total = len(items) * cfg.samples * len(methods)
    if cfg.executor == "ray":
        from gems_graph.eval.ray_executor import RayTaskPool

        with RayTaskPool(cfg, settings, scored, out, results) as pool:
            _execute(tasks, pool.submit, pool.cancel, pool.in_flight(cfg.concurrency), cfg, total, len(done), on_record)
    else:

        def work(item: EvalItem, sample: int, method: str) -> dict[str, Any]:
            rec = run_task(method, item, sample, cfg, settings, scorer, scored, out)
            results.append(rec)
            return rec

        in_flight = cfg.concurrency or 1
        with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="gems-eval") as threads:
            _execute(tasks, lambda *task: threads.submit(work, *task), Future.cancel, in_flight, cfg, total, len(done), on_record)
    return finalize(cfg, items, methods, out, log)


class OfficialFileFirst:
    """The results log, with each finished image entered in its official ``{prompt: image}`` file
    before the log line is written (both executors append through this)."""

    def __init__(self, log: ResultLog, official: dict[tuple[str, int], Any], out: Path) -> None:
        self.log, self.official, self.out = log, official, out

    def append(self, record: dict[str, Any]) -> None:
        target = self.official.get((record.get("method", ""), record.get("sample", -1)))
        if record.get("final_image") and target is not None:
            target.add(record["item"], str(self.out / record["final_image"]))
        self.log.append(record)


def _execute(
    tasks: list,
    submit: Callable[..., Future],
    cancel: Callable[[Future], Any],
    in_flight: int,
    cfg: EvalConfig,
    total: int,
    already: int,
    on_record: Callable[[dict[str, Any]], None] | None,
) -> None:
    """Keep ``in_flight`` tasks submitted and show progress; every executor goes through here."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from gems_graph.terminal import console

    progress = Progress(
        TextColumn("[bold]eval[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console(stderr=True),
        disable=not cfg.progress,
        transient=False,
    )
    with progress:
        bar = progress.add_task("", total=total, completed=already)
        queue = list(tasks)
        running: set[Future] = set()
        try:
            while queue or running:
                while queue and len(running) < in_flight:  # submit lazily: an interrupt leaves little in flight
                    running.add(submit(*queue.pop(0)))
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    rec = fut.result()  # a BaseException (interrupt) from a task stops the eval here
                    score = "-" if rec.get("score") is None else f"{rec['score']:.2f}"
                    progress.update(bar, advance=1, description=f"{rec['method']} {rec['item']} score {score}")
                    if on_record is not None:
                        on_record(rec)
        except BaseException:
            for fut in running:
                cancel(fut)
            raise


def finalize(cfg: EvalConfig, items: list[EvalItem], methods: list[str], out: Path, log: ResultLog) -> dict[str, Any]:
    """Rebuild the final files from the log, in suite order."""
    by_key = log.load()
    order = {m: i for i, m in enumerate(methods)}
    records = [by_key[task_key(m, it, k)] for it in items for k in range(cfg.samples) for m in methods if task_key(m, it, k) in by_key]
    records.sort(key=lambda r: (r["index"], r["sample"], order[r["method"]]))
    timings = {r["key"]: r.get("wall_s") for r in records}
    records = [{k: v for k, v in r.items() if k != "wall_s"} for r in records]
    summary = summarize(records, methods)
    title = _title(cfg)
    missing = len(items) * cfg.samples * len(methods) - len(records)
    result = {
        "settings": {**cfg.fingerprint(), "methods": methods, "prompts": len(items)},
        "summary": summary,
        "incomplete": missing,
        "records": records,
    }
    _write_json(out / "results.json", result)
    _write_json(out / "timings.json", {"total_s": round(sum(t for t in timings.values() if t), 3), "tasks": timings})
    table = markdown(summary, title, atom_judge="pixel checker" if cfg.suite == "shapes-hard" else "Soft-TIFA")
    (out / "results.md").write_text(table, encoding="utf-8")
    paths = {"results": str(out / "results.json"), "table": str(out / "results.md"), "plot": str(plot(summary, out / "plot", title))}
    paths.update(_official_files(cfg, items, methods, out, records))
    return {"summary": summary, "table": table, "paths": paths, "incomplete": missing, "errors": sum(1 for r in records if r.get("error"))}


def _incremental_official_files(
    cfg: EvalConfig, items: list[EvalItem], methods: list[str], out: Path, done: dict[str, dict[str, Any]]
) -> dict[tuple[str, int], GenEval2File]:
    """GenEval2's ``{prompt: image}`` files, kept up to date as tasks finish (seeded with
    what a previous, interrupted run finished)."""
    if cfg.suite != "geneval2":
        return {}
    files = {}
    for m in methods:
        for k in range(cfg.samples):
            have = {
                r["item"]: str(out / r["final_image"])
                for r in done.values()
                if r["method"] == m and r["sample"] == k and r.get("final_image")
            }
            files[m, k] = GenEval2File(out / "geneval2" / geneval2_file_name(m, k, cfg.samples), items, have)
    return files


def _official_files(cfg: EvalConfig, items: list[EvalItem], methods: list[str], out: Path, records: list[dict[str, Any]]) -> dict[str, str]:
    paths = {}
    for m in methods:
        imgs = {(r["item"], r["sample"]): str(out / r["final_image"]) for r in records if r["method"] == m and r.get("final_image")}
        if cfg.suite == "geneval":
            paths[f"geneval_{m}"] = str(write_geneval(out / "geneval" / m, items, imgs))
        elif cfg.suite == "geneval2":
            for k in range(cfg.samples):
                name = geneval2_file_name(m, k, cfg.samples)
                per = {i: p for (i, s), p in imgs.items() if s == k}
                paths[f"geneval2_{m}" + ("" if cfg.samples == 1 else f"_{k}")] = str(write_geneval2(out / "geneval2" / name, items, per))
    return paths


def _title(cfg: EvalConfig) -> str:
    where = f" ({cfg.split} split)" if cfg.suite in SHAPES_SUITES else ""
    return f"{cfg.suite}{where}, budget {cfg.budget} images per prompt, generator {spec_name(cfg.generator)}"


def _check_or_write_settings(out: Path, cfg: EvalConfig) -> None:
    path = out / "eval.json"
    now = cfg.fingerprint()
    if path.exists():
        before = json.loads(path.read_text(encoding="utf-8"))
        diff = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
        if diff:
            raise EvalConfigError(
                f"{out} holds an eval with other settings ({', '.join(diff)}); use another --out or the same settings to resume"
            )
        return
    _write_json(path, now)


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
