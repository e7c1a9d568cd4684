"""A private PostgreSQL server on loopback for the Postgres tests.

``initdb`` into a temporary folder, ``pg_ctl start`` on 127.0.0.1 and a free port,
password authentication over TCP (so URLs carry a password, as real ones do), and
the folder removed afterwards. PostgreSQL refuses to run as root; as root the server
runs as the ``postgres`` user that Debian's package creates (``runuser``). Without
the server binaries or the driver the tests skip, naming what is missing.

Import the fixtures into a test module with ``from tests.postgres_server import *``.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.servers import free_port

__all__ = ["postgres_server", "postgres_url", "PostgresServer"]

USER = "gems"


def postgres_bindir() -> Path | None:
    """The folder holding ``initdb``/``pg_ctl``: on PATH, else Debian's /usr/lib/postgresql/N/bin (newest)."""
    found = shutil.which("pg_ctl")
    candidates = [Path(found).resolve().parent] if found else []
    debian = [Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin") if Path(p).parent.name.isdigit()]
    candidates += sorted(debian, key=lambda p: int(p.parent.name), reverse=True)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def _server_user() -> str | None:
    """Who runs the server: ourselves, or as root the ``postgres`` user (``nobody`` if that is missing)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as")


class PostgresServer:
    """One ``postgres`` process with its data folder; ``url`` connects to its ``postgres`` database."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.user = _server_user()
        self.password = secrets.token_hex(12)
        self.port = 0
        self.root = Path(tempfile.mkdtemp(prefix="gems-pg-"))  # under /tmp, which the server user can enter
        self.data = self.root / "data"
        self.log = self.root / "server.log"

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, cwd=self.root, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def url_for(self, database: str = "postgres", *, password: str | None = None) -> str:
        return f"postgresql://{USER}:{password or self.password}@127.0.0.1:{self.port}/{database}"

    @property
    def url(self) -> str:
        return self.url_for()

    def __enter__(self) -> PostgresServer:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            for path in (self.root, pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        init = self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            USER,
            f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        pwfile.unlink()
        if init.returncode != 0:
            self._cleanup()
            raise RuntimeError(f"initdb failed: {init.stderr.strip() or init.stdout.strip()}")
        for _ in range(3):  # another process may take the free port before the server binds it
            self.port = free_port()
            started = self._start()
            if started.returncode == 0:
                return self
        log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
        self._cleanup()
        raise RuntimeError(f"PostgreSQL did not start: {started.stderr.strip()} {log}")

    def create_database(self) -> str:
        """A new empty database; its URL."""
        import psycopg
        from psycopg import sql

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    def _start(self) -> subprocess.CompletedProcess:
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        return self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def restart(self) -> None:
        """Start the stopped server again on the same port (a database that comes back)."""
        started = self._start()
        if started.returncode != 0:
            raise RuntimeError(f"PostgreSQL did not start again: {started.stderr.strip()}")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", timeout=60)

    def _cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop("immediate")
        finally:
            self._cleanup()


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server for the whole session (started on first use)."""
    pytest.importorskip("psycopg", reason="the driver is missing: pip install -e '.[postgres]' (the dev extra includes it)")
    pytest.importorskip("langgraph.checkpoint.postgres", reason="pip install -e '.[postgres]' (the dev extra includes it)")
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found; `make setup-dev` installs Debian's postgresql package")
    with PostgresServer(bindir) as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A ``postgresql://`` URL (with its password) of a fresh, empty database on the session's server."""
    return postgres_server.create_database()
