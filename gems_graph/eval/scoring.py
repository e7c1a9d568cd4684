"""Scoring a method's final image with the suite's own scorer (never the critic's opinion).

* shapes: ``prompt_correct`` (every GenEval-style check passes on the pixels): 0 or 1.
* shapes-hard: GenEval2's atoms answered by the pixel checker (``shapes.atoms``): the
  score is GM (1 when every atom is right), AM the share of atoms right; each atom is
  kept with its kind as ``skill``, so the report's per-skill table reads it as GenEval2's.
* geneval: not scored here; the official Mask2Former scorer runs on the written layout.
* geneval2 and custom (with checks): Soft-TIFA through the ``--judge`` VLM; the score
  is GM (GenEval2's prompt-level number), AM is kept beside it. Without a judge the
  score is left empty and only the images and the official JSON are written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gems_graph.eval.softtifa import SoftTifaJudge
from gems_graph.eval.suites import EvalItem

Scorer = Callable[[EvalItem, str], dict[str, Any]]


def shapes_score(item: EvalItem, image_path: str) -> dict[str, Any]:
    from PIL import Image

    from gems_graph.shapes.grammar import parse_prompt
    from gems_graph.shapes.questions import prompt_correct

    with Image.open(image_path) as img:
        ok = prompt_correct(parse_prompt(item.prompt), img.convert("RGB"))
    return {"score": 1.0 if ok else 0.0}


def shapes_hard_score(item: EvalItem, image_path: str) -> dict[str, Any]:
    from PIL import Image

    from gems_graph.shapes.atoms import answer_atoms, atom_scores
    from gems_graph.shapes.grammar import parse_prompt

    with Image.open(image_path) as img:
        answers = answer_atoms(parse_prompt(item.prompt), img.convert("RGB"))
    s = atom_scores(answers)
    atoms = [{"question": a.question, "skill": a.kind, "p": 1.0 if yes else 0.0} for a, yes in answers]
    return {"score": s["gm"], "am": s["am"], "gm": s["gm"], "atoms": atoms}


def make_scorer(suite: str, judge: Any = None) -> Scorer:
    """The scorer for ``suite``; ``judge`` is a chat-model spec or instance for Soft-TIFA."""
    if suite == "shapes":
        return shapes_score
    if suite == "shapes-hard":
        return shapes_hard_score
    if suite == "geneval" or judge is None:
        return lambda item, path: {"score": None}
    from gems_graph.models.registry import resolve_chat_model

    tifa = SoftTifaJudge(resolve_chat_model(judge))

    def soft_tifa(item: EvalItem, image_path: str) -> dict[str, Any]:
        if not item.vqa:
            return {"score": None}
        r = tifa.score(item.vqa, image_path)
        skills = (item.meta or {}).get("skills")
        if skills:  # GenEval2 names a skill per atom; the per-skill table averages atoms by it
            for atom, skill in zip(r["atoms"], skills):
                atom["skill"] = skill
        return {"score": r["gm"], "am": r["am"], "gm": r["gm"], "atoms": r["atoms"], "judge_calls": len(r["atoms"])}

    return soft_tifa
