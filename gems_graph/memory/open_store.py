"""Which experience store a memory spec names, opened: one place maps spec strings to stores.

Kept apart from ``store.py`` (the base class) so the concrete stores can import
their base without an import cycle. chromadb itself is imported only when a
Chroma store is opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gems_graph.memory.chroma_store import ChromaExperienceStore
from gems_graph.memory.langgraph_store import LangGraphExperienceStore
from gems_graph.memory.store import DEFAULT_MAX_LESSONS, LessonStoreBase, MemoryStoreError, NullExperienceStore, memory_is_off
from gems_graph.persistence.home import gems_home


def open_experience_store(
    spec: str | None = None, *, embeddings: Any = None, create: bool = True, max_lessons: int = DEFAULT_MAX_LESSONS, store: Any = None
) -> LessonStoreBase:
    """Open the store a spec names.

    ``None``/``"chroma"``: embedded Chroma under ``$GEMS_HOME/memory``;
    ``"chroma:PATH"`` (or a bare path): embedded Chroma there;
    ``"chroma://host:port"``: a Chroma server; ``"none"``/``"off"``: remembers nothing;
    ``"store"``: the LangGraph ``BaseStore`` passed as ``store`` (``runtime.store``).
    With ``spec=None`` and a ``store`` that has a vector index (LangGraph Server with
    ``store.index`` in ``langgraph.json``), that store is used: a deployment keeps its
    lessons in the platform's store rather than in a folder of one container.
    ``create=False`` makes a missing embedded store an error (for inspection tools).
    """
    s = (spec or "").strip()
    if memory_is_off(s):
        return NullExperienceStore()
    if s in ("store", "langgraph") or (not s and store is not None and getattr(store, "index_config", None)):
        if store is None:
            raise MemoryStoreError(f"memory spec {s!r} needs a LangGraph store (runtime.store), and none was given")
        if not getattr(store, "index_config", None):  # it would store lessons and never recall one
            raise MemoryStoreError(
                f"memory spec {s!r} needs a LangGraph store with a vector index ({type(store).__name__} has none; "
                "on LangGraph Server set store.index in langgraph.json)"
            )
        return LangGraphExperienceStore(store, max_lessons=max_lessons)
    kind, where = parse_memory_spec(s)
    if kind == "server":
        return ChromaExperienceStore.connect(str(where), embeddings=embeddings, max_lessons=max_lessons)
    return ChromaExperienceStore.open(where, embeddings=embeddings, create=create, max_lessons=max_lessons)


def parse_memory_spec(spec: str | None) -> tuple[str, Any]:
    """``(kind, where)`` for a memory spec, opening nothing: ``("off", None)``, ``("store", None)``,
    ``("server", URL)`` or ``("embedded", PATH)``; ``MemoryStoreError`` for a spec no store takes
    (so the CLI refuses ``--memory bogus`` before a run starts)."""
    s = (spec or "").strip()
    if memory_is_off(s):
        return "off", None
    if s in ("store", "langgraph"):
        return "store", None
    s = s or "chroma"
    if s.startswith(("chroma://", "http://", "https://")):
        return "server", "http://" + s[len("chroma://") :] if s.startswith("chroma://") else s
    if s == "chroma":
        return "embedded", gems_home() / "memory"
    if s.startswith("chroma:"):
        return "embedded", Path(s[len("chroma:") :]).expanduser()
    if "/" in s or s.startswith("."):
        return "embedded", Path(s).expanduser()
    raise MemoryStoreError(f"unknown memory spec {s!r}: use 'chroma', 'chroma:PATH', 'chroma://host:port', 'store' or 'none'")
