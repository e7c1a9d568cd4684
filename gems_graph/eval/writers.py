"""Folders and files in the layouts the official scorers read.

GenEval (github.com/djghosh13/geneval, ``evaluation/evaluate_images.py``) reads
``<outdir>/<index:05d>/metadata.jsonl`` (the prompt's line of
``evaluation_metadata.jsonl``, verbatim) and ``<outdir>/<index:05d>/samples/<k:04d>.png``.
GenEval2 (github.com/facebookresearch/GenEval2, ``evaluation.py --image_filepath_data``)
reads one JSON object mapping each prompt to one image path.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gems_graph.eval.suites import EvalItem


def write_geneval(outdir: Path, items: Iterable[EvalItem], images: dict[tuple[str, int], str]) -> Path:
    """One method's GenEval folder; ``images`` maps (item id, sample) to a PNG path."""
    outdir.mkdir(parents=True, exist_ok=True)
    for item in items:
        folder = outdir / f"{item.index:05d}"
        (folder / "samples").mkdir(parents=True, exist_ok=True)
        (folder / "metadata.jsonl").write_text(item.raw + "\n", encoding="utf-8")
        for (item_id, k), src in sorted(images.items()):
            if item_id == item.id:
                _copy(Path(src), folder / "samples" / f"{k:04d}.png")
    return outdir


def write_geneval2(path: Path, items: Iterable[EvalItem], images: dict[str, str]) -> Path:
    """``{prompt: absolute image path}`` for the items that have an image (``images`` by item id)."""
    mapping: dict[str, Any] = {}
    for item in items:
        if item.id in images:
            if item.prompt in mapping:
                raise ValueError(f"GenEval2 maps prompts to images, and prompt {item.prompt!r} appears twice")
            mapping[item.prompt] = str(Path(images[item.id]).resolve())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(mapping, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


class GenEval2File:
    """One method's ``{prompt: image path}`` file, rewritten (atomically) each time a prompt
    finishes, so a crash loses nothing already generated. The official script
    (lcqysl/GEMS ``eval/GenEval2.py``) writes it only once every worker is done."""

    def __init__(self, path: Path, items: Iterable[EvalItem], images: dict[str, str] | None = None) -> None:
        self.path = path
        self.items = list(items)
        self._images = dict(images or {})
        self._lock = threading.Lock()
        write_geneval2(self.path, self.items, self._images)

    def add(self, item_id: str, image_path: str) -> None:
        with self._lock:
            self._images[item_id] = image_path
            write_geneval2(self.path, self.items, self._images)


def geneval2_file_name(method: str, sample: int, samples: int) -> str:
    """``<method>.json``, or ``<method>_sample<k>.json`` when there are several samples."""
    return f"{method}.json" if samples == 1 else f"{method}_sample{sample}.json"


def _copy(src: Path, dst: Path) -> None:
    """Copy as PNG; a non-PNG source is converted so the scorer's glob finds it."""
    if src.suffix.lower() == ".png":
        shutil.copyfile(src, dst)
        return
    from PIL import Image

    with Image.open(src) as img:
        img.save(dst, format="PNG")
