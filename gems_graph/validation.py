"""Checks on user input that must fail before anything is written."""

from __future__ import annotations

import unicodedata


class InvalidPromptError(ValueError):
    """The prompt cannot be used; the message says why in one line."""


def validate_prompt(prompt: object, max_chars: int = 4000) -> str:
    """Return the prompt stripped, or raise ``InvalidPromptError``.

    Newlines and tabs are fine; other control characters (NUL, ESC, ...) are not,
    since they corrupt logs, terminals and some servers.
    """
    if not isinstance(prompt, str):
        raise InvalidPromptError(f"prompt must be a string, got {type(prompt).__name__}")
    text = prompt.strip()
    if not text:
        raise InvalidPromptError("prompt is empty")
    if all(c.isspace() or unicodedata.category(c) == "Cf" for c in text):
        raise InvalidPromptError("prompt is empty: it holds only invisible characters (zero-width spaces, joiners, ...)")
    bad = sorted({c for c in text if c not in "\n\t" and unicodedata.category(c) == "Cc"})
    if bad:
        names = ", ".join(f"U+{ord(c):04X}" for c in bad)
        raise InvalidPromptError(f"prompt contains control characters ({names}); only newline and tab are allowed")
    if len(text) > max_chars:
        raise InvalidPromptError(f"prompt is {len(text)} characters; the limit is {max_chars} (max_prompt_chars)")
    return text
