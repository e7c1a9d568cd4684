"""Train the shapes world's critic (``ShapesCritic``) from a seed (runs outside CI).

The shipped weights came from three runs, each fine-tuning the one before (the
second and third were added when the first was measured: it bound colours to the
wrong shapes, then it did not tell where things are); the images drawn by the
first are reused by linking its ``images`` and ``images-hard`` folders into the others::

    python -m gems_graph.shapes.train_critic --out A --export A/export --images 1024 --hard-images 512 \
        --steps 2000 --renders 0.35
    python -m gems_graph.shapes.train_critic --out B --export B/export --images 1024 --hard-images 512 \
        --steps 1500 --lr 5e-4 --warmup 50 --binding 0.25 --seed 1 --renders 0.35 --init-from A/export
    python -m gems_graph.shapes.train_critic --out C --images 1024 --hard-images 512 --steps 1000 --lr 4e-4 \
        --warmup 50 --binding 0.2 --place 0.35 --seed 2 --renders 0.35 --init-from B/export

Two stages, each resumable by re-running the same command:

1. ``OUT/images.npz``: images drawn by the shipped generator (20 steps, guidance 3,
   as the loop draws them) for prompts sampled from every category in both
   registers, written in chunks so an interrupted run keeps what it drew. Seeds
   start at 50,000,000 (the evaluation splits use seeds below 2,000,000) and a
   terse prompt of the dev or test split is never drawn where the category has
   enough prompts to leave them out (counting, two objects, colour attribution,
   position; single objects and colours have 3 and 12 prompts in all).
2. Training: each step takes generator images (and a share of procedural renders,
   which show the concepts cleanly), asks each several questions sampled from
   what the prompt asked and from random perturbations of it, and labels every
   answer with the pixel checker's reading of that very image. AdamW, warmup +
   cosine decay, binary cross-entropy. ``OUT/ckpt.pt`` is written every few
   minutes; the fp16 weights are exported to ``--export`` at the end.

Time on this machine (2 CPU cores, nothing else running): about 0.4 s an image to
draw on one thread (batches of 64), so the 1,536 images take about 10 minutes (two
drawing processes at once halve that); training takes about 0.4 s a step at 64
images x 6 questions, 13 minutes for 2,000 steps. Under a loaded CPU both took
three to five times longer here.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from gems_graph.shapes.critic_model import WEIGHTS, ShapesCritic, to_pixels
from gems_graph.shapes.detect import Detection, detect
from gems_graph.shapes.grammar import COLORS, COUNT_WORDS, PLACE_OF_CELL, RELATIONS, SHAPES, ObjectSpec, Scene, describe, parse_prompt
from gems_graph.shapes.layout import cell_at, explicate
from gems_graph.shapes.questions import answer_detections, checks_for_scene
from gems_graph.shapes.render import CATEGORIES, render_scene, sample_hard_scene, sample_scene

SEED_BASE = 50_000_000
#: GenEval2-style scenes are drawn from seeds of their own.
HARD_SEED_OFFSET = 5_000_000
MIX = {"single_object": 0.1, "colors": 0.1, "counting": 0.2, "two_object": 0.15, "color_attr": 0.2, "position": 0.25}
#: Share of the procedural renders that show GenEval2-style scenes.
HARD_RENDERS = 0.3
#: Categories with enough distinct prompts to leave the evaluation splits' prompts out.
_LEAVE_OUT = ("counting", "two_object", "color_attr", "position")


def split_prompts() -> set:
    """What the evaluation splits ask: the terse prompts of the easy splits and the
    scenes (``scene_key``) of the hard ones."""
    from gems_graph.shapes.suite import dev_split, hard_dev_split, hard_test_split, scene_key, test_split

    return {it.prompt for it in dev_split() + test_split()} | {
        scene_key(parse_prompt(it.prompt)) for it in hard_dev_split() + hard_test_split()
    }


def sample_prompt(rng: np.random.Generator, excluded: set, hard: bool = False) -> tuple[str, str]:
    """(terse request, prompt drawn): a scene of a random category (or a GenEval2-style
    one), half of them laid out explicitly."""
    from gems_graph.shapes.suite import scene_key

    cats = list(MIX)
    w = np.array([MIX[c] for c in cats])
    while True:
        cat = "hard" if hard else str(rng.choice(cats, p=w / w.sum()))
        scene = sample_hard_scene(rng) if hard else sample_scene(rng, cat)
        terse = describe(scene)
        if (cat in _LEAVE_OUT and terse in excluded) or (hard and scene_key(scene) in excluded):
            continue
        drawn = describe(explicate(scene, rng, sizes=not hard)) if rng.random() < 0.5 else terse
        return terse, drawn


def draw_images(out: Path, n: int, batch: int = 64, hard: bool = False) -> tuple[np.ndarray, list[str]]:
    """Stage 1: ``n`` generator images and their terse requests, cached in chunks under
    ``out/images`` (``out/images-hard`` for GenEval2-style scenes, from seeds of their own)."""
    from gems_graph.shapes.generator import DEFAULT_GUIDANCE, DEFAULT_STEPS, ShapesGenerator

    chunks = out / ("images-hard" if hard else "images")
    chunks.mkdir(parents=True, exist_ok=True)
    if n <= 0:
        return np.zeros((0, 32, 32, 3), dtype=np.uint8), []
    excluded = split_prompts()
    pipe = ShapesGenerator()._load()
    base = SEED_BASE + (HARD_SEED_OFFSET if hard else 0)
    t0 = time.time()
    for start in range(0, n, batch):
        path = chunks / f"{start:07d}.npz"
        if path.exists():
            continue
        rng = np.random.default_rng([base, start])
        pairs = [sample_prompt(rng, excluded, hard) for _ in range(min(batch, n - start))]
        gens = [torch.Generator().manual_seed(base + start + i) for i in range(len(pairs))]
        images = pipe([d for _, d in pairs], num_inference_steps=DEFAULT_STEPS, guidance_scale=DEFAULT_GUIDANCE, generator=gens).images
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, images=np.stack([np.asarray(im) for im in images]), requests=np.array([t for t, _ in pairs]))
        os.replace(tmp, path)
        print(f"drew {start + len(pairs)}/{n} {'hard ' if hard else ''}images ({time.time() - t0:.0f}s)", flush=True)
    arrays, requests = [], []
    for path in sorted(chunks.glob("*.npz")):
        if path.name.endswith(".tmp.npz") or int(path.stem) >= n:
            continue
        with np.load(path) as z:
            arrays.append(z["images"])
            requests += [str(r) for r in z["requests"]]
    return np.concatenate(arrays), requests


def _name(shape: str, color: str | None) -> str:
    return f"{color} {shape}" if color else shape


def _random_object(rng: np.random.Generator) -> tuple[str, str | None]:
    return str(rng.choice(SHAPES)), (str(rng.choice(COLORS)) if rng.random() < 0.7 else None)


def _at(shape: str, color: str | None, cell: tuple[int, int], dets: list[Detection]) -> bool:
    """The checker's answer to "is there a <colour> <shape> at <cell>?"."""
    return any(x.shape == shape and (color is None or x.color == color) and cell_at(x.cx, x.cy) == cell for x in dets)


def binding_question(rng: np.random.Generator, dets: list[Detection]) -> tuple[str, bool] | None:
    """A question that pairs one object's shape with another's colour (at the first one's
    place, or anywhere): the hard negatives that teach which colour goes with which shape."""
    pairs = [(x, y) for x in dets for y in dets if x.color != y.color]
    if not pairs:
        return None
    x, y = pairs[int(rng.integers(len(pairs)))]
    if rng.random() < 0.5:
        cell = cell_at(x.cx, x.cy)
        return f"Is there a {y.color} {x.shape} at the {PLACE_OF_CELL[cell]}?", _at(x.shape, y.color, cell, dets)
    q = f"Is there a {y.color} {x.shape}?"
    return q, answer_detections(q, dets)[0]


def place_question(rng: np.random.Generator, dets: list[Detection]) -> tuple[str, bool] | None:
    """An object of the image asked at its own cell or at another one (the hard negative
    that teaches where things are), or a random object at a random cell."""
    if not dets:
        return None
    d = dets[int(rng.integers(len(dets)))]
    cell = cell_at(d.cx, d.cy)
    if rng.random() < 0.5:
        cell = (int(rng.integers(3)), int(rng.integers(3)))
    color = d.color if rng.random() < 0.85 else None
    return f"Is there a {_name(d.shape, color)} at the {PLACE_OF_CELL[cell]}?", _at(d.shape, color, cell, dets)


def sample_questions(
    rng: np.random.Generator, request: str, dets: list[Detection], k: int, binding: float = 0.0, place: float = 0.0
) -> list[tuple[str, bool, bool]]:
    """``k`` (question, asks the request head, label by the checker) for one image;
    a share ``binding`` of them are ``binding_question``s, a share ``place`` ``place_question``s."""
    from gems_graph.shapes.questions import prompt_correct_detections

    scene = parse_prompt(request)
    out: list[tuple[str, bool, bool]] = []
    asked = checks_for_scene(scene)
    while len(out) < k:
        if binding > 0 and rng.random() < binding and (bound := binding_question(rng, dets)) is not None:
            out.append((bound[0], False, bound[1]))
            continue
        if place > 0 and rng.random() < place and (at := place_question(rng, dets)) is not None:
            out.append((at[0], False, at[1]))
            continue
        kind = rng.choice(["asked", "presence", "count", "relation", "place", "request"], p=[0.25, 0.12, 0.15, 0.18, 0.15, 0.15])
        if kind == "asked":
            q = str(rng.choice(asked))
        elif kind == "presence":
            d = dets[int(rng.integers(len(dets)))] if dets and rng.random() < 0.5 else None
            shape, color = (d.shape, d.color if rng.random() < 0.7 else None) if d else _random_object(rng)
            q = f"Is there a {_name(shape, color)}?"
        elif kind == "count":
            d = dets[int(rng.integers(len(dets)))] if dets and rng.random() < 0.6 else None
            shape, color = (d.shape, d.color if rng.random() < 0.6 else None) if d else _random_object(rng)
            have = sum(x.shape == shape and (color is None or x.color == color) for x in dets)
            n = have if rng.random() < 0.45 and 1 <= have <= 4 else int(rng.integers(1, 5))
            q = f"Are there exactly {COUNT_WORDS[n]} {_name(shape, color)}s?"
        elif kind == "relation":
            if len(dets) >= 2 and rng.random() < 0.7:
                i, j = rng.choice(len(dets), 2, replace=False)
                a, b = (dets[i].shape, dets[i].color), (dets[j].shape, dets[j].color)
            else:
                a, b = _random_object(rng), _random_object(rng)
            rel = {"left of": "to the left of", "right of": "to the right of"}.get(r := str(rng.choice(RELATIONS)), r)
            q = f"Is the {_name(*a)} {rel} the {_name(*b)}?"
        elif kind == "place":
            if dets and rng.random() < 0.5:
                d = dets[int(rng.integers(len(dets)))]
                shape, color, cell = d.shape, d.color, cell_at(d.cx, d.cy)
            else:
                (shape, color), cell = _random_object(rng), (int(rng.integers(3)), int(rng.integers(3)))
            q = f"Is there a {_name(shape, color)} at the {PLACE_OF_CELL[cell]}?"
            out.append((q, False, _at(shape, color, cell, dets)))
            continue
        else:
            asked_scene = scene if rng.random() < 0.5 else perturb(scene, rng)
            out.append((describe(asked_scene), True, prompt_correct_detections(asked_scene, dets)))
            continue
        out.append((q, False, answer_detections(q, dets)[0]))
    return out


def perturb(scene: Scene, rng: np.random.Generator) -> Scene:
    """The scene with one thing changed (a colour, a shape, a count, or the relation)."""
    objs = list(scene.objects)
    i = int(rng.integers(len(objs)))
    o = objs[i]
    what = rng.choice(["color", "shape", "count", "relation"])
    if what == "relation" and scene.relation:
        return Scene(scene.objects, str(rng.choice([r for r in RELATIONS if r != scene.relation])))
    if what == "count" and o.count > 1:
        objs[i] = ObjectSpec(o.shape, o.color, int(rng.choice([n for n in range(2, 5) if n != o.count])))
    elif what == "shape":
        objs[i] = ObjectSpec(str(rng.choice([s for s in SHAPES if s != o.shape])), o.color, o.count)
    else:
        objs[i] = ObjectSpec(o.shape, str(rng.choice([c for c in COLORS if c != o.color])), o.count)
    return Scene(tuple(objs), scene.relation)


def make_batch(
    rng: np.random.Generator,
    images: np.ndarray,
    requests: list[str],
    dets: list[list[Detection]],
    size: int,
    per_image: int,
    renders: float,
    binding: float = 0.0,
    place: float = 0.0,
) -> tuple[torch.Tensor, list[str], list[bool], torch.Tensor]:
    """Pixels of ``size`` images, and ``per_image`` labelled questions about each."""
    from PIL import Image

    pics, qs, heads, labels = [], [], [], []
    for _ in range(size):
        if rng.random() < renders:
            hard = rng.random() < HARD_RENDERS
            scene = sample_hard_scene(rng) if hard else sample_scene(rng, str(rng.choice(CATEGORIES)))
            img, _ = render_scene(explicate(scene, rng, sizes=not hard) if rng.random() < 0.5 else scene, rng)
            img = roughen(img, rng)
            request, found = describe(scene), detect(img)
        else:
            i = int(rng.integers(len(images)))
            img, request, found = Image.fromarray(images[i]), requests[i], dets[i]
        pics.append(img)
        for q, head, yes in sample_questions(rng, request, found, per_image, binding, place):
            qs.append(q)
            heads.append(head)
            labels.append(float(yes))
    return to_pixels(pics), qs, heads, torch.tensor(labels)


def roughen(image, rng: np.random.Generator):
    """A render made to look more like a generated image: softer edges, tinted, noisy.

    Labels are read off the roughened image, so they stay the checker's reading."""
    from PIL import Image, ImageFilter

    image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.0, 0.8))))
    a = np.asarray(image, dtype=np.float32) + rng.normal(0, 12, 3) + rng.normal(0, 5, (image.height, image.width, 3))
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


def export(model: ShapesCritic, dest: Path) -> None:
    """fp16 weights via save_pretrained, replacing ``dest`` atomically."""
    import copy

    from gems_graph.shapes.train import save_folder_atomically

    half = copy.deepcopy(model).half()
    save_folder_atomically(lambda tmp: half.save_pretrained(tmp, safe_serialization=True), dest)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--images", type=int, default=12000)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--hard-images", type=int, default=512, help="generator images of GenEval2-style scenes")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--per-image", type=int, default=6)
    ap.add_argument("--renders", type=float, default=0.25, help="share of procedural renders among the training images")
    ap.add_argument("--binding", type=float, default=0.0, help="share of questions that pair one object's shape with another's colour")
    ap.add_argument("--place", type=float, default=0.0, help="share of questions about an object at a grid place")
    ap.add_argument("--init-from", type=Path, default=None, help="exported critic to start from (fresh run only)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ckpt-minutes", type=float, default=3.0)
    ap.add_argument("--export", type=Path, default=WEIGHTS, help="'' to disable")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    a.out.mkdir(parents=True, exist_ok=True)
    images, requests = draw_images(a.out, a.images)
    hard_images, hard_requests = draw_images(a.out, a.hard_images, hard=True)
    images, requests = np.concatenate([images, hard_images]), requests + hard_requests
    print(f"reading {len(images)} images with the pixel checker", flush=True)
    from PIL import Image

    dets = [detect(Image.fromarray(im)) for im in images]
    torch.manual_seed(a.seed)
    model = ShapesCritic.from_pretrained(a.init_from, low_cpu_mem_usage=False).float() if a.init_from else ShapesCritic()
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01)
    step, ckpt_path = 0, a.out / "ckpt.pt"
    if ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step = ck["step"]
        print(f"resumed from {ckpt_path} at step {step}", flush=True)
    print(json.dumps({"config": {k: str(v) for k, v in vars(a).items()}, "params": sum(p.numel() for p in model.parameters())}), flush=True)

    def lr_at(s: int) -> float:
        if s < a.warmup:
            return a.lr * (s + 1) / a.warmup
        frac = (s - a.warmup) / max(1, a.steps - a.warmup)
        return a.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))

    model.train()
    t0, last_ckpt, losses, hits = time.time(), time.time(), [], []
    while step < a.steps:
        rng = np.random.default_rng([a.seed, step])
        pixels, qs, heads, labels = make_batch(rng, images, requests, dets, a.batch, a.per_image, a.renders, a.binding, a.place)
        tokens = model.encode_images(pixels).repeat_interleave(a.per_image, dim=0)
        logits = model(tokens, model.encode_questions(qs, heads))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        losses.append(loss.item())
        hits.append(float(((logits > 0) == (labels > 0.5)).float().mean()))
        if step % 50 == 0:
            print(f"step {step} loss {np.mean(losses):.4f} acc {np.mean(hits):.3f} {(time.time() - t0) / 50:.2f}s/step", flush=True)
            losses, hits, t0 = [], [], time.time()
        if time.time() - last_ckpt > a.ckpt_minutes * 60 or step == a.steps:
            tmp = ckpt_path.with_suffix(".tmp")
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step}, tmp)
            os.replace(tmp, ckpt_path)
            last_ckpt = time.time()
    if str(a.export) not in ("", "."):
        export(model.eval(), a.export)
        print(f"exported -> {a.export}", flush=True)


if __name__ == "__main__":
    main()
