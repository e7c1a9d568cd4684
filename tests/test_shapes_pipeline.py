"""ShapesPipeline: a real diffusers pipeline that survives save_pretrained/from_pretrained."""

import numpy as np
import torch

from gems_graph.shapes.pipeline import ShapesPipeline, get_dummy_components
from gems_graph.shapes.text_encoder import UNK, ShapesTextEncoder


def _run(pipe, prompt="a photo of two red circles", seed=0):
    return pipe(prompt, num_inference_steps=3, guidance_scale=3.0, generator=torch.Generator().manual_seed(seed), output_type="np").images


def test_call_shapes_and_batches():
    pipe = ShapesPipeline(**get_dummy_components())
    out = pipe(
        ["a photo of a circle", "a photo of a blue square"],
        num_inference_steps=2,
        generator=[torch.Generator().manual_seed(i) for i in range(2)],
    )
    assert len(out.images) == 2 and out.images[0].size == (32, 32) and out.images[0].mode == "RGB"


def test_save_load_round_trip(tmp_path):
    pipe = ShapesPipeline(**get_dummy_components())
    before = _run(pipe)
    pipe.save_pretrained(tmp_path)
    assert (tmp_path / "unet" / "diffusion_pytorch_model.safetensors").exists()
    loaded = ShapesPipeline.from_pretrained(tmp_path)
    assert isinstance(loaded.text_encoder, ShapesTextEncoder)
    np.testing.assert_allclose(before, _run(loaded), atol=1e-5)  # same numbers up to float noise
    assert np.abs(before - _run(loaded, seed=1)).max() > 1e-3


def test_tokenizer_unknown_words_and_padding():
    tok = ShapesTextEncoder().tokenizer
    ids = tok.encode("A photo of THE purple square to the left of 2 circles")
    assert len(ids) == tok.max_length
    assert tok.index[UNK] in ids
    assert tok.words("a photo of a square to the left of two circles") == tok.words("the photo of a square left of 2 circles")
