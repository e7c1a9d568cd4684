"""The critic's v3 vocabulary: check phrasings, training questions and growing a trained critic."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from gems_graph.shapes.critic_model import MAX_QUESTION, QUESTION_VOCAB, WEIGHTS, ShapesCritic, is_check_question, to_pixels
from gems_graph.shapes.detect import detect
from gems_graph.shapes.grammar import describe, parse_prompt
from gems_graph.shapes.questions import answer_detections
from gems_graph.shapes.render import render_scene
from gems_graph.shapes.text_encoder import UNK
from gems_graph.shapes.train_critic import grown_from, init_from, perturb, sample_questions

V3_CHECKS = (
    "Is there exactly one circle?",
    "Is there exactly 1 red circle?",
    "Are there exactly five small squares?",
    "Are there exactly 5 squares?",
    "Is there a large red circle?",
    "Is there a small triangle at the top left?",
    "Is the large circle to the left of the square?",
    "Is the red square above the small blue triangle?",
    "Is the circle red?",
    "Are the circles large?",
    "Are the squares small?",
)


def test_new_phrasings_are_check_questions_and_skill_questions_are_not():
    for q in V3_CHECKS:
        assert is_check_question(q), q
    for q in ("Does every object keep its colour?", "Is the image aesthetically pleasing?", "Is the red circle large?"):
        assert not is_check_question(q), q


def test_question_vocabulary_keeps_the_shipped_indices_and_reads_every_new_word():
    shipped = json.loads((WEIGHTS / "config.json").read_text())["vocab"]
    assert list(QUESTION_VOCAB) == shipped  # the shipped critic was trained on every word of today's vocabulary
    assert QUESTION_VOCAB.index("five") == len(QUESTION_VOCAB) - 1  # grown at the end: the v2 words keep their indices
    critic = ShapesCritic(width=16, heads=2, image_layers=1, fusion_layers=1)
    ids = critic.encode_questions(list(V3_CHECKS), [False] * len(V3_CHECKS))
    assert not (ids == QUESTION_VOCAB.index(UNK)).any()


@pytest.mark.parametrize(
    "prompt",
    ["a photo of a large red circle left of a blue square above a small triangle", "a photo of five small squares and a yellow triangle"],
)
def test_sampled_questions_cover_the_v3_vocabulary_with_the_checkers_labels(prompt):
    scene = parse_prompt(prompt)
    image, _ = render_scene(scene, np.random.default_rng(1))
    dets = detect(image)
    sampled = sample_questions(np.random.default_rng(0), describe(scene), dets, 300, binding=0.2, place=0.3)
    checks = [(q, yes) for q, request, yes in sampled if not request]
    assert len(checks) < len(sampled)  # the request head is asked too
    for q, yes in checks:
        assert is_check_question(q), q
        if " at the " not in q:  # a place is read by the sampler itself
            assert yes == answer_detections(q, dets)[0], q
    asked = [q for q, _ in checks]
    for pattern in (
        r"^Is there exactly one ",
        r"^Are there exactly five ",
        r"^Is there a (small|large) ",
        r"^(Is|Are) the \w+ (red|green|blue|yellow)\?$",
        r"^(Is|Are) the \w+ (small|large)\?$",
        r"^Is the .*(small|large).* (to the left of|to the right of|above|below) the ",
    ):
        assert any(re.search(pattern, q) for q in asked), pattern
    assert {True, False} <= {yes for _, yes in checks}


def test_sampled_questions_ask_the_chained_relation():
    scene = parse_prompt("a photo of a red circle left of a blue square above a green triangle")
    image, _ = render_scene(scene, np.random.default_rng(0))
    asked = [q for q, _, _ in sample_questions(np.random.default_rng(0), describe(scene), detect(image), 200)]
    assert "Is the blue square above the green triangle?" in asked


def test_perturb_changes_a_size_or_the_second_relation_too():
    scene = parse_prompt("a photo of a large red circle left of a blue square above a small triangle")
    rng = np.random.default_rng(0)
    changed = [perturb(scene, rng) for _ in range(200)]
    assert all(s != scene and parse_prompt(describe(s)) == s for s in changed)
    assert any(s.second_relation != scene.second_relation for s in changed)
    assert any(s.relation != scene.relation for s in changed)
    assert any([o.size for o in s.objects] != [o.size for o in scene.objects] for s in changed)


def _tiny(vocab: tuple[str, ...], max_length: int) -> ShapesCritic:
    return ShapesCritic(vocab=vocab, max_length=max_length, width=16, image_layers=1, fusion_layers=1, heads=2)


def test_init_from_copies_embeddings_by_word_and_grows_positions(tmp_path):
    torch.manual_seed(0)
    old = _tiny(("[pad]", "[bos]", "[unk]", "[check]", "[request]", "is", "there", "circle"), 8)
    old.save_pretrained(tmp_path)
    new = _tiny(("[pad]", "[bos]", "[unk]", "[check]", "[request]", "circle", "is", "there", "five"), 12)
    init_from(new, tmp_path)
    old_vocab, new_vocab = list(old.config["vocab"]), list(new.config["vocab"])
    for word in old_vocab:
        assert torch.equal(new.embed.weight[new_vocab.index(word)], old.embed.weight[old_vocab.index(word)]), word
    assert new.embed.weight[new_vocab.index("five")].abs().sum() > 0
    assert torch.equal(new.text_pos[:, :8], old.text_pos[:, :8])
    assert torch.equal(new.check_head.weight, old.check_head.weight)


def test_grown_from_keeps_old_indices_and_answers(tmp_path):
    torch.manual_seed(0)
    old = _tiny(tuple(QUESTION_VOCAB[:-1]), 20).eval()
    old.save_pretrained(tmp_path)
    grown = grown_from(tmp_path).eval()
    assert list(grown.config["vocab"]) == list(QUESTION_VOCAB) and grown.config["max_length"] == MAX_QUESTION
    image, _ = render_scene(parse_prompt("a photo of a red circle left of a blue square"), np.random.default_rng(0))
    questions = ["Is there a red circle?", "Is the red circle to the left of the blue square?"]

    def answers(m: ShapesCritic) -> torch.Tensor:
        with torch.no_grad():
            return m(m.encode_images(to_pixels([image])).expand(2, -1, -1), m.encode_questions(questions, [False, False]))

    assert torch.allclose(answers(old), answers(grown))
