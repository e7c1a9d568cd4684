"""``ShapesPipeline``: pixel-space text-to-image diffusion for the shapes world.

A real diffusers pipeline (UNet2DConditionModel, a diffusers scheduler,
classifier-free guidance, save/load), just tiny, so the offline world fails and
succeeds the way real text-to-image models do.

It also edits, the diffusers way and without retraining: ``image=`` with
``strength=`` is img2img (start from the source noised to the first of the last
``strength`` share of the steps, as ``StableDiffusion3Img2ImgPipeline`` does), and
``mask_image=`` (white = repaint) is inpainting: after every step, outside the mask
the sample is replaced by the source noised to the next step's level, and by the
source itself after the last one (``StableDiffusion3InpaintPipeline``'s rule), so
unmasked pixels come back as they were.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

# From their defining modules, as text_encoder.py does: under TYPE_CHECKING the top-level
# `diffusers` names resolve to its dummy placeholder classes, which type checkers then see.
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
from diffusers.pipelines.pipeline_utils import DiffusionPipeline, ImagePipelineOutput
from diffusers.schedulers.scheduling_flow_match_euler_discrete import FlowMatchEulerDiscreteScheduler
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image

from gems_graph.shapes.text_encoder import ShapesTextEncoder

SIZE = 32


def unet_config(channels=(48, 96, 128), attn_16: bool = True, heads: int = 2, width: int = 128, patch: int = 2) -> dict:
    """UNet over 2x2 pixel patches (32x32 RGB -> 16x16x12): 4x cheaper than full resolution,
    which matters on 2 shared CPU cores. Cross-attention on the two coarsest levels
    (8x8 and 4x4 for patch 2), or only the coarsest if not ``attn_16``."""
    down = ["DownBlock2D", "CrossAttnDownBlock2D" if attn_16 else "DownBlock2D", "CrossAttnDownBlock2D"]
    up = ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D" if attn_16 else "UpBlock2D", "UpBlock2D"]
    return dict(
        sample_size=SIZE // patch,
        in_channels=3 * patch * patch,
        out_channels=3 * patch * patch,
        block_out_channels=tuple(channels),
        down_block_types=tuple(down),
        up_block_types=tuple(up),
        layers_per_block=1,
        cross_attention_dim=width,
        attention_head_dim=heads,
        norm_num_groups=8,
        class_embed_type="projection",
        projection_class_embeddings_input_dim=width,
    )


#: Object phrases the text encoder tells apart (four objects, with room to spare).
SEGMENTS = 10


def make_components(channels=(48, 96, 128), attn_16=True, width=128, text_layers=2, patch=2) -> dict:
    """Fresh, untrained components (tests use a tiny ``channels``)."""
    return dict(
        unet=UNet2DConditionModel(**unet_config(channels, attn_16, width=width, patch=patch)),
        text_encoder=ShapesTextEncoder(width=width, layers=text_layers, segments=SEGMENTS, phrase_pooling=True),
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0),
    )


def get_dummy_components() -> dict:
    """A tiny, fast configuration for tests."""
    torch.manual_seed(0)
    return make_components(channels=(8, 16, 16), width=16, text_layers=1)


def predict(
    unet: UNet2DConditionModel, x: torch.Tensor, t, cond: torch.Tensor, pooled: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """The UNet's velocity for pixel-space ``x`` (patchify in, unpatchify out); ``mask``
    marks the text positions cross-attention reads."""
    p = int(round((unet.config["in_channels"] // 3) ** 0.5))
    h = F.pixel_unshuffle(x, p) if p > 1 else x
    out = unet(
        h.to(unet.dtype), t, encoder_hidden_states=cond.to(unet.dtype), class_labels=pooled.to(unet.dtype), encoder_attention_mask=mask
    ).sample
    return (F.pixel_shuffle(out, p) if p > 1 else out).float()


class ShapesPipeline(DiffusionPipeline):
    """Text to 32x32 RGB image; the UNet predicts the flow-matching velocity."""

    model_cpu_offload_seq = "text_encoder->unet"  # type: ignore[assignment]  # diffusers declares it None; pipelines set a str
    # Set by register_modules; declared so type checkers know them. Any scheduler fits: its
    # optional methods are probed with hasattr.
    unet: UNet2DConditionModel
    text_encoder: ShapesTextEncoder
    scheduler: Any

    def __init__(self, unet: UNet2DConditionModel, text_encoder: ShapesTextEncoder, scheduler):
        super().__init__()
        self.register_modules(unet=unet, text_encoder=text_encoder, scheduler=scheduler)

    @torch.no_grad()
    def encode_prompt(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-token states, the pooled vector and the attention mask of the prompts."""
        ids = self.text_encoder.tokenizer(prompts).to(self.device)
        return (*self.text_encoder(ids), self.text_encoder.attention_mask(ids))

    def image_size(self) -> int:
        p = int(round((self.unet.config["in_channels"] // 3) ** 0.5))
        return self.unet.config["sample_size"] * p

    def preprocess(self, images: Image.Image | list[Image.Image], n: int, *, mask: bool = False) -> torch.Tensor:
        """PIL image(s) as a ``(n, C, H, W)`` tensor at the model's size: RGB in [-1, 1],
        or for a mask one channel binarised to {0, 1} (white = repaint)."""
        items = [images] if isinstance(images, Image.Image) else list(images)
        if len(items) == 1:
            items = items * n
        if len(items) != n:
            raise ValueError(f"{len(items)} images for {n} prompts")
        size = self.image_size()
        arrays = []
        for im in items:
            im = im.convert("L" if mask else "RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.Resampling.NEAREST if mask else Image.Resampling.BICUBIC)
            arrays.append(np.asarray(im, dtype=np.float32) / 255.0)
        t = torch.from_numpy(np.stack(arrays)).to(self.device)
        return (t[:, None] > 0.5).float() if mask else t.permute(0, 3, 1, 2) * 2.0 - 1.0

    def get_timesteps(self, num_inference_steps: int, strength: float) -> torch.Tensor:
        """The last ``strength`` share of the schedule (diffusers' img2img rule)."""
        self.scheduler.set_timesteps(num_inference_steps, device=self.device)
        t_start = int(max(num_inference_steps - min(num_inference_steps * strength, num_inference_steps), 0))
        order = getattr(self.scheduler, "order", 1)
        if hasattr(self.scheduler, "set_begin_index"):
            self.scheduler.set_begin_index(t_start * order)
        return self.scheduler.timesteps[t_start * order :]

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str],
        num_inference_steps: int = 20,
        guidance_scale: float = 3.0,
        generator: torch.Generator | list[torch.Generator] | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        image: Image.Image | list[Image.Image] | None = None,
        mask_image: Image.Image | list[Image.Image] | None = None,
        strength: float = 1.0,
    ):
        """Text to image; with ``image`` img2img at ``strength`` (0 returns the source, 1 is
        generation from pure noise), with ``mask_image`` too inpainting inside the mask."""
        if mask_image is not None and image is None:
            raise ValueError("mask_image needs image (the picture to inpaint)")
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength must be between 0 and 1, got {strength}")
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        n = len(prompts)
        cond, pooled, mask = self.encode_prompt(prompts)
        cfg = guidance_scale > 1.0
        if cfg:
            ucond, upooled, umask = self.encode_prompt([""] * n)
            cond, pooled, mask = torch.cat([ucond, cond]), torch.cat([upooled, pooled]), torch.cat([umask, mask])
        size = self.image_size()
        noise = randn_tensor((n, 3, size, size), generator=generator, device=self.device, dtype=torch.float32)
        source: torch.Tensor | None = None
        keep: torch.Tensor | None = None
        if image is None:
            x = noise * getattr(self.scheduler, "init_noise_sigma", 1.0)
            self.scheduler.set_timesteps(num_inference_steps, device=self.device)
            timesteps = self.scheduler.timesteps
        else:
            source = self.preprocess(image, n)
            keep = None if mask_image is None else 1.0 - self.preprocess(mask_image, n, mask=True)
            timesteps = self.get_timesteps(num_inference_steps, strength)
            x = self.scheduler.scale_noise(source, timesteps[:1].repeat(n), noise) if len(timesteps) else source
        for i, t in enumerate(timesteps):
            inp = torch.cat([x, x]) if cfg else x
            if hasattr(self.scheduler, "scale_model_input"):
                inp = self.scheduler.scale_model_input(inp, t)
            out = predict(self.unet, inp, t, cond, pooled, mask)
            if cfg:
                u, c = out.chunk(2)
                out = u + guidance_scale * (c - u)
            x = self.scheduler.step(out, t, x).prev_sample
            if keep is not None and source is not None:
                known = source
                if i < len(timesteps) - 1:
                    known = self.scheduler.scale_noise(source, timesteps[i + 1 : i + 2].repeat(n), noise)
                x = keep * known + (1.0 - keep) * x
        images = (x / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
        if output_type == "pil":
            images = [Image.fromarray((im * 255).round().astype(np.uint8)) for im in images]
        elif output_type == "pt":
            images = torch.from_numpy(images).permute(0, 3, 1, 2)
        if not return_dict:
            return (images,)
        return ImagePipelineOutput(images=images)
