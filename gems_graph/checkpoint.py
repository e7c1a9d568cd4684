"""Checkpointers for durable runs: SQLite under $GEMS_HOME by default, Postgres on request."""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver

from gems_graph.home import default_checkpoint_db


@contextmanager
def open_checkpointer(url: str | None = None) -> Iterator[BaseCheckpointSaver]:
    """``None`` or a path/``sqlite:PATH`` -> SQLite; ``postgresql://...`` -> Postgres."""
    if url and url.startswith(("postgres://", "postgresql://")):
        from langgraph.checkpoint.postgres import PostgresSaver  # optional dependency

        with PostgresSaver.from_conn_string(url) as saver:
            saver.setup()
            yield saver
        return
    path = Path(url.removeprefix("sqlite:")) if url else default_checkpoint_db()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False)
    try:
        saver = CompactSqliteSaver(conn)
        saver.setup()
        yield saver
    finally:
        conn.close()


class CompactSqliteSaver(SqliteSaver):
    """``SqliteSaver`` with plain integer channel versions.

    The stock saver versions channels as 50-character strings (a zero-padded counter
    plus a random fraction); every checkpoint stores one per channel and one per node
    and channel it has seen, so they were most of a GEMS checkpoint's bytes. A local
    SQLite file has one writer per thread, which is all an integer counter needs.
    Threads begun with string versions keep them (LangGraph compares versions).
    """

    def get_next_version(self, current: Any, channel: Any = None) -> Any:
        if isinstance(current, str):
            return super().get_next_version(current, channel)
        return (current or 0) + 1
