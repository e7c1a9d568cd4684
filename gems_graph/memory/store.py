"""The experience store: lessons that persist across runs, recalled by prompt similarity.

``ExperienceStore`` is the protocol the planner and refiner use. ``LessonStoreBase``
holds the behaviour every backend shares (merge near-duplicates instead of piling them
up, a size cap that evicts the least useful lessons, JSONL export/import) on top of a
few primitive operations, so Chroma and LangGraph's ``BaseStore`` behave the same.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol, cast, runtime_checkable

from gems_graph.memory.lesson_file import LessonFileError, read_lessons
from gems_graph.memory.lessons import Lesson, lesson_id

#: Cosine similarity above which a new lesson of the same family is "the same" lesson.
DUPLICATE_SIMILARITY = 0.95
#: Default collection size cap; past it the least useful lessons are evicted.
DEFAULT_MAX_LESSONS = 2000

_LESSON_KEYS = (
    "id",
    "text",
    "prompt",
    "generator_family",
    "skills",
    "failed_checks",
    "fix",
    "rounds",
    "score_gain",
    "status",
    "created_at",
    "uses",
    "runs",
    "rating",
    "human_notes",
    "first_prompt",
    "first_passed",
    "first_failed",
)
#: Run ids kept on a lesson (enough to recognise a resumed run writing again).
MAX_LESSON_RUNS = 20
#: A person's review notes kept on a lesson (the latest few).
MAX_HUMAN_NOTES = 5


#: Memory specs that turn memory off.
MEMORY_OFF = ("none", "off", "false", "0", "disabled")


def memory_is_off(spec: str | None) -> bool:
    """Whether a memory spec turns memory off (an empty spec does not: it means the default)."""
    return (spec or "").strip().lower() in MEMORY_OFF


class MemoryStoreError(RuntimeError):
    """The store cannot be opened or read; the message is one line naming where."""


@runtime_checkable
class ExperienceStore(Protocol):
    def add(self, lessons: Iterable[Lesson]) -> list[str]: ...
    def recall(
        self, prompt: str, k: int = 3, generator_family: str | None = None, *, min_similarity: float | None = None
    ) -> list[Lesson]: ...
    def list(self, limit: int = 100) -> list[Lesson]: ...
    def get(self, id: str) -> Lesson | None: ...
    def forget(self, id: str) -> bool: ...
    def clear(self) -> int: ...
    def export_jsonl(self, path: str | Path) -> int: ...
    def import_jsonl(self, path: str | Path) -> builtins.list[str]: ...  # `list` is the method above
    def count(self) -> int: ...


def normalize_lesson(raw: dict[str, Any]) -> Lesson:
    """Fill defaults and check types, so imports and old records can't break readers."""
    if not isinstance(raw, dict) or not isinstance(raw.get("text"), str) or not raw["text"].strip():
        raise ValueError("a lesson needs a non-empty 'text'")
    out: dict[str, Any] = {
        "id": str(raw.get("id") or ""),
        "text": raw["text"].strip(),
        "prompt": str(raw.get("prompt") or ""),
        "generator_family": str(raw.get("generator_family") or "unknown"),
        "skills": [str(s) for s in raw.get("skills") or []],
        "failed_checks": [str(s) for s in raw.get("failed_checks") or []],
        "fix": str(raw.get("fix") or ""),
        "rounds": int(raw.get("rounds") or 0),
        "score_gain": float(raw.get("score_gain") or 0.0),
        "status": str(raw.get("status") or ""),
        "created_at": str(raw.get("created_at") or ""),
        "uses": int(raw.get("uses") or 1),
        "runs": [str(r) for r in raw.get("runs") or []][-MAX_LESSON_RUNS:],
        "rating": str(raw.get("rating") or ""),
        "human_notes": [str(n) for n in raw.get("human_notes") or []][-MAX_HUMAN_NOTES:],
    }
    if raw.get("first_prompt"):  # lessons written before the first round was kept have none
        out["first_prompt"] = str(raw["first_prompt"])
        out["first_passed"] = [str(q) for q in raw.get("first_passed") or []]
        out["first_failed"] = [str(q) for q in raw.get("first_failed") or []]
    if not out["created_at"]:
        from gems_graph.memory.lessons import _now_iso

        out["created_at"] = _now_iso()
    if not out["id"]:
        out["id"] = lesson_id(out)  # type: ignore[arg-type]
    return out  # type: ignore[return-value]


def strip_lesson(lesson: Lesson) -> Lesson:
    """Only the stored fields (drops a recall's ``similarity``)."""
    stored: dict[str, Any] = dict(lesson)
    return cast(Lesson, {k: stored[k] for k in _LESSON_KEYS if k in stored})  # Lesson's own keys only


#: Recall looks at this many times k nearest lessons, then ranks them by usefulness.
RECALL_POOL = 3
#: How much more similar a lesson without a fix must be to outrank one with a fix.
FIX_BONUS = 0.2


def has_fix(lesson: Lesson) -> bool:
    """A lesson that records a change which made failed checks pass (the kind a planner can act on)."""
    return bool(lesson.get("fix")) and float(lesson.get("score_gain") or 0.0) > 0.0


class LessonStoreBase:
    """Shared semantics over primitives a backend implements.

    Primitives: ``_nearest(text, k, family) -> [(lesson, similarity)]``, ``_put(lessons)``,
    ``_get(id)``, ``_all()``, ``_delete(ids)``, ``_count()``; ``_write_lock()`` guards
    the read-check-write of ``add`` (a file lock for an embedded store).
    """

    max_lessons: int = DEFAULT_MAX_LESSONS
    duplicate_similarity: float = DUPLICATE_SIMILARITY

    # -- primitives ---------------------------------------------------------
    def _nearest(self, text: str, k: int, family: str | None) -> list[tuple[Lesson, float]]:
        raise NotImplementedError

    def _put(self, lessons: list[Lesson]) -> None:
        raise NotImplementedError

    def _get(self, id: str) -> Lesson | None:
        raise NotImplementedError

    def _all(self) -> list[Lesson]:
        raise NotImplementedError

    def _delete(self, ids: list[str]) -> None:
        raise NotImplementedError

    def _count(self) -> int:
        return len(self._all())

    @contextlib.contextmanager
    def _write_lock(self) -> Iterator[None]:
        yield

    # -- public API ---------------------------------------------------------
    def add(self, lessons: Iterable[Lesson]) -> list[str]:
        """Store lessons; a near-duplicate of the same family merges into the old one.

        Merging keeps the old id, takes the newer text and fields, and adds the uses
        up, so a lesson confirmed by many runs rises instead of being repeated.
        Returns the id each lesson ended up under.
        """
        return self._add(lessons, reimport=False)

    def _add(self, lessons: Iterable[Lesson], *, reimport: bool) -> list[str]:
        # On re-import the same record (same id) must not count as a new confirmation.
        items = [normalize_lesson(dict(l)) for l in lessons]
        ids: list[str] = []
        with self._write_lock():
            for new in items:
                target = new
                existing = self._get(new["id"])
                if existing is None:
                    near = self._nearest(new["text"], 1, new["generator_family"])
                    if near and near[0][1] >= self.duplicate_similarity:
                        existing = near[0][0]
                if existing is not None:
                    seen = existing.get("runs") or []
                    rerun = bool(new.get("runs")) and set(new.get("runs") or []) <= set(seen)  # the same run, resumed
                    same = (reimport and existing["id"] == new["id"]) or rerun
                    uses = max(existing["uses"], new["uses"]) if same else existing["uses"] + new["uses"]
                    runs = list(dict.fromkeys([*seen, *(new.get("runs") or [])]))[-MAX_LESSON_RUNS:]
                    # A person's rating and notes on either run stay: they weigh in when skills are learnt.
                    notes = list(dict.fromkeys([*(existing.get("human_notes") or []), *(new.get("human_notes") or [])]))[-MAX_HUMAN_NOTES:]
                    rating = new.get("rating") or existing.get("rating") or ""
                    target = {**new, "id": existing["id"], "uses": int(uses), "runs": runs, "rating": rating, "human_notes": notes}
                self._put([target])
                ids.append(target["id"])
            self._evict(keep=set(ids))
        return ids

    def _evict(self, keep: set[str]) -> None:
        """Drop the least used, oldest lessons past the cap; never the ones just written."""
        n = self._count()
        if n <= self.max_lessons:
            return
        ranked = sorted((l for l in self._all() if l["id"] not in keep), key=lambda l: (l["uses"], l["created_at"]))
        self._delete([l["id"] for l in ranked[: n - self.max_lessons]])

    def recall(self, prompt: str, k: int = 3, generator_family: str | None = None, *, min_similarity: float | None = None) -> list[Lesson]:
        """Top-k lessons for ``prompt``, of ``generator_family`` when given.

        The ``RECALL_POOL * k`` most similar lessons are ranked by similarity plus
        ``FIX_BONUS`` for a lesson that records a fix, so "X fixed it" outranks a
        near-equal "passed at once" or "still failing" (those only say what happened).

        Pass the run's family (see ``generator_family(spec)``): lessons about prompting
        one model rarely transfer to another. ``None`` searches every family.
        """
        if k <= 0 or not prompt.strip():
            return []
        found = [
            (lesson, sim)
            for lesson, sim in self._nearest(prompt, k * RECALL_POOL, generator_family)
            if min_similarity is None or sim >= min_similarity
        ]
        found.sort(key=lambda pair: -(pair[1] + (FIX_BONUS if has_fix(pair[0]) else 0.0)))
        return [{**lesson, "similarity": round(float(sim), 4)} for lesson, sim in found[:k]]

    async def arecall(
        self, prompt: str, k: int = 3, generator_family: str | None = None, *, min_similarity: float | None = None
    ) -> list[Lesson]:
        """``recall`` off the event loop (embedding and Chroma calls block)."""
        return await asyncio.to_thread(self.recall, prompt, k, generator_family, min_similarity=min_similarity)

    async def aadd(self, lessons: Iterable[Lesson]) -> list[str]:
        return await asyncio.to_thread(self.add, list(lessons))

    def list(self, limit: int = 100) -> list[Lesson]:
        """Newest first."""
        return sorted(self._all(), key=lambda l: l["created_at"], reverse=True)[:limit]

    def get(self, id: str) -> Lesson | None:
        return self._get(id)

    def forget(self, id: str) -> bool:
        with self._write_lock():
            if self._get(id) is None:
                return False
            self._delete([id])
            return True

    def clear(self) -> int:
        with self._write_lock():
            ids = [l["id"] for l in self._all()]
            if ids:
                self._delete(ids)
            return len(ids)

    def count(self) -> int:
        return self._count()

    def export_jsonl(self, path: str | Path) -> int:
        """One lesson per line, oldest first, so an import replays history in order."""
        lessons = sorted(self._all(), key=lambda l: l["created_at"])
        p = Path(path)
        with p.open("w", encoding="utf-8") as f:
            for l in lessons:
                f.write(json.dumps(strip_lesson(l), ensure_ascii=False) + "\n")
        return len(lessons)

    def import_jsonl(self, path: str | Path) -> builtins.list[str]:  # `list` is the method above
        """Read every line first and add only if all are valid: no half imports."""
        try:
            records = read_lessons(path, self.max_lessons)
        except LessonFileError as exc:
            raise MemoryStoreError(str(exc)) from None
        return self._add([normalize_lesson(r) for r in records], reimport=True)


class NullExperienceStore(LessonStoreBase):
    """Remembers nothing: ``--memory none`` (lessons disabled for a run)."""

    def _nearest(self, text: str, k: int, family: str | None) -> list[tuple[Lesson, float]]:
        return []

    def _put(self, lessons: list[Lesson]) -> None:
        pass

    def _get(self, id: str) -> Lesson | None:
        return None

    def _all(self) -> list[Lesson]:
        return []

    def _delete(self, ids: list[str]) -> None:
        pass

    def _add(self, lessons: Iterable[Lesson], *, reimport: bool) -> list[str]:
        return []

    def __repr__(self) -> str:
        return "NullExperienceStore()"
