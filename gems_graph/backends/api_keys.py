"""Which environment variable's key a backend sends: one rule for every OpenAI-style backend.

OpenAI's own API (``openai:``, ``openai-images:``) takes ``OPENAI_API_KEY`` first. A
compatible server someone else runs (``openai-compatible:``) takes
``GEMS_OPENAI_API_KEY`` first, so a real OpenAI key goes to a third-party server only
when nothing else is set. Image servers (``images-api:``) use ``GEMS_IMAGES_API_KEY``.
"""

from __future__ import annotations

import os

OWN_API_ORDER = ("OPENAI_API_KEY", "GEMS_OPENAI_API_KEY")
COMPATIBLE_ORDER = ("GEMS_OPENAI_API_KEY", "OPENAI_API_KEY")


def openai_api_key(*, official: bool) -> str | None:
    """The key for OpenAI's own API (``official``) or for an OpenAI-compatible server, or None."""
    for name in OWN_API_ORDER if official else COMPATIBLE_ORDER:
        if os.environ.get(name):
            return os.environ[name]
    return None
