"""Effective settings of a run: per-run input overrides on top of the runtime context."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from gems_graph.context import GemsContext
from gems_graph.state import GemsState

#: Input keys that override the context field of the same name for one run.
OVERRIDABLE = ("max_rounds", "candidates_per_round", "seed")


def effective_context(state: GemsState | dict[str, Any], context: GemsContext | None) -> GemsContext:
    ctx = context if context is not None else GemsContext()
    values: dict[str, Any] = dict(state)
    overrides = {k: values[k] for k in OVERRIDABLE if values.get(k) is not None}
    return replace(ctx, **overrides) if overrides else ctx
