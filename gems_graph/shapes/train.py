"""Train the shapes-world diffusion model from a seed (runs outside CI).

The shipped weights (v3: terse and explicit layout registers, GenEval2-style scenes)
came from four fine-tuning runs on top of the first release's weights, each resuming
exactly from its own ``OUT/ckpt.pt`` if interrupted (``--stop-at`` ends a run early on
the same schedule, which is how phases 1 and 2 were ended):

    # phase 1: the explicit register's words and captions
    python -m gems_graph.shapes.train --out A --init-from gems_graph/shapes/weights --export A/export \
        --seed 1 --steps 3000 --stop-at 1750 --lr 5e-4 --warmup 100 --ema 0.995 --eval-every 250 \
        --eval-steps 12 --threads 2 --t-uniform 0.3 --explicit 0.5
    # phase 2: object-phrase (segment) embeddings, more explicit and hard scenes
    MIX='{"single_object":0.1,"colors":0.1,"counting":0.2,"two_object":0.15,"color_attr":0.2,"position":0.25}'
    python -m gems_graph.shapes.train --out B --init-from A/export --export B/export --seed 2 --steps 2200 \
        --stop-at 1000 --lr 4e-4 --warmup 50 --ema 0.995 --eval-every 250 --eval-steps 12 --threads 2 \
        --t-uniform 0.3 --explicit 0.6 --mix "$MIX"
    # phase 3: phrase pooling, so each place binds to its object
    python -m gems_graph.shapes.train --out C --init-from B/export --export C/export --seed 3 --steps 1500 \
        --lr 4e-4 --warmup 50 --ema 0.99 --eval-every 250 --eval-steps 12 --threads 2 --t-uniform 0.3 \
        --explicit 0.6 --mix "$MIX"
    # phase 4 (v3): GenEval2-style scenes (up to three groups, counts to five, sizes, chained
    # relations) on 45% of the batch, the vocabulary grown by "five", 56 tokens, 10 phrases
    MIX='{"single_object":0.05,"colors":0.05,"counting":0.15,"two_object":0.05,"color_attr":0.1,"position":0.15,"hard":0.45}'
    python -m gems_graph.shapes.train --out D --init-from C/export --export D/export --seed 4 --steps 3000 \
        --lr 4e-4 --warmup 100 --ema 0.995 --eval-every 500 --eval-steps 12 --threads 2 --t-uniform 0.3 \
        --explicit 0.5 --mix "$MIX"

Time on this machine (2 CPU cores): 0.45-0.6 s/step at batch 32 when nothing else
runs, 1-4 s/step beside a test suite; the first three phases took about 70 minutes
in all here, the fourth about 35. On a GPU a step takes milliseconds: they run in a
few minutes.

Flow matching (velocity target, logit-normal times) on procedurally rendered
32x32 scenes, AdamW with warmup + cosine decay, EMA, 10% caption dropout and a
training mix weighted toward the hard categories. Every batch is a pure function
of (seed, step), so a run is reproducible and resumes exactly from
``OUT/ckpt.pt`` (model, EMA, optimizer, step, RNG; written every few minutes):
re-run the same command to resume. Every ``--eval-every`` steps it samples one
image per eval prompt with the EMA weights, reads them with the pixel checker,
prints per-category accuracy for both registers (the terse prompt, and the same
scene laid out explicitly, both judged against the terse prompt) and exports the
EMA weights (fp16 safetensors, save_pretrained) to ``--export``.

Model: 2x2 pixel patches (32x32x3 -> 16x16x12) into a UNet2DConditionModel with
channels (48, 96, 128), one layer per block, cross-attention (2 heads) at 8x8 and
4x4, the pooled text vector added to the time embedding; 5.8M parameters with the
2-layer, width-128 text encoder (56 tokens, object-phrase embeddings). Each eval
(36 prompts, and 12 hard ones when the mix has them, x 2 registers, 12 sampler steps)
takes 10-15 s here.
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

from gems_graph.shapes.grammar import describe
from gems_graph.shapes.layout import explicate
from gems_graph.shapes.pipeline import ShapesPipeline, make_components, predict
from gems_graph.shapes.render import CATEGORIES, render_scene, sample_hard_scene, sample_scene
from gems_graph.shapes.text_encoder import ShapesTextEncoder

DEFAULT_EXPORT = Path(__file__).parent / "weights"
MIX = {"single_object": 0.15, "colors": 0.15, "counting": 0.2, "two_object": 0.15, "color_attr": 0.15, "position": 0.2}
#: A mix may also weigh "hard": GenEval2-style scenes (``render.sample_hard_scene``).
HARD = "hard"


def batch(seed: int, step: int, size: int, dropout: float = 0.1, mix: dict | None = None, explicit: float = 0.0):
    """The training batch for ``step``: images in [-1, 1] and captions ("" when dropped).

    A fraction ``explicit`` of the scenes is described (and drawn) in the explicit
    layout register, the rest in GenEval's terse phrasing.
    """
    rng = np.random.default_rng([seed, step])
    mix = mix or MIX
    cat_names = (*CATEGORIES, HARD) if HARD in mix else CATEGORIES  # a mix without "hard" draws as it always did
    w = np.array([mix.get(c, 0.0) for c in cat_names], dtype=float)
    cats = rng.choice(cat_names, size=size, p=w / w.sum())
    imgs, caps = [], []
    for c in cats:
        scene = sample_hard_scene(rng) if c == HARD else sample_scene(rng, str(c))
        if rng.random() < explicit:
            scene = explicate(scene, rng, sizes=True)
        img, _ = render_scene(scene, rng)
        imgs.append(np.asarray(img, dtype=np.float32) / 127.5 - 1.0)
        caps.append("" if rng.random() < dropout else describe(scene))
    return torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous(), caps


def eval_prompts(seed: int = 1234, per_category: int = 6, hard: bool = False) -> list[tuple[str, str, str]]:
    """A fixed (category, terse prompt, explicit prompt of the same scene) list for watching
    training; with ``hard``, GenEval2-style scenes as well (category "hard")."""
    rng = np.random.default_rng(seed)
    out = []
    for c in (*CATEGORIES, HARD) if hard else CATEGORIES:
        for _ in range(per_category * (2 if c == HARD else 1)):
            scene = sample_hard_scene(rng) if c == HARD else sample_scene(rng, c)
            out.append((c, describe(scene), describe(explicate(scene, rng))))
    return out


def evaluate(pipe: ShapesPipeline, prompts, steps: int, guidance: float, seed: int = 0, register: int = 1) -> dict[str, float]:
    """One-sample accuracy per category by the pixel checker, judged against the terse prompt.

    ``register`` picks which text is drawn: 1 the terse prompt, 2 its explicit layout.
    """
    from gems_graph.shapes.detect import check_prompt

    gens = [torch.Generator().manual_seed(seed + i) for i in range(len(prompts))]
    images = pipe([p[register] for p in prompts], num_inference_steps=steps, guidance_scale=guidance, generator=gens).images
    hits: dict[str, list[bool]] = {c: [] for c in (*CATEGORIES, HARD)}
    for (c, p, *_), im in zip(prompts, images):
        hits[c].append(check_prompt(p, im))
    acc = {c: float(np.mean(v)) for c, v in hits.items() if v}
    acc["overall"] = float(np.mean([x for v in hits.values() for x in v]))
    return acc


def export(ema: dict, scheduler, dest: Path) -> None:
    """Write the EMA weights in fp16 via save_pretrained, replacing ``dest`` atomically."""
    pipe = ShapesPipeline(
        unet=copy.deepcopy(ema["unet"]).half(), text_encoder=copy.deepcopy(ema["text_encoder"]).half(), scheduler=scheduler
    )
    save_folder_atomically(lambda tmp: pipe.save_pretrained(tmp, safe_serialization=True), dest)


def save_folder_atomically(save, dest: Path) -> None:
    """``save(folder)`` into a temporary sibling, then swap it in for ``dest``, so an
    interrupted export never leaves half a model where the shipped one was."""
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save(tmp)
    old = dest.with_name(dest.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    tmp.rename(dest)
    shutil.rmtree(old, ignore_errors=True)


def init_from(unet, te: ShapesTextEncoder, src: Path) -> None:
    """Start from saved weights; tokens new to ``te``'s vocabulary get fresh embeddings,
    new object-phrase embeddings at zero and new positions as a fresh model's.

    Lets the explicit register (and then the hard suite's words) be learnt on top of the
    earlier release's model instead of from scratch (the UNet already draws the shapes).
    """
    from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel  # (see pipeline.py)

    old_unet = UNet2DConditionModel.from_pretrained(src / "unet").float()
    unet.load_state_dict(old_unet.state_dict())
    old_te = ShapesTextEncoder.from_pretrained(src / "text_encoder").float()
    state = {k: v for k, v in old_te.state_dict().items() if k not in ("embed.weight", "pos", "segment.weight")}
    te.load_state_dict(state, strict=False)
    with torch.no_grad():
        old_vocab = list(old_te.config["vocab"])
        old_embed = old_te.embed.weight
        std = float(old_embed.std())
        for i, word in enumerate(te.config["vocab"]):
            if word in old_vocab:
                te.embed.weight[i] = old_embed[old_vocab.index(word)]
            else:
                te.embed.weight[i].normal_(0.0, std)
        n = min(old_te.pos.shape[1], te.pos.shape[1])
        te.pos[:, :n] = old_te.pos[:, :n]
        if old_te.segment is not None and te.segment is not None:
            k = min(old_te.segment.weight.shape[0], te.segment.weight.shape[0])
            te.segment.weight[:k] = old_te.segment.weight[:k]


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
    ap.add_argument(
        "--t-uniform", type=float, default=0.0, help="fraction of times drawn uniformly instead of logit-normal (more high-noise practice)"
    )
    ap.add_argument(
        "--stop-at", type=int, default=None, help="stop (with a checkpoint and an export) at this step; the schedule still follows --steps"
    )
    ap.add_argument("--explicit", type=float, default=0.5, help="fraction of training scenes captioned in the explicit layout register")
    ap.add_argument(
        "--init-from", type=Path, default=None, help="saved pipeline folder to start from (fresh run only; vocabulary may grow)"
    )
    a = ap.parse_args(argv)

    torch.set_num_threads(a.threads)
    a.out.mkdir(parents=True, exist_ok=True)
    ckpt_path = a.out / "ckpt.pt"
    torch.manual_seed(a.seed)
    channels = tuple(int(c) for c in a.channels.split(","))
    comps = make_components(channels=channels, attn_16=a.attn16, patch=a.patch)
    unet, te, scheduler = comps["unet"], comps["text_encoder"], comps["scheduler"]
    if a.init_from is not None and not ckpt_path.exists():
        init_from(unet, te, a.init_from)
        print(f"initialised from {a.init_from}", flush=True)
    ema = {"unet": copy.deepcopy(unet).eval().requires_grad_(False), "text_encoder": copy.deepcopy(te).eval().requires_grad_(False)}
    params = list(unet.parameters()) + list(te.parameters())
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.01)
    tok = te.tokenizer
    step = 0
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        unet.load_state_dict(ck["unet"])
        te.load_state_dict(ck["text_encoder"])
        ema["unet"].load_state_dict(ck["ema_unet"])
        ema["text_encoder"].load_state_dict(ck["ema_text_encoder"])
        opt.load_state_dict(ck["opt"])
        step = ck["step"]
        torch.set_rng_state(ck["torch_rng"])
        print(f"resumed from {ckpt_path} at step {step}", flush=True)
    n_params = sum(p.numel() for p in params)
    print(json.dumps({"config": vars(a), "params": n_params}, default=str), flush=True)

    def lr_at(s: int) -> float:
        if s < a.warmup:
            return a.lr * (s + 1) / a.warmup
        frac = (s - a.warmup) / max(1, a.steps - a.warmup)
        return a.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))

    prompts = eval_prompts(hard=HARD in a.mix)
    last_ckpt, t0, losses = time.time(), time.time(), []
    unet.train()
    te.train()
    last = min(a.steps, a.stop_at or a.steps)
    while step < last:
        x0, caps = batch(a.seed, step, a.batch, mix=a.mix, explicit=a.explicit)
        g = torch.Generator().manual_seed(a.seed * 1_000_003 + step)
        noise = torch.randn(x0.shape, generator=g)
        sigma = torch.sigmoid(torch.randn(x0.shape[0], generator=g))  # logit-normal times
        uni = torch.rand(x0.shape[0], generator=g)
        sigma = torch.where(torch.rand(x0.shape[0], generator=g) < a.t_uniform, uni, sigma)
        s4 = sigma.view(-1, 1, 1, 1)
        xt = (1 - s4) * x0 + s4 * noise
        ids = tok(caps)
        h, pooled = te(ids)
        pred = predict(unet, xt, sigma * 1000, h, pooled, te.attention_mask(ids))
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
        if time.time() - last_ckpt > a.ckpt_minutes * 60 or step == last:
            tmp = ckpt_path.with_suffix(".tmp")
            torch.save(
                {
                    "unet": unet.state_dict(),
                    "text_encoder": te.state_dict(),
                    "ema_unet": ema["unet"].state_dict(),
                    "ema_text_encoder": ema["text_encoder"].state_dict(),
                    "opt": opt.state_dict(),
                    "step": step,
                    "torch_rng": torch.get_rng_state(),
                    "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(a).items()},
                },
                tmp,
            )
            os.replace(tmp, ckpt_path)
            last_ckpt = time.time()
            print(f"checkpoint step {step} -> {ckpt_path}", flush=True)
        if step % a.eval_every == 0 or step == last:
            te_ = time.time()
            pipe = ShapesPipeline(unet=ema["unet"], text_encoder=ema["text_encoder"], scheduler=scheduler)
            try:  # never let a checker problem kill a long run
                for register, name in ((1, "terse"), (2, "explicit")):
                    acc = evaluate(pipe, prompts, a.eval_steps, a.eval_guidance, register=register)
                    print(
                        f"eval step {step} {name} " + json.dumps({k: round(v, 3) for k, v in acc.items()}) + f" ({time.time() - te_:.0f}s)",
                        flush=True,
                    )
            except Exception as e:  # noqa: BLE001
                print(f"eval step {step} failed: {e!r}", flush=True)
            if str(a.export) not in ("", "."):
                export(ema, scheduler, a.export)
                print(f"exported EMA weights -> {a.export}", flush=True)
            t0 = time.time()


if __name__ == "__main__":
    main()
