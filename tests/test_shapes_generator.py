"""ShapesGenerator: the Generator protocol over a saved pipeline, native 32x32, deterministic per seed."""

import threading

import numpy as np
import pytest

from gems_graph.models.generator import GenerationError, GenerationRequest, Generator
from gems_graph.shapes.generator import ShapesGenerator
from gems_graph.shapes.pipeline import ShapesPipeline, get_dummy_components


def test_generate_from_saved_weights(tmp_path):
    ShapesPipeline(**get_dummy_components()).save_pretrained(tmp_path)
    gen = ShapesGenerator(tmp_path, steps=2)
    assert isinstance(gen, Generator) and gen.family == "shapes"
    req = GenerationRequest(prompt="a photo of a red circle", seed=3, width=512, height=512)
    outs = []
    threads = [threading.Thread(target=lambda: outs.append(gen.generate(req))) for _ in range(3)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(outs) == 3 and outs[0].size == (32, 32)
    assert all(np.array_equal(np.asarray(outs[0]), np.asarray(o)) for o in outs)


def test_a_batch_makes_what_each_seed_makes_alone_up_to_rounding_and_sizes_are_declared(tmp_path):
    from gems_graph.models.generator import size_refusal

    ShapesPipeline(**get_dummy_components()).save_pretrained(tmp_path)
    gen = ShapesGenerator(tmp_path, steps=2)
    reqs = [
        GenerationRequest("a red circle", seed=1),
        GenerationRequest("two blue squares", seed=2),
        GenerationRequest("a red circle", seed=3, steps=3),
    ]
    batched = gen.generate_batch(reqs)
    for req, image in zip(reqs, batched):
        alone = np.asarray(gen.generate(req), dtype=int)
        assert image.size == (32, 32) and np.abs(np.asarray(image, dtype=int) - alone).max() <= 2
    assert size_refusal(gen, None, None) is None and size_refusal(gen, 32, 32) is None
    assert "makes 32x32 images only, not 999x3" in size_refusal(gen, 999, 3)


def test_missing_weights_is_a_clear_error(tmp_path):
    with pytest.raises(GenerationError, match="weights not found"):
        ShapesGenerator(tmp_path / "nope").available()
    with pytest.raises(GenerationError):
        ShapesGenerator(tmp_path / "nope").generate(GenerationRequest(prompt="a photo of a circle", seed=0))


#: The checker's reading (shape, colour, centroid in px) of the shipped model's images for fixed
#: seeds: an upgrade of torch or diffusers that changes what the demo draws fails here. The first
#: pair also shows the world's property: asked tersely for three circles it draws four; laid out
#: explicitly, three, each at its place.
GOLDEN = {
    ("a photo of three red circles", 0): [
        ("circle", "red", 7, 20),
        ("circle", "red", 9, 7),
        ("circle", "red", 22, 24),
        ("circle", "red", 23, 11),
    ],
    ("a photo of a red circle at the top left, a red circle at the centre and a red circle at the bottom right", 0): [
        ("circle", "red", 6, 6),
        ("circle", "red", 27, 26),
        ("circle", "red", 16, 16),
    ],
    ("a photo of a blue square left of a yellow triangle", 1): [("square", "blue", 9, 16), ("triangle", "yellow", 22, 17)],
    ("a photo of a blue square at the left and a yellow triangle at the right", 1): [
        ("square", "blue", 5, 16),
        ("triangle", "yellow", 26, 16),
    ],
    # GenEval2-style: five of a kind right; a chain of two relations with sizes gets every colour on the wrong shape.
    ("a photo of five green squares", 3): [
        ("square", "green", 13, 19),
        ("square", "green", 7, 8),
        ("square", "green", 24, 21),
        ("square", "green", 25, 6),
        ("square", "green", 11, 28),
    ],
    ("a photo of a large red circle left of a blue square above a small yellow triangle", 2): [
        ("square", "red", 9, 24),
        ("triangle", "blue", 11, 8),
        ("circle", "yellow", 24, 8),
    ],
}


@pytest.mark.parametrize("prompt, seed", list(GOLDEN))
def test_the_shipped_model_samples_the_same_images_for_a_fixed_seed(prompt, seed):
    from gems_graph.shapes.detect import detect

    image = ShapesGenerator().generate(GenerationRequest(prompt=prompt, seed=seed))
    seen = [(d.shape, d.color, round(d.cx), round(d.cy)) for d in detect(image)]
    assert len(seen) == len(GOLDEN[(prompt, seed)])
    for (shape, colour, x, y), (gs, gc, gx, gy) in zip(seen, GOLDEN[(prompt, seed)]):
        assert (shape, colour) == (gs, gc) and abs(x - gx) <= 1 and abs(y - gy) <= 1
