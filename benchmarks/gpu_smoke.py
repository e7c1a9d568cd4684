"""GPU smoke benchmark: seconds per 1024x1024 Z-Image-Turbo image at 9 steps, by batch size.

Builds a ``ZImagePipeline`` from configs at full size with random weights (so no hub
access is needed): the Z-Image-Turbo S3-DiT transformer (diffusers' default
``ZImageTransformer2DModel`` config: dim 3840, 30 layers), a Qwen3-4B-sized text
encoder, a FLUX-sized 16-channel VAE, in bf16 on CUDA. It then runs it through our
``DiffusersGenerator`` (the code ``gems run`` uses) for batch 1, 2, 4 and 8, and
prints seconds per batch, seconds per image and peak GPU memory. Random weights make
noise images, but the arithmetic, and so the time, is the real model's.

    .venv/bin/python benchmarks/gpu_smoke.py [--batches 1,2,4,8] [--repeats 2] [--budget-s 540] [--out FILE]

The figures go to ``--out`` (``benchmarks/results/gpu_smoke.json``). Without CUDA it
prints one line saying so, writes nothing and exits with status 2, so the docs' table
says it was not measured rather than showing a figure no GPU made.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from record import write_result

from gems_graph.backends.diffusers_generator import DiffusersGenerator
from gems_graph.models.generator import GenerationRequest

OUT = Path(__file__).parent / "results" / "gpu_smoke.json"
PROMPT = "a red bicycle leaning on a green door, two cats on the step, golden hour"


# Copied from tests.tiny_pipelines (benchmarks never import tests/): an offline byte-level tokenizer.
def _byte_chars() -> list[str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


_QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def byte_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(_byte_chars())}, merges=[]))
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


def full_size_zimage_pipeline(device: str = "cuda"):
    """Z-Image-Turbo's architecture at full size, random bf16 weights, on ``device``."""
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, ZImagePipeline, ZImageTransformer2DModel
    from transformers import Qwen3Config, Qwen3Model

    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            transformer = ZImageTransformer2DModel()  # the default config is Z-Image-Turbo's
            with torch.no_grad():  # created with torch.empty: give them values so outputs are numbers
                transformer.x_pad_token.fill_(1.0)
                transformer.cap_pad_token.fill_(1.0)
            tokenizer = byte_tokenizer()
            text_encoder = Qwen3Model(
                Qwen3Config(
                    hidden_size=2560,
                    intermediate_size=9728,
                    num_hidden_layers=36,
                    num_attention_heads=32,
                    num_key_value_heads=8,
                    head_dim=128,
                    vocab_size=len(tokenizer),
                    max_position_embeddings=4096,
                )
            )
            vae = AutoencoderKL(
                in_channels=3,
                out_channels=3,
                down_block_types=["DownEncoderBlock2D"] * 4,
                up_block_types=["UpDecoderBlock2D"] * 4,
                block_out_channels=[128, 256, 512, 512],
                layers_per_block=2,
                latent_channels=16,
                scaling_factor=0.3611,
                shift_factor=0.1159,
                use_quant_conv=False,
                use_post_quant_conv=False,
            )
    finally:
        torch.set_default_dtype(previous)
    pipe = ZImagePipeline(
        transformer=transformer, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=FlowMatchEulerDiscreteScheduler()
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="1,2,4,8", help="Batch sizes to time (comma-separated).")
    ap.add_argument("--repeats", type=int, default=2, help="Timed calls per batch size (after one warm-up call at batch 1).")
    ap.add_argument("--budget-s", type=float, default=540.0, help="Stop starting new batch sizes after this many seconds.")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("gpu_smoke: torch is not installed; this benchmark needs torch with CUDA and a GPU", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("gpu_smoke: no CUDA device (torch.cuda.is_available() is False); run it on a machine with a GPU", file=sys.stderr)
        return 2
    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    start = time.perf_counter()
    pipe = full_size_zimage_pipeline("cuda")
    params = sum(p.numel() for p in pipe.transformer.parameters()) / 1e9
    gen = DiffusersGenerator(pipe, family="z-image-turbo", device="cuda", dtype=torch.bfloat16, max_batch=max(batches))
    built_s = time.perf_counter() - start
    print(f"# {torch.cuda.get_device_name(0)}, torch {torch.__version__}; transformer {params:.2f} B parameters (bf16)")
    print(f"# built in {built_s:.1f} s; 1024x1024, 9 steps, guidance 0")

    def requests(n: int, base: int) -> list[GenerationRequest]:
        return [GenerationRequest(prompt=PROMPT, seed=base + i, width=1024, height=1024, steps=9, guidance=0.0) for i in range(n)]

    def run(reqs: list[GenerationRequest]) -> None:
        errors = [r for r in gen.generate_batch(reqs) if isinstance(r, Exception)]
        if errors:
            raise RuntimeError(f"generation failed: {errors[0]}")

    run(requests(1, 0))  # warm-up: kernels, allocator
    print("| batch | s / batch | s / image | peak GiB |")
    print("|---|---|---|---|")
    rows, stopped_before = [], None
    for b in batches:
        if time.perf_counter() - start > args.budget_s:
            print(f"# stopped before batch {b}: past the {args.budget_s:.0f} s budget")
            stopped_before = b
            break
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        times = []
        for r in range(args.repeats):
            t0 = time.perf_counter()
            run(requests(b, 1000 * (r + 1)))
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        best = min(times)
        peak = torch.cuda.max_memory_allocated() / 2**30
        rows.append({"batch": b, "s_per_batch": round(best, 3), "s_per_image": round(best / b, 3), "peak_gib": round(peak, 2)})
        print(f"| {b} | {best:.2f} | {best / b:.2f} | {peak:.1f} |", flush=True)
    total_s = time.perf_counter() - start
    print(f"# total {total_s:.1f} s")
    result = {
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "transformer_parameters_b": round(params, 2),
        "size": [1024, 1024],
        "steps": 9,
        "built_s": round(built_s, 1),
        "repeats": args.repeats,
        "rows": rows,
        "stopped_before_batch": stopped_before,
        "seconds": round(total_s, 1),
    }
    write_result(result, args.out)
    print(f"# written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
