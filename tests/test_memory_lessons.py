"""Distilling a finished run into lessons: deterministic, short, and about the fix."""

from __future__ import annotations

from gems_graph.memory import distill_lessons, generator_family
from gems_graph.memory.lessons import MAX_LESSON_WORDS, prompt_diff

CHECKS = [
    {"id": "count", "question": "Are there exactly two circles?", "source": "prompt"},
    {"id": "color", "question": "Are the circles red?", "source": "prompt"},
    {"id": "pos", "question": "Is the square left of the circles?", "source": "prompt"},
]


def rnd(i: int, prompt: str, passed: set[str], experience: str | None = None) -> dict:
    verdicts = [{"check_id": c["id"], "passed": c["id"] in passed, "answer": "", "probability": None} for c in CHECKS]
    cand = {
        "round": i,
        "index": 0,
        "prompt": prompt,
        "seed": i,
        "params": {},
        "image": None,
        "verdicts": verdicts,
        "score": len(passed) / 3,
        "error": None,
    }
    return {"index": i, "prompt": prompt, "candidates": [cand], "experience": experience, "thought": "RAW THOUGHT"}


def test_fix_lesson_names_what_failed_and_what_fixed_it():
    rounds = [
        rnd(1, "two red circles and a square", {"color"}, "count wrong"),
        rnd(2, "exactly two red circles and a square", {"color", "count"}, "square on the wrong side"),
        rnd(3, "exactly two red circles, a square on the far left", {"color", "count", "pos"}),
    ]
    lessons = distill_lessons(
        "two red circles right of a square", rounds, CHECKS, generator_family="shapes", skills=["spatial-layout"], status="passed"
    )
    assert 1 <= len(lessons) <= 3
    assert all(l["status"] == "passed" and l["skills"] == ["spatial-layout"] and l["generator_family"] == "shapes" for l in lessons)
    by_check = {tuple(l["failed_checks"]): l for l in lessons}
    count = by_check[("Are there exactly two circles?",)]
    assert count["rounds"] == 2 and count["score_gain"] > 0
    assert '"exactly"' in count["fix"]
    pos = by_check[("Is the square left of the circles?",)]
    assert pos["rounds"] == 3 and "far left" in pos["fix"]
    for l in lessons:
        assert len(l["text"].split()) <= MAX_LESSON_WORDS + 1
        assert "RAW THOUGHT" not in l["text"]
        assert l["uses"] == 1 and l["id"].startswith("L") and l["created_at"]


def test_deterministic_ids_and_text():
    rounds = [rnd(1, "a", set()), rnd(2, "a b", {"count"})]
    a = distill_lessons("p", rounds, CHECKS, generator_family="shapes", status="exhausted")
    b = distill_lessons("p", rounds, CHECKS, generator_family="shapes", status="exhausted")
    assert [(l["id"], l["text"]) for l in a] == [(l["id"], l["text"]) for l in b]


def test_unresolved_checks_give_a_lesson_with_the_last_experience():
    rounds = [rnd(1, "circles", {"count"}, "colour ignored"), rnd(2, "crimson circles", {"count"}, "try 'red' first")]
    lessons = distill_lessons("two red circles", rounds, CHECKS, generator_family="shapes", status="exhausted")
    unresolved = [l for l in lessons if not l["fix"]]
    assert len(unresolved) == 1
    assert "Are the circles red?" in unresolved[0]["failed_checks"]
    assert "still failing after 2 round(s)" in unresolved[0]["text"]
    assert "try 'red' first" in unresolved[0]["text"]


def test_first_try_success_and_empty_runs():
    lessons = distill_lessons("p", [rnd(1, "good prompt", {"count", "color", "pos"})], CHECKS, generator_family="shapes", status="passed")
    assert len(lessons) == 1 and "passed in round 1" in lessons[0]["text"] and "good prompt" in lessons[0]["text"]
    assert distill_lessons("p", [], CHECKS, generator_family="shapes") == []


def test_at_most_three_lessons_and_long_prompts_clipped():
    long = " ".join(["word"] * 500)
    rounds = [rnd(1, long, set())] + [
        rnd(i, long + f" fix{i}", {"count", "color", "pos"} if i == 4 else {["count", "color", "pos"][i - 2]}) for i in range(2, 5)
    ]
    lessons = distill_lessons(long, rounds, CHECKS, generator_family="shapes", status="passed")
    assert 1 <= len(lessons) <= 3
    assert all(len(l["text"].split()) <= MAX_LESSON_WORDS + 1 for l in lessons)


def test_prompt_diff_and_generator_family():
    assert prompt_diff("two red circles", "exactly two red circles") == (["exactly"], [])
    assert prompt_diff("a b c", "a x c") == (["x"], ["b"])

    class ZImage:
        family = "Z-Image"

    class Undeclared:
        pass

    # The generator says its family: every deployment of a model shares one pool of lessons.
    assert generator_family(ZImage()) == "z-image"
    assert generator_family(Undeclared()) == "undeclared"
    assert generator_family(None) == "unknown"


def test_fix_lesson_says_what_the_fixing_round_tried():
    rounds = [
        rnd(1, "circles", {"color"}, "Tried strategy restate. It still failed."),
        rnd(2, "two circles", {"color", "count", "pos"}, "Tried strategy reorder. Round 2 passed every check."),
    ]
    (lesson,) = distill_lessons("two red circles", rounds, CHECKS, generator_family="shapes", status="passed")
    assert lesson["text"].startswith('For "two red circles": strategy reorder worked in round 2')
    assert '"two"' in lesson["fix"]


def test_many_failed_checks_do_not_crowd_out_the_fix():
    many = [
        {"id": f"c{i}", "question": f"Is requirement number {i} of this long prompt satisfied in the image?", "source": "prompt"}
        for i in range(12)
    ]

    def r(i, passed, exp=None):
        v = [{"check_id": c["id"], "passed": c["id"] in passed, "answer": "", "probability": None} for c in many]
        return {
            "index": i,
            "prompt": f"prompt {i}",
            "experience": exp,
            "thought": None,
            "candidates": [
                {
                    "round": i,
                    "index": 0,
                    "prompt": "",
                    "seed": i,
                    "params": {"guidance": 4.0 + i},
                    "image": None,
                    "verdicts": v,
                    "score": len(passed) / 12,
                    "error": None,
                }
            ],
        }

    rounds = [r(1, set()), r(2, {c["id"] for c in many}, "Tried strategy raise-guidance. All passed.")]
    (lesson,) = distill_lessons("p", rounds, many, generator_family="shapes", status="passed")
    assert "strategy raise-guidance worked" in lesson["text"] and "(+10 more)" in lesson["text"]
    assert "guidance 5.0->6.0" in lesson["fix"]
    assert len(lesson["failed_checks"]) == 12
