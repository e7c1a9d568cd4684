"""Train the shapes-world diffusion model from a seed (runs outside CI).

    python -m gems_graph.shapes.train --out DIR --seed 0 --steps 1600 --warmup 100 \
        --ema 0.995 --eval-every 250 --eval-steps 12 --threads 1
    # then, resuming from DIR/ckpt.pt (shipped weights came from this two-phase run):
    python -m gems_graph.shapes.train --out DIR --seed 0 --steps 2300 --lr 5e-4 --warmup 100 \
        --ema 0.995 --eval-every 150 --eval-steps 12 --threads 1 --t-uniform 0.3 \
        --mix '{"single_object":0.3,"colors":0.1,"counting":0.15,"two_object":0.15,"color_attr":0.15,"position":0.15}'

Flow matching (velocity target, logit-normal times) on procedurally rendered
32x32 scenes, AdamW with warmup + cosine decay, EMA, 10% caption dropout and a
training mix weighted toward the hard categories. Every batch is a pure function
of (seed, step), so a run is reproducible and resumes exactly from
``OUT/ckpt.pt`` (model, EMA, optimizer, step, RNG; written every few minutes):
re-run the same command to resume. Every ``--eval-every`` steps it samples one
image per eval prompt with the EMA weights, reads them with the pixel checker,
prints per-category accuracy and exports the EMA weights (fp16 safetensors,
save_pretrained) to ``--export`` so usable weights are always shipped.

Model: 2x2 pixel patches (32x32x3 -> 16x16x12) into a UNet2DConditionModel with
channels (48, 96, 128), one layer per block, cross-attention (2 heads) at 8x8 and
4x4, the pooled text vector added to the time embedding; 5.8M parameters with the
2-layer, width-128 text encoder.

Time on this machine (2 CPU cores shared with other jobs): 1.5-2.5 s/step at
batch 32 with ``--threads 1`` while other jobs were running (a full-resolution
UNet without patching was 10-20 s/step under the same load). 1600 steps took
about 50 minutes; each eval (36 prompts, 12 sampler steps) about 15 s.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from .grammar import describe
from .pipeline import ShapesPipeline, make_components, predict
from .render import CATEGORIES, render_scene, sample_scene

DEFAULT_EXPORT = Path(__file__).parent / "weights"
MIX = {"single_object": 0.15, "colors": 0.15, "counting": 0.2, "two_object": 0.15, "color_attr": 0.15, "position": 0.2}


def batch(seed: int, step: int, size: int, dropout: float = 0.1, mix: dict | None = None):
    """The training batch for ``step``: images in [-1, 1] and captions ("" when dropped)."""
    rng = np.random.default_rng([seed, step])
    mix = mix or MIX
    w = np.array([mix[c] for c in CATEGORIES], dtype=float)
    cats = rng.choice(CATEGORIES, size=size, p=w / w.sum())
    imgs, caps = [], []
    for c in cats:
        scene = sample_scene(rng, str(c))
        img, _ = render_scene(scene, rng)
        imgs.append(np.asarray(img, dtype=np.float32) / 127.5 - 1.0)
        caps.append("" if rng.random() < dropout else describe(scene))
    return torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous(), caps


def eval_prompts(seed: int = 1234, per_category: int = 6) -> list[tuple[str, str]]:
    """A fixed (category, prompt) list for watching training."""
    rng = np.random.default_rng(seed)
    return [(c, describe(sample_scene(rng, c))) for c in CATEGORIES for _ in range(per_category)]


def evaluate(pipe: ShapesPipeline, prompts, steps: int, guidance: float, seed: int = 0) -> dict[str, float]:
    """One-sample accuracy per category by the pixel checker."""
    from .detect import check_prompt

    gens = [torch.Generator().manual_seed(seed + i) for i in range(len(prompts))]
    images = pipe([p for _, p in prompts], num_inference_steps=steps, guidance_scale=guidance, generator=gens).images
    hits: dict[str, list[bool]] = {c: [] for c in CATEGORIES}
    for (c, p), im in zip(prompts, images):
        hits[c].append(check_prompt(p, im))
    acc = {c: float(np.mean(v)) for c, v in hits.items() if v}
    acc["overall"] = float(np.mean([x for v in hits.values() for x in v]))
    return acc


def export(ema: dict, scheduler, dest: Path) -> None:
    """Write the EMA weights in fp16 via save_pretrained, replacing ``dest`` atomically."""
    pipe = ShapesPipeline(unet=copy.deepcopy(ema["unet"]).half(), text_encoder=copy.deepcopy(ema["text_encoder"]).half(),
                          scheduler=scheduler)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    pipe.save_pretrained(tmp, safe_serialization=True)
    old = dest.with_name(dest.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    tmp.rename(dest)
    shutil.rmtree(old, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--steps", type=int, default=12000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--channels", default="48,96,128")
    ap.add_argument("--no-attn16", dest="attn16", action="store_false", help="cross-attention on the coarsest level only")
    ap.add_argument("--patch", type=int, default=2)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--eval-steps", type=int, default=20)
    ap.add_argument("--eval-guidance", type=float, default=3.0)
    ap.add_argument("--ckpt-minutes", type=float, default=5.0)
    ap.add_argument("--export", type=Path, default=DEFAULT_EXPORT, help="'' to disable")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mix", type=json.loads, default=MIX, help="JSON category weights")
    ap.add_argument("--t-uniform", type=float, default=0.0,
                    help="fraction of times drawn uniformly instead of logit-normal (more high-noise practice)")
    a = ap.parse_args(argv)

    torch.set_num_threads(a.threads)
    a.out.mkdir(parents=True, exist_ok=True)
    ckpt_path = a.out / "ckpt.pt"
    torch.manual_seed(a.seed)
    channels = tuple(int(c) for c in a.channels.split(","))
    comps = make_components(channels=channels, attn_16=a.attn16, patch=a.patch)
    unet, te, scheduler = comps["unet"], comps["text_encoder"], comps["scheduler"]
    ema = {"unet": copy.deepcopy(unet).eval().requires_grad_(False),
           "text_encoder": copy.deepcopy(te).eval().requires_grad_(False)}
    params = list(unet.parameters()) + list(te.parameters())
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.01)
    tok = te.tokenizer
    step = 0
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        unet.load_state_dict(ck["unet"]); te.load_state_dict(ck["text_encoder"])
        ema["unet"].load_state_dict(ck["ema_unet"]); ema["text_encoder"].load_state_dict(ck["ema_text_encoder"])
        opt.load_state_dict(ck["opt"]); step = ck["step"]; torch.set_rng_state(ck["torch_rng"])
        print(f"resumed from {ckpt_path} at step {step}", flush=True)
    n_params = sum(p.numel() for p in params)
    print(json.dumps({"config": vars(a) | {"out": str(a.out), "export": str(a.export)}, "params": n_params}), flush=True)

    def lr_at(s: int) -> float:
        if s < a.warmup:
            return a.lr * (s + 1) / a.warmup
        frac = (s - a.warmup) / max(1, a.steps - a.warmup)
        return a.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))

    prompts = eval_prompts()
    last_ckpt, t0, losses = time.time(), time.time(), []
    unet.train(); te.train()
    while step < a.steps:
        x0, caps = batch(a.seed, step, a.batch, mix=a.mix)
        g = torch.Generator().manual_seed(a.seed * 1_000_003 + step)
        noise = torch.randn(x0.shape, generator=g)
        sigma = torch.sigmoid(torch.randn(x0.shape[0], generator=g))  # logit-normal times
        uni = torch.rand(x0.shape[0], generator=g)
        sigma = torch.where(torch.rand(x0.shape[0], generator=g) < a.t_uniform, uni, sigma)
        s4 = sigma.view(-1, 1, 1, 1)
        xt = (1 - s4) * x0 + s4 * noise
        h, pooled = te(tok(caps))
        pred = predict(unet, xt, sigma * 1000, h, pooled)
        loss = torch.nn.functional.mse_loss(pred, noise - x0)
        for gr in opt.param_groups:
            gr["lr"] = lr_at(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        d = min(a.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for k, m in (("unet", unet), ("text_encoder", te)):
                for pe, pm in zip(ema[k].parameters(), m.parameters()):
                    pe.lerp_(pm, 1 - d)
        losses.append(loss.item())
        if step % 50 == 0:
            el = time.time() - t0
            print(f"step {step} loss {np.mean(losses):.4f} lr {lr_at(step):.2e} {el / 50:.2f}s/step", flush=True)
            losses, t0 = [], time.time()
        if time.time() - last_ckpt > a.ckpt_minutes * 60 or step == a.steps:
            tmp = ckpt_path.with_suffix(".tmp")
            torch.save({"unet": unet.state_dict(), "text_encoder": te.state_dict(),
                        "ema_unet": ema["unet"].state_dict(), "ema_text_encoder": ema["text_encoder"].state_dict(),
                        "opt": opt.state_dict(), "step": step, "torch_rng": torch.get_rng_state(),
                        "args": vars(a)}, tmp)
            os.replace(tmp, ckpt_path)
            last_ckpt = time.time()
            print(f"checkpoint step {step} -> {ckpt_path}", flush=True)
        if step % a.eval_every == 0 or step == a.steps:
            te_ = time.time()
            pipe = ShapesPipeline(unet=ema["unet"], text_encoder=ema["text_encoder"], scheduler=scheduler)
            try:  # never let a checker problem kill a long run
                acc = evaluate(pipe, prompts, a.eval_steps, a.eval_guidance)
                print(f"eval step {step} " + json.dumps({k: round(v, 3) for k, v in acc.items()})
                      + f" ({time.time() - te_:.0f}s)", flush=True)
            except Exception as e:  # noqa: BLE001
                print(f"eval step {step} failed: {e!r}", flush=True)
            if str(a.export) not in ("", "."):
                export(ema, scheduler, a.export)
                print(f"exported EMA weights -> {a.export}", flush=True)
            t0 = time.time()


if __name__ == "__main__":
    main()
