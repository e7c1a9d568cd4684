"""What lessons teach, grouped for a skill: the evidence ``gems skills learn`` writes from.

A lesson (``gems_graph.memory.lessons``) says, for one prompt, which checks failed
and which move fixed them, or which move was tried and did not, and how the run's
first prompt did: the moves a refiner makes later are one half of what runs teach,
how the first prompts that passed at once were written is the other. Learning reads
every lesson of a store (or distils them from an eval folder's runs), files each one
under the *kind* of failure its checks concern (a count, a relation, a missing
object, an attribute, rendered text) and counts, per kind, how often each move
worked and how often it did not. A person's review weighs in: a lesson of a run a
person accepted counts ``ACCEPTED_WEIGHT`` times, and their notes travel with it.

Lessons of an eval folder's runs are distilled by ``gems_graph.eval.run_lessons``.
Everything here is a pure function of the lessons, sorted by id, so learning twice
from the same store gives the same groups in the same order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gems_graph.errors import redact

#: Kinds of failure a lesson is filed under, in the order groups are reported.
FAILURE_KINDS = ("count", "relation", "presence", "attribute", "text", "other")
#: How much a lesson of a run a person accepted counts, against 1 for any other.
ACCEPTED_WEIGHT = 2.0
#: Fewest lessons of one kind that make a candidate skill.
DEFAULT_MIN_LESSONS = 3

_RELATION = re.compile(r"\b(left of|right of|above|below|next to|behind|in front of|on top of|under|beneath|between)\b")
#: "X worked in round N" in a fix lesson's text: X is the move its round's experience says it tried.
_WORKED = re.compile(r":\s*(.+?) worked in round \d+")
#: "Tried X." in the experience a still-failing lesson quotes: the move that did not fix it.
_TRIED = re.compile(r"Experience:\s*(?:I |We )?[Tt]ried (.+?)\.(?:\s|$)")


def check_kind(question: str) -> str:
    """The kind of failure a yes/no check concerns, by the words any check of that kind uses."""
    q = " ".join(question.lower().split())
    if re.search(r"\bexactly\b|\bhow many\b|\bnumber of\b", q):
        return "count"
    if _RELATION.search(q):
        return "relation"
    if '"' in q or re.search(r"\b(text|read|say|says|written|spell)\b", q):
        return "text"
    if re.match(r"(is|are) there\b", q):
        return "presence"
    if re.match(r"(is|are|does|do) (the|each|every)\b", q):
        return "attribute"
    return "other"


@dataclass(frozen=True)
class Evidence:
    """One lesson, as learning reads it."""

    lesson: str
    prompt: str
    kinds: tuple[str, ...]
    failed_checks: tuple[str, ...]
    #: The move the lesson names ("strategy explicit-layout"), or its prompt change.
    move: str
    worked: bool
    fix: str
    score_gain: float
    weight: float
    runs: tuple[str, ...] = ()
    human_notes: tuple[str, ...] = ()
    accepted: bool = False


def accepted_by_a_person(lesson: Mapping[str, Any]) -> bool:
    """Whether a person accepted the image of the lesson's run in a human review."""
    return str(lesson.get("rating") or "") == "accepted"


def evidence_of(lesson: dict[str, Any]) -> Evidence | None:
    """The evidence one lesson gives; None for a lesson with nothing to teach (every check passed at once)."""
    failed = tuple(str(q) for q in lesson.get("failed_checks") or [])
    if not failed:
        return None
    text = str(lesson.get("text") or "")
    fix = str(lesson.get("fix") or "")
    worked = bool(fix) and float(lesson.get("score_gain") or 0.0) > 0.0
    if worked:
        m = _WORKED.search(text)
        move = m.group(1).strip() if m else f"prompt change: {fix}"
    else:
        m = _TRIED.search(text)
        if not m or "..." in m.group(0) or not re.search(r"[A-Za-z]", m.group(1)):
            return None  # a failure without a move tried (or one clipped to "...") teaches no move
        move = m.group(1).strip()
    accepted = accepted_by_a_person(lesson)
    uses = max(1, int(lesson.get("uses") or 1))
    return Evidence(
        lesson=str(lesson.get("id") or ""),
        prompt=redact(str(lesson.get("prompt") or "")),
        kinds=_kinds(failed),
        failed_checks=tuple(redact(q) for q in failed),
        move=redact(move),
        worked=worked,
        fix=redact(fix),
        score_gain=round(float(lesson.get("score_gain") or 0.0), 4),
        weight=uses * (ACCEPTED_WEIGHT if accepted else 1.0),
        runs=tuple(str(r) for r in lesson.get("runs") or []),
        human_notes=tuple(redact(str(n)) for n in lesson.get("human_notes") or []),
        accepted=accepted,
    )


@dataclass(frozen=True)
class FirstRound:
    """A run's first prompt and how its image did on the checks of each kind: whether the way
    first prompts are written prevents the failures the moves fix later."""

    prompt: str
    first_prompt: str
    #: Kinds of check the run asked, and those its first image failed.
    kinds: tuple[str, ...]
    failed_kinds: tuple[str, ...]
    weight: float
    run: str

    def passed_at_once(self, kind: str) -> bool:
        return kind in self.kinds and kind not in self.failed_kinds


def first_round_of(lesson: Mapping[str, Any]) -> FirstRound | None:
    """The first round a lesson records; None for a lesson written without it."""
    first = str(lesson.get("first_prompt") or "")
    passed = [str(q) for q in lesson.get("first_passed") or []]
    failed = [str(q) for q in lesson.get("first_failed") or []]
    if not first or not (passed or failed):
        return None
    accepted = accepted_by_a_person(lesson)
    runs = [str(r) for r in lesson.get("runs") or []]
    return FirstRound(
        prompt=redact(str(lesson.get("prompt") or "")),
        first_prompt=redact(first),
        kinds=_kinds(passed + failed),
        failed_kinds=_kinds(failed),
        weight=ACCEPTED_WEIGHT if accepted else 1.0,
        run=runs[0] if runs else f"{lesson.get('prompt')}\x00{first}",
    )


def _kinds(questions: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(sorted((check_kind(q) for q in questions), key=FAILURE_KINDS.index)))


@dataclass(frozen=True)
class MoveTally:
    """How often one move worked and did not, for one kind of failure (weights, and lessons)."""

    move: str
    worked: float = 0.0
    failed: float = 0.0
    lessons: int = 0

    @property
    def success_rate(self) -> float:
        total = self.worked + self.failed
        return self.worked / total if total else 0.0


@dataclass(frozen=True)
class LessonGroup:
    """The lessons of one kind of failure: what a candidate skill is written from."""

    kind: str
    evidence: tuple[Evidence, ...]
    moves: tuple[MoveTally, ...] = field(default=())
    #: The first rounds of the runs that asked checks of this kind (one per run).
    first_rounds: tuple[FirstRound, ...] = field(default=())

    @property
    def name(self) -> str:
        """The candidate skill's name: one per kind, so relearning replaces it."""
        return f"learned-{self.kind}"

    @property
    def lessons(self) -> list[str]:
        return [e.lesson for e in self.evidence]

    @property
    def runs(self) -> list[str]:
        return sorted({r for e in self.evidence for r in e.runs})

    def records(self) -> list[dict[str, Any]]:
        """The group's lessons as the skill writer reads them (one JSON object a line)."""
        return [
            {
                "lesson": e.lesson,
                "prompt": e.prompt,
                "failed": list(e.failed_checks),
                "move": e.move,
                "worked": e.worked,
                "weight": e.weight,
                **({"accepted_by_a_person": True} if e.accepted else {}),
                **({"person_said": list(e.human_notes)} if e.human_notes else {}),
            }
            for e in self.evidence
        ] + [
            {"prompt": f.prompt, "first_prompt": f.first_prompt, "passed_at_once": f.passed_at_once(self.kind), "weight": f.weight}
            for f in self.first_rounds
        ]

    def provenance(self) -> dict[str, Any]:
        """Which lessons and runs, and how often each move worked: kept beside the skill."""
        return {
            "kind": self.kind,
            "lessons": self.lessons,
            "runs": self.runs,
            "accepted_by_a_person": sum(1 for e in self.evidence if e.accepted),
            "first_rounds": len(self.first_rounds),
            "first_rounds_passed_at_once": sum(1 for f in self.first_rounds if f.passed_at_once(self.kind)),
            "moves": [
                {"move": t.move, "worked": t.worked, "failed": t.failed, "lessons": t.lessons, "success_rate": round(t.success_rate, 4)}
                for t in self.moves
            ],
        }


def tally_moves(evidence: Iterable[Evidence]) -> tuple[MoveTally, ...]:
    """Per move, the weight of lessons it worked and failed in; best rate first (then most evidence, then name)."""
    acc: dict[str, list[float]] = {}
    for e in evidence:
        w, f, n = acc.setdefault(e.move, [0.0, 0.0, 0.0])
        acc[e.move] = [w + (e.weight if e.worked else 0.0), f + (0.0 if e.worked else e.weight), n + 1]
    tallies = [MoveTally(move, round(w, 4), round(f, 4), int(n)) for move, (w, f, n) in acc.items()]
    return tuple(sorted(tallies, key=lambda t: (-t.success_rate, -(t.worked + t.failed), t.move)))


def group_lessons(lessons: Iterable[Mapping[str, Any]], *, min_lessons: int = DEFAULT_MIN_LESSONS) -> list[LessonGroup]:
    """Lessons filed by kind of failure (a lesson whose checks are of several kinds is in each),
    with the first rounds of the runs that asked that kind; kinds with at least ``min_lessons``
    failures (lessons, and first rounds that failed it) and something to teach (a move that
    worked, or first prompts that passed it at once beside some that did not), in ``FAILURE_KINDS`` order."""
    unique = {str(l.get("id") or ""): l for l in reversed(list(lessons))}  # one lesson read twice (a store and its eval) counts once
    ordered = [l for _, l in sorted(unique.items())]
    found = [e for l in ordered if (e := evidence_of(l)) is not None]
    firsts: dict[str, FirstRound] = {}
    for l in ordered:  # every lesson of a run carries its first round: one per run
        if (f := first_round_of(l)) is not None:
            firsts.setdefault(f.run, f)
    groups = []
    for kind in FAILURE_KINDS:
        ev = tuple(e for e in found if kind in e.kinds)
        moves = tally_moves(ev)
        first = tuple(f for _, f in sorted(firsts.items()) if kind in f.kinds)
        failed_first = [f for f in first if not f.passed_at_once(kind)]
        # Something to teach: a move that fixed this kind, or first prompts that did and did not avoid it.
        teaches = any(t.worked > 0 for t in moves) or 0 < len(failed_first) < len(first)
        if len(ev) + len(failed_first) >= min_lessons and teaches:
            groups.append(LessonGroup(kind=kind, evidence=ev, moves=moves, first_rounds=first))
    return groups
