"""The pixel checker must read procedural ground truth exactly (>= 98% of scenes)."""

import numpy as np

from gems_graph.shapes.detect import count, detect, relation_holds, scene_matches
from gems_graph.shapes.grammar import parse_prompt
from gems_graph.shapes.render import CATEGORIES, render_scene, sample_scene


def test_checker_reads_ground_truth():
    rng = np.random.default_rng(2024)
    n, ok = 300, 0
    for i in range(n):
        scene = sample_scene(rng, CATEGORIES[i % len(CATEGORIES)])
        image, objs = render_scene(scene, rng)
        dets = detect(image)
        truth = sorted((o.shape, o.color) for o in objs)
        ok += truth == sorted((d.shape, d.color) for d in dets) and scene_matches(scene, dets)
    assert ok / n >= 0.98, ok / n


def test_checker_rejects_wrong_prompt_and_answers_questions():
    rng = np.random.default_rng(0)
    scene = parse_prompt("a photo of a red square left of a blue circle")
    image, _ = render_scene(scene, rng)
    dets = detect(image)
    assert scene_matches(scene, dets)
    assert count(dets, "square", "red") == 1 and count(dets, "circle") == 1
    sq = next(d for d in dets if d.shape == "square")
    ci = next(d for d in dets if d.shape == "circle")
    assert relation_holds(sq, ci, "left of") and not relation_holds(sq, ci, "right of")
    assert all(0.0 <= d.confidence <= 1.0 for d in dets)
    assert not scene_matches(parse_prompt("a photo of a red square right of a blue circle"), dets)
    assert not scene_matches(parse_prompt("a photo of two red squares"), dets)


def test_blank_image_has_no_objects():
    from PIL import Image

    assert detect(Image.new("RGB", (32, 32), (255, 255, 255))) == []


def test_checker_reads_explicit_layouts_and_they_draw_the_terse_scene():
    """The explicit register's ground truth: each object in its cell, sized by its word, and
    the drawing still satisfies the terse prompt it was laid out from (relations included)."""
    from gems_graph.shapes.grammar import PLACES, describe
    from gems_graph.shapes.layout import explicate
    from gems_graph.shapes.render import CELL_CENTRES

    rng = np.random.default_rng(7)
    n, ok = 300, 0
    for i in range(n):
        terse = sample_scene(rng, CATEGORIES[i % len(CATEGORIES)])
        explicit = explicate(terse, rng, sizes=True)
        assert parse_prompt(describe(explicit)).groups() == explicit.groups()
        image, objs = render_scene(explicit, rng)
        for o, placed in zip(explicit.objects, objs):
            col, row = PLACES[o.place]
            assert abs(placed.cx - CELL_CENTRES[col]) <= 1 and abs(placed.cy - CELL_CENTRES[row]) <= 1
        ok += scene_matches(terse, detect(image))
    assert ok / n >= 0.98, ok / n
