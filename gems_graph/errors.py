"""Errors as people read them: one line, secrets removed.

Every error text that is stored (state, ``run.json``, checkpoints) or printed (CLI,
``gems doctor``) goes through ``one_line``, so a server that echoes the API key in
its error body never gets it written anywhere.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

#: Longest error text kept: enough for a server's message, short enough for a table cell.
MAX_CHARS = 300
#: Environment variables whose values are secrets wherever they show up.
SECRET_VARIABLES = ("OPENAI_API_KEY", "GEMS_OPENAI_API_KEY", "GEMS_IMAGES_API_KEY")
#: A server's accepted keys (``access_keys``): entries ``owner:key`` or ``key``, separated by commas.
SERVER_KEYS_VARIABLE = "GEMS_SERVER_KEYS"
_SECRET_SHAPES = re.compile(r"(?i)\b(bearer\s+)[^\s'\"\\]+|\bsk-[A-Za-z0-9_\-]{8,}")
#: The password of a URL (``postgresql://user:PASSWORD@host``) or of a ``password=`` parameter.
_URL_PASSWORD = re.compile(r"(?i)(\b[a-z][a-z0-9+.\-]*://[^\s:/@]*:)[^\s/]+(@)|(\bpassword=)[^\s&'\"]+")


def _secrets() -> list[str]:
    values = [os.environ.get(name) for name in SECRET_VARIABLES]
    values += [(entry.partition(":")[2] or entry).strip() for entry in os.environ.get(SERVER_KEYS_VARIABLE, "").split(",")]
    return [v for v in values if v and len(v) >= 6 and v != "EMPTY"]


def redact(text: str, secrets: list[str] | None = None) -> str:
    """``text`` with configured keys, ``Bearer ...`` / ``sk-...`` tokens and URL passwords replaced by ``***``.

    Meant for plain text: a serialised document is redacted value by value (``redact_values``),
    since a token's end is not where a JSON string's escapes are."""
    for value in _secrets() if secrets is None else secrets:
        text = text.replace(value, "***")
    lowered = text.lower()  # the patterns below are slow on a whole run.json: run them only where they can match
    if "://" in text or "password=" in lowered:
        text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}***{m.group(2)}" if m.group(1) else f"{m.group(3)}***", text)
    if "bearer" in lowered or "sk-" in lowered:
        text = _SECRET_SHAPES.sub(lambda m: (m.group(1) or "") + "***", text)
    return text


def needs_redaction(text: str, secrets: list[str] | None = None) -> bool:
    """Whether ``redact`` could change anything in ``text`` (a JSON document's text or plain text):
    a configured key or one of the patterns' fixed parts occurs in it. Cheap, so whole
    documents are tested once instead of redacting each of their strings."""
    lowered = text.lower()
    if "://" in text or "password=" in lowered or "bearer" in lowered or "sk-" in lowered:
        return True
    # A key as a JSON string holds it (quotes and backslashes escaped).
    return any(json.dumps(value, ensure_ascii=False)[1:-1] in text for value in (_secrets() if secrets is None else secrets))


def redact_values(value: Any, secrets: list[str] | None = None) -> Any:
    """``value`` with every string in it (in dicts, lists and tuples, keys too) redacted,
    before it is serialised or stored; other objects are returned as they are.

    A value none of whose strings ``needs_redaction`` (nearly all: a node's update, a
    ``run.json``) is returned as it is, after one test of its JSON text: a round's updates
    hold thousands of strings, and redacting each was a tenth of a round's overhead."""
    secrets = _secrets() if secrets is None else secrets
    try:
        # Unencodable objects are left as they are below, so their text does not matter here.
        text = json.dumps(value, ensure_ascii=False, default=lambda _: None)
    except (TypeError, ValueError):  # keys JSON cannot have (tuples), cycles: go value by value
        text = None
    if text is not None and not needs_redaction(text, secrets):
        return value
    return _redact_each(value, secrets)


def _redact_each(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {_redact_each(k, secrets): _redact_each(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_each(v, secrets) for v in value]
    if isinstance(value, tuple):
        items = [_redact_each(v, secrets) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    return value


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
