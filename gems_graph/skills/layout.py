"""``layout_objects``: objects + relations -> explicit regions of the frame.

Text-to-image models follow "in the left third of the image" far better than
"to the left of the dog", and much better still when every object has its own
region. This turns relations into a grid: x order from left/right, y order from
above/below, depth from in front of/behind, then names each cell in plain words.
Contradictory relations are dropped and reported instead of failing.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

RelationName = Literal["left of", "right of", "above", "below", "on top of", "under", "in front of", "behind", "next to"]


class Relation(BaseModel):
    subject: str = Field(description="The object placed, as named in objects.")
    relation: RelationName
    object: str = Field(description="The reference object, as named in objects.")


# relation -> (axis, sign): sign +1 means subject comes before object on that axis
# (x: left to right, y: top to bottom, z: front to back).
_AXES: dict[str, tuple[str, int]] = {
    "left of": ("x", 1),
    "right of": ("x", -1),
    "above": ("y", 1),
    "on top of": ("y", 1),
    "below": ("y", -1),
    "under": ("y", -1),
    "in front of": ("z", 1),
    "behind": ("z", -1),
    "next to": ("x", 1),
}
_COLS = {
    1: ["center"],
    2: ["left half", "right half"],
    3: ["left third", "center", "right third"],
    4: ["far left", "center-left", "center-right", "far right"],
}
_ROWS = {
    1: [""],
    2: ["upper half", "lower half"],
    3: ["top third", "middle", "bottom third"],
    4: ["top", "upper middle", "lower middle", "bottom"],
}
_DEPTH = {1: [""], 2: ["foreground", "background"], 3: ["foreground", "midground", "background"]}


def layout_objects(objects: list[str], relations: list[Relation] | None = None) -> str:
    """Place objects on a grid satisfying the relations; return positions and a prompt sentence."""
    rels = [r if isinstance(r, Relation) else Relation.model_validate(r) for r in relations or []]
    names: list[str] = []
    for n in [*objects, *(x for r in rels for x in (r.subject, r.object))]:
        n = n.strip()
        if n and n not in names:
            names.append(n)
    if not names:
        return "No objects given: nothing to lay out."
    edges: dict[str, list[tuple[str, str]]] = {"x": [], "y": [], "z": []}
    dropped: list[str] = []
    for r in rels:
        s, o = r.subject.strip(), r.object.strip()
        axis, sign = _AXES[r.relation]
        a, b = (s, o) if sign > 0 else (o, s)
        if a == b or _reaches(edges[axis], b, a):
            if r.relation != "next to":  # "next to" holds in either order
                dropped.append(f"{s} {r.relation} {o}")
            continue
        edges[axis].append((a, b))
    # Objects tied only vertically share a column (a lamp above a table sits over it);
    # with no horizontal relation at all, spread objects left to right to avoid overlap.
    x_rank = _ranks(names, edges["x"])
    if not edges["x"]:
        x_rank = _spread_unlinked(names, edges["y"])
    else:
        for a, b in edges["y"]:
            if not _touches(a, edges["x"]) and _touches(b, edges["x"]):
                x_rank[a] = x_rank[b]
            elif not _touches(b, edges["x"]) and _touches(a, edges["x"]):
                x_rank[b] = x_rank[a]
    y_rank, z_rank = _ranks(names, edges["y"]), _ranks(names, edges["z"])
    ncol, nrow, ndep = (max(r.values()) + 1 for r in (x_rank, y_rank, z_rank))
    lines, phrases = ["Layout (explicit regions of the frame):"], []
    for n in names:
        # An object no vertical relation mentions may sit at any height (same for depth).
        free_y, free_z = not _touches(n, edges["y"]), not _touches(n, edges["z"])
        parts = [
            p
            for p in (
                _label(_COLS, ncol, x_rank[n]),
                "" if free_y else _label(_ROWS, nrow, y_rank[n]),
                "" if free_z else _label(_DEPTH, ndep, z_rank[n]),
            )
            if p
        ]
        x0, x1 = x_rank[n] / ncol, (x_rank[n] + 1) / ncol
        y0, y1 = (0.0, 1.0) if free_y else (y_rank[n] / nrow, (y_rank[n] + 1) / nrow)
        where = ", ".join(parts)
        lines.append(f"- {n}: {where} (x {x0:.0%}-{x1:.0%}, y {y0:.0%}-{y1:.0%} of the frame)")
        phrases.append(f"{n} in the {where}")
    if dropped:
        lines.append("Dropped contradictory relations: " + "; ".join(dropped))
    lines.append("Prompt sentence: " + "; ".join(phrases) + ".")
    return "\n".join(lines)


def _label(table: dict[int, list[str]], n: int, i: int) -> str:
    if n in table:
        return table[n][i]
    return f"position {i + 1} of {n}"


def _touches(node: str, edges: list[tuple[str, str]]) -> bool:
    return any(node in e for e in edges)


def _reaches(edges: list[tuple[str, str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        n = todo.pop()
        if n == goal:
            return True
        if n not in seen:
            seen.add(n)
            todo.extend(b for a, b in edges if a == n)
    return False


def _ranks(names: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Longest-path rank in a DAG (edges a->b mean a comes first)."""
    rank = {n: 0 for n in names}
    for _ in range(len(names)):
        changed = False
        for a, b in edges:
            if rank[b] < rank[a] + 1:
                rank[b], changed = rank[a] + 1, True
        if not changed:
            break
    # Squeeze to 0..k-1 so unused ranks do not leave empty columns.
    used = sorted(set(rank.values()))
    return {n: used.index(r) for n, r in rank.items()}


def _spread_unlinked(names: list[str], y_edges: list[tuple[str, str]]) -> dict[str, int]:
    """One column per group of vertically linked objects, in the order given."""
    group = {n: n for n in names}

    def root(n: str) -> str:
        while group[n] != n:
            n = group[n]
        return n

    for a, b in y_edges:
        group[root(a)] = root(b)
    roots: list[str] = []
    for n in names:
        if root(n) not in roots:
            roots.append(root(n))
    return {n: roots.index(root(n)) for n in names}
