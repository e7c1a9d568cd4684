"""Reading a lessons file (``gems memory export`` output) that anyone may have edited.

The file is bounded before it is parsed (its size, each line's length, how many
lessons) and every field is checked for its type and range, so a hostile or broken
file ends in one line naming the file, the line and the field, never in a
``RecursionError``, an ``OverflowError``, a ``NaN`` stored as a score or a string
split into letters.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

#: Largest lessons file read (an export of the default 2,000 lessons is about 2 MB).
MAX_FILE_BYTES = 16 * 1024 * 1024
#: Longest line (one lesson) read.
MAX_LINE_BYTES = 64 * 1024
#: Longest text field, and most items in a list field.
MAX_FIELD_CHARS = 8_000
MAX_LIST_ITEMS = 200

_TEXT_FIELDS = ("id", "prompt", "generator_family", "fix", "status", "created_at", "first_prompt")
_LIST_FIELDS = ("skills", "failed_checks", "runs", "first_passed", "first_failed")
_COUNT_FIELDS = {"rounds": 0, "uses": 1}  # field -> smallest value


class LessonFileError(ValueError):
    """The file cannot be imported; the message is one line naming the file (and line and field)."""


class _Bad(ValueError):
    """One field (or the line) is wrong; the message says which and why."""


def _no_constant(name: str) -> float:
    raise _Bad(f"{name} is not a number JSON allows")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Bad(f"{text[:20]} is out of range")
    return value


def _string(record: dict[str, Any], key: str) -> None:
    value = record.get(key)
    if value is not None and not isinstance(value, str):
        raise _Bad(f"field {key!r} must be a string, not {type(value).__name__}")
    if isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
        raise _Bad(f"field {key!r} is longer than {MAX_FIELD_CHARS} characters")


def check_record(record: Any) -> None:
    """Raise ``ValueError`` naming the first field of ``record`` that a lesson cannot hold."""
    if not isinstance(record, dict):
        raise _Bad(f"a lesson is a JSON object, not {type(record).__name__}")
    if not isinstance(record.get("text"), str) or not record["text"].strip():
        raise _Bad("field 'text' is missing or empty")
    for key in ("text", *_TEXT_FIELDS):
        _string(record, key)
    for key in _LIST_FIELDS:
        value = record.get(key)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _Bad(f"field {key!r} must be a list of strings")
        if len(value) > MAX_LIST_ITEMS:
            raise _Bad(f"field {key!r} has more than {MAX_LIST_ITEMS} items")
    for key, least in _COUNT_FIELDS.items():
        value = record.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not least <= value <= 10**9):
            raise _Bad(f"field {key!r} must be a whole number from {least}, not {json.dumps(value)[:40]}")
    gain = record.get("score_gain")
    if gain is not None and (isinstance(gain, bool) or not isinstance(gain, (int, float)) or not -1.0 <= gain <= 1.0):
        raise _Bad(f"field 'score_gain' must be a number from -1 to 1, not {json.dumps(gain)[:40]}")


def parse_line(line: str) -> dict[str, Any]:
    """One line of a lessons file as a checked lesson record; ``ValueError`` says what is wrong."""
    try:
        record = json.loads(line, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise _Bad("nested too deeply for a lesson") from None
    except _Bad:
        raise
    except ValueError as exc:
        raise _Bad(f"not JSON ({exc})") from None
    check_record(record)
    return record


def read_lessons(path: str | Path, max_lessons: int) -> list[dict[str, Any]]:
    """Every lesson record in ``path``, or ``LessonFileError`` (``FILE:LINE: field ...``) for the first problem."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise LessonFileError(f"{p}: the file is larger than the {MAX_FILE_BYTES // (1024 * 1024)} MB a lessons file may be")
        lessons: list[dict[str, Any]] = []
        with p.open("rb") as f:
            for n, raw in enumerate(iter(lambda: f.readline(MAX_LINE_BYTES + 1), b""), 1):
                if len(raw) > MAX_LINE_BYTES:
                    raise LessonFileError(f"{p}:{n}: the line is longer than {MAX_LINE_BYTES // 1024} KB")
                line = raw.decode("utf-8")
                if not line.strip():
                    continue
                if len(lessons) >= max_lessons:
                    raise LessonFileError(f"{p}: holds more than the {max_lessons} lessons the store keeps (max_lessons)")
                try:
                    lessons.append(parse_line(line))
                except ValueError as exc:
                    raise LessonFileError(f"{p}:{n}: not a lesson ({exc})") from None
    except OSError as exc:
        raise LessonFileError(f"cannot read {p}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise LessonFileError(f"{p}: not a UTF-8 JSONL file") from None
    return lessons
