"""The shapes world's GenEval2-style hard suite: atoms, the grader on renders, the splits.

The grader must read every atom of procedural ground truth right on >= 98% of hard
scenes (as tests/test_shapes_detect.py asks of the easy ones), or the suite's GM would
measure the checker instead of the generator.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from gems_graph.shapes import suite
from gems_graph.shapes.atoms import ATOM_KINDS, Atom, answer_atoms, atom_count, atom_scores, atoms_for_scene
from gems_graph.shapes.detect import detect, scene_matches
from gems_graph.shapes.grammar import PLACES, ShapesGrammarError, describe, parse_prompt
from gems_graph.shapes.layout import explicate, relation_cells_ok
from gems_graph.shapes.questions import answer_detections, checks_for_scene
from gems_graph.shapes.render import HARD_MAX_OBJECTS, Placed, draw, render_scene, sample_hard_scene
from gems_graph.shapes.suite import ATOM_BINS, HARD_SEEDS, atom_bin, hard_dev_split, hard_split, hard_test_split, scene_key


@pytest.fixture(scope="module")
def splits():
    return hard_dev_split(), hard_test_split()


def test_atoms_are_counted_as_geneval2_counts_them():
    """Every group an object and a count atom (GenEval2 asks "How many?" of single objects
    too), an attribute atom per colour or size, a position atom per relation."""
    scene = parse_prompt("a photo of a red circle left of a blue square and two green triangles")
    assert atoms_for_scene(scene) == [
        Atom("object", "Is there a circle?"),
        Atom("count", "Is there exactly one circle?"),
        Atom("attribute", "Is the circle red?"),
        Atom("object", "Is there a square?"),
        Atom("count", "Is there exactly one square?"),
        Atom("attribute", "Is the square blue?"),
        Atom("object", "Is there a triangle?"),
        Atom("count", "Are there exactly two triangles?"),
        Atom("attribute", "Are the triangles green?"),
        Atom("position", "Is the circle to the left of the square?"),
    ]
    with pytest.raises(ShapesGrammarError, match="second relation"):  # a chain's third object is single
        parse_prompt("a photo of a large circle left of a square above five small yellow triangles")
    chain = parse_prompt("a photo of a large circle left of a square above a small yellow triangle")
    assert [a.question for a in atoms_for_scene(chain) if a.kind in ("attribute", "position")] == [
        "Is the circle large?",
        "Is the triangle yellow?",
        "Is the triangle small?",
        "Is the circle to the left of the square?",
        "Is the square above the triangle?",
    ]
    assert atom_count(chain) == 11  # more than GenEval2's 10: never in a split
    assert atom_count(parse_prompt("a photo of two red circles, three blue squares and five yellow triangles")) == 9
    assert atom_count(parse_prompt("a photo of a circle, a square and a triangle")) == 6
    assert atom_count(parse_prompt("a photo of three circles")) == 2  # below GenEval2's range: never in a split


def test_the_grader_answers_each_atom_on_its_own():
    """A wrong colour fails the attribute atom only; an extra object fails its count only."""
    scene = parse_prompt("a photo of a red circle left of a blue square and two green triangles")
    wrong_colour = [
        Placed("circle", "yellow", 6, 16, 8),
        Placed("square", "blue", 16, 16, 8),
        Placed("triangle", "green", 26, 6, 8),
        Placed("triangle", "green", 26, 26, 8),
    ]
    answers = answer_atoms(scene, draw(wrong_colour))
    assert [a.question for a, yes in answers if not yes] == ["Is the circle red?"]
    assert atom_scores(answers) == {"am": 9 / 10, "gm": 0.0}
    swapped_and_extra = [
        Placed("circle", "red", 26, 16, 8),
        Placed("square", "blue", 16, 16, 8),
        Placed("triangle", "green", 6, 6, 7),
        Placed("triangle", "green", 6, 26, 7),
        Placed("triangle", "red", 16, 27, 7),
    ]
    failed = {a.kind for a, yes in answer_atoms(scene, draw(swapped_and_extra)) if not yes}
    assert failed == {"position", "count", "attribute"}  # the red triangle breaks "are the triangles green"
    sizes = parse_prompt("a photo of a large circle above a small square")
    big_and_small = [Placed("circle", "red", 16, 8, 10), Placed("square", "blue", 16, 25, 6)]
    assert atom_scores(answer_atoms(sizes, draw(big_and_small))) == {"am": 1.0, "gm": 1.0}
    both_usual = [Placed("circle", "red", 16, 8, 7.5), Placed("square", "blue", 16, 25, 7.5)]
    assert [a.question for a, yes in answer_atoms(sizes, draw(both_usual)) if not yes] == ["Is the circle large?", "Is the square small?"]
    right = [Placed("circle", "red", 6, 16, 8), *wrong_colour[1:]]
    assert atom_scores(answer_atoms(scene, draw(right))) == {"am": 1.0, "gm": 1.0}
    # The attribute atom needs an object of that shape: a missing square fails it too.
    assert answer_detections("Is the square blue?", detect(draw(right[:1])))[0] is False


def test_old_checks_and_exact_reading_handle_the_extra_groups():
    scene = parse_prompt("a photo of a red circle above a blue square and a yellow triangle")
    assert checks_for_scene(scene) == [
        "Is there a red circle?",
        "Is there a blue square?",
        "Is there a yellow triangle?",
        "Is the red circle above the blue square?",
    ]
    image, _ = render_scene(scene, np.random.default_rng(0))
    assert scene_matches(scene, detect(image))
    assert not scene_matches(parse_prompt("a photo of a red circle below a blue square and a yellow triangle"), detect(image))


def test_hard_scenes_stay_in_the_world():
    rng = np.random.default_rng(1)
    seen = Counter()
    for _ in range(2000):
        s = sample_hard_scene(rng)
        shapes = [o.shape for o in s.objects]
        assert 1 <= len(shapes) <= 3 and len(set(shapes)) == len(shapes)
        total = sum(o.count for o in s.objects)
        assert total <= HARD_MAX_OBJECTS and all(1 <= o.count <= 5 for o in s.objects)
        for i, _rel, j in s.relations:
            assert s.objects[i].count == s.objects[j].count == 1
        if any(o.size == "large" for o in s.objects):
            assert total <= 4 and s.second_relation is None  # room to draw it large
        seen.update(five=any(o.count == 5 for o in s.objects), size=any(o.size for o in s.objects), chain=bool(s.second_relation))
    assert min(seen[k] for k in ("five", "size", "chain")) >= 100


def test_grader_reads_every_atom_of_rendered_hard_scenes():
    """Ground truth of every atom bin, dense scenes (up to nine objects) included."""
    rng = np.random.default_rng(2025)
    per_bin: Counter = Counter()
    ok = n = 0
    while n < 240:
        scene = sample_hard_scene(rng)
        k = atom_count(scene)
        if not 3 <= k <= 10 or per_bin[atom_bin(k)] >= 60:
            continue
        per_bin[atom_bin(k)] += 1
        n += 1
        image, objs = render_scene(scene, rng)
        assert len(objs) == sum(o.count for o in scene.objects)
        ok += all(yes for _, yes in answer_atoms(scene, image))
    assert ok / n >= 0.98, ok / n


def test_explicit_layouts_of_hard_scenes_are_read_as_the_terse_scene():
    """The explicit register's ground truth: every object its own cell, the relation kept,
    and the drawing answers the terse prompt's atoms."""
    from gems_graph.shapes.render import CELL_CENTRES

    rng = np.random.default_rng(8)
    ok = n = 0
    while n < 120:
        terse = sample_hard_scene(rng)
        if not 3 <= atom_count(terse) <= 10:
            continue
        n += 1
        explicit = explicate(terse, rng)
        cells = [PLACES[o.place] for o in explicit.objects]
        assert len(set(cells)) == len(cells) == sum(o.count for o in terse.objects)
        for i, rel, j in terse.relations:
            assert relation_cells_ok(rel, cells[i], cells[j])
        image, objs = render_scene(explicit, rng)
        for (col, row), placed in zip(cells, objs):
            assert abs(placed.cx - CELL_CENTRES[col]) <= 1 and abs(placed.cy - CELL_CENTRES[row]) <= 1
        ok += all(yes for _, yes in answer_atoms(terse, image))
    assert ok / n >= 0.98, ok / n


def test_explicate_gives_every_object_its_own_cell_and_keeps_the_relation():
    scene = parse_prompt("a photo of a red circle left of a blue square and four green triangles")
    for seed in range(20):
        out = explicate(scene, np.random.default_rng(seed))
        cells = [PLACES[o.place] for o in out.objects]
        assert len(out.objects) == 6 and len(set(cells)) == 6 and out.relation == "left of"
        assert relation_cells_ok("left of", cells[0], cells[1])
        assert [o.shape for o in out.objects] == ["circle", "square"] + ["triangle"] * 4
    pinned = explicate(scene, np.random.default_rng(0), keep={0: (0, 1), 1: (2, 1), 2: (1, 0)})
    assert [PLACES[o.place] for o in pinned.objects[:3]] == [(0, 1), (2, 1), (1, 0)]
    full = parse_prompt("a photo of three circles, three squares and three triangles")
    assert len({o.place for o in explicate(full, np.random.default_rng(1)).objects}) == 9
    with pytest.raises(ValueError, match="at most 9"):
        explicate(parse_prompt("a photo of four circles, four squares and two triangles"), np.random.default_rng(0))
    chain = parse_prompt("a photo of a circle left of a square above a large triangle")
    for seed in range(20):
        cells = [PLACES[o.place] for o in explicate(chain, np.random.default_rng(seed)).objects]
        assert relation_cells_ok("left of", cells[0], cells[1]) and relation_cells_ok("above", cells[1], cells[2])
        assert not {(cells[2][0] + dc, cells[2][1] + dr) for dc in (-1, 0, 1) for dr in (-1, 0, 1)} & set(cells[:2])  # large: alone


def test_splits_are_balanced_over_atom_bins(splits):
    for items in splits:
        assert len(items) == 240
        assert Counter(it.category for it in items) == {f"atoms {lo}-{hi}": 60 for lo, hi in ATOM_BINS}
        for it in items:
            scene = parse_prompt(it.prompt)
            assert atom_bin(atom_count(scene)) == it.category and describe(scene) == it.prompt
        assert len({it.prompt for it in items}) == 240


def test_splits_are_disjoint_as_scenes_and_seeds(splits):
    dev, test = splits
    keys = lambda items: {scene_key(parse_prompt(it.prompt)) for it in items}  # noqa: E731
    assert not keys(dev) & keys(test)
    assert not {it.prompt for it in dev} & {it.prompt for it in test}
    # One scene in other words is one key: the relation read either way, groups in any order.
    assert scene_key(parse_prompt("a photo of a circle left of a square and a triangle")) == scene_key(
        parse_prompt("a photo of a square right of a circle and a triangle")
    )
    assert scene_key(parse_prompt("a photo of a circle and two squares")) == scene_key(parse_prompt("a photo of two squares and a circle"))
    assert scene_key(parse_prompt("a photo of a circle left of a square above a triangle")) != scene_key(
        parse_prompt("a photo of a circle left of a square below a triangle")
    )
    hard_seeds = {it.seed for it in dev} | {it.seed for it in test}
    assert len(hard_seeds) == 480
    assert all(HARD_SEEDS["dev"] <= it.seed < HARD_SEEDS["dev"] + 1_000_000 for it in dev)
    assert all(HARD_SEEDS["test"] <= it.seed < HARD_SEEDS["test"] + 1_000_000 for it in test)
    easy = {it.seed for it in suite.dev_split()} | {it.seed for it in suite.test_split()}
    assert max(easy) < min(hard_seeds) and max(hard_seeds) < 50_000_000  # the critic's data starts there


def test_splits_are_a_pure_function_of_their_seed(splits):
    dev, _ = splits
    assert hard_dev_split() == dev
    assert hard_split(HARD_SEEDS["dev"], per_bin=5) == hard_split(HARD_SEEDS["dev"], per_bin=5)
    assert hard_split(HARD_SEEDS["dev"], per_bin=5) != hard_split(12_345, per_bin=5)


def test_every_atom_kind_occurs(splits):
    dev, _ = splits
    kinds = Counter(a.kind for it in dev for a in atoms_for_scene(parse_prompt(it.prompt)))
    assert set(kinds) == set(ATOM_KINDS) and min(kinds.values()) >= 30
