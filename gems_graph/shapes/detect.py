"""Pixel checker: find the objects in an image of the shapes world.

Looks only at pixels: ink = how far a pixel is from the plain white background,
colour = hue, objects = connected blobs per colour, shape = how much of its
bounding box a blob fills (square ~1, circle ~pi/4, triangle ~1/2), averaged over
the soft (anti-aliased) blob and the thresholded one so that the blurry edges of
generated images do not turn squares into circles; size = the side a blob of its
shape and ink would have (``object_size``), read as "small" or "large" past fixed
thresholds that sit between the renderer's size ranges.
Validated against procedural ground truth in tests/test_shapes_detect.py.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from PIL import Image

from gems_graph.shapes.grammar import Scene, ShapesGrammarError, parse_prompt

FILL = {"square": 1.0, "circle": 0.80, "triangle": 0.58}
MIN_AREA = 6.0  # px of ink; smaller blobs are noise
REL_MARGIN = 1.5  # px a centroid must clear on the relation's axis
#: Ink area over the squared nominal size, by shape, as the renderer draws them (measured on renders).
AREA_PER_SIZE2 = {"circle": 0.80, "square": 0.84, "triangle": 0.54}
#: Nominal sizes (px) below which an object reads "small" and above which it reads "large":
#: between the renderer's small (5.75-6.25), usual (6-12) and large (9.5-10.5) ranges.
SMALL_BELOW, LARGE_ABOVE = 6.8, 8.75


@dataclass(frozen=True)
class Detection:
    """One object seen in the image (pixel coordinates, y down)."""

    shape: str
    color: str
    cx: float
    cy: float
    area: float
    confidence: float
    #: Pixel box of the blob's ink, (left, top, right, bottom), right and bottom exclusive.
    box: tuple[int, int, int, int] = (0, 0, 0, 0)


def _hue_class(rgb: np.ndarray) -> np.ndarray:
    """Per-pixel colour name index: 0 red, 1 yellow, 2 green, 3 blue."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    mx, mn = rgb.max(-1), rgb.min(-1)
    d = np.maximum(mx - mn, 1e-6)
    h = np.where(mx == r, ((g - b) / d) % 6, np.where(mx == g, (b - r) / d + 2, (r - g) / d + 4)) * 60
    return np.select([(h < 25) | (h >= 300), h < 85, h < 180], [0, 1, 2], 3)


_NAMES = ("red", "yellow", "green", "blue")


def _components(mask: np.ndarray) -> list[list[tuple[int, int]]]:
    """8-connected components of a boolean mask."""
    seen = np.zeros_like(mask, dtype=bool)
    out = []
    H, W = mask.shape
    for y0, x0 in zip(*np.nonzero(mask)):
        if seen[y0, x0]:
            continue
        comp, q = [], deque([(y0, x0)])
        seen[y0, x0] = True
        while q:
            y, x = q.popleft()
            comp.append((y, x))
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    yy, xx = y + dy, x + dx
                    if 0 <= yy < H and 0 <= xx < W and mask[yy, xx] and not seen[yy, xx]:
                        seen[yy, xx] = True
                        q.append((yy, xx))
        out.append(comp)
    return out


def _dilate(m: np.ndarray) -> np.ndarray:
    p = np.pad(m, 1)
    return np.logical_or.reduce([p[1 + dy : p.shape[0] - 1 + dy, 1 + dx : p.shape[1] - 1 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)])


def _hard_fill(m: np.ndarray) -> float:
    """Fill of the thresholded blob's box: robust to the soft edges of generated images."""
    if not m.any():
        return 0.0
    ys, xs = np.nonzero(m)
    return float(m.sum() / ((ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)))


def detect(image: Image.Image) -> list[Detection]:
    """All objects in the image, largest first."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    ink = np.clip((255.0 - rgb.min(-1)) / 220.0, 0.0, 1.0)
    sat = (rgb.max(-1) - rgb.min(-1)) / np.maximum(rgb.max(-1), 1.0)
    hue = _hue_class(rgb)
    solid = (ink > 0.35) & (sat > 0.25)
    dets = []
    for ci, name in enumerate(_NAMES):
        for comp in _components(solid & (hue == ci)):
            ys, xs = np.array([p[0] for p in comp]), np.array([p[1] for p in comp])
            region = np.zeros_like(solid)
            region[ys, xs] = True
            region = _dilate(region) & (hue == ci) & (sat > 0.1)
            a = np.where(region, ink, 0.0)
            area = float(a.sum())
            if area < MIN_AREA:
                continue
            w, h = float(a.max(0).sum()), float(a.max(1).sum())
            fill = (area / max(w * h, 1e-6) + _hard_fill(a > 0.5)) / 2
            yy, xx = np.mgrid[: a.shape[0], : a.shape[1]]
            cx, cy = float((a * xx).sum() / area) + 0.5, float((a * yy).sum() / area) + 0.5
            dist = sorted((abs(fill - f), s) for s, f in FILL.items())
            shape = dist[0][1]
            margin = dist[1][0] - dist[0][0]  # how much closer the best prototype is
            aspect = min(w, h) / max(w, h)
            purity = float(np.mean(hue[solid & region] == ci)) if (solid & region).any() else 0.0
            conf = float(np.clip(margin / 0.12, 0, 1) * np.clip((aspect - 0.5) / 0.3, 0, 1) * np.clip(area / 20.0, 0, 1) * purity)
            bys, bxs = np.nonzero(region)
            box = (int(bxs.min()), int(bys.min()), int(bxs.max()) + 1, int(bys.max()) + 1)
            dets.append(Detection(shape, name, cx, cy, area, round(conf, 4), box))
    return sorted(dets, key=lambda d: -d.area)


def object_size(d: Detection) -> float:
    """The nominal size (px) of a drawn object of the detection's shape with its ink area."""
    return float(np.sqrt(d.area / AREA_PER_SIZE2[d.shape]))


def size_word(d: Detection) -> str | None:
    """The size word the object reads as: "small", "large", or None for a usual size."""
    s = object_size(d)
    return "small" if s < SMALL_BELOW else "large" if s > LARGE_ABOVE else None


def matches(d: Detection, shape: str, color: str | None = None, size: str | None = None) -> bool:
    """Is ``d`` this shape (and colour and size, where given)?"""
    return d.shape == shape and (color is None or d.color == color) and (size is None or size_word(d) == size)


def count(detections: list[Detection], shape: str, color: str | None = None, size: str | None = None) -> int:
    """How many detected objects are this shape (and colour and size, if given)."""
    return sum(matches(d, shape, color, size) for d in detections)


def relation_holds(a: Detection, b: Detection, rel: str) -> bool:
    """Does ``a`` stand in ``rel`` to ``b`` (centroids, image y grows downwards)?"""
    dx, dy = b.cx - a.cx, b.cy - a.cy
    return {"left of": dx, "right of": -dx, "above": dy, "below": -dy}[rel] > REL_MARGIN


def scene_matches(scene: Scene, detections: list[Detection]) -> bool:
    """Exact reading: every asked-for group has its count (and size), nothing extra, relations hold."""
    groups = scene.groups()
    if sum(groups.values()) != len(detections):
        return False
    for (shape, color), n in groups.items():
        if count(detections, shape, color) != n:
            return False
    for o in scene.objects:
        if o.size and count(detections, o.shape, o.color, o.size) < o.count:
            return False
    for i, rel, j in scene.relations:  # the related objects are single, and their groups were counted above
        a_spec, b_spec = scene.objects[i], scene.objects[j]
        a = [d for d in detections if matches(d, a_spec.shape, a_spec.color)]
        b = [d for d in detections if matches(d, b_spec.shape, b_spec.color)]
        if not (len(a) == 1 and len(b) == 1 and relation_holds(a[0], b[0], rel)):
            return False
    return True


def scene_confidence(detections: list[Detection]) -> float:
    """How sure the checker is about its reading (the weakest object's confidence)."""
    return min((d.confidence for d in detections), default=1.0)


def check_prompt(prompt: str, image: Image.Image) -> bool:
    """Does the image show exactly what the prompt asks? False if the prompt is not in the grammar."""
    try:
        scene = parse_prompt(prompt)
    except ShapesGrammarError:
        return False
    return scene_matches(scene, detect(image))
