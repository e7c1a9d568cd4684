"""ShapesGenerator: the Generator protocol over a saved pipeline, native 32x32, deterministic per seed."""

import threading

import numpy as np
import pytest

from gems_graph.backends.base import GenerationError, GenerationRequest, Generator
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


def test_missing_weights_is_a_clear_error(tmp_path):
    with pytest.raises(GenerationError, match="weights not found"):
        ShapesGenerator(tmp_path / "nope").available()
    with pytest.raises(GenerationError):
        ShapesGenerator(tmp_path / "nope").generate(GenerationRequest(prompt="a photo of a circle", seed=0))
