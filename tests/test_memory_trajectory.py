"""The refiner's trajectory view stays bounded and never leaks raw thoughts."""

from __future__ import annotations

import pytest

from gems_graph.memory import trajectory_view

CHECKS = [
    {"id": "c1", "question": "Are there exactly two circles?", "source": "prompt"},
    {"id": "c2", "question": "Are the circles red?", "source": "prompt"},
    {"id": "c3", "question": "Is the square to the left of the circles?", "source": "prompt"},
]
THOUGHT = "SECRET-THOUGHT: long chain of reasoning that must never reach the refiner. " * 20


def make_round(i: int, passed: set[str], *, candidates: int = 2, prompt_words: int = 60) -> dict:
    cands = []
    for k in range(candidates):
        ok = passed if k == 0 else set()
        verdicts = [
            {"check_id": c["id"], "passed": c["id"] in ok, "answer": "yes" if c["id"] in ok else "no", "probability": None} for c in CHECKS
        ]
        cands.append(
            {
                "round": i,
                "index": k,
                "prompt": f"p{i}",
                "seed": i * 1000 + k,
                "params": {},
                "image": {"path": f"/runs/r/round{i}_{k}.png", "sha256": f"{i}{k}", "width": 64, "height": 64},
                "verdicts": verdicts,
                "score": len(ok) / len(CHECKS),
                "error": None,
            }
        )
    return {
        "index": i,
        "prompt": f"round {i}: " + " ".join(["two bright red circles right of a square"] * (prompt_words // 7)),
        "candidates": cands,
        "experience": f"Round {i} experience: emphasising 'exactly two' helped; the square still drifts right.",
        "thought": THOUGHT,
    }


@pytest.mark.parametrize("n", [3, 5, 8, 12, 20])
@pytest.mark.parametrize("budget", [1500, 6000])
def test_text_within_budget_images_capped_no_thoughts(n, budget):
    rounds = [make_round(i, {"c1"} if i % 2 else {"c1", "c2"}) for i in range(1, n + 1)]
    view = trajectory_view(rounds, CHECKS, budget_chars=budget, max_images=3)
    assert len(view.text) <= budget
    assert len(view.images) <= 3
    assert "SECRET-THOUGHT" not in view.text
    # the newest round is always shown in full, with its facts and experience
    assert f"Round {n} prompt: round {n}:" in view.text
    assert f"Round {n} experience" in view.text
    assert "failed: " in view.text and "passed: " in view.text
    # images are the best candidate's (index 0) of the most recent rounds, oldest first
    assert [im["path"] for im in view.images] == [f"/runs/r/round{i}_0.png" for i in range(max(1, n - 2), n + 1)]


def test_small_trajectory_is_not_folded_and_large_one_is():
    small = trajectory_view([make_round(i, {"c1"}) for i in (1, 2, 3)], CHECKS)
    assert small.folded_rounds == 0 and "Lessons so far" not in small.text
    assert all(f"Round {i} prompt:" in small.text for i in (1, 2, 3))
    big = trajectory_view([make_round(i, {"c1"}) for i in range(1, 21)], CHECKS, budget_chars=3000)
    assert big.folded_rounds > 0
    assert "Lessons so far (rounds 1-" in big.text
    assert "kept failing: Are the circles red?" in big.text


def test_size_stays_bounded_as_rounds_grow():
    sizes = [len(trajectory_view([make_round(i, {"c2"}) for i in range(1, n + 1)], CHECKS, budget_chars=4000).text) for n in range(3, 21)]
    assert max(sizes) <= 4000
    assert sizes[-1] >= 2000  # bounded by folding, not by dropping the history


def test_max_images_and_failed_rounds():
    failed = make_round(4, set())
    for c in failed["candidates"]:
        c.update(image=None, score=None, verdicts=[], error="generator timed out")
    rounds = [make_round(i, {"c1"}) for i in (1, 2, 3)] + [failed]
    view = trajectory_view(rounds, CHECKS, max_images=2)
    assert [im["path"] for im in view.images] == ["/runs/r/round2_0.png", "/runs/r/round3_0.png"]
    assert "generator timed out" in view.text
    assert trajectory_view(rounds, CHECKS, max_images=0).images == []
    assert trajectory_view([], CHECKS).text == ""
