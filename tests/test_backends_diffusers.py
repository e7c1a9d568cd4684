"""The ``diffusers:`` generator on tiny pipelines built from config and saved to disk."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gems_graph.backends.diffusers_generator import DiffusersGenerator, detect_preset, from_spec, parse_spec
from gems_graph.models.generator import GenerationError, GenerationRequest
from gems_graph.models.registry import resolve_generator
from tests.tiny_pipelines import save_sd_pipeline, save_zimage_pipeline


@pytest.fixture(scope="module")
def sd_folder(tmp_path_factory):
    return save_sd_pipeline(tmp_path_factory.mktemp("models") / "tiny-sd")


@pytest.fixture(scope="module")
def zimage_folder(tmp_path_factory):
    return save_zimage_pipeline(tmp_path_factory.mktemp("models") / "tiny-zimage")


def _arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.int16)


def test_sd_folder_through_registry_and_batch_matches_single(sd_folder):
    gen = resolve_generator(f"diffusers:{sd_folder}?device=cpu&steps=2")
    assert gen.family == "diffusers"
    alone = gen.generate(GenerationRequest("a red circle", seed=7))
    assert alone.size == (32, 32) and alone.mode == "RGB"
    batch = gen.generate_batch([GenerationRequest("two blue squares", seed=3), GenerationRequest("a red circle", seed=7)])
    assert all(isinstance(b, Image.Image) for b in batch)
    assert np.abs(_arr(batch[1]) - _arr(alone)).max() <= 2  # same seed, same image, batched or not
    assert np.abs(_arr(batch[0]) - _arr(alone)).max() > 2  # a different seed and prompt differ


def test_zimage_folder_detected_and_generates(zimage_folder):
    gen = from_spec(f"{zimage_folder}?device=cpu&steps=2&width=32&height=32")
    assert gen.family == "z-image"
    assert gen.resolved_params(GenerationRequest("x", seed=0))["guidance"] == 0.0  # Turbo preset, overridden size/steps
    req = GenerationRequest("a cat", seed=1, extra={"max_sequence_length": 32})
    out = gen.generate_batch([req, GenerationRequest("a cat", seed=2, extra={"max_sequence_length": 32})])
    assert [o.size for o in out] == [(32, 32), (32, 32)]
    again = gen.generate(req)
    assert np.abs(_arr(again) - _arr(out[0])).max() <= 2


def test_missing_folder_is_a_readable_generation_error(tmp_path):
    gen = from_spec(str(tmp_path / "no-such-model"))
    with pytest.raises(GenerationError, match="does not exist"):
        gen.generate(GenerationRequest("x", seed=0))
    assert isinstance(gen.generate_batch([GenerationRequest("x", seed=0)])[0], GenerationError)


class _Out:
    def __init__(self, images, nsfw=None):
        self.images = images
        self.nsfw_content_detected = nsfw


class _ScriptedPipeline:
    """Stands in for a pipeline only where CPUs cannot produce the condition (OOM, safety filter)."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.calls = []

    def __call__(self, prompt, generator=None, num_inference_steps=None, guidance_scale=None, width=None, height=None, output_type="pil"):
        self.calls.append(len(prompt))
        return self.behaviour(prompt)


def test_oom_splits_the_batch_then_reports():
    def oom(prompts):
        raise torch.OutOfMemoryError("CUDA out of memory")

    pipe = _ScriptedPipeline(oom)
    gen = DiffusersGenerator(pipe, family="sdxl")
    out = gen.generate_batch([GenerationRequest("a", seed=0), GenerationRequest("b", seed=1)])
    assert pipe.calls == [2, 1, 1]  # whole batch, then one at a time
    assert all(isinstance(o, GenerationError) and "out of memory" in str(o) for o in out)
    assert "1024x1024" in str(out[0])


def test_black_or_flagged_image_is_an_error():
    black, ok = Image.new("RGB", (8, 8)), Image.new("RGB", (8, 8), (90, 10, 10))
    gen = DiffusersGenerator(_ScriptedPipeline(lambda p: _Out([black, ok, ok], [False, False, True])))
    out = gen.generate_batch([GenerationRequest(str(i), seed=i) for i in range(3)])
    assert isinstance(out[0], GenerationError) and "black" in str(out[0])
    assert isinstance(out[1], Image.Image)
    assert isinstance(out[2], GenerationError)


def test_presets_and_overrides():
    assert detect_preset("Tongyi-MAI/Z-Image-Turbo").steps == 9
    qwen = detect_preset("Qwen/Qwen-Image-2512")
    assert (qwen.steps, qwen.guidance, qwen.width, qwen.guidance_arg) == (50, 4.0, 1328, "true_cfg_scale")
    assert detect_preset("black-forest-labs/FLUX.1-schnell").steps == 4
    assert detect_preset("black-forest-labs/FLUX.1-dev").guidance == 3.5
    assert detect_preset("stabilityai/stable-diffusion-xl-base-1.0").family == "sdxl"
    assert detect_preset("stabilityai/stable-diffusion-3.5-large").guidance == 4.5
    assert detect_preset("some/model", "ZImagePipeline").family == "z-image"
    gen = DiffusersGenerator("Qwen/Qwen-Image", defaults={"steps": 20})
    p = gen.resolved_params(GenerationRequest("x", seed=0, guidance=2.5, width=512))
    assert (p["steps"], p["guidance"], p["width"], p["height"]) == (20, 2.5, 512, 1328)


def test_spec_options():
    path, kw = parse_spec("org/m?device=cpu&dtype=float32&offload=1&slicing=0&steps=3&guidance=1.5")
    assert path == "org/m"
    assert kw == {
        "device": "cpu",
        "dtype": "float32",
        "cpu_offload": True,
        "attention_slicing": False,
        "defaults": {"steps": 3, "guidance": 1.5},
    }
    with pytest.raises(ValueError, match="unknown diffusers option 'bogus'"):
        parse_spec("org/m?bogus=1")
    with pytest.raises(ValueError, match="dtype"):
        from_spec("org/m?dtype=int7")


def test_concurrent_generate_calls_share_one_batch():
    from concurrent.futures import ThreadPoolExecutor

    pipe = _ScriptedPipeline(lambda prompts: _Out([Image.new("RGB", (4, 4), (len(p), 9, 9)) for p in prompts]))
    gen = DiffusersGenerator(pipe, batch_window=0.2)
    with ThreadPoolExecutor(3) as pool:
        images = list(pool.map(gen.generate, [GenerationRequest("x" * n, seed=n) for n in (1, 2, 3)]))
    assert pipe.calls == [3]  # one pipeline call for the round's three candidates
    assert [img.getpixel((0, 0))[0] for img in images] == [1, 2, 3]  # each caller gets its own image


@pytest.mark.parametrize("which", ["sd", "zimage"])
def test_full_gems_run_with_tiny_pipeline(which, sd_folder, zimage_folder, tmp_path):
    import json

    from typer.testing import CliRunner

    from gems_graph.app.cli import app

    folder = sd_folder if which == "sd" else zimage_folder
    spec = f"diffusers:{folder}?device=cpu&steps=2&width=32&height=32"
    result = CliRunner().invoke(
        app,
        ["run", "two red circles", "--generator", spec, "--rounds", "1", "--candidates", "2", "--out", str(tmp_path / "runs"), "--json"],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["status"] in ("passed", "exhausted") and out["rounds"] == 1
    assert Image.open(out["best_image"]).size == (32, 32)
