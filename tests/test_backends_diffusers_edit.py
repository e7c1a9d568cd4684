"""Editing with the ``diffusers:`` generator, on tiny real pipelines built from config.

The tiny pipelines have random weights, so what a pixel looks like after an edit says
nothing; what is asserted is what a user relies on: which pipeline does the edit (a
``from_pipe`` sibling sharing the loaded components, or the loaded one itself), the
result's size, determinism per seed, the source kept outside the mask and the masked
region repainted, and a clear ``GenerationError`` for a family that cannot edit.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from diffusers import (
    FluxFillPipeline,
    FluxImg2ImgPipeline,
    FluxInpaintPipeline,
    FluxKontextPipeline,
    FluxPipeline,
    PixArtSigmaPipeline,
    QwenImageEditInpaintPipeline,
    QwenImageEditPipeline,
    StableDiffusionImg2ImgPipeline,
    StableDiffusionInpaintPipeline,
    StableDiffusionXLInpaintPipeline,
)
from langgraph.checkpoint.memory import InMemorySaver
from PIL import Image

from gems_graph import prompt_labels as labels
from gems_graph.backends.diffusers_generator import DiffusersGenerator, detect_preset, edit_pipeline_classes, from_spec
from gems_graph.context import GemsContext
from gems_graph.graph import compile_graph
from gems_graph.models.generator import EditRequest, GenerationError, GenerationRequest, region_mask, supports_editing
from gems_graph.nodes.critic import Decomposition
from gems_graph.nodes.planner import PlannedPrompt
from gems_graph.nodes.refiner import EditOrPrompt, Experience
from gems_graph.testing import ScriptedChatModel, last_text
from tests.tiny_pipelines import (
    flux_kontext_dummy_components,
    pixart_dummy_components,
    save_sd_pipeline,
    save_zimage_pipeline,
    sd_dummy_components,
)

#: The left half of a 32x32 image.
LEFT = [0.0, 0.0, 0.5, 1.0]


@pytest.fixture(scope="module")
def sd_folder(tmp_path_factory):
    return save_sd_pipeline(tmp_path_factory.mktemp("models") / "tiny-sd")


@pytest.fixture(scope="module")
def sd_gen(sd_folder):
    return from_spec(f"{sd_folder}?device=cpu&steps=3")


@pytest.fixture(scope="module")
def source(sd_gen):
    return sd_gen.generate(GenerationRequest("a red circle", seed=7))


def _arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.int16)


def _diff(a: Image.Image, b: Image.Image) -> np.ndarray:
    return np.abs(_arr(a) - _arr(b))


def test_sd_folder_says_it_edits_without_loading(sd_folder):
    gen = from_spec(f"{sd_folder}?device=cpu")
    assert gen.supports_editing is True and supports_editing(gen)
    assert gen._pipe is None  # decided from model_index.json's class, no weights loaded


def test_sd_inpaints_through_a_sibling_sharing_components_and_keeps_the_outside(sd_gen, source):
    mask = region_mask(32, 32, LEFT)
    inside = np.asarray(mask) > 0
    out = sd_gen.edit(EditRequest(source, "a blue square", seed=1, mask=mask))
    assert out.size == (32, 32) and out.mode == "RGB"
    sibling = sd_gen._edit_pipes[StableDiffusionInpaintPipeline]
    assert sibling.unet is sd_gen.pipeline.unet and sibling.vae is sd_gen.pipeline.vae  # from_pipe: no second load
    assert _diff(out, source)[~inside].max() == 0  # the source outside the mask, pixel for pixel
    assert _diff(out, source)[inside].mean() > 10  # the masked region was repainted
    again = sd_gen.edit(EditRequest(source, "a blue square", seed=1, mask=mask))
    assert _diff(again, out).max() <= 2  # deterministic per seed
    other = sd_gen.edit(EditRequest(source, "a blue square", seed=2, mask=mask))
    assert _diff(other, out)[inside].mean() > 2
    assert list(sd_gen._edit_pipes) == [StableDiffusionInpaintPipeline]  # cached: built once


def test_sd_img2img_follows_strength_seed_and_source(sd_gen, source):
    out = sd_gen.edit(EditRequest(source, "a red circle", seed=3, strength=0.6))
    assert out.size == (32, 32)
    assert isinstance(sd_gen._edit_pipes[StableDiffusionImg2ImgPipeline], StableDiffusionImg2ImgPipeline)
    assert _diff(sd_gen.edit(EditRequest(source, "a red circle", seed=3, strength=0.6)), out).max() <= 2
    assert _diff(sd_gen.edit(EditRequest(source, "a red circle", seed=4, strength=0.6)), out).mean() > 2
    # strength 0 keeps the source; a small one (fewer than one of 3 steps) still runs a step
    assert _diff(sd_gen.edit(EditRequest(source, "a red circle", seed=3, strength=0.0)), source).max() == 0
    small = sd_gen.edit(EditRequest(source, "a red circle", seed=3, strength=0.05))
    full = sd_gen.edit(EditRequest(source, "a red circle", seed=3, strength=1.0))
    assert small.size == (32, 32) and _diff(small, full).mean() > 2  # 1 step from the source, or 3 from noise
    # the source reaches the pipeline: another source, same seed and prompt, another result
    other_source = sd_gen.generate(GenerationRequest("two blue squares", seed=11))
    assert _diff(sd_gen.edit(EditRequest(other_source, "a red circle", seed=3, strength=0.6)), out).mean() > 2
    # a source whose size the VAE cannot make comes back at its own size
    odd = source.resize((30, 30))
    assert sd_gen.edit(EditRequest(odd, "a red circle", seed=3, strength=0.6)).size == (30, 30)


def test_a_loaded_inpaint_pipeline_is_used_as_is_with_a_full_mask_without_one(source):
    pipe = StableDiffusionInpaintPipeline(**sd_dummy_components(), requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    gen = DiffusersGenerator(pipe, device="cpu", defaults={"steps": 2})
    out = gen.edit(EditRequest(source, "a red circle", seed=0, strength=0.7))
    masked = gen.edit(EditRequest(source, "a red circle", seed=0, mask=region_mask(32, 32, LEFT)))
    assert out.size == masked.size == (32, 32) and gen._edit_pipes == {}


def test_an_inpaint_pipeline_generates_by_repainting_a_blank_image():
    pipe = StableDiffusionInpaintPipeline(**sd_dummy_components(), requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    gen = DiffusersGenerator(pipe, device="cpu", defaults={"steps": 2})
    first = gen.generate(GenerationRequest("a red circle", seed=1, width=32, height=32))
    again, other = gen.generate_batch([GenerationRequest("a red circle", seed=s, width=32, height=32) for s in (1, 2)])
    assert first.size == (32, 32) and _diff(first, Image.new("RGB", (32, 32), (127, 127, 127))).mean() > 5
    assert _diff(first, again).max() <= 1 and _diff(first, other).mean() > 1  # its own seed decides, batched or not


def test_an_edit_only_family_refuses_to_generate_without_loading(sd_folder):
    gen = DiffusersGenerator(sd_folder, family="qwen-image-edit", device="cpu")
    with pytest.raises(GenerationError, match=r"qwen-image-edit .* only edits: it needs a source image"):
        gen.generate(GenerationRequest("a red circle", seed=0))
    assert gen._pipe is None


def test_zimage_folder_edits_through_its_siblings(tmp_path):
    gen = from_spec(f"{save_zimage_pipeline(tmp_path / 'tiny-zimage')}?device=cpu&steps=2")
    assert gen.supports_editing and gen._pipe is None
    src = Image.new("RGB", (32, 32), (200, 40, 40))
    mask = region_mask(32, 32, LEFT)
    extra = {"max_sequence_length": 32}
    masked = gen.edit(EditRequest(src, "a cat", seed=0, mask=mask, extra=extra))
    plain = gen.edit(EditRequest(src, "a cat", seed=0, strength=0.5, extra=extra))
    assert masked.size == plain.size == (32, 32)
    assert {c.__name__ for c in gen._edit_pipes} == {"ZImageInpaintPipeline", "ZImageImg2ImgPipeline"}
    assert _diff(masked, src)[np.asarray(mask) == 0].max() == 0


def test_an_instruction_editor_edits_with_its_own_pipeline():
    pipe = FluxKontextPipeline(**flux_kontext_dummy_components())
    pipe.set_progress_bar_config(disable=True)
    gen = DiffusersGenerator(pipe, device="cpu")
    assert gen.family == "flux-kontext" and gen.supports_editing
    assert gen.resolved_params(EditRequest(Image.new("RGB", (8, 8)), "x", seed=0))["guidance"] == 2.5
    src = Image.new("RGB", (32, 32), (200, 40, 40))
    extra = {"max_area": 32 * 32, "_auto_resize": False, "max_sequence_length": 48}  # keep it at 32x32
    out = gen.edit(EditRequest(src, "make it blue", seed=1, steps=2, extra=extra))
    assert out.size == (32, 32) and gen._edit_pipes == {}  # the loaded pipeline takes image= itself
    assert _diff(gen.edit(EditRequest(src, "make it blue", seed=1, steps=2, extra=extra)), out).max() <= 2
    # no inpainting sibling for Kontext: the whole image is edited, the outside pasted back
    mask = region_mask(32, 32, LEFT)
    inside = np.asarray(mask) > 0
    masked = gen.edit(EditRequest(src, "make it blue", seed=1, steps=2, mask=mask, extra=extra))
    assert _diff(masked, src)[~inside].max() == 0 and _diff(masked, src)[inside].mean() > 10


def test_a_text_only_family_says_it_cannot_edit_and_an_edit_is_a_generation_error():
    pipe = PixArtSigmaPipeline(**pixart_dummy_components())
    pipe.set_progress_bar_config(disable=True)
    gen = DiffusersGenerator(pipe, device="cpu")
    assert gen.supports_editing is False and not supports_editing(gen)
    extra = {"max_sequence_length": 32, "clean_caption": False, "use_resolution_binning": False}
    assert gen.generate(GenerationRequest("a cat", seed=0, width=32, height=32, steps=2, extra=extra)).size == (32, 32)
    with pytest.raises(GenerationError, match=r"cannot edit: diffusers has no image-to-image"):
        gen.edit(EditRequest(Image.new("RGB", (32, 32)), "a dog", seed=0))
    with pytest.raises(GenerationError, match=r"cannot edit: diffusers has no inpainting"):
        gen.edit(EditRequest(Image.new("RGB", (32, 32)), "a dog", seed=0, mask=region_mask(32, 32, LEFT)))


def test_edit_routes_for_the_supported_families():
    assert edit_pipeline_classes(StableDiffusionXLInpaintPipeline) == (StableDiffusionXLInpaintPipeline,) * 2
    assert edit_pipeline_classes(FluxFillPipeline) == (FluxFillPipeline,) * 2
    assert edit_pipeline_classes(FluxPipeline) == (FluxInpaintPipeline, FluxImg2ImgPipeline)
    assert edit_pipeline_classes(FluxKontextPipeline) == (FluxKontextPipeline,) * 2
    assert edit_pipeline_classes(QwenImageEditPipeline) == (QwenImageEditInpaintPipeline, QwenImageEditPipeline)
    assert edit_pipeline_classes(PixArtSigmaPipeline) == (None, None)


def test_edit_presets_are_detected_from_names_and_classes():
    fill = detect_preset("black-forest-labs/FLUX.1-Fill-dev")
    assert (fill.family, fill.steps, fill.guidance) == ("flux-fill", 50, 30.0)
    kontext = detect_preset("black-forest-labs/FLUX.1-Kontext-dev")
    assert (kontext.family, kontext.steps, kontext.guidance) == ("flux-kontext", 28, 2.5)
    qwen = detect_preset("Qwen/Qwen-Image-Edit-2509")
    assert (qwen.family, qwen.steps, qwen.guidance, qwen.guidance_arg) == ("qwen-image-edit", 50, 4.0, "true_cfg_scale")
    assert detect_preset("diffusers/stable-diffusion-xl-1.0-inpainting-0.1").family == "sdxl-inpaint"
    assert detect_preset("Qwen/Qwen-Image").family == "qwen-image"  # generation presets unchanged
    assert detect_preset("black-forest-labs/FLUX.1-dev").family == "flux-dev"
    classes = ["FluxFillPipeline", "FluxKontextPipeline", "QwenImageEditPipeline", "StableDiffusionXLInpaintPipeline"]
    assert [detect_preset("/models/x", c).family for c in classes] == ["flux-fill", "flux-kontext", "qwen-image-edit", "sdxl-inpaint"]
    gen = DiffusersGenerator("black-forest-labs/FLUX.1-Fill-dev", defaults={"steps": 20})
    p = gen.resolved_params(EditRequest(Image.new("RGB", (8, 8)), "x", seed=0, guidance=10.0))
    assert (p["steps"], p["guidance"]) == (20, 10.0)


class _OomEditor:
    """Stands in for a pipeline only where CPUs cannot produce the condition (OOM)."""

    def __call__(self, prompt, image=None, strength=1.0, generator=None, num_inference_steps=None, width=None, height=None, **kw):
        raise torch.OutOfMemoryError("CUDA out of memory")


def test_oom_while_editing_is_a_generation_error():
    gen = DiffusersGenerator(_OomEditor(), family="flux-kontext")
    with pytest.raises(GenerationError, match=r"out of memory editing a 32x32 image"):
        gen.edit(EditRequest(Image.new("RGB", (32, 32)), "x", seed=0))


def _edit_the_left_half(seen: list[str]):
    """A scripted LLM: one check passes, one fails, and the refiner asks to edit the left half."""

    def handle(messages, tools):
        text = last_text(messages)
        if "PlannedPrompt" in tools:
            return PlannedPrompt(reasoning="", prompt="a red circle and a blue square")
        if "Decomposition" in tools:
            return Decomposition(checks=["Is there a red circle?", "Is there a blue square?"])
        if "Experience" in tools:
            return Experience(experience="The square is missing.")
        if "EditOrPrompt" in tools:
            seen.append(text)
            return EditOrPrompt(prompt="a red circle and a blue square", action="edit", region=LEFT)
        return "yes" if "circle" in (labels.find_field(text, labels.QUESTION) or "") else "no"

    return handle


def test_the_loop_edits_with_the_diffusers_generator_from_its_spec(sd_folder, tmp_path):
    seen: list[str] = []
    context = GemsContext(
        generator=f"diffusers:{sd_folder}?device=cpu&steps=2",
        chat_model=ScriptedChatModel(handler=_edit_the_left_half(seen)),
        artifact_root=str(tmp_path / "runs"),
        memory="none",
        max_skills=0,
        max_rounds=2,
        refiner_edits=True,
    )
    app = compile_graph(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "diffusers-edit"}}
    list(app.stream({"prompt": "a red circle and a blue square"}, config, context=context))
    state = app.get_state(config).values
    parent, edited = state["rounds"][0]["candidates"][0], state["rounds"][1]["candidates"][0]
    assert seen and labels.EDIT_SOURCE in seen[0]  # the refiner was offered the edit
    assert edited["error"] is None and edited["edit"]["parent"] == {"round": 1, "index": 0}
    result, source = Image.open(edited["image"]["path"]), Image.open(parent["image"]["path"])
    assert result.size == source.size == (32, 32)
    assert _diff(result.convert("RGB"), source.convert("RGB"))[:, 16:].max() == 0  # right half kept
    assert Image.open(edited["edit"]["mask"]["path"]).getpixel((4, 4)) == 255


def test_full_gems_run_with_edits_through_the_registry(sd_folder, tmp_path):
    from typer.testing import CliRunner

    from gems_graph.app.cli import app

    spec = f"diffusers:{sd_folder}?device=cpu&steps=2"
    result = CliRunner().invoke(
        app,
        ["run", "two red circles", "--generator", spec, "--rounds", "2", "--edits", "--out", str(tmp_path / "runs"), "--json"],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["status"] in ("passed", "exhausted") and Image.open(out["best_image"]).size == (32, 32)
