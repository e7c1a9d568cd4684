"""Checkpointers for durable runs: SQLite under $GEMS_HOME by default, Postgres on request.

``open_checkpointer`` is for ``invoke``/``stream``; ``open_async_checkpointer`` is the
same for ``ainvoke``/``astream`` in async apps (the sync SQLite saver refuses async calls).

Postgres: one connection per saver, in autocommit as LangGraph's savers expect. No
pool: a saver serialises its queries on one lock whatever it is given, so a pool would
add connections, not throughput; many processes (``gems run``s, eval workers) each
hold their own. The tables are created on first use under an advisory lock, since
LangGraph's migrations (``CREATE INDEX CONCURRENTLY``, a version row each) fail when
several processes set up one fresh database at once.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from gems_graph.errors import one_line, redact
from gems_graph.persistence.home import default_checkpoint_db

POSTGRES_PREFIXES = ("postgres://", "postgresql://")
#: Seconds to wait for a Postgres server that does not answer (libpq waits for ever by default).
CONNECT_TIMEOUT_S = 10
#: Seconds to wait while another process creates the checkpoint tables.
SETUP_WAIT_S = 120
#: An advisory lock held while the checkpoint tables are created or migrated (the key: b"gemsckpt").
_SETUP_LOCK = int.from_bytes(b"gemsckpt")
_TRY_LOCK = f"SELECT pg_try_advisory_lock({_SETUP_LOCK}) AS locked"
_UNLOCK = f"SELECT pg_advisory_unlock({_SETUP_LOCK})"


def _got_lock(row: dict[str, Any] | None) -> bool:
    """``_TRY_LOCK``'s answer (psycopg types a row as optional; this SELECT always returns one)."""
    return bool(row and row["locked"])


class CheckpointStoreError(RuntimeError):
    """The checkpoint store cannot be used; the message names it and what to do."""


class MissingCheckpointStoreError(CheckpointStoreError):
    """A SQLite checkpoint database asked for without ``create`` does not exist (so holds no run)."""


def _sqlite_path(url: str | None, *, create: bool = True) -> Path:
    path = Path(url.removeprefix("sqlite:")) if url else default_checkpoint_db()
    if path.is_dir():
        raise CheckpointStoreError(f"checkpoint database {path} is a folder; give the path of a file")
    if not create:
        if not path.is_file():
            raise MissingCheckpointStoreError(f"checkpoint database {path} does not exist (give the --checkpoint-db the run used)")
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointStoreError(f"cannot create the folder of checkpoint database {path}: {exc.strerror or exc}") from None
    return path


def _damaged(path: Path, exc: BaseException) -> CheckpointStoreError:
    wal = Path(f"{path}-wal")
    has_wal = wal.is_file() and wal.stat().st_size > 0
    files = f"{path} (and its write-ahead log {wal.name})" if has_wal else str(path)
    them = "them" if has_wal else "it"
    return CheckpointStoreError(
        f"checkpoint database {files} cannot be used ({one_line(exc) or type(exc).__name__}); if it is damaged, "
        f"move {them} aside (the runs in it can no longer be resumed) and run again"
    )


def damaged_store_error(url: str | None, exc: BaseException) -> CheckpointStoreError:
    """The one-line error for a checkpoint store whose rows cannot be decoded (a garbled file,
    a write-ahead log left from another database): it names the file and what to do."""
    if url and url.startswith(POSTGRES_PREFIXES):
        return CheckpointStoreError(f"checkpoint database {redact(url)} holds rows that cannot be read ({one_line(exc)})")
    return _damaged(Path(url.removeprefix("sqlite:")) if url else default_checkpoint_db(), exc)


def _postgres_missing() -> CheckpointStoreError:
    return CheckpointStoreError("postgresql:// checkpoints need the driver: pip install 'gems-graph[postgres]'")


def _postgres_connect_kwargs(url: str) -> dict[str, Any]:
    """What LangGraph's Postgres savers need of a connection, and a bounded connect."""
    from psycopg.rows import dict_row

    kwargs: dict[str, Any] = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
    if "connect_timeout" not in url:
        kwargs["connect_timeout"] = CONNECT_TIMEOUT_S
    return kwargs


def _postgres_error(url: str, exc: Exception, *, connecting: bool) -> CheckpointStoreError:
    detail = one_line(str(exc).removeprefix("connection failed: "))
    if connecting:
        return CheckpointStoreError(f"cannot connect to checkpoint database {redact(url)} ({detail})")
    return CheckpointStoreError(f"cannot set up the checkpoint tables in {redact(url)} ({detail})")


def _setup_lock_timeout(url: str) -> CheckpointStoreError:
    return CheckpointStoreError(f"checkpoint database {redact(url)}: another process held the table setup lock for {SETUP_WAIT_S} s")


@contextmanager
def _postgres_saver(url: str) -> Iterator[BaseCheckpointSaver]:
    try:
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver  # optional dependency
    except ImportError:
        raise _postgres_missing() from None
    try:
        conn = psycopg.Connection.connect(url, **_postgres_connect_kwargs(url))
    except psycopg.Error as exc:
        raise _postgres_error(url, exc, connecting=True) from None
    with conn:
        saver = PostgresSaver(conn)
        try:
            deadline = time.monotonic() + SETUP_WAIT_S
            # Polled, not a blocking pg_advisory_lock: a session blocked in a statement holds a
            # snapshot, which another session's CREATE INDEX CONCURRENTLY would wait for.
            while not _got_lock(conn.execute(_TRY_LOCK).fetchone()):
                if time.monotonic() > deadline:
                    raise _setup_lock_timeout(url)
                time.sleep(0.05)
            try:
                saver.setup()
            finally:
                conn.execute(_UNLOCK)
        except psycopg.Error as exc:
            raise _postgres_error(url, exc, connecting=False) from None
        yield saver


def check_checkpointer(url: str | None = None) -> None:
    """Raise ``CheckpointStoreError`` for a SQLite checkpoint database that cannot be used
    (a folder, under a file, damaged), writing nothing: the CLI checks before a run starts."""
    if url and url.startswith(POSTGRES_PREFIXES):
        return  # connecting is the check; ``open_checkpointer`` reports it
    path = Path(url.removeprefix("sqlite:")) if url else default_checkpoint_db()
    if path.is_dir():
        raise CheckpointStoreError(f"checkpoint database {path} is a folder; give the path of a file")
    existing = next(p for p in path.parents if p.exists())
    if not existing.is_dir():
        raise CheckpointStoreError(f"cannot create checkpoint database {path}: {existing} is a file, not a folder")
    if path.is_file():
        try:
            _read_schema(path)
        except sqlite3.DatabaseError as exc:
            raise _damaged(path, exc) from None


def _read_schema(path: Path) -> None:
    """Read the file's schema, read-only but through its write-ahead log.

    Not ``immutable``: that ignores the log, and a file whose last checkpoint into the
    main file was cut short (a full disk) holds its good pages only there. A reader
    may create the ``-shm`` index, which holds no data.
    """
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    finally:
        conn.close()


@contextmanager
def open_checkpointer(url: str | None = None, *, create: bool = True) -> Iterator[BaseCheckpointSaver]:
    """``None`` or a path/``sqlite:PATH`` -> SQLite; ``postgresql://...`` -> Postgres.

    ``create=False`` (to look a run up) opens a SQLite file read-only, and refuses one that does not
    exist rather than creating it empty.
    """
    if url and url.startswith(POSTGRES_PREFIXES):
        with _postgres_saver(url) as saver:
            yield saver
        return
    path = _sqlite_path(url, create=create)
    with _open_sqlite(path, create) as saver:
        yield saver


@contextmanager
def _open_sqlite(path: Path, create: bool) -> Iterator[BaseCheckpointSaver]:
    conn = None
    try:
        if create:
            conn = sqlite3.connect(str(path), check_same_thread=False)
            saver = CompactSqliteSaver(conn)
            saver.setup()
        else:  # read only: a damaged file (or a stray write-ahead log) is not rewritten
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            conn.execute("SELECT count(*) FROM checkpoints").fetchone()
            saver = CompactSqliteSaver(conn)
            saver.is_setup = True
    except sqlite3.DatabaseError as exc:
        error = _damaged(path, exc)
        if conn is not None:
            conn.close()
        raise error from None
    try:
        yield saver
    finally:
        conn.close()


@asynccontextmanager
async def _async_postgres_saver(url: str) -> AsyncIterator[BaseCheckpointSaver]:
    try:
        import psycopg
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver  # optional dependency
    except ImportError:
        raise _postgres_missing() from None
    try:
        conn = await psycopg.AsyncConnection.connect(url, **_postgres_connect_kwargs(url))
    except psycopg.Error as exc:
        raise _postgres_error(url, exc, connecting=True) from None
    async with conn:
        saver = AsyncPostgresSaver(conn)
        try:
            deadline = time.monotonic() + SETUP_WAIT_S
            while not _got_lock(await (await conn.execute(_TRY_LOCK)).fetchone()):
                if time.monotonic() > deadline:
                    raise _setup_lock_timeout(url)
                await asyncio.sleep(0.05)
            try:
                await saver.setup()
            finally:
                await conn.execute(_UNLOCK)
        except psycopg.Error as exc:
            raise _postgres_error(url, exc, connecting=False) from None
        yield saver


@asynccontextmanager
async def open_async_checkpointer(url: str | None = None) -> AsyncIterator[BaseCheckpointSaver]:
    """The async twin of ``open_checkpointer``, with the same URLs and the same SQLite file format."""
    if url and url.startswith(POSTGRES_PREFIXES):
        async with _async_postgres_saver(url) as saver:
            yield saver
        return
    import aiosqlite

    async with aiosqlite.connect(str(_sqlite_path(url))) as conn:
        saver = CompactAsyncSqliteSaver(conn)
        await saver.setup()
        yield saver


class IntegerVersions:
    """Plain integer channel versions for a SQLite saver.

    The stock savers version channels as 50-character strings (a zero-padded counter
    plus a random fraction); every checkpoint stores one per channel and one per node
    and channel it has seen: 1.3-2 KB of a 2.7-5.2 KB GEMS checkpoint. A local
    SQLite file has one writer per thread, which is all an integer counter needs.
    Threads begun with string versions keep them (LangGraph compares versions).
    """

    def get_next_version(self, current: Any, channel: Any = None) -> Any:
        if isinstance(current, str):
            return super().get_next_version(current, channel)  # type: ignore[misc]
        return (current or 0) + 1


class CompactSqliteSaver(IntegerVersions, SqliteSaver):
    """``SqliteSaver`` with integer channel versions (see ``IntegerVersions``)."""


class CompactAsyncSqliteSaver(IntegerVersions, AsyncSqliteSaver):
    """``AsyncSqliteSaver`` with integer channel versions (see ``IntegerVersions``)."""
