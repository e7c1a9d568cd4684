"""Procedural ground truth: draw scenes of the shapes world.

Used to make training images and to validate the pixel checker. Shapes are drawn
at 4x and downscaled (anti-aliased) onto one plain background: random tints cost
model capacity in an earlier trial, so there are none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from gems_graph.shapes.grammar import COLORS, PLACES, RELATIONS, SHAPES, SIZES, ObjectSpec, Scene

SIZE = 32
SCALE = 4
BACKGROUND = (255, 255, 255)
RGB = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (240, 200, 20),
}
CATEGORIES = ("single_object", "colors", "counting", "two_object", "color_attr", "position")


@dataclass(frozen=True)
class Placed:
    """One drawn object: centre and size in output pixels."""

    shape: str
    color: str
    cx: float
    cy: float
    size: float


def _pick(rng: np.random.Generator, seq, k: int = 1, exclude=()):
    pool = [x for x in seq if x not in exclude]
    idx = rng.choice(len(pool), size=k, replace=False)
    return [pool[i] for i in idx]


def sample_scene(rng: np.random.Generator, category: str) -> Scene:
    """A prompt-level scene of one GenEval category (colour may be left unspecified)."""
    if category == "single_object":
        return Scene((ObjectSpec(_pick(rng, SHAPES)[0]),))
    if category == "colors":
        return Scene((ObjectSpec(_pick(rng, SHAPES)[0], _pick(rng, COLORS)[0]),))
    if category == "counting":
        color = _pick(rng, COLORS)[0] if rng.random() < 0.5 else None
        return Scene((ObjectSpec(_pick(rng, SHAPES)[0], color, int(rng.integers(2, 5))),))
    if category == "two_object":
        s = _pick(rng, SHAPES, 2)
        return Scene((ObjectSpec(s[0]), ObjectSpec(s[1])))
    if category == "color_attr":
        s, c = _pick(rng, SHAPES, 2), _pick(rng, COLORS, 2)
        return Scene((ObjectSpec(s[0], c[0]), ObjectSpec(s[1], c[1])))
    if category == "position":
        s = _pick(rng, SHAPES, 2)
        c = _pick(rng, COLORS, 2) if rng.random() < 0.5 else [None, None]
        rel = _pick(rng, RELATIONS)[0]
        return Scene((ObjectSpec(s[0], c[0]), ObjectSpec(s[1], c[1])), relation=rel)
    raise ValueError(f"unknown category {category!r}")


#: The hard suite's limits: up to three groups of distinct shapes, counts up to five, nine
#: objects in all (one cell each when laid out), and "large" only in scenes of up to four
#: objects and one relation (a large object leaves little room for more in a 32x32 image).
HARD_MAX_GROUPS = 3
HARD_MAX_COUNT = 5
HARD_MAX_OBJECTS = 9
LARGE_MAX_OBJECTS = 4


def sample_hard_scene(rng: np.random.Generator) -> Scene:
    """A GenEval2-style scene: one to three groups of distinct shapes, each with an optional
    count (2 to ``HARD_MAX_COUNT``), colour and size; half the time, when there are two
    groups or more, a relation between the first two, and half of those with three groups
    a second one chained from the second to the third (the related objects are single).
    At most ``HARD_MAX_OBJECTS`` objects in all, so the explicit layout has a cell for each."""
    while True:  # scalar draws only: the splits reject most scenes to balance atom counts
        k = int(rng.integers(1, HARD_MAX_GROUPS + 1))
        shapes = [SHAPES[i] for i in rng.permutation(len(SHAPES))[:k]]
        relation = RELATIONS[int(rng.integers(len(RELATIONS)))] if k >= 2 and rng.random() < 0.5 else None
        second = RELATIONS[int(rng.integers(len(RELATIONS)))] if relation and k == 3 and rng.random() < 0.5 else None
        related = 3 if second else 2 if relation else 0
        objects = []
        for i, shape in enumerate(shapes):
            single = i < related or rng.random() < 0.5
            n = 1 if single else int(rng.integers(2, HARD_MAX_COUNT + 1))
            color = COLORS[int(rng.integers(len(COLORS)))] if rng.random() < 0.6 else None
            size = SIZES[int(rng.integers(len(SIZES)))] if rng.random() < 0.3 else None
            objects.append(ObjectSpec(shape, color, n, size))
        total = sum(o.count for o in objects)
        roomy = total <= LARGE_MAX_OBJECTS and second is None
        if total <= HARD_MAX_OBJECTS and (roomy or all(o.size != "large" for o in objects)):
            return Scene(tuple(objects), relation, second_relation=second)


def _fits(p: tuple[float, float, float], placed: list[tuple[float, float, float]]) -> bool:
    x, y, s = p
    for qx, qy, qs in placed:
        if math.hypot(x - qx, y - qy) < 0.6 * (s + qs) + 2.0:
            return False
    return True


#: Centre of a grid cell (column or row 0, 1, 2) in output pixels, and the jitter around it.
CELL_CENTRES = (5.5, 16.0, 26.5)
CELL_JITTER = 0.75
#: Object size ranges (px) by size word; None: by how crowded the scene is.
SIZE_RANGE = {"small": (5.75, 6.25), "large": (9.5, 10.5)}


def explicit_layout(scene: Scene, rng: np.random.Generator) -> list[Placed]:
    """Concrete objects of an explicit scene: each at its cell (jittered), sized by its word."""
    objs = []
    dense = sum(o.count for o in scene.objects) >= 3
    for o in scene.objects:
        color = o.color or _pick(rng, COLORS)[0]
        col, row = PLACES[o.place] if o.place else (1, 1)
        lo, hi = SIZE_RANGE.get(o.size or "", (6.5, 7.5) if dense else (7.0, 8.5))
        x = CELL_CENTRES[col] + float(rng.uniform(-CELL_JITTER, CELL_JITTER))
        y = CELL_CENTRES[row] + float(rng.uniform(-CELL_JITTER, CELL_JITTER))
        objs.append(Placed(o.shape, color, x, y, float(rng.uniform(lo, hi))))
    return objs


def layout(scene: Scene, rng: np.random.Generator) -> list[Placed]:
    """Concrete objects: fill in colours, sizes and non-overlapping positions."""
    if scene.explicit:
        return explicit_layout(scene, rng)
    items: list[tuple[str, str, str | None]] = []
    for o in scene.objects:
        color = o.color or _pick(rng, COLORS)[0]  # one colour per unspecified group
        items += [(o.shape, color, o.size)] * o.count
    n = len(items)
    if n > 4:  # more than GenEval's scenes hold (the hard suite): smaller objects, looser rules
        return _dense_layout(scene, items, rng)
    # A chain of two relations rarely comes out of independent draws: few tries, then the grid.
    attempts = 30 if scene.second_relation else 1000
    placed = _place_at_random(scene, items, (8.0, 12.0) if n <= 2 else (6.5, 9.0), rng, attempts=attempts, tries=100)
    return placed if placed is not None else _grid_layout(scene, items, rng)


def _place_at_random(
    scene: Scene,
    items: list[tuple[str, str, str | None]],
    size_range: tuple[float, float],
    rng: np.random.Generator,
    *,
    attempts: int,
    tries: int,
    give_up_at_first_miss: bool = False,
) -> list[Placed] | None:
    """Objects at random non-overlapping positions where the relation holds, or None.

    Each attempt places the objects one by one, ``tries`` draws each; with
    ``give_up_at_first_miss`` an attempt ends as soon as one object does not fit. An object
    with a size word takes its size from ``SIZE_RANGE``, the others from ``size_range``."""
    for _ in range(attempts):
        placed: list[tuple[float, float, float]] = []
        for _sh, _c, size in items:
            lo, hi = SIZE_RANGE.get(size or "", size_range)
            for _t in range(tries):
                s = float(rng.uniform(lo, hi))
                m = 0.65 * s + 0.5
                p = (float(rng.uniform(m, SIZE - m)), float(rng.uniform(m, SIZE - m)), s)
                if _fits(p, placed):
                    placed.append(p)
                    break
            else:
                if give_up_at_first_miss:
                    break
        if len(placed) == len(items) and _relations_ok(scene, placed):
            return [Placed(sh, c, x, y, s) for (sh, c, _), (x, y, s) in zip(items, placed)]
    return None


#: Object sizes (px) in scenes of five objects or more: every one still clears the
#: checker's minimum area and keeps its shape's fill at 32x32.
DENSE_SIZE_RANGE = (6.0, 7.5)


def _dense_layout(scene: Scene, items: list[tuple[str, str, str | None]], rng: np.random.Generator) -> list[Placed]:
    """Five to nine objects: free placement while it fits, else a jittered 3x3 grid.

    Random sequential placement at the usual spacing jams at about six objects in a
    32x32 image, so after a few tries every object gets its own grid cell (nudged off
    the cell's centre), the relation's pair in cells that show it.
    """
    free = _place_at_random(scene, items, DENSE_SIZE_RANGE, rng, attempts=20, tries=50, give_up_at_first_miss=True)
    return free if free is not None else _grid_layout(scene, items, rng)


def _grid_layout(scene: Scene, items: list[tuple[str, str, str | None]], rng: np.random.Generator) -> list[Placed]:
    """Every object in its own cell of a 3x3 grid, nudged off the cell's centre, the
    related objects in cells that show their relations, a large object with no neighbour."""
    n = len(items)
    cells = [(c, r) for c in range(3) for r in range(3)]
    for attempt in range(1000):
        order = [cells[i] for i in rng.permutation(len(cells))[:n]]
        placed = [
            (
                CELL_CENTRES[c] + float(rng.uniform(-CELL_JITTER, CELL_JITTER)),
                CELL_CENTRES[r] + float(rng.uniform(-CELL_JITTER, CELL_JITTER)),
                float(rng.uniform(*SIZE_RANGE.get(size or "", DENSE_SIZE_RANGE))),
            )
            for (c, r), (_sh, _c, size) in zip(order, items)
        ]
        large = [cell for cell, item in zip(order, items) if item[2] == "large"]
        large_alone = attempt >= 500 or all(max(abs(c - c2), abs(r - r2)) > 1 for c, r in large for c2, r2 in order if (c2, r2) != (c, r))
        if _relations_ok(scene, placed) and large_alone:
            return [Placed(sh, c, x, y, s) for (sh, c, _), (x, y, s) in zip(items, placed)]
    raise RuntimeError(f"could not lay out {scene}")


def _relations_ok(scene: Scene, placed) -> bool:
    """Relations are drawn unambiguously: clear gap on the main axis, which dominates.
    Related objects are single, so an object's index is its place in ``placed``."""
    for i, rel, j in scene.relations:
        (ax, ay, _), (bx, by, _) = placed[i], placed[j]
        dx, dy = bx - ax, by - ay  # B relative to A; image y grows downwards
        main, other = {"left of": (dx, dy), "right of": (-dx, dy), "above": (dy, dx), "below": (-dy, dx)}[rel]
        if not (main >= 8 and abs(other) <= 0.6 * main):
            return False
    return True


def draw(objects: list[Placed]) -> Image.Image:
    """Draw at 4x and downscale to SIZE x SIZE RGB."""
    big = Image.new("RGB", (SIZE * SCALE, SIZE * SCALE), BACKGROUND)
    d = ImageDraw.Draw(big)
    for o in objects:
        x, y, r = o.cx * SCALE, o.cy * SCALE, o.size * SCALE / 2
        fill = RGB[o.color]
        if o.shape == "circle":
            d.ellipse([x - r, y - r, x + r, y + r], fill=fill)
        elif o.shape == "square":
            r *= 0.9  # similar visual area to a circle of the same size
            d.rectangle([x - r, y - r, x + r, y + r], fill=fill)
        else:  # upward triangle, centroid at (x, y)
            h = 2 * r * 0.95
            d.polygon([(x, y - 2 * h / 3), (x - r * 1.1, y + h / 3), (x + r * 1.1, y + h / 3)], fill=fill)
    return big.resize((SIZE, SIZE), Image.Resampling.BOX)


def render_scene(scene: Scene, rng: np.random.Generator) -> tuple[Image.Image, list[Placed]]:
    """Ground-truth image of a scene and the objects in it."""
    objs = layout(scene, rng)
    return draw(objs), objs
