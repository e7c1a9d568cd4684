"""The experience store a run uses, opened once per spec and process.

Opening embedded Chroma and loading the embedding model take seconds; a process
that runs many prompts (eval harness, a server) must not pay that every run.
``spec="store"`` (or a LangGraph store with a vector index) uses ``runtime.store``.
"""

from __future__ import annotations

import threading
from typing import Any

from gems_graph import prompt_labels as labels
from gems_graph.memory.open_store import open_experience_store
from gems_graph.memory.store import LessonStoreBase, memory_is_off

_cache: dict[tuple[str, str], LessonStoreBase] = {}
_lock = threading.Lock()


def store_for_run(spec: str | None, runtime_store: Any = None) -> LessonStoreBase:
    """The experience store a run with memory ``spec`` uses: the same instance, shared per process.

    A notebook that wants to look at the lessons its runs wrote asks for this one
    rather than opening a second client on the same embedded files.
    """
    spec = (spec or "chroma").strip()
    uses_runtime = spec in ("store", "langgraph")
    if uses_runtime or memory_is_off(spec):
        return open_experience_store(spec, store=runtime_store)
    from gems_graph.persistence.home import gems_home

    key = (spec, str(gems_home()))  # the embedded default lives under $GEMS_HOME
    with _lock:
        if key not in _cache:
            _cache[key] = open_experience_store(spec)
        return _cache[key]


def lessons_text(lessons: list[dict[str, Any]]) -> str:
    """Recalled lessons as the planner and refiner read them."""
    if not lessons:
        return ""
    return f"{labels.LESSONS}:\n" + "\n".join(f"- {lesson['text']}" for lesson in lessons)
