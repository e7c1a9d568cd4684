"""Where an image of the shapes world is wrong, and the inpainting edit that would fix it.

Read off the detections of one image, as the shapes chat model's refiner does when
the generator can edit (and as ``benchmarks/shapes_editing.py`` measures). An edit
repaints one place and keeps the rest, so it is planned only when one edit can fix
every check that failed, and something passed that it keeps:

* one too many of a count: the box of the extra object (the smallest) is the mask;
* a wrong-colour (or wrong-shape) object that stands in for the asked one: its box,
  grown to its grid cell, is the mask (and a free cell where the relation holds,
  when the relation fails where it stands);
* a missing object (or one too few of a count): a free cell of the 3x3 grid is the
  mask, one that makes the asked relation hold where there is one;

The edit prompt is the whole scene as it should look after the edit, in the explicit
layout register: every object at the cell it is (or goes) in. Two or more wrong
objects, a failed relation between objects that are both there, or a request of one
object are left to regeneration (``None``): a new image may fix them all at once,
where edits fix one a round, and moving or swapping objects by inpainting asks the
model for the very placement it got wrong (on the dev split it made the loop worse:
position 91.7 against 95.8).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from gems_graph.shapes.detect import Detection, matches
from gems_graph.shapes.grammar import PLACE_OF_CELL, ObjectSpec, Scene, describe
from gems_graph.shapes.layout import CELLS, cell_at, flatten, relation_cells_ok
from gems_graph.shapes.questions import answer_detections, checks_for_scene, object_name
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
    return matches(d, o.shape, o.color, o.size)


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


def _free_cell(dets: list[Detection], allowed: Callable[[tuple[int, int]], bool] | None = None) -> tuple[int, int] | None:
    """The empty cell (one ``allowed`` accepts) farthest from every object (ties: reading order)."""
    taken = {cell_at(d.cx, d.cy) for d in dets}
    centre = lambda cell: ((cell[0] + 0.5) * SIZE / 3, (cell[1] + 0.5) * SIZE / 3)  # noqa: E731
    free = [c for c in CELLS if c not in taken and (allowed is None or allowed(c))]
    if not free:
        return None
    if not dets:
        return free[0]
    return max(free, key=lambda c: min((centre(c)[0] - d.cx) ** 2 + (centre(c)[1] - d.cy) ** 2 for d in dets))


def _prompt(objects: list[ObjectSpec], cells: dict[int, tuple[int, int]]) -> str:
    return describe(Scene(tuple(replace(o, place=PLACE_OF_CELL[cells[i]]) for i, o in enumerate(objects) if i in cells)))


def plan_edit(scene: Scene, dets: list[Detection]) -> ShapesEdit | None:
    """The edit that fixes every failed check of ``scene`` in an image with ``dets``, or None."""
    checks = checks_for_scene(scene)
    failed = [q for q in checks if not answer_detections(q, dets)[0]]
    objects = flatten(scene)
    if not failed or len(objects) == 1:
        return None  # nothing to fix, or the only object is wrong: nothing an edit would keep
    for asked in scene.objects:
        same = [d for d in dets if _matches(d, asked)]
        if asked.count > 1 and len(same) == asked.count + 1 and len(failed) == 1:
            extra = min(same, key=lambda d: d.area)
            kept = {i: _cell(d) for i, d in _assign(objects, [d for d in dets if d is not extra]).items()}
            return ShapesEdit(_prompt(objects, kept), _grow(extra.box), f"remove the extra {extra.color} {extra.shape}")
    assigned = _assign(objects, dets)
    cells = {i: _cell(d) for i, d in assigned.items()}
    missing = [i for i in range(len(objects)) if i not in assigned]
    if not missing:
        return None  # the objects are there but placed wrong: moving them measured worse than regenerating
    if len(missing) > 1:
        return None  # two things wrong: one edit would leave one, a new image may fix both
    i = missing[0]
    unassigned = [d for d in dets if d not in assigned.values()]
    # The object drawn instead of the asked one: same shape, else same colour, else any extra.
    same_colour = (d for d in unassigned if objects[i].color is not None and d.color == objects[i].color)
    stand_in = next((d for d in unassigned if d.shape == objects[i].shape), next(same_colour, unassigned[0] if unassigned else None))
    # The relations of the missing object (related objects are single: index = place in
    # ``objects``) constrain where it goes, given where its partners are.
    involved = [(a, rel, b) for a, rel, b in scene.relations if i in (a, b) and (b if a == i else a) in cells]
    others = [cells[b if a == i else a] for a, _, b in involved]

    def holds(c: tuple[int, int]) -> bool:
        return all(relation_cells_ok(rel, c if a == i else cells[a], c if b == i else cells[b]) for a, rel, b in involved)

    if stand_in is not None and _cell(stand_in) not in cells.values():
        cell, box = _cell(stand_in), _union(_grow(stand_in.box), cell_box(_cell(stand_in)))
        reason = f"repaint the {stand_in.color} {stand_in.shape} as the {object_name(objects[i])}"
        if not holds(cell):
            target = _free_cell(dets, lambda c: holds(c) and not _covers(_union(box, cell_box(c)), others))
            if target is None:
                return None  # the relation would still fail
            cell, box = target, _union(box, cell_box(target))
            reason = f"replace the {stand_in.color} {stand_in.shape} by the {object_name(objects[i])} at the {PLACE_OF_CELL[target]}"
    else:
        free = _free_cell(dets, holds)
        if free is None:
            return None
        cell, box = free, cell_box(free)
        reason = f"add the {object_name(objects[i])} at the {PLACE_OF_CELL[cell]}"
    return ShapesEdit(_prompt(objects, {**cells, i: cell}), box, reason)


def _cell(d: Detection) -> tuple[int, int]:
    return cell_at(d.cx, d.cy)


def _covers(box: tuple[int, int, int, int], cells: list[tuple[int, int]]) -> bool:
    """Would repainting ``box`` touch the centre of any of ``cells``?"""
    return any(box[0] <= (c + 0.5) * SIZE / 3 < box[2] and box[1] <= (r + 0.5) * SIZE / 3 < box[3] for c, r in cells)
