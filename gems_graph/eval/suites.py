"""Prompt suites: what an eval runs, as ``EvalItem``s with stable ids and seeds.

Ids and seeds are a pure function of the suite file (or split) so a rerun finds its
finished work and every method sees the same prompt with the same seed.

* ``shapes``: the offline world's easy splits from ``gems_graph.shapes.suite``
  (GenEval's six categories; dev for tests and tuning, test for the README table);
  scored by the pixel checker, GenEval's rules.
* ``shapes-hard``: the offline world's GenEval2-style splits (``hard_dev_split``,
  ``hard_test_split``: up to three groups, counts, colours, a relation; 3 to 9 atoms);
  the category is the atom bin ("atoms 3-4", ...), and the pixel checker answers each
  atom (``gems_graph.shapes.atoms``): ``score`` is all atoms right, ``am`` their mean.
* ``geneval PATH``: GenEval's ``evaluation_metadata.jsonl`` (553 prompts); the raw
  line is kept because the official layout copies it verbatim.
* ``geneval2 PATH``: GenEval2's ``geneval2_data.jsonl`` (``vqa_list`` per prompt);
  the category is the prompt's atom count, as GenEval2 reports it.
* ``custom PATH``: JSONL of ``{"prompt", "id"?, "category"?, "seed"?, "checks"?}``;
  ``checks`` are questions (expected answer "Yes") or ``[question, answer]`` pairs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

SUITES = ("shapes", "shapes-hard", "geneval", "geneval2", "custom")
#: The offline world's suites: built in (no PATH), split dev/test, the explicit method applies.
SHAPES_SUITES = ("shapes", "shapes-hard")


class SuiteError(ValueError):
    """A suite file is missing or malformed; the message names the file and line."""


@dataclass(frozen=True)
class EvalItem:
    """One prompt of a suite."""

    id: str
    index: int
    category: str
    prompt: str
    seed: int
    #: [question, expected answer] pairs for VQA scoring (GenEval2, custom), else empty.
    vqa: tuple[tuple[str, str], ...] = ()
    #: The suite's own line for this prompt, verbatim (GenEval copies it into its layout).
    raw: str = ""
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def load_suite(name: str, path: str | Path | None = None, *, split: str = "dev") -> list[EvalItem]:
    if name == "shapes":
        return shapes_items(split)
    if name == "shapes-hard":
        return shapes_hard_items(split)
    if name not in SUITES:
        raise SuiteError(f"unknown suite {name!r}; known: {', '.join(SUITES)}")
    if path is None:
        raise SuiteError(f"suite {name!r} needs a PATH to its JSONL file")
    lines = _jsonl(Path(path))
    if name == "geneval":
        return [_geneval_item(i, raw, rec, path) for i, (raw, rec) in enumerate(lines)]
    if name == "geneval2":
        return [_geneval2_item(i, raw, rec, path) for i, (raw, rec) in enumerate(lines)]
    return _custom_items(lines, path)


def shapes_items(split: str) -> list[EvalItem]:
    if split not in ("dev", "test"):
        raise SuiteError(f"shapes split must be 'dev' or 'test', got {split!r}")
    return list(_shapes_items(split))


@lru_cache(maxsize=2)
def _shapes_items(split: str) -> tuple[EvalItem, ...]:
    """Cached: drawing the splits takes seconds, and they never change within a process."""
    from gems_graph.shapes import suite

    items = suite.dev_split() if split == "dev" else suite.test_split()
    return tuple(
        EvalItem(id=f"{split}-{i:04d}", index=i, category=it.category, prompt=it.prompt, seed=it.seed) for i, it in enumerate(items)
    )


def shapes_hard_items(split: str) -> list[EvalItem]:
    if split not in ("dev", "test"):
        raise SuiteError(f"shapes-hard split must be 'dev' or 'test', got {split!r}")
    return list(_shapes_hard_items(split))


@lru_cache(maxsize=2)
def _shapes_hard_items(split: str) -> tuple[EvalItem, ...]:
    from gems_graph.shapes import suite
    from gems_graph.shapes.atoms import atom_count
    from gems_graph.shapes.grammar import parse_prompt

    items = suite.hard_dev_split() if split == "dev" else suite.hard_test_split()
    return tuple(
        EvalItem(
            id=f"hard-{split}-{i:04d}",
            index=i,
            category=it.category,
            prompt=it.prompt,
            seed=it.seed,
            meta={"atom_count": atom_count(parse_prompt(it.prompt))},
        )
        for i, it in enumerate(items)
    )


def _jsonl(path: Path) -> list[tuple[str, dict[str, Any]]]:
    if not path.is_file():
        raise SuiteError(f"{path}: no such file")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SuiteError(f"{path}:{n}: not JSON ({exc.msg})") from exc
        if not isinstance(rec, dict) or not isinstance(rec.get("prompt"), str) or not rec["prompt"].strip():
            raise SuiteError(f"{path}:{n}: each line must be an object with a non-empty 'prompt'")
        out.append((line.strip(), rec))
    if not out:
        raise SuiteError(f"{path}: no prompts")
    return out


def _geneval_item(i: int, raw: str, rec: dict[str, Any], path: Any) -> EvalItem:
    if "tag" not in rec or "include" not in rec:
        raise SuiteError(f"{path}:{i + 1}: not a GenEval line (needs 'tag' and 'include')")
    return EvalItem(id=f"{i:05d}", index=i, category=rec["tag"], prompt=rec["prompt"], seed=i, raw=raw)


def _geneval2_item(i: int, raw: str, rec: dict[str, Any], path: Any) -> EvalItem:
    pairs = rec.get("vqa_list")
    if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
        raise SuiteError(f"{path}:{i + 1}: not a GenEval2 line (needs 'vqa_list' of [question, answer])")
    skills = rec.get("skills")
    if skills is not None and (not isinstance(skills, list) or len(skills) != len(pairs)):
        raise SuiteError(f"{path}:{i + 1}: 'skills' must name one skill per [question, answer] pair ({len(pairs)})")
    category = f"atoms_{rec['atom_count']}" if "atom_count" in rec else "all"
    return EvalItem(
        id=f"{i:04d}",
        index=i,
        category=category,
        prompt=rec["prompt"],
        seed=i,
        vqa=tuple((str(q), str(a)) for q, a in pairs),
        raw=raw,
        meta={"skills": rec.get("skills"), "atom_count": rec.get("atom_count")},
    )


def _custom_items(lines: list[tuple[str, dict[str, Any]]], path: Any) -> list[EvalItem]:
    items, seen = [], set()
    for i, (raw, rec) in enumerate(lines):
        item_id = str(rec.get("id", f"{i:05d}"))
        if item_id in seen:
            raise SuiteError(f"{path}:{i + 1}: duplicate id {item_id!r}")
        seen.add(item_id)
        vqa = []
        for c in rec.get("checks") or []:
            if isinstance(c, str):
                vqa.append((c, "Yes"))
            elif isinstance(c, list) and len(c) == 2:
                vqa.append((str(c[0]), str(c[1])))
            else:
                raise SuiteError(f"{path}:{i + 1}: a check is a question or a [question, answer] pair")
        items.append(
            EvalItem(
                id=item_id,
                index=i,
                category=str(rec.get("category", "all")),
                prompt=rec["prompt"],
                seed=int(rec.get("seed", i)),
                vqa=tuple(vqa),
                raw=raw,
            )
        )
    return items
