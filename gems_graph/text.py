"""Shortening and comparing text for prompts and records: one rule for words, one for
characters, one bounded word diff."""

from __future__ import annotations

import difflib

#: Most words of changed middle ``word_opcodes`` compares word by word; difflib is
#: quadratic, and a model may send a 200 KB prompt.
MAX_DIFF_WORDS = 600


def clip_words(text: str, n: int) -> str:
    """At most ``n`` words of ``text``, with `` ...`` after them when some were cut."""
    words = (text or "").split()
    return (text or "").strip() if len(words) <= n else " ".join(words[:n]) + " ..."


def clip_chars(text: str, n: int) -> str:
    """``text`` on one line, at most ``n`` characters, ending in ``...`` when cut."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= n else flat[: max(0, n - 3)] + "..."


def keep_start(text: str, n: int) -> tuple[str, bool]:
    """The first ``n`` characters of ``text`` (cut at a word where one is near), and whether it was cut."""
    if len(text) <= n:
        return text, False
    head = text[:n]
    space = head.rfind(" ")
    return (head[:space] if space > n * 0.8 else head).rstrip(), True


def word_opcodes(a: list[str], b: list[str], max_words: int = MAX_DIFF_WORDS) -> list[tuple[str, int, int, int, int]]:
    """``difflib`` opcodes turning ``a`` into ``b``, in time bounded by ``max_words``.

    The common start and end are matched first (a refinement changes a few phrases); a
    changed middle longer than ``max_words`` on either side is one ``replace`` rather
    than minutes of ``SequenceMatcher``.
    """
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    end = 0
    while end < min(len(a), len(b)) - start and a[-1 - end] == b[-1 - end]:
        end += 1
    mid_a, mid_b = a[start : len(a) - end], b[start : len(b) - end]
    ops: list[tuple[str, int, int, int, int]] = [("equal", 0, start, 0, start)] if start else []
    if max(len(mid_a), len(mid_b)) > max_words:
        ops.append(("replace", start, start + len(mid_a), start, start + len(mid_b)))
    elif mid_a or mid_b:
        matcher = difflib.SequenceMatcher(a=mid_a, b=mid_b, autojunk=False)
        ops += [(op, i1 + start, i2 + start, j1 + start, j2 + start) for op, i1, i2, j1, j2 in matcher.get_opcodes()]
    if end:
        ops.append(("equal", len(a) - end, len(a), len(b) - end, len(b)))
    return ops
