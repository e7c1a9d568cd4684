"""Damaged stores under a GEMS home: one line naming the file, what is wrong and what to do,
exit 2, and every file left exactly as it was (nothing else lost)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.test_cli_first_contact import BACKENDS, gems


def _files(root: Path) -> dict[str, bytes]:
    """Every file's bytes, less SQLite's scratch files: the ``-shm`` index and an empty ``-wal``,
    which a reader creates and which hold no data."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not p.name.endswith("-shm") and not (p.name.endswith("-wal") and p.stat().st_size == 0)
    }


def _one_error_line(res) -> str:
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return lines[0]


def _run_into(db: Path, cwd: Path, rounds: int = 1) -> str:
    res = gems(["run", "a red square", *BACKENDS, "--rounds", str(rounds), "--checkpoint-db", str(db), "--json"], cwd)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)["thread_id"]


def test_resume_from_a_garbled_checkpoint_file_names_it_and_changes_nothing(tmp_path):
    db = tmp_path / "checkpoints.sqlite"
    thread = _run_into(db, tmp_path)
    data = bytearray(db.read_bytes())
    data[100:] = b"\xa5" * (len(data) - 100)  # the SQLite header survives, every page is garbage
    db.write_bytes(bytes(data))
    before = _files(tmp_path)
    line = _one_error_line(gems(["run", "--resume", thread, "--checkpoint-db", str(db)], tmp_path))
    assert f"cannot resume run '{thread}'" in line and str(db) in line and "move it aside" in line
    assert _files(tmp_path) == before


def test_resume_with_a_leftover_write_ahead_log_names_both_files_and_changes_neither(tmp_path):
    db = tmp_path / "a.sqlite"
    thread = _run_into(db, tmp_path)
    other = tmp_path / "b.sqlite"
    shutil.copy(db, other)  # the same pages, so the log written below rewrites a.sqlite's own rows
    # A process killed mid-write leaves its -wal; here one whose rows do not decode lies next to a.sqlite.
    conn = sqlite3.connect(other)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("UPDATE checkpoints SET metadata = ?", (b"{not json" * 50,))
    conn.commit()
    shutil.copy(f"{other}-wal", f"{db}-wal")
    conn.close()
    other.unlink()
    before = _files(tmp_path)
    assert f"{db.name}-wal" in before
    line = _one_error_line(gems(["run", "--resume", thread, "--checkpoint-db", str(db)], tmp_path))
    assert str(db) in line and "write-ahead log a.sqlite-wal" in line and "move them aside" in line
    assert _files(tmp_path) == before


def _garbled_pages(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE embeddings (id INTEGER PRIMARY KEY, doc TEXT)")
    conn.executemany("INSERT INTO embeddings (doc) VALUES (?)", [(f"lesson {i} " * 20,) for i in range(500)])
    conn.commit()
    conn.close()
    data = bytearray(db.read_bytes())
    data[4096 * 2 : 4096 * 6] = b"\x5a" * (4096 * 4)
    db.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["empty", "not_sqlite", "garbled_pages"])
def test_a_damaged_memory_database_stops_the_run_before_anything_is_written(tmp_path, damage):
    home = tmp_path / "home"
    db = home / "memory" / "chroma.sqlite3"
    db.parent.mkdir(parents=True)
    if damage == "empty":
        db.write_bytes(b"")
    elif damage == "not_sqlite":
        db.write_bytes(b"these are not the lessons you are looking for" * 100)
    else:
        _garbled_pages(db)
    before = _files(tmp_path)
    res = gems(["run", "a red square", *BACKENDS], tmp_path, {"GEMS_HOME": str(home), "GEMS_MEMORY": "chroma"})
    line = _one_error_line(res)
    assert str(db) in line and "corrupt" in line and "move the folder aside" in line and "gems memory export" in line
    assert _files(tmp_path) == before
    assert not (home / "runs").exists() and not (home / "checkpoints.sqlite").exists()
