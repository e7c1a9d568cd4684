"""Custom stream events the nodes emit (``stream_mode="custom"``).

The CLI's live view, notebooks and Studio read these: ``round_started``,
``candidate_ready``, ``verdicts``, ``new_prompt``, ``run_finished``, ...
Every event is a flat JSON dict with an ``event`` key.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from gems_graph.errors import redact_values


def emit(runtime: Runtime[Any] | None, event: str, **data: Any) -> None:
    """Send an event; its text is redacted first, as a model may echo the API key in a reply."""
    writer = getattr(runtime, "stream_writer", None)
    if writer is not None:
        writer(redact_values({"event": event, **data}))
