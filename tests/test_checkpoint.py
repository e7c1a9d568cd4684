"""The default SQLite checkpointer: compact versions, and threads begun by the stock saver still resume."""

from __future__ import annotations

import sqlite3

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command

from gems_graph.context import GemsContext
from gems_graph.graph import compile_graph
from gems_graph.persistence.checkpoint import CompactSqliteSaver, open_checkpointer
from gems_graph.testing import ColourGenerator, ScriptedChatModel, loop_handler


def context(tmp_path, **kw) -> GemsContext:
    return GemsContext(
        generator=ColourGenerator(),
        chat_model=ScriptedChatModel(handler=loop_handler(fix_at_round=3)),
        artifact_root=str(tmp_path / "runs"),
        memory="none",
        max_skills=0,
        **kw,
    )


def test_default_saver_versions_channels_with_integers(tmp_path):
    with open_checkpointer(str(tmp_path / "c.sqlite")) as saver:
        assert isinstance(saver, CompactSqliteSaver)
        app = compile_graph(checkpointer=saver)
        cfg = {"configurable": {"thread_id": "t"}}
        out = app.invoke({"prompt": "a red square"}, cfg, context=context(tmp_path))
        assert out["status"] == "passed" and out["rounds_used"] == 3
        versions = saver.get_tuple(cfg).checkpoint["channel_versions"]
        assert versions and all(isinstance(v, int) for v in versions.values())
        history = list(app.get_state_history(cfg))
        assert len(history) > 9  # every step was checkpointed


def test_a_thread_begun_with_string_versions_resumes_under_the_compact_saver(tmp_path):
    db = tmp_path / "c.sqlite"
    cfg = {"configurable": {"thread_id": "old"}}
    ctx = context(tmp_path, human_feedback=True)
    conn = sqlite3.connect(str(db), check_same_thread=False)
    try:
        stock = SqliteSaver(conn)
        stock.setup()
        paused = compile_graph(checkpointer=stock).invoke({"prompt": "a red square"}, cfg, context=ctx)
        assert "__interrupt__" in paused
    finally:
        conn.close()
    with open_checkpointer(str(db)) as saver:
        app = compile_graph(checkpointer=saver)
        again = app.invoke(Command(resume={"feedback": "make it redder"}), cfg, context=ctx)
        assert "__interrupt__" in again and again["rounds_used"] == 2  # refined and ran round 2
        out = app.invoke(Command(resume={"accept": True}), cfg, context=ctx)
        assert out["status"] == "accepted" and out["rounds_used"] == 2
        versions = saver.get_tuple(cfg).checkpoint["channel_versions"]
        assert all(isinstance(v, str) for v in versions.values())


async def test_async_apps_get_a_durable_sqlite_saver_with_the_same_file_format(tmp_path):
    from gems_graph.persistence.checkpoint import open_async_checkpointer

    db = str(tmp_path / "c.sqlite")
    cfg = {"configurable": {"thread_id": "a"}}
    async with open_async_checkpointer(db) as saver:
        app = compile_graph(checkpointer=saver)
        out = await app.ainvoke({"prompt": "a red square"}, cfg, context=context(tmp_path))
        assert out["status"] == "passed" and out["rounds_used"] == 3
    with open_checkpointer(db) as saver:  # what the async app wrote, a sync reader (e.g. `gems report`) reads
        state = compile_graph(checkpointer=saver).get_state(cfg).values
        assert state["status"] == "passed" and len(state["rounds"]) == 3
        assert all(isinstance(v, int) for v in saver.get_tuple(cfg).checkpoint["channel_versions"].values())
