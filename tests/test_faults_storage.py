"""Storage faults: a full disk under the runs folder, a checkpoint file whose good pages
are in its write-ahead log. The run says its id and the resume command, nothing is left
half-written, and the resume makes what was missing."""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gems_graph.app.cli import app
from gems_graph.app.runner import run_gems
from gems_graph.context import GemsContext
from gems_graph.persistence.checkpoint import check_checkpointer, open_checkpointer
from gems_graph.testing import ColourGenerator, ScriptedChatModel, loop_handler
from tests.test_cli_first_contact import BACKENDS


def _disk_full_under(root: Path, monkeypatch, *, writes_allowed: int = 0) -> dict[str, int]:
    """Make every write of data under ``root`` fail as a full disk does: the file is created,
    then ENOSPC (an empty file still fits). The first ``writes_allowed`` writes go through."""
    state = {"allowed": writes_allowed, "refused": 0}
    real_bytes, real_text = Path.write_bytes, Path.write_text

    def guard(path: Path, data) -> None:
        if data and str(path).startswith(str(root)) and state["refused"] >= 0:
            if state["allowed"] > 0:
                state["allowed"] -= 1
                return
            state["refused"] += 1
            path.touch()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    def write_bytes(self, data):
        guard(self, data)
        return real_bytes(self, data)

    def write_text(self, data, *args, **kwargs):
        guard(self, data)
        return real_text(self, data, *args, **kwargs)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    monkeypatch.setattr(Path, "write_text", write_text)
    return state


def test_a_full_runs_disk_ends_failed_with_the_run_id_and_the_resume_makes_what_was_missing(tmp_path, cli_backends, monkeypatch):
    runs, db = tmp_path / "runs", tmp_path / "checkpoints.sqlite"
    full = _disk_full_under(runs, monkeypatch)
    args = ["run", "a red square", *BACKENDS, "--rounds", "2", "--out", str(runs), "--checkpoint-db", str(db), "--json"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output and full["refused"] > 0
    summary = json.loads(res.stdout)  # --json still prints the run's object
    thread = summary["thread_id"]
    assert summary["status"] == "failed" and "No space left on device" in summary["error"]
    assert f"resume with: gems run --resume {thread}" in res.stderr
    assert not list(runs.rglob("*.tmp")), "a half-written file was left behind"
    full["refused"] = -1  # space was freed
    again = CliRunner().invoke(app, ["run", "--resume", thread, "--checkpoint-db", str(db), "--json"])
    assert again.exit_code == 0, again.output
    done = json.loads(again.stdout)
    assert done["status"] == "passed" and Path(done["best_image"]).is_file()
    assert json.loads((runs / thread / "run.json").read_text())["status"] == "passed"
    assert (runs / thread / "report.html").is_file() and not list(runs.rglob("*.tmp"))


def test_a_full_disk_after_the_first_images_keeps_them_and_the_resume_goes_on(tmp_path, cli_backends, monkeypatch):
    runs, db = tmp_path / "runs", tmp_path / "checkpoints.sqlite"
    full = _disk_full_under(runs, monkeypatch, writes_allowed=2)  # round 1's image and run.json
    args = ["run", "a red square", *BACKENDS, "--rounds", "3", "--out", str(runs), "--checkpoint-db", str(db), "--json"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1 and "Traceback" not in res.output
    thread = json.loads(res.stdout)["thread_id"]
    assert f"gems run --resume {thread}" in res.stderr and not list(runs.rglob("*.tmp"))
    full["refused"] = -1
    again = CliRunner().invoke(app, ["run", "--resume", thread, "--checkpoint-db", str(db), "--json"])
    assert again.exit_code == 0, again.output
    record = json.loads((runs / thread / "run.json").read_text())
    assert record["status"] == "passed"
    for rnd in record["rounds"]:
        for cand in rnd["candidates"]:
            assert cand["error"] is None and Path(cand["image"]["path"]).is_file()


def _wal_only_truth(db: Path) -> None:
    """Leave ``db`` as a checkpoint into the main file cut short leaves it: its newest pages
    (page 1, the schema, among them) only in the write-ahead log, the main file's copy torn."""
    keep = sqlite3.connect(db)
    keep.execute("PRAGMA wal_autocheckpoint=0")
    keep.execute("PRAGMA user_version=1")  # page 1 goes to the log
    keep.execute("UPDATE checkpoints SET metadata = metadata")
    keep.commit()
    snapshot = db.with_name("snapshot")
    snapshot.mkdir()
    shutil.copy(db, snapshot / db.name)
    shutil.copy(f"{db}-wal", snapshot / f"{db.name}-wal")
    keep.close()
    db.unlink()
    shutil.move(snapshot / db.name, db)
    shutil.move(snapshot / f"{db.name}-wal", f"{db}-wal")
    data = bytearray(db.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[100:page] = b"\xa5" * (page - 100)  # the header survives; the b-tree of page 1 is torn
    db.write_bytes(bytes(data))


def test_a_checkpoint_file_with_an_intact_write_ahead_log_is_not_called_damaged_and_resumes(tmp_path):
    db = tmp_path / "checkpoints.sqlite"
    ctx = GemsContext(
        generator=ColourGenerator(),
        chat_model=ScriptedChatModel(handler=loop_handler(fix_at_round=2)),
        artifact_root=str(tmp_path / "runs"),
        memory="none",
        max_rounds=1,
    )
    with open_checkpointer(str(db)) as saver:
        assert run_gems("a red square", ctx, saver, thread_id="t").status == "exhausted"
    _wal_only_truth(db)
    with pytest.raises(sqlite3.DatabaseError, match="malformed"):  # what a reader that ignores the log sees
        sqlite3.connect(f"file:{db}?mode=ro&immutable=1", uri=True).execute("SELECT count(*) FROM sqlite_master").fetchone()
    check_checkpointer(str(db))  # not "damaged, move it aside"
    with open_checkpointer(str(db)) as saver:
        values = run_gems(None, ctx, saver, thread_id="t", resume=True).state
    assert values["status"] == "exhausted" and values["rounds_used"] == 1  # the finished run is found whole


def test_a_second_resume_of_a_run_that_is_running_is_refused_in_one_line(tmp_path, cli_backends, gems_home):
    import subprocess
    import sys
    import time

    from tests.conftest import REPO

    runs, db = tmp_path / "runs", tmp_path / "checkpoints.sqlite"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = ["run", "a red square", "-g", "colour:delay=1.5", "-m", "scripted:fix=3", "--rounds", "3", "--out", str(runs)]
    first = subprocess.Popen(
        [sys.executable, "-m", "gems_graph.app.cli", *args, "--checkpoint-db", str(db), "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (list(runs.glob("*/round_01/*.png")) and list((gems_home / "locks").glob("*.lock"))):
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.1)
        thread = next(runs.iterdir()).name
        second = CliRunner().invoke(app, ["run", "--resume", thread, "--checkpoint-db", str(db), "--json"])
        assert first.poll() is None, "the first run ended before the second was tried"
        assert second.exit_code == 1 and second.stdout == ""
        lines = second.stderr.strip().splitlines()
        assert lines == [
            f"error: run '{thread}' is being run by process {first.pid}; wait for it to end, then resume it again if it did not finish"
        ]
        out, err = first.communicate(timeout=120)
    finally:
        first.kill()
    assert first.returncode == 0, err
    assert json.loads(out)["status"] == "passed"
    with open_checkpointer(str(db), create=False) as saver:
        history = list(saver.list({"configurable": {"thread_id": thread}}))
    again = CliRunner().invoke(app, ["run", "--resume", thread, "--checkpoint-db", str(db), "--json"])
    assert again.exit_code == 0 and json.loads(again.stdout)["status"] == "passed"  # the lock went with the process
    with open_checkpointer(str(db), create=False) as saver:
        assert len(list(saver.list({"configurable": {"thread_id": thread}}))) == len(history)  # no fork


class StopsTheDatabase(ColourGenerator):
    """Stops the checkpoint database while round ``at_round`` is being generated."""

    def __init__(self, server, at_round: int) -> None:
        super().__init__()
        self.server, self.at_round, self.stopped = server, at_round, False

    def generate(self, request):
        if not self.stopped and request.seed >= 1000 * (self.at_round - 1):
            self.stopped = True
            self.server.stop("immediate")
        return super().generate(request)


def test_a_database_that_goes_down_fails_the_run_at_that_step_and_the_resume_finishes_it(tmp_path):
    pytest.importorskip("langgraph.checkpoint.postgres", reason="the postgres extra is a dev dependency")
    from tests.postgres_server import PostgresServer, postgres_bindir

    if postgres_bindir() is None:
        pytest.skip("PostgreSQL server binaries not found; `make setup-dev` installs them")
    with PostgresServer(postgres_bindir()) as server:
        url = server.create_database()
        generator = StopsTheDatabase(server, at_round=2)
        ctx = GemsContext(
            generator=generator,
            chat_model=ScriptedChatModel(handler=loop_handler(fix_at_round=3)),
            memory="none",
            max_skills=0,
            artifact_root=str(tmp_path / "runs"),
        )
        events: list[str] = []
        with open_checkpointer(url) as saver:
            failed = run_gems("a red square", ctx, saver, thread_id="db-down", on_event=lambda e: events.append(e["event"]))
        assert failed.status == "failed" and "checkpoint store" in failed.state["error"]
        assert events.count("round_started") == 2 and "run_finished" not in events  # stopped at the step, not rounds later
        server.restart()
        with open_checkpointer(url) as saver:
            done = run_gems(None, ctx, saver, thread_id="db-down", resume=True)
        assert done.status == "passed" and done.state["rounds_used"] == 3
