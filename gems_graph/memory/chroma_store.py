"""Experience store on Chroma: embedded ``PersistentClient`` by default, or a server.

The full lesson is kept as JSON in the record's metadata (Chroma metadata holds only
scalars), with the family as its own field so recall can filter on it. Vectors are
computed here with the configured LangChain ``Embeddings`` and passed explicitly, and
the collection also gets that function, so Chroma never loads its own default model.
Writes to an embedded store take a file lock: several runs may finish at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from gems_graph.errors import one_line
from gems_graph.memory.embeddings import chroma_embedding_function, default_embeddings
from gems_graph.memory.lessons import Lesson
from gems_graph.memory.store import DEFAULT_MAX_LESSONS, LessonStoreBase, MemoryStoreError, normalize_lesson

COLLECTION = "gems_lessons"
_SQLITE = "chroma.sqlite3"

# Chroma's posthog client logs a line per call even with telemetry off; keep quiet.
logging.getLogger("chromadb.telemetry.product.posthog").setLevel(logging.CRITICAL)


def _settings() -> Any:
    from chromadb.config import Settings

    return Settings(anonymized_telemetry=False)


def check_embedded_store(path: str | Path) -> None:
    """Raise ``MemoryStoreError`` if the folder's ``chroma.sqlite3`` is damaged (empty, not SQLite,
    garbled pages), reading it only: Chroma would otherwise start it afresh, and every lesson
    would be gone without a word. A folder without one is a new store."""
    db = Path(path).expanduser() / _SQLITE
    if not db.is_file():
        return
    problem = None
    if db.stat().st_size == 0:
        problem = "is empty (0 bytes)"
    else:
        with open(db, "rb") as f:
            if f.read(16) != b"SQLite format 3\x00":
                problem = "is not an SQLite database"
    if problem is None:
        try:
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            try:
                verdict = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
            finally:
                conn.close()
            if verdict != "ok":
                problem = f"is damaged ({one_line(verdict)})"
        except sqlite3.DatabaseError as exc:
            problem = f"is damaged ({one_line(exc)})"
    if problem:
        raise MemoryStoreError(
            f"memory store at {db.parent} is corrupt: {db} {problem}; move the folder aside (try `gems memory export` "
            "first to keep what still reads) and run again, or run with --memory none"
        )


#: Recall fetches this many times ``k`` nearest lessons of any family before filtering by family.
FAMILY_OVERFETCH = 4


class ChromaExperienceStore(LessonStoreBase):
    """Lessons in one Chroma collection (cosine space)."""

    def __init__(
        self, client: Any, where: str, *, embeddings: Any = None, embedded: _Embedded | None = None, max_lessons: int = DEFAULT_MAX_LESSONS
    ) -> None:
        self._client = client
        self.where = where
        self.embeddings = embeddings or default_embeddings()
        self.max_lessons = max_lessons
        self._embedded = embedded
        self._vec_cache: dict[str, list[float]] = {}
        self._ef = chroma_embedding_function(self.embeddings)
        self._col_cache: tuple[Any, Any] | None = None  # (client it came from, collection)
        self._collection()  # fail now, with the path in the message, not at first use

    def _collection(self) -> Any:
        """The collection, from a client that has seen every other process's writes."""
        client = self._embedded.client() if self._embedded else self._client
        if self._col_cache is None or self._col_cache[0] is not client:
            try:
                col = client.get_or_create_collection(COLLECTION, embedding_function=self._ef, configuration={"hnsw": {"space": "cosine"}})
            except Exception as e:  # noqa: BLE001 - any backend failure becomes one clear line
                raise MemoryStoreError(f"memory store at {self.where} is unusable: {one_line(e)}") from None
            self._col_cache = (client, col)
        return self._col_cache[1]

    @property
    def _col(self) -> Any:
        return self._collection()

    # -- opening ------------------------------------------------------------
    @classmethod
    def open(
        cls, path: str | Path, *, embeddings: Any = None, create: bool = True, max_lessons: int = DEFAULT_MAX_LESSONS
    ) -> ChromaExperienceStore:
        """Embedded store in folder ``path`` (created unless ``create=False``)."""
        p = Path(path).expanduser().resolve()
        if p.exists() and not p.is_dir():
            raise MemoryStoreError(f"memory store path {p} is a file, not a folder")
        if not create and not (p / _SQLITE).is_file():
            raise MemoryStoreError(f"no memory store at {p}")
        try:
            p.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise MemoryStoreError(f"cannot create memory store at {p}: {e.strerror or e}") from None
        check_embedded_store(p)
        embedded = _Embedded.for_path(p)
        embedded.client()
        return cls(None, str(p), embeddings=embeddings, embedded=embedded, max_lessons=max_lessons)

    @classmethod
    def connect(cls, url: str, *, embeddings: Any = None, max_lessons: int = DEFAULT_MAX_LESSONS) -> ChromaExperienceStore:
        """A Chroma server (``chroma run``) at ``http(s)://host:port``."""
        u = urlparse(url)
        if not u.hostname:
            raise MemoryStoreError(f"bad Chroma server URL {url!r}: expected chroma://host:port")
        import chromadb

        port = u.port or (443 if u.scheme == "https" else 8000)
        try:
            client = chromadb.HttpClient(host=u.hostname, port=port, ssl=u.scheme == "https", settings=_settings())
            client.heartbeat()
        except Exception as e:  # noqa: BLE001
            raise MemoryStoreError(f"cannot reach Chroma server at {u.scheme}://{u.hostname}:{port}: {one_line(e)}") from None
        return cls(client, f"chroma://{u.hostname}:{port}", embeddings=embeddings, max_lessons=max_lessons)

    def __repr__(self) -> str:
        return f"ChromaExperienceStore({self.where!r})"

    # -- primitives ---------------------------------------------------------
    @contextlib.contextmanager
    def _write_lock(self) -> Iterator[None]:
        if self._embedded is None:  # a server serialises writes itself
            yield
            return
        with self._embedded.writing():
            yield

    def _embed(self, text: str, query: bool = False) -> list[float]:
        key = ("q:" if query else "d:") + text
        vec = self._vec_cache.get(key)
        if vec is None:
            vec = self.embeddings.embed_query(text) if query else self.embeddings.embed_documents([text])[0]
            if len(self._vec_cache) > 256:
                self._vec_cache.clear()
            self._vec_cache[key] = vec
        return vec

    def _guard(self, what: str) -> Any:
        """Turn a backend failure in the middle of use into one clear line."""
        store = self

        class _G:
            def __enter__(self) -> None:
                return None

            def __exit__(self, et: Any, e: Any, tb: Any) -> None:
                if e is not None and not isinstance(e, MemoryStoreError):
                    raise MemoryStoreError(f"memory store at {store.where}: {what} failed: {one_line(e)}") from None

        return _G()

    @staticmethod
    def _from_meta(meta: dict[str, Any] | None) -> Lesson | None:
        try:
            lesson = normalize_lesson(json.loads((meta or {})["lesson"]))
        except (KeyError, ValueError, TypeError):
            return None  # not ours (or damaged): skip rather than break every reader
        lesson["uses"] = int((meta or {}).get("uses", lesson["uses"]))
        return lesson

    def _query(self, vec: list[float], k: int, family: str | None) -> dict[str, Any] | None:
        """The ``k`` nearest lessons of ``family`` (None: of any), as Chroma returns them.

        A metadata filter makes Chroma's search several times slower (15.6 ms against
        2.6 ms at 2000 lessons), so the nearest ``FAMILY_OVERFETCH * k`` of any family
        are fetched and filtered here; the first ``k`` of ``family`` among them are
        exactly its ``k`` nearest. Only when fewer than ``k`` are there does the
        filtered search run.
        """
        col = self._col  # one freshness check a search
        include = ["metadatas", "distances"]
        # Chroma returns every lesson when asked for more than it holds, so no count() first
        # (a call of its own, which a loaded machine makes as slow as the search).
        if not family:
            found = col.query(query_embeddings=[vec], n_results=k, include=include)
            return found if found["ids"][0] else None
        asked = FAMILY_OVERFETCH * k
        wide = col.query(query_embeddings=[vec], n_results=asked, include=include)
        if not wide["ids"][0]:
            return None
        kept = [(m, d) for m, d in zip(wide["metadatas"][0], wide["distances"][0]) if (m or {}).get("generator_family") == family]
        if len(kept) >= k or len(wide["ids"][0]) < asked:  # fewer than asked: that was every lesson
            return {"metadatas": [[m for m, _ in kept[:k]]], "distances": [[d for _, d in kept[:k]]]}
        return col.query(query_embeddings=[vec], n_results=k, where={"generator_family": family}, include=include)

    def _nearest(self, text: str, k: int, family: str | None) -> list[tuple[Lesson, float]]:
        vec = self._embed(text, query=True)
        for attempt in (1, 2):
            try:
                with self._guard("search"):
                    res = self._query(vec, k, family)
                break
            except MemoryStoreError:
                # Another process wrote between our freshness check and the query
                # (Chroma: "Error finding id"): reload once and ask again.
                if attempt == 2 or self._embedded is None:
                    raise
                self._embedded.reload()
        if res is None:
            return []
        out = []
        metas, dists = res["metadatas"] or [[]], res["distances"] or [[]]  # both asked for in include=
        for meta, dist in zip(metas[0], dists[0]):
            lesson = self._from_meta(meta)
            if lesson is not None:
                out.append((lesson, 1.0 - float(dist)))  # cosine distance -> similarity
        return out

    def _put(self, lessons: list[Lesson]) -> None:
        with self._guard("write"):
            self._col.upsert(
                ids=[l["id"] for l in lessons],
                documents=[l["text"] for l in lessons],
                embeddings=[self._embed(l["text"]) for l in lessons],
                metadatas=[
                    {
                        "lesson": json.dumps(l, ensure_ascii=False),
                        "generator_family": l["generator_family"],
                        "uses": int(l["uses"]),
                        "created_at": l["created_at"],
                    }
                    for l in lessons
                ],
            )

    def _get(self, id: str) -> Lesson | None:
        with self._guard("read"):
            res = self._col.get(ids=[id], include=["metadatas"])
        metas = res.get("metadatas") or []
        return self._from_meta(metas[0]) if metas else None

    def _all(self) -> list[Lesson]:
        out: list[Lesson] = []
        page = 500
        offset = 0
        with self._guard("read"):
            while True:
                res = self._col.get(include=["metadatas"], limit=page, offset=offset)
                metas = res.get("metadatas") or []
                out.extend(l for l in map(self._from_meta, metas) if l is not None)
                if len(metas) < page:
                    break
                offset += page
        return out

    def _delete(self, ids: list[str]) -> None:
        with self._guard("delete"):
            for i in range(0, len(ids), 500):
                self._col.delete(ids=ids[i : i + 500])

    def _count(self) -> int:
        with self._guard("count"):
            return int(self._col.count())


class _Embedded:
    """One embedded Chroma folder shared by every store object of this process.

    Embedded Chroma keeps its vector index in memory per process and never notices
    another process's writes (queries then fail with "Error finding id" or miss
    lessons). So every write bumps a generation token file under a file lock, and a
    process whose client predates the current token drops it and opens a fresh one.
    A process that only reads its own writes never reloads.
    """

    _by_path: dict[str, _Embedded] = {}
    _guard = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path
        self._gen_file = path / ".generation"
        self._lock_file = path / ".write.lock"
        self._client: Any = None
        self._token: str | None = None
        self._mutex = threading.RLock()

    @classmethod
    def for_path(cls, path: Path) -> _Embedded:
        with cls._guard:
            key = str(path)
            if key not in cls._by_path:
                cls._by_path[key] = cls(path)
            return cls._by_path[key]

    def _read_token(self) -> str:
        try:
            return self._gen_file.read_text().strip()
        except FileNotFoundError:
            return ""
        except OSError as e:
            raise MemoryStoreError(f"memory store at {self.path}: cannot read {self._gen_file.name}: {e.strerror or e}") from None

    def _file_lock(self) -> Any:
        from filelock import FileLock

        return FileLock(str(self._lock_file), timeout=120)

    def client(self) -> Any:
        """A client that has seen every write made so far (reloads if stale)."""
        with self._mutex:
            token = self._read_token()
            if self._client is None or token != self._token:
                with self._file_lock():  # never load the index while a writer persists it
                    self._open(self._read_token())
            return self._client

    def reload(self) -> None:
        with self._mutex, self._file_lock():
            self._open(self._read_token())

    def _open(self, token: str) -> None:
        import chromadb

        if self._client is not None:
            self._drop()
        try:
            self._client = chromadb.PersistentClient(path=str(self.path), settings=_settings())
        except Exception as e:  # noqa: BLE001
            self._client = None
            raise MemoryStoreError(f"memory store at {self.path} is unreadable (corrupt?): {one_line(e)}") from None
        self._token = token

    def _drop(self) -> None:
        # Chroma shares one System per folder in a process and reuses it on the next
        # PersistentClient(); stop it so the next client loads the folder afresh.
        from chromadb.api.shared_system_client import SharedSystemClient as S

        ident = str(self.path)
        counts = getattr(S, "_identifier_to_refcount", None)  # chromadb >= 1.1
        if counts is not None:
            with S._refcount_lock:
                counts.pop(ident, None)
        system = S._identifier_to_system.pop(ident, None)
        if system is not None:
            with contextlib.suppress(Exception):
                system.stop()
        self._client = None

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Exclusive across processes; leaves a new token so others reload."""
        with self._mutex, self._file_lock():
            if self._client is None or self._read_token() != self._token:
                self._open(self._read_token())
            try:
                yield
            finally:
                token = uuid.uuid4().hex
                tmp = self._gen_file.with_suffix(".tmp")
                tmp.write_text(token)
                os.replace(tmp, self._gen_file)
                self._token = token


os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
