"""Retrying transient backend failures (connection, 429, 5xx, timeouts) with backoff."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

#: Matched against the names of the error's classes (its MRO), so subclasses count:
#: httpx's ``ConnectError``, ``ReadError``, ... are all ``TransportError``.
_TRANSIENT_NAMES = (
    "Timeout",
    "ConnectionError",
    "APIConnectionError",
    "RateLimitError",
    "InternalServerError",
    "ServiceUnavailable",
    "TransportError",
)


def is_transient(exc: BaseException) -> bool:
    """True for errors worth retrying: network trouble, rate limits, server errors."""
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    status = getattr(exc, "status_code", None) or getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int) and (status == 429 or 500 <= status < 600):
        return True
    return any(name in cls.__name__ for cls in type(exc).__mro__ for name in _TRANSIENT_NAMES)


def call_with_retry(
    fn: Callable[[], T],
    *,
    attempts: int = 3,
    base_delay: float = 0.5,
    max_delay: float = 8.0,
    retry_if: Callable[[BaseException], bool] = is_transient,
) -> T:
    """Call ``fn``; on an error ``retry_if`` accepts (transient ones by default) wait
    (exponential backoff) and try again."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as exc:
            if attempt >= attempts or not retry_if(exc):
                raise
            time.sleep(_backoff(attempt, base_delay, max_delay))
    raise AssertionError("unreachable")


async def acall_with_retry(
    fn: Callable[[], Awaitable[T]],
    *,
    attempts: int = 3,
    base_delay: float = 0.5,
    max_delay: float = 8.0,
    retry_if: Callable[[BaseException], bool] = is_transient,
) -> T:
    """``call_with_retry`` for a coroutine: the waits between attempts don't hold a thread."""
    for attempt in range(1, attempts + 1):
        try:
            return await fn()
        except Exception as exc:
            if attempt >= attempts or not retry_if(exc):
                raise
            await asyncio.sleep(_backoff(attempt, base_delay, max_delay))
    raise AssertionError("unreachable")


def _backoff(attempt: int, base_delay: float, max_delay: float) -> float:
    return min(max_delay, base_delay * 2 ** (attempt - 1))
