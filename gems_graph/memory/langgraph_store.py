"""Experience store over LangGraph's ``BaseStore`` (``runtime.store``).

On LangGraph Server the platform provides a store with a vector index (configured in
``langgraph.json`` under ``store.index``); lessons then live there instead of in a
local Chroma folder, with the same merge/cap/export behaviour. Lessons sit in one
namespace and the family is a value field, because namespace labels may not contain
the periods and colons that model names do.
"""

from __future__ import annotations

from typing import Any

from gems_graph.memory.lessons import Lesson
from gems_graph.memory.store import DEFAULT_MAX_LESSONS, LessonStoreBase, normalize_lesson

DEFAULT_NAMESPACE = ("gems", "lessons")
#: Page size for listing a namespace (BaseStore.search pages with limit/offset).
_PAGE = 100


class LangGraphExperienceStore(LessonStoreBase):
    """Lessons as items of a ``BaseStore``; the store's index must embed ``text``.

    Example: ``InMemoryStore(index={"dims": 384, "embed": MiniLMEmbeddings(), "fields": ["text"]})``.
    """

    def __init__(self, store: Any, namespace: tuple[str, ...] = DEFAULT_NAMESPACE, *, max_lessons: int = DEFAULT_MAX_LESSONS) -> None:
        self.store = store
        self.namespace = tuple(namespace)
        self.max_lessons = max_lessons

    def __repr__(self) -> str:
        return f"LangGraphExperienceStore({type(self.store).__name__}, {self.namespace!r})"

    @staticmethod
    def _lesson(value: dict[str, Any] | None) -> Lesson | None:
        try:
            return normalize_lesson(dict(value or {}))
        except (ValueError, TypeError):
            return None

    def _nearest(self, text: str, k: int, family: str | None) -> list[tuple[Lesson, float]]:
        items = self.store.search(self.namespace, query=text, filter={"generator_family": family} if family else None, limit=k)
        out = []
        for it in items:
            lesson = self._lesson(it.value)
            if lesson is not None and it.score is not None:
                out.append((lesson, float(it.score)))
        return out

    def _put(self, lessons: list[Lesson]) -> None:
        for l in lessons:
            self.store.put(self.namespace, l["id"], dict(l), index=["text"])

    def _get(self, id: str) -> Lesson | None:
        item = self.store.get(self.namespace, id)
        return self._lesson(item.value) if item is not None else None

    def _all(self) -> list[Lesson]:
        out: list[Lesson] = []
        offset = 0
        while True:
            items = self.store.search(self.namespace, limit=_PAGE, offset=offset)
            out.extend(l for l in (self._lesson(it.value) for it in items if it.namespace == self.namespace) if l is not None)
            if len(items) < _PAGE:
                return out
            offset += _PAGE

    def _delete(self, ids: list[str]) -> None:
        for i in ids:
            self.store.delete(self.namespace, i)
