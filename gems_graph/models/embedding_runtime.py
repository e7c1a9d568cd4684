"""Which runtime runs the packaged MiniLM (``gems_graph.memory.embeddings``): a setting read
without importing it, so the CLI can refuse a bad value before anything loads."""

from __future__ import annotations

import os

#: ``auto`` (ONNX Runtime when it can be had, else torch), ``onnx`` or ``torch``.
RUNTIME_ENV = "GEMS_EMBEDDING_RUNTIME"
RUNTIMES = ("auto", "onnx", "torch")


class EmbeddingRuntimeError(ValueError):
    """``GEMS_EMBEDDING_RUNTIME`` names no runtime; the message says which it may name."""


def embedding_runtime() -> str:
    """The runtime ``GEMS_EMBEDDING_RUNTIME`` asks for: auto (the default), onnx or torch."""
    raw = os.environ.get(RUNTIME_ENV, "")
    runtime = raw.strip().lower() or "auto"
    if runtime not in RUNTIMES:
        raise EmbeddingRuntimeError(f"{RUNTIME_ENV}={raw!r} is not one of {', '.join(RUNTIMES)}")
    return runtime
