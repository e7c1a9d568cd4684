"""ShapesPipeline: a real diffusers pipeline that survives save_pretrained/from_pretrained."""

import numpy as np
import pytest
import torch
from PIL import Image

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


def _source(seed=3):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8))


def _box_mask(x0, y0, x1, y1):
    mask = Image.new("L", (32, 32), 0)
    mask.paste(255, (x0, y0, x1, y1))
    return mask


def test_img2img_strength_zero_returns_the_source():
    pipe = ShapesPipeline(**get_dummy_components())
    src = _source()
    out = pipe("a photo of a red circle", num_inference_steps=4, image=src, strength=0.0, generator=torch.Generator().manual_seed(0))
    assert np.array_equal(np.asarray(out.images[0]), np.asarray(src))


def test_img2img_strength_one_is_generation():
    pipe = ShapesPipeline(**get_dummy_components())
    generated = _run(pipe)
    edited = pipe(
        "a photo of two red circles",
        num_inference_steps=3,
        guidance_scale=3.0,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
        image=_source(),
        strength=1.0,
    ).images
    np.testing.assert_allclose(edited, generated, atol=1e-6)


def test_img2img_partial_strength_starts_from_the_source():
    pipe = ShapesPipeline(**get_dummy_components())
    src = np.asarray(_source(), dtype=np.float32) / 255
    kw = dict(num_inference_steps=10, generator=torch.Generator().manual_seed(0), output_type="np", image=_source())
    near = pipe("a photo of a circle", strength=0.1, **kw).images[0]
    kw["generator"] = torch.Generator().manual_seed(0)
    far = pipe("a photo of a circle", strength=0.9, **kw).images[0]
    assert np.abs(near - src).mean() < np.abs(far - src).mean()


def test_inpainting_keeps_unmasked_pixels_and_changes_the_masked_region():
    pipe = ShapesPipeline(**get_dummy_components())
    src = _source()
    out = pipe(
        "a photo of a blue square",
        num_inference_steps=4,
        image=src,
        mask_image=_box_mask(8, 8, 20, 20),
        generator=torch.Generator().manual_seed(1),
    ).images[0]
    a, b = np.asarray(src).astype(int), np.asarray(out).astype(int)
    inside = np.zeros((32, 32), bool)
    inside[8:20, 8:20] = True
    assert np.abs(a - b)[~inside].max() <= 1  # the source, up to 8-bit rounding
    assert np.abs(a - b)[inside].mean() > 20


def test_edit_arguments_are_checked():
    pipe = ShapesPipeline(**get_dummy_components())
    with pytest.raises(ValueError, match="mask_image needs image"):
        pipe("a photo of a circle", num_inference_steps=2, mask_image=_box_mask(0, 0, 4, 4))
    with pytest.raises(ValueError, match="strength"):
        pipe("a photo of a circle", num_inference_steps=2, image=_source(), strength=1.5)
