"""Checkpointers for durable runs: SQLite under $GEMS_HOME by default, Postgres on request.

``open_checkpointer`` is for ``invoke``/``stream``; ``open_async_checkpointer`` is the
same for ``ainvoke``/``astream`` in async apps (the sync SQLite saver refuses async calls).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from gems_graph.errors import one_line
from gems_graph.persistence.home import default_checkpoint_db

POSTGRES_PREFIXES = ("postgres://", "postgresql://")


class CheckpointStoreError(RuntimeError):
    """The checkpoint store cannot be used; the message names it and what to do."""


def _sqlite_path(url: str | None) -> Path:
    path = Path(url.removeprefix("sqlite:")) if url else default_checkpoint_db()
    if path.is_dir():
        raise CheckpointStoreError(f"checkpoint database {path} is a folder; give the path of a file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointStoreError(f"cannot create the folder of checkpoint database {path}: {exc.strerror or exc}") from None
    return path


def _damaged(path: Path, exc: Exception) -> CheckpointStoreError:
    return CheckpointStoreError(
        f"checkpoint database {path} cannot be used ({one_line(exc)}); if it is damaged, move it aside "
        "(the runs in it can no longer be resumed) and run again"
    )


def _postgres_missing() -> CheckpointStoreError:
    return CheckpointStoreError("postgresql:// checkpoints need the driver: pip install 'gems-graph[postgres]'")


@contextmanager
def open_checkpointer(url: str | None = None) -> Iterator[BaseCheckpointSaver]:
    """``None`` or a path/``sqlite:PATH`` -> SQLite; ``postgresql://...`` -> Postgres."""
    if url and url.startswith(POSTGRES_PREFIXES):
        try:
            from langgraph.checkpoint.postgres import PostgresSaver  # optional dependency
        except ImportError:
            raise _postgres_missing() from None

        with PostgresSaver.from_conn_string(url) as saver:
            saver.setup()
            yield saver
        return
    path = _sqlite_path(url)
    try:
        conn = sqlite3.connect(str(path), check_same_thread=False)
        saver = CompactSqliteSaver(conn)
        saver.setup()
    except sqlite3.DatabaseError as exc:
        raise _damaged(path, exc) from None
    try:
        yield saver
    finally:
        conn.close()


@asynccontextmanager
async def open_async_checkpointer(url: str | None = None) -> AsyncIterator[BaseCheckpointSaver]:
    """The async twin of ``open_checkpointer``, with the same URLs and the same SQLite file format."""
    if url and url.startswith(POSTGRES_PREFIXES):
        try:
            from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver  # optional dependency
        except ImportError:
            raise _postgres_missing() from None

        async with AsyncPostgresSaver.from_conn_string(url) as saver:
            await saver.setup()
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
