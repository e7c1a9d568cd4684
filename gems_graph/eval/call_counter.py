"""Counting chat-model calls per eval task (a callback on a per-task copy of the model)."""

from __future__ import annotations

import threading
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel

from gems_graph.models.registry import resolve_chat_model


class CallCounter(BaseCallbackHandler):
    """Counts chat-model calls (thread-safe)."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        with self._lock:
            self.calls += 1


def counted(model: Any, counter: CallCounter) -> Any:
    """A copy of ``model`` (spec or instance) that reports its calls to ``counter``."""
    base = resolve_chat_model(model)
    if not isinstance(base, BaseChatModel):
        return base
    existing = base.callbacks if isinstance(base.callbacks, list) else []
    return base.model_copy(update={"callbacks": [*existing, counter]})
