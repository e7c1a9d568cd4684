"""The contract between the node prompts and the chat models that read them.

Every node prompt is formatted the way its node formats it, and every field the
shapes chat model reads is found by the labels in ``gems_graph.prompt_labels``. A
label renamed on one side only fails here instead of silently reading the wrong text.
"""

from __future__ import annotations

from gems_graph import prompt_labels as labels
from gems_graph.memory.access import lessons_text
from gems_graph.memory.trajectory import round_facts, trajectory_view
from gems_graph.nodes.critic import DECOMPOSE_USER_PROMPT, VERIFY_USER_PROMPT
from gems_graph.nodes.planner import PLANNER_USER_PROMPT
from gems_graph.nodes.refiner import COMPRESS_USER_PROMPT, EDIT_OFFER, REFINE_USER_PROMPT
from gems_graph.shapes.chat_model import _lesson_moves, guide_moves
from gems_graph.shapes.generator import PROMPTING_GUIDE

CHECKS = [
    {"id": "c1", "question": "Are there exactly three red circles?", "source": "decomposition"},
    {"id": "c2", "question": "Is there a blue square?", "source": "decomposition"},
]
LESSON = (
    'For "a photo of two circles": strategy explicit-layout worked in round 2 (prompt change: x; '
    "score +1.00). It fixed: Are there exactly two circles?"
)


def _round(index: int, prompt: str, experience: str | None = None) -> dict:
    verdicts = [
        {"check_id": "c1", "passed": False, "answer": "no", "probability": 0.1},
        {"check_id": "c2", "passed": True, "answer": "yes", "probability": 0.9},
    ]
    cand = {
        "round": index,
        "index": 0,
        "prompt": prompt,
        "seed": index,
        "params": {},
        "image": None,
        "verdicts": verdicts,
        "score": 0.5,
        "error": None,
    }
    return {"index": index, "prompt": prompt, "candidates": [cand], "experience": experience, "thought": None}


def test_planner_prompt_fields():
    text = PLANNER_USER_PROMPT.format(
        prompt="a photo of three red circles", guide=labels.guide_block(PROMPTING_GUIDE), extra=lessons_text([{"text": LESSON}])
    )
    assert labels.find_field(text, labels.USER_REQUEST) == "a photo of three red circles"
    assert labels.find_block(text, labels.PROMPTING_GUIDE) == PROMPTING_GUIDE
    assert _lesson_moves(text) == [("explicit-layout", {"count"})]
    bare = PLANNER_USER_PROMPT.format(prompt="a photo of three red circles", guide=labels.guide_block(None), extra="")
    assert labels.find_block(bare, labels.PROMPTING_GUIDE) is None


def test_the_guide_block_keeps_the_guide_whole_and_ends_where_it_ends():
    guide = "First line.\n\nAfter a blank line, failed: not a check."
    text = f"{labels.ORIGINAL_REQUEST}: x\n{labels.guide_block(guide)}{labels.TRAJECTORY}:\nRound 1 prompt: x\n  failed: Is there a x?"
    assert labels.find_block(text, labels.PROMPTING_GUIDE) == guide
    assert labels.find_all(text, labels.FAILED)[-1] == "Is there a x?"
    # The shipped generator's guide states the moves in the order the shapes chat model tries them.
    assert guide_moves(PROMPTING_GUIDE) == ["add-colour", "explicit-layout", "move"]


def test_critic_prompt_fields():
    text = DECOMPOSE_USER_PROMPT.format(prompt="a photo of a red square")
    assert labels.find_field(text, labels.DESCRIPTION) == "a photo of a red square"
    text = VERIFY_USER_PROMPT.format(prompt="a photo of a red square", question="Is there a red square?")
    assert labels.find_field(text, labels.IMAGE_REQUEST) == "a photo of a red square"
    assert labels.find_field(text, labels.QUESTION).startswith("Is there a red square?")


def test_refiner_prompt_fields():
    facts = round_facts(_round(1, "a photo of three red circles"), CHECKS)
    text = COMPRESS_USER_PROMPT.format(
        prompt="a photo of three red circles", facts=facts, thought="strategy: explicit-layout; failed: none"
    )
    assert labels.find_field(text, labels.ORIGINAL_REQUEST) == "a photo of three red circles"
    assert labels.round_prompts(text) == [(1, "a photo of three red circles")]
    assert labels.find_field(text, labels.FAILED) == "Are there exactly three red circles?"
    assert labels.find_field(text, labels.PASSED) == "Is there a blue square?"
    assert labels.find_field(text, labels.REASONING).startswith("strategy: explicit-layout")

    rounds = [
        _round(1, "a photo of three red circles", "Tried strategy x."),
        _round(2, "a photo of a red circle at the left, a red circle at the right and a red circle at the top"),
    ]
    view = trajectory_view(rounds, CHECKS)
    text = REFINE_USER_PROMPT.format(
        prompt="a photo of three red circles",
        guide=labels.guide_block(PROMPTING_GUIDE),
        trajectory=view.text,
        lessons=lessons_text([{"text": LESSON}]) + "\n",
        feedback=f"{labels.FEEDBACK}: redder\n",
        edit=EDIT_OFFER.format(round=1, index=0, failed="Are there exactly three red circles?", passed="Is there a blue square?"),
    )
    assert labels.find_field(text, labels.EDIT_SOURCE).startswith("round 1 candidate 0")
    assert labels.find_field(text, labels.EDIT_FAILED) == "Are there exactly three red circles?"
    assert labels.find_field(text, labels.EDIT_PASSED) == "Is there a blue square?"
    assert labels.find_field(text, labels.ORIGINAL_REQUEST) == "a photo of three red circles"
    assert [i for i, _ in labels.round_prompts(text)] == [1, 2]
    assert labels.find_all(text, labels.FAILED)[-1] == "Are there exactly three red circles?"
    assert labels.find_field(text, labels.EXPERIENCE) == "Tried strategy x."
    assert labels.find_field(text, labels.FEEDBACK) == "redder"
    assert labels.find_block(text, labels.PROMPTING_GUIDE) == PROMPTING_GUIDE
    assert _lesson_moves(text) == [("explicit-layout", {"count"})]


def test_a_missing_label_is_not_read_as_the_whole_text():
    assert labels.find_field("no labels here at all", labels.USER_REQUEST) is None
    assert labels.round_prompts("nothing") == []
