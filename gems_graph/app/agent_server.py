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

``python -m gems_graph.app.agent_server serve [langhost serve options]`` starts the
server itself after three checks, each one line and exit 2 when it fails, before any
worker starts: ``GEMS_SERVER_KEYS`` reads (``gems_graph.app.server_auth``), a ``--host``
other than loopback has keys, and the database is prepared (every table set at the
version this server's packages expect). A worker started on an unprepared database would
otherwise fail its migrations or its first query, and uvicorn stops the whole server
when a worker fails to start. The workers get ``LG_RUNTIME_PG_AUTO_MIGRATE=false`` and
a heartbeat of ``HEARTBEAT_S`` unless ``LG_BG_JOB_HEARTBEAT`` is set.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

from gems_graph.access_keys import SERVER_KEYS_VARIABLE, AccessKeyError, AccessKeys, is_loopback
from gems_graph.errors import one_line, redact
from gems_graph.persistence.checkpoint import SETUP_WAIT_S, open_checkpointer

#: An advisory lock held while the server's tables are set up (the key: b"gemssrvr").
_PREPARE_LOCK = int.from_bytes(b"gemssrvr")
#: Seconds between a run's heartbeats. The runtime drops a heartbeat after twice this and
#: sweeps every twice this, so a dead worker's runs go back in the queue within 4x (20 s);
#: the runtime's default, 120 s, takes 4 to 8 minutes. A live worker loses a run only if its
#: event loop stalls for 2x (10 s).
HEARTBEAT_S = 5


class AgentServerSetupError(RuntimeError):
    """The database cannot be prepared; the message names it and what to do."""


def _server_url(url: str) -> str:
    """``url`` as libpq reads it (the runtime also accepts ``postgresql+asyncpg://`` and the like)."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme.split("+", 1)[0] in ("postgres", "postgresql"):
        return f"postgresql://{rest}"
    raise AgentServerSetupError(f"DATABASE_URI={redact(url)!r}: expected a postgresql:// URL")


def _not_the_servers_python(exc: ImportError) -> AgentServerSetupError:
    """The server's packages live in its own venv: say so when one is missing here."""
    return AgentServerSetupError(f"{exc.name} is missing: run this with the server's Python (`make setup-dev` builds .venv-server)")


def prepare_database(url: str) -> None:
    """Create or migrate the runtime's, the checkpointer's and the store's tables in ``url``."""
    url = _server_url(url)
    try:
        import psycopg
        from langgraph.store.postgres import PostgresStore
        from langgraph_runtime_pg.migrate import upgrade_head
        from psycopg.rows import dict_row
    except ImportError as exc:
        raise _not_the_servers_python(exc) from None
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


def unprepared(url: str) -> str | None:
    """What is missing in ``url`` for this server's packages (None when it is ready to serve)."""
    url = _server_url(url)
    try:
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver
        from langgraph.store.postgres import PostgresStore
        from langgraph_runtime_pg.migrate import _head_revision
    except ImportError as exc:
        raise _not_the_servers_python(exc) from None

    expected = {
        "alembic_version": ("SELECT version_num FROM alembic_version", _head_revision()),
        "checkpoint_migrations": ("SELECT max(v) FROM checkpoint_migrations", len(PostgresSaver.MIGRATIONS) - 1),
        "store_migrations": ("SELECT max(v) FROM store_migrations", len(PostgresStore.MIGRATIONS) - 1),
    }
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            tables = {r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")}
            for table, (query, version) in expected.items():
                if table not in tables:
                    return f"it has no {table} table"
                found = conn.execute(query).fetchone()
                if found is None or found[0] != version:
                    return f"{table} is at {found[0] if found else None}, this server needs {version}"
    except psycopg.Error as exc:
        raise AgentServerSetupError(f"cannot read {redact(url)}: {one_line(exc)}") from None
    return None


def _option(argv: list[str], name: str, default: str | None) -> str | None:
    """The value of ``--name VALUE`` or ``--name=VALUE`` in ``argv`` (the last one given)."""
    value = default
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
    return value


def serve(argv: list[str]) -> int:
    """Check keys, host and database, then replace this process with ``langhost serve argv``."""
    host = _option(argv, "--host", "127.0.0.1")
    url = _option(argv, "--database-uri", os.environ.get("DATABASE_URI"))
    try:
        keys = AccessKeys.from_env()
    except AccessKeyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not keys and not is_loopback(host):
        print(
            f"error: --host {host} is reachable from other machines: set {SERVER_KEYS_VARIABLE} to the keys clients send "
            "(see gems_graph/app/server_auth.py)",
            file=sys.stderr,
        )
        return 2
    if not url:
        print("error: set DATABASE_URI (or --database-uri) to the server's PostgreSQL database", file=sys.stderr)
        return 2
    try:
        missing = unprepared(url)
    except AgentServerSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if missing:
        print(
            f"error: {redact(_server_url(url))} is not prepared for the agent server ({missing}): "
            "run `python -m gems_graph.app.agent_server` once first",
            file=sys.stderr,
        )
        return 2
    langhost = shutil.which("langhost", path=str(Path(sys.executable).parent)) or shutil.which("langhost")
    if langhost is None:
        print(
            "error: langhost is not installed here: run this with the server's Python (`make setup-dev` builds .venv-server)",
            file=sys.stderr,
        )
        return 2
    os.environ["LG_RUNTIME_PG_AUTO_MIGRATE"] = "false"
    os.environ.setdefault("LG_BG_JOB_HEARTBEAT", str(HEARTBEAT_S))
    sys.stdout.flush()
    os.execv(langhost, [langhost, "serve", *argv])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        return serve(argv[1:])
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
