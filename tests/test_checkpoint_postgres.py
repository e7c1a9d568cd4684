"""``postgresql://`` checkpoints against a real PostgreSQL server on loopback.

The same graph and the same resume/history behaviour as the SQLite default, through
``open_checkpointer`` / ``open_async_checkpointer``; several ``gems run``s at once on
one fresh database; one-line errors that never show the password.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from langgraph.types import Command

from gems_graph.context import GemsContext
from gems_graph.graph import compile_graph
from gems_graph.persistence.checkpoint import CheckpointStoreError, open_async_checkpointer, open_checkpointer
from gems_graph.testing import ColourGenerator, ScriptedChatModel, loop_handler
from tests.postgres_server import *  # noqa: F401,F403 (fixtures)
from tests.servers import free_port

REPO = Path(__file__).resolve().parents[1]


def context(tmp_path, **kw) -> GemsContext:
    return GemsContext(
        generator=ColourGenerator(),
        chat_model=ScriptedChatModel(handler=loop_handler(fix_at_round=3)),
        artifact_root=str(tmp_path / "runs"),
        memory="none",
        max_skills=0,
        **kw,
    )


def test_a_paused_run_resumes_from_postgres_in_a_new_connection_and_keeps_its_history(tmp_path, postgres_url):
    cfg = {"configurable": {"thread_id": "review"}}
    ctx = context(tmp_path, human_feedback=True)
    with open_checkpointer(postgres_url) as saver:  # first process: runs round 1, pauses for review
        paused = compile_graph(checkpointer=saver).invoke({"prompt": "a red square"}, cfg, context=ctx)
        assert "__interrupt__" in paused and paused["rounds_used"] == 1
    with open_checkpointer(postgres_url) as saver:  # a later process: same thread, from the database alone
        app = compile_graph(checkpointer=saver)
        again = app.invoke(Command(resume={"feedback": "make it redder"}), cfg, context=ctx)
        assert "__interrupt__" in again and again["rounds_used"] == 2
        out = app.invoke(Command(resume={"accept": True}), cfg, context=ctx)
        assert out["status"] == "accepted" and out["rounds_used"] == 2
        history = list(app.get_state_history(cfg))
        assert len(history) > 6 and history[0].values["status"] == "accepted"
        assert [h.config["configurable"]["checkpoint_id"] for h in history] == [
            t.config["configurable"]["checkpoint_id"] for t in saver.list(cfg)
        ]  # newest first, every step kept
        assert history[-1].metadata["source"] == "input" and "prompt" not in history[-1].values  # back to the start


async def test_async_runs_share_one_saver_and_a_sync_reader_sees_them(tmp_path, postgres_url):
    async with open_async_checkpointer(postgres_url) as saver:
        app = compile_graph(checkpointer=saver)
        outs = await asyncio.gather(
            *(
                app.ainvoke({"prompt": f"a red square {i}"}, {"configurable": {"thread_id": f"a{i}"}}, context=context(tmp_path))
                for i in range(4)
            )
        )
        assert [(o["status"], o["rounds_used"]) for o in outs] == [("passed", 3)] * 4
        history = [s async for s in app.aget_state_history({"configurable": {"thread_id": "a0"}})]
        assert len(history) > 9
    with open_checkpointer(postgres_url) as saver:  # e.g. `gems report` reading what an async app wrote
        app = compile_graph(checkpointer=saver)
        for i in range(4):
            state = app.get_state({"configurable": {"thread_id": f"a{i}"}}).values
            assert state["status"] == "passed" and len(state["rounds"]) == 3 and state["prompt"] == f"a red square {i}"


def gems_env(home: Path) -> dict[str, str]:
    return {**os.environ, "GEMS_HOME": str(home), "GEMS_PLUGINS": "tests.plugin_backends", "PYTHONPATH": str(REPO), "GEMS_MEMORY": "none"}


RUNS_AT_ONCE = 8


def test_eight_gems_runs_at_once_on_one_fresh_database_lose_nothing(tmp_path, postgres_url):
    home = tmp_path / "home"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "gems_graph.app.cli", "run", f"a red square number {i}", "--generator", "colour:", "--chat-model"]
            + ["scripted:fix=3", "--checkpoint-db", postgres_url, "--json"],
            env=gems_env(home),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(RUNS_AT_ONCE)
    ]
    results = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0] * RUNS_AT_ONCE, [err for _, err in results]
    summaries = [json.loads(out) for out, _ in results]
    assert {(s["status"], s["rounds"]) for s in summaries} == {("passed", 3)}
    with open_checkpointer(postgres_url) as saver:
        app = compile_graph(checkpointer=saver)
        threads = {t.config["configurable"]["thread_id"] for t in saver.list(None)}
        assert threads == {s["thread_id"] for s in summaries}
        for i, s in enumerate(summaries):
            state = app.get_state({"configurable": {"thread_id": s["thread_id"]}}).values
            assert state["prompt"] == f"a red square number {i}" and len(state["rounds"]) == 3
            assert state["best_image"] == s["best_image"]
    password = postgres_url.split("//", 1)[1].split("@", 1)[0].split(":", 1)[1]
    files = [f for s in summaries for f in Path(s["run_dir"]).rglob("*") if f.is_file()]
    assert files and not any(password.encode() in f.read_bytes() for f in files)  # run.json, report: no password


def test_an_unreachable_server_is_one_line_naming_the_url_without_its_password(tmp_path):
    url = f"postgresql://gems:s3cret-pw@127.0.0.1:{free_port()}/gems"
    with pytest.raises(CheckpointStoreError) as info:
        with open_checkpointer(url):
            pass
    message = str(info.value)
    assert "\n" not in message and "s3cret-pw" not in message
    assert f"postgresql://gems:***@127.0.0.1:{url.rsplit(':', 1)[1]}" in message and "refused" in message


def test_a_server_that_never_answers_is_given_up_after_the_connect_timeout(monkeypatch):
    import socket
    import time

    from gems_graph.persistence import checkpoint

    monkeypatch.setattr(checkpoint, "CONNECT_TIMEOUT_S", 2)
    with socket.socket() as silent:  # accepts the TCP connection (the kernel's backlog), never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"postgresql://gems:pw@127.0.0.1:{silent.getsockname()[1]}/gems"
        start = time.monotonic()
        with pytest.raises(CheckpointStoreError, match="cannot connect to checkpoint database postgresql://gems:\\*\\*\\*@"):
            with open_checkpointer(url):
                pass
        assert time.monotonic() - start < 30


async def test_a_wrong_password_or_database_is_one_line_and_says_which(postgres_server):
    wrong_pw = postgres_server.url_for("postgres", password="not-the-password")
    with pytest.raises(CheckpointStoreError, match="password authentication failed") as info:
        with open_checkpointer(wrong_pw):
            pass
    assert "not-the-password" not in str(info.value) and postgres_server.password not in str(info.value)
    missing = postgres_server.url_for("no_such_db")
    with pytest.raises(CheckpointStoreError, match='database "no_such_db" does not exist') as info:
        async with open_async_checkpointer(missing):
            pass
    assert postgres_server.password not in str(info.value) and "\n" not in str(info.value)


def test_gems_run_against_a_down_server_exits_2_with_one_line(tmp_path):
    url = f"postgresql://gems:s3cret-pw@127.0.0.1:{free_port()}/gems"
    res = subprocess.run(
        [sys.executable, "-m", "gems_graph.app.cli", "run", "a red square", "--generator", "colour:", "--chat-model", "scripted:"]
        + ["--checkpoint-db", url],
        env=gems_env(tmp_path / "home"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "s3cret-pw" not in res.stderr + res.stdout
    assert "cannot connect to checkpoint database postgresql://gems:***@127.0.0.1" in res.stderr
