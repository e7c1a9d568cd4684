"""Shortening text for prompts and records: one rule for words, one for characters."""

from __future__ import annotations


def clip_words(text: str, n: int) -> str:
    """At most ``n`` words of ``text``, with `` ...`` after them when some were cut."""
    words = (text or "").split()
    return (text or "").strip() if len(words) <= n else " ".join(words[:n]) + " ..."


def clip_chars(text: str, n: int) -> str:
    """``text`` on one line, at most ``n`` characters, ending in ``...`` when cut."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= n else flat[: max(0, n - 3)] + "..."
