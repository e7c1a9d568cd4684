"""Checkpointers for durable runs: SQLite under $GEMS_HOME by default, Postgres on request.

``open_checkpointer`` is for ``invoke``/``stream``; ``open_async_checkpointer`` is the
same for ``ainvoke``/``astream`` in async apps (the sync SQLite saver refuses async calls).
"""

from __future__ import annotations

import sqlite3
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from gems_graph.home import default_checkpoint_db

POSTGRES_PREFIXES = ("postgres://", "postgresql://")


def _sqlite_path(url: str | None) -> Path:
    path = Path(url.removeprefix("sqlite:")) if url else default_checkpoint_db()
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def open_checkpointer(url: str | None = None) -> Iterator[BaseCheckpointSaver]:
    """``None`` or a path/``sqlite:PATH`` -> SQLite; ``postgresql://...`` -> Postgres."""
    if url and url.startswith(POSTGRES_PREFIXES):
        from langgraph.checkpoint.postgres import PostgresSaver  # optional dependency

        with PostgresSaver.from_conn_string(url) as saver:
            saver.setup()
            yield saver
        return
    conn = sqlite3.connect(str(_sqlite_path(url)), check_same_thread=False)
    try:
        saver = CompactSqliteSaver(conn)
        saver.setup()
        yield saver
    finally:
        conn.close()


@asynccontextmanager
async def open_async_checkpointer(url: str | None = None) -> AsyncIterator[BaseCheckpointSaver]:
    """The async twin of ``open_checkpointer``, with the same URLs and the same SQLite file format."""
    if url and url.startswith(POSTGRES_PREFIXES):
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver  # optional dependency

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
