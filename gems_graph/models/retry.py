"""Retrying transient backend failures (connection, 429, 5xx, timeouts) with backoff, and
how long one backend call may take.

Every backend call has two limits (``CallLimits``): ``timeout``, how long one request
may wait for an answer, and ``deadline``, how long the whole call may take, retries
and waits between them included. Each attempt waits at most what is left of the
deadline, and no attempt starts that could not finish in time, so a hung endpoint
surfaces after ``deadline`` seconds, whatever the number of retries. The context's
``chat_timeout`` / ``chat_deadline`` and ``generation_timeout`` / ``generation_deadline``
are handed to backends that declare ``with_limits(limits)`` (see ``with_limits``).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from gems_graph.context import (  # noqa: F401 - the limits' defaults, re-exported beside them
    DEFAULT_CHAT_DEADLINE,
    DEFAULT_CHAT_TIMEOUT,
    DEFAULT_GENERATION_DEADLINE,
    DEFAULT_GENERATION_TIMEOUT,
)

T = TypeVar("T")
#: An attempt is not started with less than this left before the deadline.
MIN_ATTEMPT_SECONDS = 0.5

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


@dataclass(frozen=True)
class CallLimits:
    """Seconds one request may wait (``timeout``) and one call may take in all (``deadline``)."""

    timeout: float
    deadline: float


class Deadline:
    """The moment a call must be done by, started when the call starts."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.started = time.monotonic()
        self.end = math.inf if seconds is None else self.started + seconds

    def left(self) -> float:
        return self.end - time.monotonic()

    def cap(self, timeout: float | None) -> float | None:
        """``timeout``, shortened to what is left (never below a few milliseconds)."""
        if self.seconds is None:
            return timeout
        return max(0.01, min(timeout if timeout is not None else math.inf, self.left()))

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def with_limits(backend: Any, limits: CallLimits | None) -> Any:
    """``backend`` under ``limits`` where it declares ``with_limits``; else as it is."""
    apply = getattr(backend, "with_limits", None)
    return apply(limits) if limits is not None and callable(apply) else backend


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
    deadline: Deadline | None = None,
) -> T:
    """Call ``fn``; on an error ``retry_if`` accepts (transient ones by default) wait
    (exponential backoff, or the server's ``Retry-After``) and try again, while ``deadline``
    leaves time for another attempt."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as exc:
            delay = _delay(exc, attempt, base_delay, max_delay)
            if attempt >= attempts or not retry_if(exc) or not _time_for_another(deadline, delay):
                raise
            time.sleep(delay)
    raise AssertionError("unreachable")


async def acall_with_retry(
    fn: Callable[[], Awaitable[T]],
    *,
    attempts: int = 3,
    base_delay: float = 0.5,
    max_delay: float = 8.0,
    retry_if: Callable[[BaseException], bool] = is_transient,
    deadline: Deadline | None = None,
) -> T:
    """``call_with_retry`` for a coroutine: the waits between attempts don't hold a thread."""
    for attempt in range(1, attempts + 1):
        try:
            return await fn()
        except Exception as exc:
            delay = _delay(exc, attempt, base_delay, max_delay)
            if attempt >= attempts or not retry_if(exc) or not _time_for_another(deadline, delay):
                raise
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")


def _time_for_another(deadline: Deadline | None, delay: float) -> bool:
    return deadline is None or deadline.left() - delay >= MIN_ATTEMPT_SECONDS


def _delay(exc: BaseException, attempt: int, base_delay: float, max_delay: float) -> float:
    """The backoff, or the server's ``Retry-After`` (seconds) when it sent one, at most ``max_delay``."""
    backoff = min(max_delay, base_delay * 2 ** (attempt - 1))
    headers = getattr(getattr(exc, "response", None), "headers", None)
    try:
        asked = float(headers.get("retry-after")) if headers is not None and headers.get("retry-after") else None
    except (TypeError, ValueError):
        asked = None
    return backoff if asked is None or asked < 0 else min(max_delay, asked)
