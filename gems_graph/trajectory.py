"""What the refiner reads of the trajectory: facts and experiences, never raw thoughts.

The view is bounded: the most recent rounds are shown in full; when the text would
exceed the budget, the older rounds are folded into one "lessons so far" block made
of their experiences. At most ``max_images`` images, from the most recent rounds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gems_graph.state import Candidate, Check, ImageRef, Round


@dataclass
class TrajectoryView:
    text: str
    images: list[ImageRef] = field(default_factory=list)
    folded_rounds: int = 0


def best_of_round(rnd: Round) -> Candidate | None:
    judged = [c for c in rnd["candidates"] if c["error"] is None]
    if not judged:
        return None
    return max(judged, key=lambda c: (c["score"] or 0.0, -c["index"]))


def round_facts(rnd: Round, checks: list[Check]) -> str:
    """The facts of one round as plain text: prompt, passed and failed checks."""
    questions = {c["id"]: c["question"] for c in checks}
    best = best_of_round(rnd)
    lines = [f"Round {rnd['index']} prompt: {rnd['prompt']}"]
    if best is None:
        errors = "; ".join(sorted({c["error"] or "" for c in rnd["candidates"]}))
        lines.append(f"  no image (generation failed: {errors})")
        return "\n".join(lines)
    passed = [questions.get(v["check_id"], v["check_id"]) for v in best["verdicts"] if v["passed"]]
    failed = [questions.get(v["check_id"], v["check_id"]) for v in best["verdicts"] if not v["passed"]]
    lines.append(f"  score {best['score']:.2f}")
    lines.append("  passed: " + ("; ".join(passed) or "none"))
    lines.append("  failed: " + ("; ".join(failed) or "none"))
    return "\n".join(lines)


def _round_text(rnd: Round, checks: list[Check]) -> str:
    text = round_facts(rnd, checks)
    if rnd.get("experience"):
        text += f"\n  experience: {rnd['experience']}"
    return text


def trajectory_view(rounds: list[Round], checks: list[Check], *, budget_chars: int = 6000, max_images: int = 3) -> TrajectoryView:
    blocks = [_round_text(r, checks) for r in rounds]
    keep = len(blocks)
    # Fold the oldest rounds until the recent ones plus the lessons fit the budget.
    while keep > 1 and _size(rounds[: len(rounds) - keep], blocks[len(blocks) - keep:]) > budget_chars:
        keep -= 1
    folded = rounds[: len(rounds) - keep]
    parts = []
    if folded:
        parts.append(_lessons(folded, budget_chars // 3))
    parts += blocks[len(blocks) - keep:]
    text = "Trajectory so far:\n" + "\n".join(parts)
    if len(text) > budget_chars:
        text = text[: budget_chars - 4] + " ..."
    images: list[ImageRef] = []
    for rnd in reversed(rounds):
        best = best_of_round(rnd)
        if len(images) >= max_images:
            break
        if best is not None and best["image"] is not None:
            images.append(best["image"])
    return TrajectoryView(text=text, images=list(reversed(images)), folded_rounds=len(folded))


def _lessons(folded: list[Round], limit: int) -> str:
    items = [f"r{r['index']}: {r.get('experience') or 'no experience recorded'}" for r in folded]
    text = f"Lessons so far (rounds 1-{folded[-1]['index']}): " + " | ".join(items)
    return text if len(text) <= limit else text[: limit - 4] + " ..."


def _size(folded: list[Round], blocks: list[str]) -> int:
    return sum(len(b) + 1 for b in blocks) + (len(_lessons(folded, 10**9)) if folded else 0)
