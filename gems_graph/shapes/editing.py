"""Where an image of the shapes world is wrong, and the inpainting edit that would fix it.

Read off the detections of one image, as the shapes chat model's refiner does when
the generator can edit (and as ``benchmarks/shapes_editing.py`` measures): an edit
is worth it only when exactly one check of the request fails and something that
passed is kept: another check, or the right objects of a count that is off by one. Then

* a wrong-colour (or wrong-shape) object that stands in for the asked one: its box,
  grown to its grid cell, is the mask;
* a missing object (or one too few of a count): a free cell of the 3x3 grid is the mask;
* one too many of a count: the box of the extra object (the smallest) is the mask;

and the edit prompt is the scene in the explicit layout register, every object that
is right at the cell it was drawn in and the fixed one at the masked cell, the
register the model follows best. A failed relation or several failed checks are
left to regeneration (``None``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from gems_graph.shapes.detect import Detection
from gems_graph.shapes.grammar import PLACE_OF_CELL, ObjectSpec, Scene, describe
from gems_graph.shapes.layout import CELLS, cell_at, flatten
from gems_graph.shapes.questions import answer_detections, checks_for_scene
from gems_graph.shapes.render import SIZE

#: Pixels added around a box so the soft edges of the old object are repainted too.
MARGIN = 1


@dataclass(frozen=True)
class ShapesEdit:
    """One inpainting edit: the prompt, the pixel box to repaint, and why."""

    prompt: str
    box: tuple[int, int, int, int]
    reason: str

    def region(self) -> list[float]:
        """The box as fractions of the image (left, top, right, bottom), as the refiner answers."""
        return [round(v / SIZE, 4) for v in self.box]


def cell_box(cell: tuple[int, int]) -> tuple[int, int, int, int]:
    """A grid cell's pixel box, grown by ``MARGIN``."""
    c, r = cell
    return _grow((int(c * SIZE / 3), int(r * SIZE / 3), int(round((c + 1) * SIZE / 3)), int(round((r + 1) * SIZE / 3))))


def _grow(box: tuple[int, int, int, int], by: int = MARGIN) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    return (max(0, x0 - by), max(0, y0 - by), min(SIZE, x1 + by), min(SIZE, y1 + by))


def _union(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _matches(d: Detection, o: ObjectSpec) -> bool:
    return d.shape == o.shape and (o.color is None or d.color == o.color)


def _assign(objects: list[ObjectSpec], dets: list[Detection]) -> dict[int, Detection]:
    """Each asked-for object with the detection that shows it (the coloured ones first)."""
    free = list(dets)
    out: dict[int, Detection] = {}
    for i in sorted(range(len(objects)), key=lambda i: objects[i].color is None):
        d = next((d for d in free if _matches(d, objects[i])), None)
        if d is not None:
            out[i] = d
            free.remove(d)
    return out


def _free_cell(dets: list[Detection]) -> tuple[int, int] | None:
    """The empty cell farthest from every object (ties: reading order)."""
    taken = {cell_at(d.cx, d.cy) for d in dets}
    centre = lambda cell: ((cell[0] + 0.5) * SIZE / 3, (cell[1] + 0.5) * SIZE / 3)  # noqa: E731
    free = [c for c in CELLS if c not in taken]
    if not free:
        return None
    if not dets:
        return free[0]
    return max(free, key=lambda c: min((centre(c)[0] - d.cx) ** 2 + (centre(c)[1] - d.cy) ** 2 for d in dets))


def _prompt(objects: list[ObjectSpec], cells: dict[int, tuple[int, int]]) -> str:
    return describe(Scene(tuple(replace(o, place=PLACE_OF_CELL[cells[i]]) for i, o in enumerate(objects) if i in cells)))


def plan_edit(scene: Scene, dets: list[Detection]) -> ShapesEdit | None:
    """The edit that fixes the one failed check of ``scene`` in an image with ``dets``, or None."""
    checks = checks_for_scene(scene)
    failed = [q for q in checks if not answer_detections(q, dets)[0]]
    if len(failed) != 1:
        return None
    if scene.relation is not None and failed[0] == checks[-1]:
        return None  # the objects are there but placed wrong: move them by regenerating
    wrong = scene.objects[checks.index(failed[0])]
    if len(checks) == 1 and wrong.count == 1:
        return None  # the only object is wrong: nothing passed that an edit would keep
    objects = flatten(scene)
    assigned = _assign(objects, dets)
    cells = {i: cell_at(d.cx, d.cy) for i, d in assigned.items()}
    unassigned = [d for d in dets if d not in assigned.values()]
    have = sum(_matches(d, wrong) for d in dets)

    if wrong.count > 1 and have == wrong.count + 1:
        extra = min((d for d in dets if _matches(d, wrong)), key=lambda d: d.area)
        rest = _assign(objects, [d for d in dets if d is not extra])
        kept = {i: cell_at(d.cx, d.cy) for i, d in rest.items()}
        return ShapesEdit(_prompt(objects, kept), _grow(extra.box), f"remove the extra {extra.color} {extra.shape}")
    if wrong.count > 1 and have != wrong.count - 1:
        return None
    missing = [i for i in range(len(objects)) if i not in assigned and _matches_spec(objects[i], wrong)]
    if not missing:
        return None
    i = missing[0]
    # The object drawn instead of the asked one: same shape, else same colour, else any extra.
    stand_in = next(
        (d for d in unassigned if d.shape == wrong.shape),
        next((d for d in unassigned if wrong.color is not None and d.color == wrong.color), unassigned[0] if unassigned else None),
    )
    if stand_in is not None:
        cell = cell_at(stand_in.cx, stand_in.cy)
        if cell in cells.values():
            return None
        box = _union(_grow(stand_in.box), cell_box(cell))
        reason = f"repaint the {stand_in.color} {stand_in.shape} as the {_name(wrong)}"
    else:
        cell = _free_cell(dets)
        if cell is None:
            return None
        box = cell_box(cell)
        reason = f"add the {_name(wrong)} at the {PLACE_OF_CELL[cell]}"
    cells[i] = cell
    return ShapesEdit(_prompt(objects, cells), box, reason)


def _matches_spec(o: ObjectSpec, wrong: ObjectSpec) -> bool:
    return o.shape == wrong.shape and o.color == wrong.color


def _name(o: ObjectSpec) -> str:
    return f"{o.color} {o.shape}" if o.color else o.shape
