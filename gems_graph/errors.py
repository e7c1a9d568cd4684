"""Errors as people read them: one line, secrets removed.

Every error text that is stored (state, ``run.json``, checkpoints) or printed (CLI,
``gems doctor``) goes through ``one_line``, so a server that echoes the API key in
its error body never gets it written anywhere.
"""

from __future__ import annotations

import os
import re

#: Longest error text kept: enough for a server's message, short enough for a table cell.
MAX_CHARS = 300
#: Environment variables whose values are secrets wherever they show up.
SECRET_VARIABLES = ("OPENAI_API_KEY", "GEMS_OPENAI_API_KEY", "GEMS_IMAGES_API_KEY")
_SECRET_SHAPES = re.compile(r"(?i)\b(bearer\s+)[^\s'\"]+|\bsk-[A-Za-z0-9_\-]{8,}")
#: The password of a URL (``postgresql://user:PASSWORD@host``) or of a ``password=`` parameter.
_URL_PASSWORD = re.compile(r"(?i)(\b[a-z][a-z0-9+.\-]*://[^\s:/@]*:)[^\s/]+(@)|(\bpassword=)[^\s&'\"]+")


def redact(text: str) -> str:
    """``text`` with configured keys, ``Bearer ...`` / ``sk-...`` tokens and URL passwords replaced by ``***``."""
    for name in SECRET_VARIABLES:
        value = os.environ.get(name)
        if value and len(value) >= 6 and value != "EMPTY":
            text = text.replace(value, "***")
    lowered = text.lower()  # the patterns below are slow on a whole run.json: run them only where they can match
    if "://" in text or "password=" in lowered:
        text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}***{m.group(2)}" if m.group(1) else f"{m.group(3)}***", text)
    if "bearer" in lowered or "sk-" in lowered:
        text = _SECRET_SHAPES.sub(lambda m: (m.group(1) or "") + "***", text)
    return text


def scrub(exc: BaseException) -> BaseException:
    """Redact ``exc``'s own text in place (its string arguments, an SDK error's ``message``),
    so the record LangGraph keeps of a failed task, and a ``--debug`` traceback, carry no secret."""
    exc.args = tuple(redact(a) if isinstance(a, str) else a for a in exc.args)
    if isinstance(getattr(exc, "message", None), str):
        try:
            exc.message = redact(exc.message)  # type: ignore[attr-defined]
        except AttributeError:
            pass
    return exc


def one_line(exc: BaseException | str, limit: int = MAX_CHARS) -> str:
    """The error's message on one line (its type name when it has none), redacted and clipped."""
    text = exc if isinstance(exc, str) else str(exc)
    text = " ".join(text.split()) or (type(exc).__name__ if not isinstance(exc, str) else "")
    text = redact(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."
