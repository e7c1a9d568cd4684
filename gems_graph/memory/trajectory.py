"""The refiner's view of the trajectory, bounded however many rounds run.

The paper keeps each round's facts raw and compresses the model's reasoning into a
short experience; its ablation shows facts + experiences + images beat raw thoughts.
Past a few rounds, though, the raw facts outgrow any prompt, so recent rounds are
shown in full and older ones are folded into one "Lessons so far" summary. Raw
``thought`` is never read here: only ``experience`` is passed on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from gems_graph import prompt_labels as labels
from gems_graph.records import Candidate, Check, ImageRef, Round, TieBreak, is_failed, rank_key, round_best
from gems_graph.text import clip_chars

#: Share of the budget the recent rounds may use when older rounds must be folded.
_RECENT_SHARE = 0.7


@dataclass
class TrajectoryView:
    """What the refiner reads: text within the budget, and a few recent images."""

    text: str
    images: list[ImageRef] = field(default_factory=list)
    #: How many older rounds were folded into the summary (0 when all fit).
    folded_rounds: int = 0


def _verdict_sets(rnd: Round, questions: dict[str, str], tie_break: TieBreak = "probability") -> tuple[float | None, list[str], list[str]]:
    best = round_best(rnd, tie_break)
    if best is None:
        return None, [], []
    passed = [questions.get(v["check_id"], v["check_id"]) for v in best["verdicts"] if v["passed"]]
    failed = [questions.get(v["check_id"], v["check_id"]) for v in best["verdicts"] if is_failed(v)]
    return best["score"], passed, failed


def _render_round(rnd: Round, questions: dict[str, str], field_chars: int, tie_break: TieBreak = "probability") -> str:
    """One round's facts, in the line format the refiner and the shapes chat model read.

    (``Round N prompt: ...`` then indented ``score``/``passed``/``failed``/``experience``
    lines; the shapes world's chat model and tests parse this layout.)
    """
    score, passed, failed = _verdict_sets(rnd, questions, tie_break)
    lines = [f"{labels.ROUND_PROMPT.format(index=rnd['index'])}: {clip_chars(rnd['prompt'], field_chars)}"]
    edited = next((c["edit"] for c in rnd.get("candidates") or [] if c.get("edit")), None)
    if edited is not None:
        region = edited.get("region")
        where = f"region {[round(v, 2) for v in region]}" if region else "the whole image"
        lines.append(f"  {labels.EDITED}: round {edited['parent']['round']} candidate {edited['parent']['index']}, {where}")
    if score is None:
        errors = "; ".join(sorted({c.get("error") or "" for c in rnd.get("candidates") or []}))
        lines.append(f"  no image (generation failed: {clip_chars(errors, 200)})")
    else:
        lines.append(f"  {labels.SCORE}: {score:.2f}")
        lines.append(f"  {labels.PASSED}: {clip_chars('; '.join(passed), field_chars) or labels.NONE}")
        lines.append(f"  {labels.FAILED}: {clip_chars('; '.join(failed), field_chars) or labels.NONE}")
    if rnd.get("experience"):
        lines.append(f"  {labels.EXPERIENCE}: {clip_chars(rnd['experience'] or '', field_chars)}")
    return "\n".join(lines)


def _render_summary(rounds: list[Round], questions: dict[str, str], budget: int, tie_break: TieBreak = "probability") -> str:
    """Fold old rounds: best one, checks that kept failing, and their experiences."""
    first, last = rounds[0]["index"], rounds[-1]["index"]
    head = labels.FOLDED.format(first=first, last=last) + ":"
    scored = [(r, _verdict_sets(r, questions, tie_break)) for r in rounds]
    lines = [head]
    judged = [(r, s) for r, s in scored if s[0] is not None]
    if judged:
        # A judged round has a best candidate.
        r, (score, _, _) = max(judged, key=lambda x: (rank_key(cast(Candidate, round_best(x[0], tie_break)), tie_break), -x[0]["index"]))
        lines.append(f"- best was round {r['index']} (score {score:.2f}) with: {clip_chars(r['prompt'], 300)}")
    fail_count: dict[str, int] = {}
    for _, (_, _, failed) in judged:
        for q in failed:
            fail_count[q] = fail_count.get(q, 0) + 1
    if fail_count:
        top = sorted(fail_count.items(), key=lambda kv: -kv[1])[:8]
        lines.append("- kept failing: " + "; ".join(f"{clip_chars(q, 120)} (x{n})" for q, n in top))
    # Newest experiences first: they already include what earlier ones taught.
    for r in reversed(rounds):
        if r.get("experience"):
            lines.append(f"- round {r['index']}: {clip_chars(r['experience'] or '', 300)}")
    out: list[str] = []
    used = 0
    for line in lines:
        if used + len(line) + 1 > budget:
            break
        out.append(line)
        used += len(line) + 1
    return "\n".join(out)


def trajectory_view(
    rounds: list[Round],
    checks: list[Check],
    *,
    budget_chars: int = 6000,
    max_images: int = 3,
    tie_break: TieBreak = "probability",
) -> TrajectoryView:
    """Render the trajectory for the refiner within ``budget_chars`` characters.

    Recent rounds appear in full (prompt, failed and passed checks, experience); when
    they would overflow the budget, the older ones become one summary. Images are the
    best candidate's (under ``tie_break``) of the ``max_images`` most recent rounds that
    have one, oldest first; ``max_images=-1`` takes every round's, as the paper's refiner sees.
    """
    questions = {c["id"]: c["question"] for c in checks}
    ordered = sorted(rounds, key=lambda r: r["index"])
    header = f"{labels.TRAJECTORY}:\n" if ordered else ""
    budget_chars = max(0, budget_chars - len(header))
    field_chars = max(80, budget_chars // 4)
    blocks = [_render_round(r, questions, field_chars, tie_break) for r in ordered]

    def size(bs: list[str]) -> int:
        return sum(len(b) for b in bs) + max(0, len(bs) - 1) * 2

    folded = 0
    if size(blocks) <= budget_chars:
        text = "\n\n".join(blocks)
    else:
        keep = 1
        while keep < len(blocks) and size(blocks[-(keep + 1) :]) <= budget_chars * _RECENT_SHARE:
            keep += 1
        recent = "\n\n".join(blocks[-keep:])[: int(budget_chars * _RECENT_SHARE)]
        folded = len(blocks) - keep
        summary = _render_summary(ordered[:folded], questions, budget_chars - len(recent) - 2, tie_break) if folded else ""
        text = (summary + "\n\n" + recent) if summary else recent
    images: list[ImageRef] = []
    for r in reversed(ordered):
        if 0 <= max_images <= len(images):
            break
        best = round_best(r, tie_break)
        if best is not None and best.get("image"):
            images.append(best["image"])  # type: ignore[arg-type]
    images.reverse()
    return TrajectoryView(text=header + text[:budget_chars], images=images, folded_rounds=folded)


def round_facts(rnd: Round, checks: list[Check], field_chars: int = 600) -> str:
    """The facts of one round (prompt, score, passed and failed checks) for compression."""
    return _render_round({**rnd, "experience": None}, {c["id"]: c["question"] for c in checks}, field_chars)
