"""A candidate skill on trial: the same prompts, the same budget, with and without it.

``gems skills learn`` keeps a learned skill only when it helps. Each candidate is
run with the ``loop+skills`` method (skills, no memory, so a lesson recalled from
the store cannot stand in for the skill) on a dev split or the user's prompt file,
once with the skills a run has today (the built-in ones unless ``builtin_skills`` is
false, and the user's) and once with the candidate added; both share
seeds, so the only difference is the skill. It is kept when it raises the mean
score by at least ``min_gain`` points, or keeps the score and saves at least
``min_saving`` of the images. The baseline eval is shared by every candidate
of one learn (the same folder, resumed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gems_graph.eval.harness import run_eval
from gems_graph.eval.tasks import EvalConfig

#: The method a candidate is tried with: skills on, memory off.
TRIAL_METHOD = "loop+skills"


@dataclass(frozen=True)
class TrialSettings:
    """Where and how candidates are tried (the same for every candidate of one learn)."""

    out: Path
    suite: str = "shapes-hard"
    split: str = "dev"
    #: A prompt file (the ``custom`` suite) in place of a split.
    prompts: str | None = None
    budget: int = 5
    per_category: int | None = None
    limit: int | None = None
    generator: Any = "shapes"
    chat_model: Any = "shapes"
    judge: Any = None
    skills_dirs: list[str] = field(default_factory=list)
    #: Whether the skills a run has today include the built-in ones (false: a candidate is tried
    #: against the user's skills alone, for runs with ``builtin_skills = false``).
    builtin_skills: bool = True
    #: Points of mean score (0-100) the skill must add ...
    min_gain: float = 1.0
    #: ... or the share of images it must save at no loss of score.
    min_saving: float = 0.1


@dataclass(frozen=True)
class TrialResult:
    """What a candidate did against the skills without it."""

    skill: str
    prompts: int
    budget: int
    score_without: float
    score_with: float
    images_without: float
    images_with: float
    kept: bool
    why: str
    routed: int = 0

    @property
    def gain(self) -> float:
        return round(self.score_with - self.score_without, 2)

    @property
    def saving(self) -> float:
        return round(1.0 - self.images_with / self.images_without, 4) if self.images_without else 0.0

    def figures(self) -> dict[str, Any]:
        """The figures written beside a kept skill (no wall times: the same learn writes the same file)."""
        return {**asdict(self), "gain": self.gain, "saving": self.saving, "method": TRIAL_METHOD}


def _config(s: TrialSettings, out: Path, extra_dir: Path | None) -> EvalConfig:
    return EvalConfig(
        suite="custom" if s.prompts else s.suite,
        path=s.prompts,
        split=s.split,
        out=out,
        methods=[TRIAL_METHOD],
        budget=s.budget,
        per_category=s.per_category,
        limit=s.limit,
        generator=s.generator,
        chat_model=s.chat_model,
        judge=s.judge if s.judge is not None else (s.chat_model if s.prompts else None),
        skills_dirs=[*s.skills_dirs, *([str(extra_dir)] if extra_dir is not None else [])],
        memory="none",
        context={"builtin_skills": s.builtin_skills},
        progress=False,
    )


def _figures(result: dict[str, Any]) -> tuple[int, float, float]:
    row = result["summary"]["methods"][TRIAL_METHOD]
    return int(row["n"]), float(row["score"] or 0.0), float(row["images"] or 0.0)


def try_skill(name: str, candidate_root: Path, s: TrialSettings) -> TrialResult:
    """Run the trial of skill ``name`` (in ``candidate_root/name``) and decide whether it is kept."""
    base = run_eval(_config(s, s.out / "without", None))
    trial_out = s.out / f"with-{name}"
    with_it = run_eval(_config(s, trial_out, candidate_root))
    n, score0, images0 = _figures(base)
    _, score1, images1 = _figures(with_it)
    routed = _routed(trial_out, name)
    gain = score1 - score0
    saving = 1.0 - images1 / images0 if images0 else 0.0
    if routed == 0:
        kept, why = False, "no trial prompt loaded it (its triggers match none of them)"
    elif gain >= s.min_gain:
        kept, why = True, f"score {gain:+.2f} points (needed {s.min_gain:+.2f})"
    elif gain >= 0 and saving >= s.min_saving:
        kept, why = True, f"{saving:.0%} fewer images at {gain:+.2f} points (needed {s.min_saving:.0%})"
    else:
        kept, why = False, f"score {gain:+.2f} points and {saving:.0%} fewer images (needed {s.min_gain:+.2f} points or {s.min_saving:.0%})"
    return TrialResult(
        skill=name,
        prompts=n,
        budget=s.budget,
        score_without=round(score0, 2),
        score_with=round(score1, 2),
        images_without=round(images0, 4),
        images_with=round(images1, 4),
        kept=kept,
        why=why,
        routed=routed,
    )


def _routed(eval_out: Path, name: str) -> int:
    """How many trial runs loaded the skill (from the eval's records)."""
    import json

    try:
        records = json.loads((eval_out / "results.json").read_text(encoding="utf-8"))["records"]
    except (OSError, ValueError, KeyError):
        return 0
    return sum(1 for r in records if name in (r.get("skills") or []))
