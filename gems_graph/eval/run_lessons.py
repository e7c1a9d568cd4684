"""The lessons an eval folder's runs teach, distilled as the ``remember`` node distils a run's.

An eval's methods run without memory, so their runs never wrote lessons; their
``run.json`` files still hold every round. Each run is distilled here the way
``remember`` would have done it: the last round, which no refiner compressed (a run
that passes ends without refining), is compressed first by the chat model, so the
lesson can say which move fixed it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gems_graph.memory.lessons import Lesson, distill_lessons, reads_last_experience
from gems_graph.memory.store import normalize_lesson
from gems_graph.nodes.refiner import compress_round


def lessons_from_eval(folder: str | Path, model: Any, *, generator_family: str = "shapes") -> list[Lesson]:
    """Lessons of every run under ``folder/runs/<method>/<task>/run.json``, each with its run's
    id (``<method>/<task>``); ``model`` compresses last rounds that have no experience."""
    root = Path(folder)
    if not (root / "runs").is_dir():
        raise FileNotFoundError(f"{root}: not an eval folder (no runs/ in it)")
    out: list[Lesson] = []
    for run_json in sorted((root / "runs").glob("*/*/run.json")):
        try:
            run = json.loads(run_json.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(run, dict) or not run.get("rounds") or not run.get("best"):
            continue
        rounds = list(run["rounds"])
        checks = list(run.get("checks") or [])
        prompt = str(run.get("prompt") or "")
        if not rounds[-1].get("experience") and reads_last_experience(rounds):
            experience, _ = compress_round(model, prompt, rounds[-1], checks)
            rounds[-1] = {**rounds[-1], "experience": experience}
        rid = run_json.parent.relative_to(root / "runs").as_posix()
        for lesson in distill_lessons(
            prompt,
            rounds,
            checks,
            generator_family=str(run.get("generator_family") or generator_family),
            skills=list(run.get("skills") or []),
            status=str(run.get("status") or "exhausted"),
        ):
            out.append(normalize_lesson({**lesson, "runs": [rid], "created_at": "eval"}))
    return out
