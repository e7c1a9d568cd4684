"""Files a run leaves behind: PNGs under the run folder and ``run.json``."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image

from gems_graph.state import ImageRef


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


def candidate_path(run_dir: str, round_index: int, index: int, seed: int) -> Path:
    return Path(run_dir) / f"round_{round_index:02d}" / f"candidate_{index:02d}_seed{seed}.png"


RUN_JSON_KEYS = (
    "run_id", "prompt", "status", "error", "score", "best_image", "best", "rounds_used",
    "checks", "rounds", "notes", "skills", "recalled_lessons", "settings",
)


def write_run_json(run_dir: str, record: dict[str, Any]) -> Path:
    """Write the run's summary atomically (it is rewritten after every round)."""
    path = Path(run_dir) / "run.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {k: record.get(k) for k in RUN_JSON_KEYS if k in record}
    tmp = path.with_suffix(".json.tmp")
    # Indented once the run is over; compact (C-encoded, ~10x faster) while it runs.
    indent = 2 if record.get("status") not in (None, "running") else None
    tmp.write_text(json.dumps(data, indent=indent, default=str), encoding="utf-8")
    os.replace(tmp, path)
    return path
