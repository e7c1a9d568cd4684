"""Train the shapes world's critic (``ShapesCritic``) from a seed (runs outside CI).

The shipped weights came from four runs, each fine-tuning the one before (the
second and third were added when the first was measured: it bound colours to the
wrong shapes, then it did not tell where things are; the fourth learnt the v3 world
from the v3 generator's images); the images drawn by the first are reused by linking
its ``images`` and ``images-hard`` folders into the second and third::

    python -m gems_graph.shapes.train_critic --out A --export A/export --images 1024 --hard-images 512 \
        --steps 2000 --renders 0.35
    python -m gems_graph.shapes.train_critic --out B --export B/export --images 1024 --hard-images 512 \
        --steps 1500 --lr 5e-4 --warmup 50 --binding 0.25 --seed 1 --renders 0.35 --init-from A/export
    python -m gems_graph.shapes.train_critic --out C --images 1024 --hard-images 512 --steps 1000 --lr 4e-4 \
        --warmup 50 --binding 0.2 --place 0.35 --seed 2 --renders 0.35 --init-from B/export

The world's v3 vocabulary (GenEval2-style scenes: a size word on any object, counts up to
five, a second relation chained from the second object to a third) is asked in check
questions with a size before the colour ("Is there a large red circle?", "Is the small
square above the triangle?"), exact counts from one to five ("Is there exactly one
circle?", "Are there exactly five small squares?") and GenEval2's attribute atoms ("Is
the circle red?", "Are the squares small?"). It is learnt by fine-tuning the shipped
weights: ``--init-from`` grows an exported critic's vocabulary by word (``grown_from``:
old words keep their embeddings and indices, new ones start fresh). The hard images
are v3 scenes drawn by the v3 generator, so both image folders were drawn anew (two
drawing processes at once, ``--steps 0`` each, one with ``--hard-images 0`` and one
with ``--images 0``, then the command below, which finds them drawn)::

    python -m gems_graph.shapes.train_critic --out D --export D/export --images 1024 --hard-images 1024 \
        --steps 1500 --lr 4e-4 --warmup 50 --binding 0.2 --place 0.3 --seed 3 --renders 0.4 \
        --init-from gems_graph/shapes/critic_weights

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
   what the prompt asked (its checks and its GenEval2 atoms), from random
   perturbations of it and about the objects the checker sees (``KINDS``), and
   labels every answer with the pixel checker's reading of that very image.
   AdamW, warmup + cosine decay, binary cross-entropy. ``OUT/ckpt.pt`` is written every few
   minutes; the fp16 weights are exported to ``--export`` at the end.

Time on this machine (2 CPU cores, nothing else running): about 0.4 s an image to
draw on one thread (batches of 64), so the 1,536 images take about 10 minutes (two
drawing processes at once halve that: the fourth run's 2,048 took 6 minutes); training
takes 0.3-0.4 s a step at 64 images x 6 questions, 13 minutes for 2,000 steps. Under a loaded CPU both took
three to five times longer here.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from gems_graph.shapes.atoms import atoms_for_scene
from gems_graph.shapes.critic_model import MAX_QUESTION, QUESTION_VOCAB, WEIGHTS, ShapesCritic, to_pixels
from gems_graph.shapes.detect import Detection, count, detect, matches, size_word
from gems_graph.shapes.grammar import (
    COLORS,
    COUNT_WORDS,
    PLACE_OF_CELL,
    RELATIONS,
    SHAPES,
    SIZES,
    ObjectSpec,
    Scene,
    describe,
    parse_prompt,
)
from gems_graph.shapes.layout import cell_at, explicate
from gems_graph.shapes.questions import RELATION_WORDS, answer_detections, checks_for_scene, object_name, prompt_correct_detections
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


#: Share of questions whose object phrases carry a size word ("small" / "large").
SIZED = 0.3
MAX_COUNT = max(COUNT_WORDS)
#: The kinds of question ``sample_questions`` asks and how often.
KINDS = {"asked": 0.23, "presence": 0.12, "count": 0.15, "attribute": 0.07, "relation": 0.16, "place": 0.12, "request": 0.15}


def _name(shape: str, color: str | None = None, size: str | None = None) -> str:
    return object_name(ObjectSpec(shape, color, size=size))


def _random_object(rng: np.random.Generator) -> tuple[str, str | None]:
    return str(rng.choice(SHAPES)), (str(rng.choice(COLORS)) if rng.random() < 0.7 else None)


def _random_cell(rng: np.random.Generator) -> tuple[int, int]:
    return int(rng.integers(3)), int(rng.integers(3))


def _pick(rng: np.random.Generator, dets: list[Detection], p: float) -> Detection | None:
    """One of the image's objects with probability ``p`` (None: ask about a random object)."""
    return dets[int(rng.integers(len(dets)))] if dets and rng.random() < p else None


def _size(rng: np.random.Generator, d: Detection | None) -> str | None:
    """A size word for a question's object, a share ``SIZED`` of the time: half of those the
    checker's reading of ``d`` (none for an object of usual size), else a random one."""
    if rng.random() >= SIZED:
        return None
    return size_word(d) if d is not None and rng.random() < 0.5 else str(rng.choice(SIZES))


def _object(rng: np.random.Generator, dets: list[Detection], p_image: float, p_color: float) -> tuple[str, str | None, str | None]:
    """(shape, colour, size) to ask about: an object of the image with probability ``p_image``
    (its colour with ``p_color``), else a random one."""
    d = _pick(rng, dets, p_image)
    shape, color = (d.shape, d.color if rng.random() < p_color else None) if d else _random_object(rng)
    return shape, color, _size(rng, d)


def _at_question(dets: list[Detection], shape: str, color: str | None, size: str | None, cell: tuple[int, int]) -> tuple[str, bool]:
    """The question "Is there a <size> <colour> <shape> at the <place>?" and the checker's answer."""
    yes = any(matches(x, shape, color, size) and cell_at(x.cx, x.cy) == cell for x in dets)
    return f"Is there a {_name(shape, color, size)} at the {PLACE_OF_CELL[cell]}?", yes


def binding_question(rng: np.random.Generator, dets: list[Detection]) -> tuple[str, bool] | None:
    """A question that pairs one object's shape with another's colour (a share ``SIZED`` of
    the time, with its own colour and the other's size), at the first one's place or
    anywhere: the hard negatives that teach which colour (size) goes with which shape."""
    by_size = rng.random() < SIZED
    pairs = [(x, y) for x in dets for y in dets if (size_word(y) not in (None, size_word(x)) if by_size else x.color != y.color)]
    if not pairs:
        return None
    x, y = pairs[int(rng.integers(len(pairs)))]
    color, size = (x.color, size_word(y)) if by_size else (y.color, None)
    if rng.random() < 0.5:
        return _at_question(dets, x.shape, color, size, cell_at(x.cx, x.cy))
    q = f"Is there a {_name(x.shape, color, size)}?"
    return q, answer_detections(q, dets)[0]


def place_question(rng: np.random.Generator, dets: list[Detection]) -> tuple[str, bool] | None:
    """An object of the image asked at its own cell or at another one (the hard negative
    that teaches where things are)."""
    if not dets:
        return None
    d = dets[int(rng.integers(len(dets)))]
    cell = _random_cell(rng) if rng.random() < 0.5 else cell_at(d.cx, d.cy)
    return _at_question(dets, d.shape, d.color if rng.random() < 0.85 else None, _size(rng, d), cell)


def _any_place_question(rng: np.random.Generator, dets: list[Detection]) -> tuple[str, bool]:
    """An object of the image at its own cell half the time, else a random object at a random cell."""
    d = _pick(rng, dets, 0.5)
    if d is not None:
        return _at_question(dets, d.shape, d.color, _size(rng, d), cell_at(d.cx, d.cy))
    return _at_question(dets, *_random_object(rng), _size(rng, None), _random_cell(rng))


def presence_question(rng: np.random.Generator, dets: list[Detection]) -> str:
    return f"Is there a {_name(*_object(rng, dets, 0.5, 0.7))}?"


def count_question(rng: np.random.Generator, dets: list[Detection]) -> str:
    """An exact count from one ("Is there exactly one ...?") to five, the image's own count
    of that shape and colour 45% of the time."""
    shape, color, size = _object(rng, dets, 0.6, 0.6)
    have = count(dets, shape, color)
    n = have if rng.random() < 0.45 and 1 <= have <= MAX_COUNT else int(rng.integers(1, MAX_COUNT + 1))
    if n == 1:
        return f"Is there exactly one {_name(shape, color, size)}?"
    return f"Are there exactly {COUNT_WORDS[n]} {_name(shape, color, size)}s?"


def attribute_question(rng: np.random.Generator, dets: list[Detection]) -> str:
    """GenEval2's attribute atom ("Is the circle red?", "Are the squares small?"): a colour or a
    size, an object's own half the time; singular or plural at random (the checker reads both alike)."""
    d = _pick(rng, dets, 0.7)
    shape = d.shape if d else str(rng.choice(SHAPES))
    if rng.random() < 0.5:
        word = d.color if d and rng.random() < 0.5 else str(rng.choice(COLORS))
    else:
        word = (size_word(d) if d and rng.random() < 0.5 else None) or str(rng.choice(SIZES))
    return f"Are the {shape}s {word}?" if rng.random() < 0.5 else f"Is the {shape} {word}?"


def relation_question(rng: np.random.Generator, dets: list[Detection]) -> str:
    """A relation, "Is the A <relation> the B?", between two objects of the image (70%) or two
    random ones; either side may carry a size."""
    a: tuple[str, str | None, str | None]
    b: tuple[str, str | None, str | None]
    if len(dets) >= 2 and rng.random() < 0.7:
        ds = [dets[int(i)] for i in rng.choice(len(dets), 2, replace=False)]
        a, b = ((d.shape, d.color, _size(rng, d)) for d in ds)
    else:
        a, b = ((*_random_object(rng), _size(rng, None)) for _ in range(2))
    return f"Is the {_name(*a)} {RELATION_WORDS[str(rng.choice(RELATIONS))]} the {_name(*b)}?"


_MAKERS = {"presence": presence_question, "count": count_question, "attribute": attribute_question, "relation": relation_question}


def _check(rng: np.random.Generator, kind: str, scene: Scene, dets: list[Detection]) -> tuple[str, bool]:
    """A check question of ``kind`` and the checker's answer; "asked": one of the scene's own
    checks or (half the time) one of its GenEval2 atoms."""
    if kind == "place":
        return _any_place_question(rng, dets)
    if kind == "asked":
        asked = checks_for_scene(scene) if rng.random() < 0.5 else [a.question for a in atoms_for_scene(scene)]
        q = str(rng.choice(asked))
    else:
        q = _MAKERS[kind](rng, dets)
    return q, answer_detections(q, dets)[0]


def sample_questions(
    rng: np.random.Generator, request: str, dets: list[Detection], k: int, binding: float = 0.0, place: float = 0.0
) -> list[tuple[str, bool, bool]]:
    """``k`` (question, asks the request head, label by the checker) for one image;
    a share ``binding`` of them are ``binding_question``s, a share ``place`` ``place_question``s,
    the rest of the ``KINDS``."""
    scene = parse_prompt(request)
    out: list[tuple[str, bool, bool]] = []
    while len(out) < k:
        if binding > 0 and rng.random() < binding and (bound := binding_question(rng, dets)) is not None:
            out.append((bound[0], False, bound[1]))
        elif place > 0 and rng.random() < place and (at := place_question(rng, dets)) is not None:
            out.append((at[0], False, at[1]))
        elif (kind := str(rng.choice(list(KINDS), p=list(KINDS.values())))) == "request":
            asked_scene = scene if rng.random() < 0.5 else perturb(scene, rng)
            out.append((describe(asked_scene), True, prompt_correct_detections(asked_scene, dets)))
        else:
            q, yes = _check(rng, kind, scene, dets)
            out.append((q, False, yes))
    return out


def perturb(scene: Scene, rng: np.random.Generator) -> Scene:
    """The scene with one thing changed (a colour, a shape, a count, a size, or one of its relations)."""
    objs = list(scene.objects)
    i = int(rng.integers(len(objs)))
    o = objs[i]
    what = rng.choice(["color", "shape", "count", "size", "relation"])
    if what == "relation" and scene.relations:
        k = int(rng.integers(len(scene.relations)))
        rel = str(rng.choice([r for r in RELATIONS if r != scene.relations[k][1]]))
        return replace(scene, relation=rel) if k == 0 else replace(scene, second_relation=rel)
    if what == "count" and o.count > 1:
        objs[i] = replace(o, count=int(rng.choice([n for n in range(2, MAX_COUNT + 1) if n != o.count])))
    elif what == "shape":
        objs[i] = replace(o, shape=str(rng.choice([s for s in SHAPES if s != o.shape])))
    elif what == "size":
        sizes = [s for s in (None, *SIZES) if s != o.size]
        objs[i] = replace(o, size=sizes[int(rng.integers(len(sizes)))])
    else:
        objs[i] = replace(o, color=str(rng.choice([c for c in COLORS if c != o.color])))
    return replace(scene, objects=tuple(objs))


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


def init_from(model: ShapesCritic, src: Path) -> None:
    """Start ``model`` from the exported critic at ``src``: every weight is copied, each word's
    embedding by word (words new to ``model``'s vocabulary get fresh ones at the old
    embeddings' scale) and the question positions it had (new ones as a fresh model's)."""
    old = ShapesCritic.from_pretrained(src, low_cpu_mem_usage=False).float()
    state = {k: v for k, v in old.state_dict().items() if k not in ("embed.weight", "text_pos")}
    missing = model.load_state_dict(state, strict=False).missing_keys
    if set(missing) - {"embed.weight", "text_pos"}:
        raise ValueError(f"{src} is not a critic of this shape: {missing} missing")
    old_index = {w: i for i, w in enumerate(old.config["vocab"])}
    with torch.no_grad():
        std = float(old.embed.weight.std())
        for i, word in enumerate(model.config["vocab"]):
            if word in old_index:
                model.embed.weight[i] = old.embed.weight[old_index[word]]
            else:
                model.embed.weight[i].normal_(0.0, std)
        n = min(old.text_pos.shape[1], model.text_pos.shape[1])
        model.text_pos[:, :n] = old.text_pos[:, :n]


def grown_from(src: Path) -> ShapesCritic:
    """The exported critic at ``src`` grown to ``QUESTION_VOCAB``: its own words keep their
    indices, new words follow them, questions as long as ``MAX_QUESTION`` if they were shorter."""
    cfg = ShapesCritic.load_config(src)
    model = ShapesCritic(
        vocab=tuple(dict.fromkeys([*cfg["vocab"], *QUESTION_VOCAB])),
        max_length=max(cfg["max_length"], MAX_QUESTION),
        **{k: cfg[k] for k in ("width", "image_layers", "fusion_layers", "heads")},
    )
    init_from(model, src)
    return model


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--images", type=int, default=12000)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--hard-images", type=int, default=512, help="generator images of GenEval2-style scenes")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--per-image", type=int, default=6)
    ap.add_argument("--renders", type=float, default=0.25, help="share of procedural renders among the training images")
    ap.add_argument("--binding", type=float, default=0.0, help="share of questions pairing one object's shape with another's colour (size)")
    ap.add_argument("--place", type=float, default=0.0, help="share of questions about an object at a grid place")
    ap.add_argument("--init-from", type=Path, default=None, help="exported critic to start from (fresh run only; vocabulary grows by word)")
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
    model = grown_from(a.init_from) if a.init_from else ShapesCritic()
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
