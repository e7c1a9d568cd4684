"""The shape of ``run.json`` as readers rely on it, checked before they use it.

``run.json`` is a file anyone may edit or damage; ``gems report`` walks it field by
field. ``check_shape`` names the first field that has the wrong type (``rounds[0].
candidates: expected a list, got str``) so the reader can say so in one line instead
of ending in ``AttributeError``.
"""

from __future__ import annotations

from typing import Any

_NUMBER = (int, float)
_TEXT = (str,)
_ANY_SCALAR = (str, int, float, bool)

_IMAGE: dict[str, Any] = {"path": _TEXT, "sha256": _TEXT, "width": (int,), "height": (int,)}
_VERDICT: dict[str, Any] = {"check_id": _TEXT, "passed": (bool,), "answer": _TEXT, "probability": _NUMBER, "answered": (bool,)}
_EDIT: dict[str, Any] = {
    "parent": {"round": (int,), "index": (int,)},
    "source": _IMAGE,
    "mask": _IMAGE,
    "region": [_NUMBER],
    "strength": _NUMBER,
}
_CANDIDATE: dict[str, Any] = {
    "round": (int,),
    "index": (int,),
    "seed": (int,),
    "prompt": _TEXT,
    "score": _NUMBER,
    "error": _TEXT,
    "image": _IMAGE,
    "verdicts": [_VERDICT],
    "params": {},
    "edit": _EDIT,
}
_ROUND: dict[str, Any] = {"index": (int,), "prompt": _TEXT, "experience": _TEXT, "thought": _TEXT, "candidates": [_CANDIDATE]}
#: Each key's shape: a tuple of scalar types, a dict (an object with these keys, others
#: free), or a one-item list (a list of that). ``None`` is allowed everywhere.
RUN_SHAPE: dict[str, Any] = {
    "run_id": _ANY_SCALAR,
    "prompt": _TEXT,
    "status": _TEXT,
    "error": _TEXT,
    "score": _NUMBER,
    "best_image": _TEXT,
    "best": {"round": (int,), "index": (int,)},
    "rounds_used": (int,),
    "checks": [{"id": _TEXT, "question": _TEXT, "source": _TEXT}],
    "rounds": [_ROUND],
    "notes": [_ANY_SCALAR],
    "skills": [(str, dict)],
    "recalled_lessons": [{"id": _TEXT, "text": _TEXT, "similarity": _NUMBER}],
    "lessons_written": [_ANY_SCALAR],
    "settings": {},
}


class ShapeError(ValueError):
    """``field`` of the document has the wrong type; the message says which and what it should be."""


def _kind(shape: Any) -> str:
    if isinstance(shape, dict):
        return "an object"
    if isinstance(shape, list):
        return "a list"
    return " or ".join(t.__name__ for t in shape)


def _check(value: Any, shape: Any, where: str) -> None:
    if value is None:
        return
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            raise ShapeError(f"{where}: expected {_kind(shape)}, got {type(value).__name__}")
        for key, inner in shape.items():
            _check(value.get(key), inner, f"{where}.{key}" if where else key)
    elif isinstance(shape, list):
        if not isinstance(value, list):
            raise ShapeError(f"{where}: expected {_kind(shape)}, got {type(value).__name__}")
        for i, item in enumerate(value):
            _check(item, shape[0], f"{where}[{i}]")
    elif not isinstance(value, shape) or (isinstance(value, bool) and bool not in shape):
        raise ShapeError(f"{where}: expected {_kind(shape)}, got {type(value).__name__}")


def check_shape(record: Any) -> None:
    """Raise ``ShapeError`` naming the first field of ``record`` that a ``run.json`` cannot hold."""
    if not isinstance(record, dict):
        raise ShapeError(f"expected a JSON object, got {type(record).__name__}")
    _check(record, RUN_SHAPE, "")
