"""A private Redis server on loopback for the LangGraph-server test.

Debian's ``redis-server`` on 127.0.0.1 and a free port, with no persistence (no RDB
snapshots, no AOF) and its working folder in a temporary directory that is removed
afterwards. Without the binary the tests skip, naming the package that provides it.

Import the fixture into a test module with ``from tests.redis_server import *``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.servers import free_port

__all__ = ["redis_server", "RedisServer"]


def _ping(port: int) -> bool:
    """True when a Redis server answers PING on 127.0.0.1:port (RESP, no client library needed)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process; ``url`` is its ``redis://`` URL (database 0)."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = 0
        self.root = Path(tempfile.mkdtemp(prefix="gems-redis-"))
        self.log = self.root / "redis.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> RedisServer:
        for _ in range(3):  # another process may take the free port before the server binds it
            self.port = free_port()
            args = [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"]
            args += ["--dir", str(self.root), "--logfile", str(self.log), "--daemonize", "no", "--protected-mode", "yes"]
            self.proc = subprocess.Popen(args, cwd=self.root, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 20
            while self.proc.poll() is None and time.monotonic() < deadline:
                if _ping(self.port):
                    return self
                time.sleep(0.05)
            self.stop()
        log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
        shutil.rmtree(self.root, ignore_errors=True)
        raise RuntimeError(f"redis-server did not start: {log}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server():
    """A Redis server for the whole session (started on first use)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server not found; `make setup-dev` installs Debian's redis-server package")
    with RedisServer(binary) as server:
        yield server
