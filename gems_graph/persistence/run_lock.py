"""One writer per run: the process that runs a thread holds its lock.

Two ``gems run --resume ID`` at once would both generate the same rounds and fork the
thread's checkpoint history. A run takes an exclusive, non-blocking ``flock`` on
``$GEMS_HOME/locks/<key>.lock`` (the key: the checkpoint store and the thread id)
for as long as it runs; a second one is refused at once with one line. The kernel
drops the lock when the process ends, however it ends, so a killed run never leaves
a stale lock. The small lock files stay (removing a lock file another process has
open would let two processes hold "the" lock).

The lock is per machine: runs on several machines that share a Postgres checkpoint
store need a LangGraph server, which queues a thread's runs itself.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gems_graph.persistence.home import default_checkpoint_db, gems_home


class RunBusyError(RuntimeError):
    """Another process is running this thread right now."""


def _store_id(checkpoint_db: str | None) -> str:
    if checkpoint_db and "://" in checkpoint_db:
        return checkpoint_db
    path = Path(checkpoint_db.removeprefix("sqlite:")) if checkpoint_db else default_checkpoint_db()
    return str(path.expanduser().resolve())


def lock_path(thread_id: str, checkpoint_db: str | None = None) -> Path:
    key = hashlib.sha256(f"{_store_id(checkpoint_db)}\0{thread_id}".encode()).hexdigest()[:24]
    return gems_home() / "locks" / f"{key}.lock"


@contextmanager
def hold_run(thread_id: str, checkpoint_db: str | None = None) -> Iterator[None]:
    """Hold the run's lock while the body runs; ``RunBusyError`` if another process holds it."""
    path = lock_path(thread_id, checkpoint_db)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            raise RunBusyError(
                f"run {thread_id!r} is being run by {'process ' + holder if holder.isdigit() else holder}; "
                "wait for it to end, then resume it again if it did not finish"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the only descriptor releases the lock
