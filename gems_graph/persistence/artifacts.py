"""Files a run leaves behind: its folder, the PNGs in it and ``run.json``."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image

from gems_graph.errors import needs_redaction, redact_values
from gems_graph.records import ImageRef


def save_png(image: Image.Image, path: Path) -> ImageRef:
    """Write ``image`` atomically and return its reference (path, sha256, size)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    data = buf.getvalue()
    try:
        Path(tmp).write_bytes(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return ImageRef(path=str(path), sha256=hashlib.sha256(data).hexdigest(), width=image.width, height=image.height)


def _ns_part(part: str) -> str:
    """``node:<task id>`` -> ``node-<first 8 of the id>``; a call counter stays as it is."""
    node, _, task = part.partition(":")
    return f"{node}-{task[:8]}" if task else node


def new_run_folder(root: Path, thread_id: str, checkpoint_ns: str = "", *, thread_ran_before: bool = False) -> tuple[str, Path]:
    """The run's id and folder: ``root/<thread id>`` for a run of its own thread.

    ``checkpoint_ns`` is the planner task's own namespace (``planner:<task>``, with the
    enclosing graphs' ``node:<task>`` parts before it when GEMS runs as a subgraph).

    A GEMS subgraph is named after its parent's thread, node and task
    (``<thread>-<node>-<task>``; LangGraph numbers further calls from the same task,
    ``-1``, ``-2``), so each call of it keeps its own folder and a resumed parent
    finds the same one. A new run on a thread that already ran (a new
    prompt sent in Studio) gets ``-2``, ``-3``... and leaves the earlier folder alone.
    Otherwise the folder is reused: re-running a thread from scratch rewrites it.
    """
    enclosing = checkpoint_ns.split("|")[:-1]  # the last part is this planner task's own
    base = "-".join([thread_id, *(_ns_part(part) for part in enclosing)])
    run_id = base
    for n in range(2, 10_000):
        if not thread_ran_before or not (root / run_id / "run.json").exists():
            break
        run_id = f"{base}-{n}"
    run_dir = root / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_id, run_dir


def candidate_path(run_dir: str, round_index: int, index: int, seed: int) -> Path:
    return Path(run_dir) / f"round_{round_index:02d}" / f"candidate_{index:02d}_seed{seed}.png"


RUN_JSON_KEYS = (
    "run_id",
    "prompt",
    "status",
    "error",
    "score",
    "best_image",
    "best",
    "rounds_used",
    "checks",
    "rounds",
    "notes",
    "skills",
    "recalled_lessons",
    "settings",
    "usage",
)


def write_run_json(run_dir: str, record: dict[str, Any]) -> Path:
    """Write the run's summary atomically (it is rewritten after every round)."""
    path = Path(run_dir) / "run.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {k: record.get(k) for k in RUN_JSON_KEYS if k in record}
    tmp = path.with_suffix(".json.tmp")
    # Indented once the run is over; compact (C-encoded, ~10x faster) while it runs.
    indent = 2 if record.get("status") not in (None, "running") else None
    # Error texts are redacted where they are made; this catches any that were not. Value by
    # value (redacting the JSON text could cut a string's escapes and leave invalid JSON), and
    # only when the text holds something to redact: the record is rewritten every round.
    text = json.dumps(data, indent=indent, default=str)
    if needs_redaction(text):
        text = json.dumps(redact_values(data), indent=indent, default=str)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:  # a full disk leaves no half-written (often empty) ``run.json.tmp`` behind
        tmp.unlink(missing_ok=True)
    return path
