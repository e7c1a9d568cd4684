"""The shapes world's learned critic is the loop's judge; the pixel checker only grades."""

from __future__ import annotations

import numpy as np
import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from gems_graph.models.generator import GenerationRequest
from gems_graph.models.llm import image_block, text_block, yes_probability
from gems_graph.models.registry import BackendLoadError, resolve_chat_model
from gems_graph.nodes.critic import VERIFY_USER_PROMPT
from gems_graph.shapes.chat_model import ShapesChatModel
from gems_graph.shapes.critic_model import critic_objects, is_check_question, shipped_judge
from gems_graph.shapes.generator import ShapesGenerator
from gems_graph.shapes.grammar import PLACE_OF_CELL, parse_prompt
from gems_graph.shapes.layout import cell_at
from gems_graph.shapes.render import render_scene

#: (prompt, seed, question, P(yes) of the shipped critic): a fixed set of generator
#: images and questions, so an upgrade that changes the critic's answers is caught.
#: A question that is not a check goes to the request head.
GOLDEN: list[tuple[str, int, str, float]] = [
    ("a photo of four green squares", 12, "Are there exactly four green squares?", 0.843),
    ("a photo of four green squares", 14, "Are there exactly four green squares?", 0.897),  # the grader says no: a false yes
    ("a photo of three red circles", 11, "Are there exactly three red circles?", 0.733),  # a false yes
    ("a photo of three red circles", 11, "Is there a blue square?", 0.001),
    ("a photo of a red square left of a yellow circle", 12, "Is the red square to the left of the yellow circle?", 0.537),  # a false yes
    ("a photo of a red square left of a yellow circle", 12, "Is there a yellow circle?", 0.982),
    (
        "a photo of a green triangle at the top left and a blue circle at the bottom right",
        13,
        "Is there a green triangle at the top left?",
        0.991,
    ),
    ("a photo of two blue squares and a yellow triangle", 14, "Are there exactly two blue squares?", 0.555),
    ("a photo of two blue squares and a yellow triangle", 14, "a photo of two blue squares and a yellow triangle", 0.434),
    # The v3 vocabulary: five of a kind, sizes, a chained relation, a count of one.
    ("a photo of five green squares", 3, "Are there exactly five green squares?", 0.656),
    ("a photo of a large red circle left of a blue square above a small yellow triangle", 2, "Is the circle large?", 0.04),
    (
        "a photo of a large red circle left of a blue square above a small yellow triangle",
        2,
        "Is the blue square above the small yellow triangle?",
        0.244,
    ),
    ("a photo of a large red circle left of a blue square above a small yellow triangle", 2, "Is there exactly one triangle?", 0.976),
]


def ask(model: ShapesChatModel, tmp_path, image, question: str, request: str):
    from gems_graph.persistence.artifacts import save_png

    ref = save_png(image, tmp_path / f"{abs(hash(question))}.png")
    content = [text_block(VERIFY_USER_PROMPT.format(prompt=request, question=question)), image_block(ref)]
    return model.invoke([SystemMessage("verify"), HumanMessage(content=content)])


def test_check_questions_are_told_from_questions_outside_the_vocabulary():
    for q in (
        "Is there a red circle?",
        "Is there a triangle?",
        "Are there exactly three blue squares?",
        "Is the red square to the left of the yellow circle?",
        "Is the circle below the triangle?",
        "Is there a green triangle at the top left?",
    ):
        assert is_check_question(q), q
    for q in ("Does each object keep the colour the prompt gives it?", "Is the image aesthetically pleasing?", "Is there a dog?"):
        assert not is_check_question(q), q


@pytest.mark.parametrize("prompt,seed,question,p_yes", GOLDEN)
def test_golden_answers_of_the_shipped_critic(prompt, seed, question, p_yes):
    image = ShapesGenerator().generate(GenerationRequest(prompt=prompt, seed=seed))
    assert shipped_judge().p_yes(image, [question])[0] == pytest.approx(p_yes, abs=0.02)


def test_clean_renders_are_read_right(tmp_path):
    """On procedural images (no generator errors) the critic answers the checks a user relies on."""
    model = ShapesChatModel()
    image, _ = render_scene(parse_prompt("a photo of two blue triangles"), np.random.default_rng(1))
    yes = ask(model, tmp_path, image, "Are there exactly two blue triangles?", "a photo of two blue triangles")
    no = ask(model, tmp_path, image, "Is there a red circle?", "a photo of two blue triangles")
    assert yes.text == "yes" and yes_probability(yes) > 0.5
    assert no.text == "no" and yes_probability(no) < 0.5


def test_the_critic_can_be_wrong_where_the_grader_is_not(tmp_path):
    """A false yes, as real VLMs give: the loop's judge passes a count the grader fails."""
    from gems_graph.shapes.questions import prompt_correct

    request, question = "a photo of four green squares", "Are there exactly four green squares?"
    image = ShapesGenerator().generate(GenerationRequest(prompt=request, seed=14))
    assert ask(ShapesChatModel(), tmp_path, image, question, request).text == "yes"
    assert not prompt_correct(parse_prompt(request), image)
    assert ask(ShapesChatModel(judge="oracle"), tmp_path, image, question, request).text == "no"


def test_the_verdicts_probability_is_the_critics_own(tmp_path):
    image, _ = render_scene(parse_prompt("a photo of a red square left of a yellow circle"), np.random.default_rng(3))
    question = "Is the red square to the left of the yellow circle?"
    reply = ask(ShapesChatModel(), tmp_path, image, question, "a photo of a red square left of a yellow circle")
    assert yes_probability(reply) == pytest.approx(shipped_judge().p_yes(image, [question])[0], abs=1e-6)


def test_the_critic_never_calls_the_pixel_checker(tmp_path, monkeypatch):
    """Verification and the refiner's view of an image go through the learned model only."""
    import gems_graph.shapes.chat_model as chat_module
    import gems_graph.shapes.detect as detect_module
    import gems_graph.shapes.questions as questions_module

    def forbidden(*args, **kwargs):
        raise AssertionError("the pixel checker was called inside the loop")

    image, _ = render_scene(parse_prompt("a photo of a red circle and a blue square"), np.random.default_rng(0))
    for module in (chat_module, detect_module, questions_module):
        monkeypatch.setattr(module, "detect", forbidden)
    model = ShapesChatModel()
    ask(model, tmp_path, image, "Is there a red circle?", "a photo of a red circle and a blue square")
    ask(model, tmp_path, image, "Does each object keep the colour the prompt gives it?", "a photo of a red circle and a blue square")
    assert model._perceive(image)


def test_a_skill_check_is_answered_for_the_whole_request_by_the_critic(tmp_path):
    right, _ = render_scene(parse_prompt("a photo of a red circle and a blue square"), np.random.default_rng(3))
    question = "Does each object keep the colour the prompt gives it?"
    request = "a photo of a red circle and a blue square"
    reply = ask(ShapesChatModel(), tmp_path, right, question, request)
    checks = ["Is there a red circle?", "Is there a blue square?"]
    assert yes_probability(reply) == pytest.approx(min(shipped_judge().p_yes(right, checks)), abs=1e-6)
    assert reply.text == "yes"
    wrong, _ = render_scene(parse_prompt("a photo of a blue circle and a red square"), np.random.default_rng(3))
    assert ask(ShapesChatModel(), tmp_path, wrong, question, request).text == "no"


def test_the_critic_sees_roughly_where_objects_are():
    """The refiner's view of an image: objects at the cells where the critic answers yes
    to "is there a <colour> <shape> at the <place>?" (as a small VLM, not exactly)."""
    judge = shipped_judge()
    image, _ = render_scene(
        parse_prompt("a photo of a red square at the top left and a blue circle at the right"), np.random.default_rng(2)
    )
    seen = critic_objects(image)
    assert ("square", "red", (0, 0)) in {(d.shape, d.color, cell_at(d.cx, d.cy)) for d in seen}
    for d in seen:
        question = f"Is there a {d.color} {d.shape} at the {PLACE_OF_CELL[cell_at(d.cx, d.cy)]}?"
        assert judge.p_yes(image, [question])[0] == pytest.approx(d.confidence, abs=1e-3) and d.confidence > 0.5


def test_shapes_oracle_is_the_graders_judge_for_the_ablation(tmp_path):
    oracle = resolve_chat_model("shapes-oracle")
    assert isinstance(oracle, ShapesChatModel) and oracle.judge == "oracle"
    assert resolve_chat_model("shapes").judge == "critic"
    with pytest.raises(BackendLoadError, match="no argument"):
        resolve_chat_model("shapes-oracle:x")
