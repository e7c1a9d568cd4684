"""Counting what a node's chat calls use, from LangChain's callbacks.

A node wraps its model calls in ``metering()``; every chat-model call made in that
context (and in the threads ``carry_meter`` hands it to) reports to the node's
``UsageMeter``: the images attached to the call's messages when it starts, the
server's ``usage_metadata`` when it ends, and a call that fails as a call with no
token counts. A LangChain configure hook adds the meter to every call's callbacks,
so calls deep inside skills, structured output or repairs are counted without
passing anything down, and no model is copied (the structured-output cache keeps
working). The arithmetic is ``gems_graph.usage``'s.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.tracers.context import register_configure_hook

from gems_graph.usage import Usage, UsageRecord, add_counts, usage_record, zero_usage

F = TypeVar("F", bound=Callable[..., Any])

#: Content block types that carry an image (OpenAI's and LangChain's standard block).
IMAGE_BLOCK_TYPES = ("image_url", "image", "input_image")


def count_images(messages: list[BaseMessage]) -> int:
    """Images attached to a conversation, every message counted (a repair re-sends them)."""
    return sum(
        1
        for m in messages
        if isinstance(m.content, list)
        for block in m.content
        if isinstance(block, dict) and block.get("type") in IMAGE_BLOCK_TYPES
    )


class UsageMeter(BaseCallbackHandler):
    """Adds up the chat calls it sees (thread-safe: a critic verifies on many threads)."""

    run_inline = True

    def __init__(self) -> None:
        self.usage = zero_usage()
        self._images: dict[UUID, int] = {}
        self._lock = threading.Lock()

    def on_chat_model_start(self, serialized: Any, messages: list[list[BaseMessage]], *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            self._images[run_id] = sum(count_images(m) for m in messages)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        usage = _reported_usage(response)
        self._add(run_id, usage.get("input_tokens") if usage else None, usage.get("output_tokens") if usage else None)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._add(run_id, None, None)

    def _add(self, run_id: UUID, input_tokens: int | None, output_tokens: int | None) -> None:
        reported = input_tokens is not None or output_tokens is not None
        with self._lock:
            images = self._images.pop(run_id, 0)
            call = Usage(
                calls=1,
                unreported_calls=0 if reported else 1,
                input_tokens=int(input_tokens or 0) if reported else None,
                output_tokens=int(output_tokens or 0) if reported else None,
                images_sent=images,
                images_generated=0,
                untimed_images=0,
                generation_seconds=0.0,
            )
            self.usage = add_counts(self.usage, call)

    def record(self, node: str, round_index: int) -> UsageRecord:
        """What was counted, as the node's record for ``round_index``."""
        with self._lock:
            return usage_record(node, round_index, **self.usage)


def _reported_usage(response: LLMResult) -> dict[str, Any] | None:
    """The reply's ``usage_metadata`` (langchain-openai fills it from the server's ``usage``)."""
    try:
        generation = response.generations[0][0]
    except IndexError:
        return None
    message = generation.message if isinstance(generation, ChatGeneration) else None
    usage = message.usage_metadata if isinstance(message, AIMessage) else None
    return dict(usage) if usage else None


_meter: ContextVar[UsageMeter | None] = ContextVar("gems_usage_meter", default=None)
register_configure_hook(_meter, inheritable=True)


@contextlib.contextmanager
def metering() -> Iterator[UsageMeter]:
    """Count every chat call made in this context until the block ends."""
    meter = UsageMeter()
    token = _meter.set(meter)
    try:
        yield meter
    finally:
        _meter.reset(token)


def carry_meter(fn: F) -> F:
    """``fn`` reporting to the current meter when a pool thread runs it (threads do not share context)."""
    meter = _meter.get()

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        token = _meter.set(meter)
        try:
            return fn(*args, **kwargs)
        finally:
            _meter.reset(token)

    return run  # type: ignore[return-value]
