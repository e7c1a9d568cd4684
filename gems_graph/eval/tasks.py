"""One task of an eval: its settings, its key and seed, running it, and the log it lands in.

Shared by the two executors (threads of this process in ``harness``, Ray tasks in
``ray_executor``), so both run a task the same way and write the same records.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from gems_graph.errors import one_line
from gems_graph.eval.methods import METHODS, MethodSettings, cost_fields, run_method
from gems_graph.eval.suites import SHAPES_SUITES, EvalItem
from gems_graph.usage import zero_usage

SAMPLE_SEED_STRIDE = 10_000_000
EXECUTORS = ("local", "ray")
#: Torch's intra-op threads while eval tasks run, on either executor. A float sum splits
#: across threads differently at another count: with torch's default (a thread per core
#: here, one in a Ray task) one pixel differed in 3 of 18 shapes images between the local
#: and the Ray executor. Seeds are fixed per task; this was the other source of difference.
EVAL_TORCH_THREADS = 1


class EvalConfigError(ValueError):
    """Bad settings, or an out folder that holds an eval with other settings."""


@dataclass
class EvalConfig:
    suite: str
    out: str | Path
    path: str | None = None
    split: str = "dev"
    methods: Sequence[str] = METHODS
    budget: int = 5
    samples: int = 1
    generator: Any = "shapes"
    chat_model: Any = "shapes"
    critic_model: Any = None
    #: Chat-model spec (or instance) of the VLM that scores GenEval2/custom with Soft-TIFA.
    judge: Any = None
    #: Tasks in flight at once; None: 1 locally, every CPU slot of the cluster on Ray.
    concurrency: int | None = None
    seed: int = 0
    limit: int | None = None
    per_category: int | None = None
    categories: Sequence[str] | None = None
    memory: str | None = None
    max_skills: int = 2
    skills_dirs: list[str] = field(default_factory=list)
    #: Extra ``GemsContext`` fields for every run (width, height, steps, guidance, ...).
    context: dict[str, Any] = field(default_factory=dict)
    progress: bool = True
    #: "local" (threads here) or "ray" (tasks on a Ray cluster); not part of the fingerprint.
    executor: str = "local"
    #: Ray cluster address (``ray://...``, ``HOST:PORT``, ``auto``); None: $RAY_ADDRESS or a new local cluster.
    address: str | None = None
    #: Ray resources each task reserves (a fractional GPU lets tasks share one).
    task_cpus: float = 1.0
    task_gpus: float = 0.0

    def fingerprint(self) -> dict[str, Any]:
        """What must match for a rerun to continue an out folder (methods may be added)."""
        return {
            "suite": self.suite,
            "path": str(Path(self.path).resolve()) if self.path else None,
            "split": self.split if self.suite in SHAPES_SUITES else None,
            "budget": self.budget,
            "samples": self.samples,
            "seed": self.seed,
            "generator": spec_name(self.generator),
            "chat_model": spec_name(self.chat_model),
            "critic_model": spec_name(self.critic_model),
            "judge": spec_name(self.judge),
            "memory": self.memory,
            "max_skills": self.max_skills,
            "skills_dirs": list(self.skills_dirs),
            "context": dict(sorted(self.context.items())),
        }


def spec_name(x: Any) -> Any:
    """Specs as they are; instances by class name (enough to notice a different backend)."""
    return x if x is None or isinstance(x, str) else type(x).__name__


def task_key(method: str, item: EvalItem, sample: int) -> str:
    return f"{method}|{item.id}|{sample}"


def _task_id(item: EvalItem, sample: int) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{item.id}-s{sample}")


class RecordSink(Protocol):
    """Where finished task records go: ``ResultLog``, or a writer in front of it."""

    def append(self, record: dict[str, Any]) -> None: ...


class ResultLog:
    """``results.jsonl``: one line per finished task, appended and fsynced under a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def load(self) -> dict[str, dict[str, Any]]:
        """Last record per key; a torn last line (a crash mid-write) is dropped from the file."""
        if not self.path.exists():
            return {}
        good, bad = [], 0
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                rec = None
            if isinstance(rec, dict) and isinstance(rec.get("key"), str):  # task_key's; an edited line may hold anything
                good.append(rec)
            else:
                bad += 1
        if bad:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text("".join(json.dumps(r) + "\n" for r in good), encoding="utf-8")
            os.replace(tmp, self.path)
        return {r["key"]: r for r in good}

    def append(self, record: dict[str, Any]) -> None:
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, default=str) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def task_record(method: str, item: EvalItem, sample: int, cfg: EvalConfig) -> dict[str, Any]:
    """What identifies a task in the log, its seed included."""
    return {
        "key": task_key(method, item, sample),
        "method": method,
        "item": item.id,
        "index": item.index,
        "category": item.category,
        "prompt": item.prompt,
        "sample": sample,
        "seed": item.seed + cfg.seed + SAMPLE_SEED_STRIDE * sample,
    }


def no_image_score(cfg: EvalConfig, item: EvalItem, scored: bool) -> float | None:
    """A scored task that made no image counts as a failure (0), not as missing."""
    return 0.0 if scored and (cfg.suite in SHAPES_SUITES or item.vqa) else None


def no_image_scores(cfg: EvalConfig, item: EvalItem, scored: bool) -> dict[str, float | None]:
    """``no_image_score``, with AM and GM at 0 too where the suite scores atoms (shapes-hard),
    so a prompt that made no image counts in AM as it does in the score."""
    score = no_image_score(cfg, item, scored)
    if score is not None and cfg.suite == "shapes-hard":
        return {"score": score, "am": score, "gm": score}
    return {"score": score}


def failed_task(rec: dict[str, Any], exc: BaseException, score: float | None | dict[str, float | None]) -> dict[str, Any]:
    """The record of a task that made no image; it is retried on the next run.

    ``score`` is the score, or the scores (``no_image_scores``) the record takes."""
    scores = score if isinstance(score, dict) else {"score": score}
    return {
        **rec,
        "final_image": None,
        "attempts": 0,
        "rounds": 0,
        **cost_fields(zero_usage()),
        "status": "error",
        "error": f"{type(exc).__name__}: {one_line(exc)}",
        "wall_s": None,
        **scores,
    }


def run_task(
    method: str, item: EvalItem, sample: int, cfg: EvalConfig, settings: MethodSettings, scorer: Callable, scored: bool, out: Path
) -> dict[str, Any]:
    """Run one task and score its image; an exception becomes an error record."""
    rec = task_record(method, item, sample, cfg)
    try:
        used = run_method(method, item, rec["seed"], settings, _task_id(item, sample))
    except Exception as exc:  # noqa: BLE001 - recorded; the task is retried on the next run
        return failed_task(rec, exc, no_image_scores(cfg, item, scored))
    final = used.get("final_image")
    if final:
        used["final_image"] = os.path.relpath(final, out)
    rec.update(used)
    rec.update(no_image_scores(cfg, item, scored))
    if final:
        try:
            rec.update(scorer(item, final))
        except Exception as exc:  # noqa: BLE001
            rec["score"] = None
            rec.update({k: None for k in ("am", "gm") if k in rec})  # nor AM: the image went unscored
            rec["error"] = f"scoring: {type(exc).__name__}: {one_line(exc)}"
    return rec
