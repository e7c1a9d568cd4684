"""Prepare a PostgreSQL database for the LangGraph Agent Server before its workers start.

``langhost serve --workers N`` (the stock ``langgraph-api`` server on the open
``langgraph-runtime-pg`` runtime) sets its tables up in every worker process as it
starts: the runtime's Alembic migrations, LangGraph's checkpoint tables and its store
tables. On a fresh database N workers doing that at once collide (measured with
langgraph-runtime-pg 0.11.1: ``UniqueViolation ... alembic_version`` kills a worker,
which uvicorn then restarts while clients see connection resets). The runtime's own
answer is a pre-deploy step with ``LG_RUNTIME_PG_AUTO_MIGRATE=false`` on the workers;
this is that step, covering all three table sets and safe to run from several
replicas at once (it holds an advisory lock):

    DATABASE_URI=postgresql://... .venv-server/bin/python -m gems_graph.app.agent_server

It runs in the server's environment (``.venv-server``), so the tables match the
versions the server will use.
"""

from __future__ import annotations

import os
import sys
import time

from gems_graph.errors import one_line, redact
from gems_graph.persistence.checkpoint import SETUP_WAIT_S, open_checkpointer

#: An advisory lock held while the server's tables are set up (the key: b"gemssrvr").
_PREPARE_LOCK = int.from_bytes(b"gemssrvr")


class AgentServerSetupError(RuntimeError):
    """The database cannot be prepared; the message names it and what to do."""


def _server_url(url: str) -> str:
    """``url`` as libpq reads it (the runtime also accepts ``postgresql+asyncpg://`` and the like)."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme.split("+", 1)[0] in ("postgres", "postgresql"):
        return f"postgresql://{rest}"
    raise AgentServerSetupError(f"DATABASE_URI={redact(url)!r}: expected a postgresql:// URL")


def prepare_database(url: str) -> None:
    """Create or migrate the runtime's, the checkpointer's and the store's tables in ``url``."""
    url = _server_url(url)
    try:
        import psycopg
        from langgraph.store.postgres import PostgresStore
        from langgraph_runtime_pg.migrate import upgrade_head
        from psycopg.rows import dict_row
    except ImportError as exc:
        raise AgentServerSetupError(
            f"{exc.name} is missing: run this with the server's Python (`make setup-dev` builds .venv-server)"
        ) from None
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as lock:
            deadline = time.monotonic() + SETUP_WAIT_S
            # Polled, as for the checkpoint tables: a session blocked on a lock holds a snapshot
            # that another session's CREATE INDEX CONCURRENTLY would wait for.
            while not (lock.execute("SELECT pg_try_advisory_lock(%s)", (_PREPARE_LOCK,)).fetchone() or (False,))[0]:
                if time.monotonic() > deadline:
                    raise AgentServerSetupError(f"{redact(url)}: another process held the setup lock for {SETUP_WAIT_S} s")
                time.sleep(0.1)
            try:
                upgrade_head(url)
                with open_checkpointer(url):
                    pass
                # dict rows: what PostgresStore reads (LangGraph's documented connection settings).
                with psycopg.connect(url, autocommit=True, prepare_threshold=0, row_factory=dict_row) as conn:
                    PostgresStore(conn).setup()
            finally:
                lock.execute("SELECT pg_advisory_unlock(%s)", (_PREPARE_LOCK,))
    except AgentServerSetupError:
        raise
    except Exception as exc:  # psycopg, SQLAlchemy (Alembic) and our checkpoint errors alike
        raise AgentServerSetupError(f"cannot prepare {redact(url)} for the agent server: {one_line(exc)}") from None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    url = argv[0] if argv else os.environ.get("DATABASE_URI")
    if not url:
        print("error: give the database URL as an argument or in DATABASE_URI", file=sys.stderr)
        return 2
    try:
        prepare_database(url)
    except AgentServerSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"prepared {redact(_server_url(url))} for the agent server")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
