"""Explicit layouts: give every object of a scene its own cell of the 3x3 grid.

The explicit register's counterpart of a terse scene. Training captions use it to
describe the same scenes both ways, and the shapes chat model uses it to write
layout prompts when its instructions (a loaded skill, a refiner move) tell it to.
Relations are kept by the cells it chooses (for "A left of B", A's column is left
of B's; a chained "B above C" as well), so the explicit scene draws what the terse one
asks.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import permutations

import numpy as np

from gems_graph.shapes.grammar import PLACE_OF_CELL, PLACES, ObjectSpec, Scene, ShapesGrammarError, describe, parse_prompt
from gems_graph.shapes.render import SIZE

CELLS = tuple(PLACES.values())


def cell_at(x: float, y: float) -> tuple[int, int]:
    """The grid cell (column, row) that a point of the image (in pixels) falls in."""
    return (min(2, max(0, int(x / SIZE * 3))), min(2, max(0, int(y / SIZE * 3))))


def relation_cells_ok(relation: str | None, a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Do cells ``a`` and ``b`` show ``a relation b`` unambiguously (main axis dominates)?"""
    if relation is None:
        return True
    dc, dr = b[0] - a[0], b[1] - a[1]
    main, other = {"left of": (dc, dr), "right of": (-dc, dr), "above": (dr, dc), "below": (-dr, dc)}[relation]
    return main >= 1 and abs(other) <= main - 1


def neighbours(cell: tuple[int, int]) -> set[tuple[int, int]]:
    c, r = cell
    return {(c + dc, r + dr) for dc in (-1, 0, 1) for dr in (-1, 0, 1) if (dc, dr) != (0, 0)}


def flatten(scene: Scene) -> list[ObjectSpec]:
    """One single object per copy asked for, in the scene's order."""
    return [replace(o, count=1) for o in scene.objects for _ in range(o.count)]


def explicate(scene: Scene, rng: np.random.Generator, *, sizes: bool = False, keep: dict[int, tuple[int, int]] | None = None) -> Scene:
    """The scene with every object listed once with its own cell.

    ``keep`` pins objects (by index in the flattened list) to cells, e.g. the ones
    that were already right in an earlier image. ``sizes`` adds "small"/"large" to
    some objects (training captions); "large" only where no neighbouring cell is used.
    """
    items = flatten(scene)
    if len(items) > len(CELLS):
        raise ValueError(f"an explicit layout has one cell per object: at most {len(CELLS)} objects, not {len(items)}")
    keep = {i: c for i, c in (keep or {}).items() if i < len(items)}
    related = 1 + max((j for _, _, j in scene.relations), default=-1)
    # A large object beside another one would touch it: a few draws look for cells without.
    large = [i for i, o in enumerate(items) if o.size == "large" and i not in keep]
    for _ in range(50 if large else 1):
        cells = _draw_cells(scene, len(items), related, keep, rng)
        if not any(neighbours(cells[i]) & set(cells) for i in large):
            break
    out = []
    for i, (o, cell) in enumerate(zip(items, cells)):
        size = o.size
        if sizes and size is None and rng.random() < 0.25:
            crowded = bool(neighbours(cell) & set(cells[:i] + cells[i + 1 :]))
            size = "small" if crowded or rng.random() < 0.5 else "large"
        out.append(replace(o, place=PLACE_OF_CELL[cell], size=size))
    return Scene(tuple(out), scene.relation, scene.unknown_words, scene.second_relation)


def _draw_cells(scene: Scene, n: int, related: int, keep: dict[int, tuple[int, int]], rng: np.random.Generator) -> list[tuple[int, int]]:
    """One cell per object: the related objects (the first ``related``) in cells that show
    their relations, the pinned objects where ``keep`` puts them, the rest at random."""
    if related and n >= related:
        # The related objects (the first two or three, single by the grammar) first, off the
        # cells pinned for the other objects; those fill the remaining cells after them.
        others = {c for i, c in keep.items() if i >= related}

        def holds(cells: tuple[tuple[int, int], ...]) -> bool:
            return all(relation_cells_ok(rel, cells[i], cells[j]) for i, rel, j in scene.relations)

        choices = [
            t
            for t in permutations(CELLS, related)
            if holds(t) and all(keep.get(i, c) == c for i, c in enumerate(t)) and not set(t) & others
        ]
        if not choices:  # the pinned cells contradict a relation: re-place the related objects
            choices = [t for t in permutations(CELLS, related) if holds(t)]
        cells = list(choices[int(rng.integers(len(choices)))])
        if n > related:
            pinned = {i: c for i, c in keep.items() if i >= related and c not in cells}
            free = [c for c in CELLS if c not in cells and c not in pinned.values()]
            order = [free[i] for i in rng.permutation(len(free))]
            cells += [pinned[i] if i in pinned else order.pop() for i in range(related, n)]
    else:
        used = set(keep.values())
        free = [c for c in CELLS if c not in used]
        order = [free[i] for i in rng.permutation(len(free))]
        cells = [keep[i] if i in keep else order.pop() for i in range(n)]
    return cells


def explicit_prompt(prompt: str, seed: int = 0) -> str:
    """``prompt`` rewritten in the explicit register (cells drawn from ``seed``).

    Raises ``ValueError`` for a prompt outside the shapes world's language.
    """
    try:
        scene = parse_prompt(prompt)
    except ShapesGrammarError as exc:
        raise ValueError(f"the explicit method needs shapes-world prompts: {exc}") from exc
    return describe(explicate(scene, np.random.default_rng(seed)))
