"""Lessons: what one finished run taught, distilled so the next run can reuse it.

A run's per-round experiences are useful within the run; across runs what helps a
planner is shorter and more concrete: what the prompt asked, which checks failed,
and what change of the generation prompt fixed them. Distillation is deterministic
(no model call) so it is cheap, testable and the same on every backend: it finds the
round where a previously failed check first passed and diffs that round's prompt
against the one before.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict

from gems_graph.records import Candidate, Check, Round, is_failed, round_best
from gems_graph.text import clip_words, word_opcodes

#: Lesson texts are cut to this many words: a planner prompt holds a few of them.
MAX_LESSON_WORDS = 80


class Lesson(TypedDict):
    id: str
    #: What the planner/refiner reads (< ~80 words).
    text: str
    #: The user's original prompt of the run the lesson came from.
    prompt: str
    generator_family: str
    skills: list[str]
    #: Questions of the checks that failed before the fix (or never passed).
    failed_checks: list[str]
    #: What changed in the generation prompt when they first passed ("" if none).
    fix: str
    #: Rounds the run needed to get there.
    rounds: int
    #: Best score after the fix minus best score before it.
    score_gain: float
    #: Final status of the run ("passed", "exhausted", ...).
    status: str
    #: ISO-8601 UTC time the lesson was written (refreshed when a duplicate merges in).
    created_at: str
    #: How often the lesson was confirmed (a near-duplicate merged into it) or used.
    uses: int
    #: Ids of the runs that wrote or confirmed it (the latest few): the same run writing it
    #: again (a resume after a kill between the store write and the checkpoint) is not a new use.
    runs: NotRequired[list[str]]
    #: "accepted" when a person accepted the run's image in a human review, else "".
    rating: NotRequired[str]
    #: Notes a person gave in the run's human review (redacted).
    human_notes: NotRequired[list[str]]
    #: The run's first generation prompt (the planner's) and the questions its image passed and
    #: failed: what learning compares to tell how first prompts that passed at once were written.
    first_prompt: NotRequired[str]
    first_passed: NotRequired[list[str]]
    first_failed: NotRequired[list[str]]
    #: Cosine similarity to the query; only on lessons returned by ``recall``.
    similarity: NotRequired[float]


def generator_family(generator: Any) -> str:
    """The family lessons are filed under: what the generator itself declares (its
    ``family``), so every deployment of one model (diffusers, an image server) shares
    its lessons. Prompting tricks carry over between deployments of one model, rarely
    between models. A generator that declares none is filed under its class name.
    """
    fam = getattr(generator, "family", None)
    if isinstance(fam, str) and fam.strip():
        return fam.strip().lower()
    return type(generator).__name__.lower() if generator is not None else "unknown"


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def lesson_id(lesson: Lesson) -> str:
    """Stable id from content, so importing the same export twice adds nothing new."""
    h = hashlib.sha1(f"{lesson['generator_family']}\x00{lesson['prompt']}\x00{lesson['text']}".encode())
    return "L" + h.hexdigest()[:15]


def _passed_ids(c: Candidate | None) -> set[str]:
    return {v["check_id"] for v in ((c.get("verdicts") if c else None) or []) if v.get("passed")}


def _failed_ids(c: Candidate | None) -> set[str]:
    return {v["check_id"] for v in ((c.get("verdicts") if c else None) or []) if is_failed(v)}


def _words(s: str) -> list[str]:
    return re.findall(r"\S+", s)


def prompt_diff(before: str, after: str) -> tuple[list[str], list[str]]:
    """Phrases added to and removed from a prompt (word-level)."""
    a, b = _words(before), _words(after)
    added: list[str] = []
    removed: list[str] = []
    for op, i1, i2, j1, j2 in word_opcodes(a, b):
        if op in ("replace", "insert") and j2 > j1:
            added.append(" ".join(b[j1:j2]))
        if op in ("replace", "delete") and i2 > i1:
            removed.append(" ".join(a[i1:i2]))
    return added, removed


def _list_checks(qs: list[str], shown: int = 2) -> str:
    head = "; ".join(clip_words(q, 14) for q in qs[:shown])
    return head + (f" (+{len(qs) - shown} more)" if len(qs) > shown else "")


def _params_change(before: Candidate | None, after: Candidate | None) -> str:
    """Generation settings that changed between two candidates (seed aside)."""
    a = (before.get("params") if before else None) or {}
    b = (after.get("params") if after else None) or {}
    changed = [f"{k} {a.get(k)}->{b.get(k)}" for k in sorted(set(a) | set(b)) if k != "seed" and a.get(k) != b.get(k)]
    return ", ".join(changed)


def describe_fix(before: str, after: str, params: str = "", max_words: int = 30) -> str:
    added, removed = prompt_diff(before, after)
    parts = [params] if params else []
    if added:
        parts.append("added " + "; ".join(f'"{p}"' for p in added))
    if removed:
        parts.append("removed " + "; ".join(f'"{p}"' for p in removed))
    if not added and not removed:
        parts = [f"{params} (same prompt)"] if params else ["same prompt, new seed"]
    return clip_words(", ".join(parts), max_words)


def _what_worked(experience: str | None) -> str:
    """From the fixing round's own experience, what it tried, phrased as what worked.

    Experiences open with what the round tried ("Tried strategy reorder. ..."); since
    that round fixed the checks, the lesson says "strategy reorder worked".
    """
    if not experience:
        return ""
    first = re.split(r"(?<=[.!?])\s", experience.strip(), maxsplit=1)[0].rstrip(".!? ")
    m = re.match(r"(?i)(?:i |we )?tried (.+)", first)
    if m:
        return clip_words(m.group(1), 20) + " worked"
    return "what worked: " + clip_words(first, 20)


def _score(c: Candidate | None) -> float:
    score = c.get("score") if c else None
    return float(score) if score is not None else 0.0


def reads_last_experience(rounds: list[Round]) -> bool:
    """Whether ``distill_lessons`` reads the last round's experience: every run's but one whose
    only judged round passed every check (its lesson is the prompt that passed, nothing more)."""
    judged = [b for b in (round_best(r) for r in rounds) if b is not None]
    return not (len(judged) == 1 and not _failed_ids(judged[0]))


def distill_lessons(
    prompt: str,
    rounds: list[Round],
    checks: list[Check],
    *,
    generator_family: str,
    skills: list[str] | None = None,
    status: str = "exhausted",
    max_lessons: int = 3,
) -> list[Lesson]:
    """Turn a finished run into 1-3 lessons (none if no round was judged).

    - one lesson per round that fixed checks which had failed before (the two with
      the largest score gain), with the prompt change that did it;
    - one lesson for checks that never passed, with the last experience (what to try);
    - if everything passed at once, one lesson recording the prompt that worked.

    Every lesson also carries the first round: its prompt and the checks it passed and failed.
    """
    questions = {c["id"]: c["question"] for c in checks}
    judged = [(r, round_best(r)) for r in sorted(rounds, key=lambda r: r["index"])]
    judged = [(r, b) for r, b in judged if b is not None]
    if not judged:
        return []
    skills = list(skills or [])
    first_round, first_best = judged[0]
    first = dict(
        first_prompt=first_round["prompt"],
        first_passed=[questions.get(c, c) for c in sorted(_passed_ids(first_best))],
        first_failed=[questions.get(c, c) for c in sorted(_failed_ids(first_best))],
    )
    base = dict(prompt=prompt, generator_family=generator_family, skills=skills, status=status, uses=1, **first)
    ask = clip_words(prompt, 20)

    def make(text: str, **kw: object) -> Lesson:
        lesson = Lesson(id="", text=clip_words(text, MAX_LESSON_WORDS), created_at=_now_iso(), **base, **kw)  # type: ignore[typeddict-item]
        lesson["id"] = lesson_id(lesson)
        return lesson

    fixes: list[Lesson] = []
    ever_failed: set[str] = set()
    for i, (rnd, best) in enumerate(judged):
        if i > 0:
            prev_rnd, prev_best = judged[i - 1]
            fixed = sorted((ever_failed & _passed_ids(best)) - _passed_ids(prev_best))
            if fixed:
                gain = round(_score(best) - _score(prev_best), 4)
                fix = describe_fix(prev_rnd["prompt"], rnd["prompt"], _params_change(prev_best, best))
                qs = [questions.get(c, c) for c in fixed]
                how = _what_worked(rnd.get("experience"))
                # What worked goes first: texts are clipped, and the checks are the long part.
                text = (
                    f'For "{ask}": '
                    + (f"{how} in round {rnd['index']}" if how else f"round {rnd['index']} fixed it")
                    + f" (prompt change: {fix}; score {gain:+.2f}). It fixed: {_list_checks(qs)}."
                )
                fixes.append(make(text, failed_checks=qs, fix=fix, rounds=rnd["index"], score_gain=gain))
        ever_failed |= _failed_ids(best)

    lessons = sorted(fixes, key=lambda l: -l["score_gain"])[: max(0, max_lessons - 1)]
    last_rnd, last_best = judged[-1]
    unresolved = sorted(_failed_ids(last_best))
    if unresolved:
        qs = [questions.get(c, c) for c in unresolved]
        exp = next((r.get("experience") for r, _ in reversed(judged) if r.get("experience")), None)
        text = (
            f'For "{ask}" still failing after {last_rnd["index"]} round(s): {_list_checks(qs)}. '
            f'Last prompt: "{clip_words(last_rnd["prompt"], 25)}".'
        )
        if exp:
            text += f" Experience: {clip_words(exp, 25)}"
        lessons.append(
            make(text, failed_checks=qs, fix="", rounds=last_rnd["index"], score_gain=round(_score(last_best) - _score(first_best), 4))
        )
    elif not lessons:
        text = f'For "{ask}" every check passed in round {last_rnd["index"]} with the prompt: "{clip_words(last_rnd["prompt"], 40)}".'
        lessons.append(make(text, failed_checks=[], fix="", rounds=last_rnd["index"], score_gain=0.0))
    return lessons[:max_lessons]


__all__ = ["Lesson", "distill_lessons", "reads_last_experience", "generator_family", "lesson_id", "prompt_diff", "MAX_LESSON_WORDS"]
