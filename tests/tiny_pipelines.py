"""Tiny real diffusers pipelines built from config, for offline tests.

diffusers' own tests do this with ``get_dummy_components()``; they download tiny
tokenizers from the hub, which these machines cannot reach, so the tokenizers
here are built in memory (byte-level vocabularies, no merges). Each builder
returns components; ``save_*`` writes a folder that ``diffusers:<folder>`` loads.
"""

from __future__ import annotations

from pathlib import Path

import torch

_BOS, _EOS = "<|startoftext|>", "<|endoftext|>"


def _byte_chars() -> list[str]:
    """GPT-2's byte -> printable-unicode table, as CLIP's tokenizer expects."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def tiny_clip_tokenizer():
    """A CLIPTokenizer over single bytes (plus end-of-word forms); no hub download."""
    from transformers import CLIPTokenizer

    chars = _byte_chars()
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": 256 + i for i, c in enumerate(chars)})
    vocab[_BOS] = len(vocab)
    vocab[_EOS] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def tiny_clip_text_encoder(tokenizer, *, hidden_size: int, intermediate_size: int, heads: int, **config):
    """A one-layer CLIP text model over ``tokenizer``'s vocabulary, seeded."""
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    return CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            hidden_size=hidden_size,
            intermediate_size=intermediate_size,
            layer_norm_eps=1e-05,
            num_attention_heads=heads,
            num_hidden_layers=1,
            vocab_size=len(tokenizer),
            max_position_embeddings=77,
            **config,
        )
    )


def tiny_sd_vae():
    """A two-block, 4-channel AutoencoderKL for 32x32 images, seeded."""
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    return AutoencoderKL(
        block_out_channels=[4, 8],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        norm_num_groups=2,
        sample_size=32,
    )


def sd_dummy_components() -> dict:
    """A tiny StableDiffusionPipeline (32x32, UNet + VAE + CLIP text model), seeded."""
    from diffusers import DDIMScheduler, UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(4, 8),
        layers_per_block=1,
        sample_size=16,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16,
        norm_num_groups=2,
        attention_head_dim=2,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    vae = tiny_sd_vae()
    tokenizer = tiny_clip_tokenizer()
    text_encoder = tiny_clip_text_encoder(tokenizer, hidden_size=16, intermediate_size=16, heads=2)
    return dict(
        unet=unet,
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
    )


def save_sd_pipeline(folder: str | Path) -> Path:
    """Write the tiny SD pipeline to ``folder``; load it with ``diffusers:<folder>``."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(**sd_dummy_components(), requires_safety_checker=False)
    pipe.save_pretrained(str(folder), safe_serialization=True)
    return Path(folder)


_QWEN_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tiny_qwen_tokenizer():
    """A byte-level BPE tokenizer with Qwen's chat markers and template, built offline."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {c: i for i, c in enumerate(_byte_chars())}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
        additional_special_tokens=["<|im_start|>"],
        model_max_length=512,
    )
    fast.chat_template = _QWEN_CHAT_TEMPLATE
    return fast


def zimage_dummy_components() -> dict:
    """A tiny ZImagePipeline: S3-DiT transformer, 16-channel VAE, Qwen3 text encoder."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, ZImageTransformer2DModel
    from transformers import Qwen3Config, Qwen3Model

    torch.manual_seed(0)
    transformer = ZImageTransformer2DModel(
        all_patch_size=(2,),
        all_f_patch_size=(1,),
        in_channels=16,
        dim=32,
        n_layers=2,
        n_refiner_layers=1,
        n_heads=2,
        n_kv_heads=2,
        norm_eps=1e-5,
        qk_norm=True,
        cap_feat_dim=16,
        rope_theta=256.0,
        t_scale=1000.0,
        axes_dims=[8, 4, 4],
        axes_lens=[256, 32, 32],
    )
    with torch.no_grad():  # created with torch.empty: fix them so outputs are not NaN
        transformer.x_pad_token.copy_(torch.ones_like(transformer.x_pad_token.data))
        transformer.cap_pad_token.copy_(torch.ones_like(transformer.cap_pad_token.data))
    torch.manual_seed(0)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        block_out_channels=[32, 64],
        layers_per_block=1,
        latent_channels=16,
        norm_num_groups=32,
        sample_size=32,
        scaling_factor=0.3611,
        shift_factor=0.1159,
    )
    tokenizer = tiny_qwen_tokenizer()
    torch.manual_seed(0)
    text_encoder = Qwen3Model(
        Qwen3Config(
            hidden_size=16,
            intermediate_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            head_dim=8,
            vocab_size=len(tokenizer),
            max_position_embeddings=512,
        )
    )
    return dict(
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
    )


def save_zimage_pipeline(folder: str | Path) -> Path:
    """Write the tiny Z-Image pipeline to ``folder``; load it with ``diffusers:<folder>``."""
    from diffusers import ZImagePipeline

    ZImagePipeline(**zimage_dummy_components()).save_pretrained(str(folder), safe_serialization=True)
    return Path(folder)


def tiny_t5_tokenizer():
    """A byte-level tokenizer with T5's pad and end markers (no sentencepiece model, no hub)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    vocab.update({c: i + 3 for i, c in enumerate(_byte_chars())})
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=512)


def _tiny_t5_encoder(vocab_size: int):
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(0)
    return T5EncoderModel(T5Config(d_model=32, d_ff=37, d_kv=8, num_layers=2, num_heads=4, vocab_size=vocab_size, decoder_start_token_id=0))


def flux_kontext_dummy_components() -> dict:
    """A tiny FluxKontextPipeline (an instruction editor: it takes ``image=`` itself)."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel

    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=4,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        axes_dims_rope=[4, 4, 8],
    )
    tokenizer = tiny_clip_tokenizer()
    text_encoder = tiny_clip_text_encoder(tokenizer, hidden_size=32, intermediate_size=37, heads=4, projection_dim=32)
    tokenizer_2 = tiny_t5_tokenizer()
    torch.manual_seed(0)
    vae = AutoencoderKL(
        sample_size=32,
        in_channels=3,
        out_channels=3,
        block_out_channels=(4,),
        layers_per_block=1,
        latent_channels=1,
        norm_num_groups=1,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.0609,
        scaling_factor=1.5035,
    )
    return dict(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=_tiny_t5_encoder(len(tokenizer_2)),
        tokenizer_2=tokenizer_2,
        transformer=transformer,
        image_encoder=None,
        feature_extractor=None,
    )


def pixart_dummy_components() -> dict:
    """A tiny PixArtSigmaPipeline: text-to-image only, diffusers has no img2img or inpainting for it."""
    from diffusers import DDIMScheduler, PixArtTransformer2DModel

    torch.manual_seed(0)
    transformer = PixArtTransformer2DModel(
        sample_size=16,
        num_layers=1,
        patch_size=2,
        attention_head_dim=8,
        num_attention_heads=2,
        caption_channels=32,
        in_channels=4,
        cross_attention_dim=16,
        out_channels=8,
        attention_bias=True,
        activation_fn="gelu-approximate",
        num_embeds_ada_norm=1000,
        norm_type="ada_norm_single",
        norm_elementwise_affine=False,
        norm_eps=1e-6,
    )
    vae = tiny_sd_vae()
    tokenizer = tiny_t5_tokenizer()
    return dict(
        transformer=transformer, vae=vae, scheduler=DDIMScheduler(), text_encoder=_tiny_t5_encoder(len(tokenizer)), tokenizer=tokenizer
    )
