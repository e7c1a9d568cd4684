"""Hostile peers: a chat model that echoes the API key in its replies, servers whose error
bodies carry ``Authorization: Bearer ...``. Nothing stored or shown carries a secret, and
what is stored stays readable."""

from __future__ import annotations

import json

from gems_graph.app.runner import run_gems
from gems_graph.context import GemsContext
from gems_graph.errors import redact
from gems_graph.memory import open_experience_store
from gems_graph.persistence.artifacts import write_run_json
from gems_graph.persistence.checkpoint import open_checkpointer
from gems_graph.persistence.report import load_run
from gems_graph.testing import ColourGenerator, ScriptedChatModel, loop_handler

KEY = "sk-live-0123456789abcdef"


def test_redacting_a_serialised_document_keeps_it_valid_json():
    doc = {"a": 'x "Authorization: Bearer abc123" y'}
    assert json.loads(redact(json.dumps(doc))) == {"a": 'x "Authorization: Bearer ***" y'}


def test_an_echoed_bearer_token_in_an_error_leaves_run_json_readable(tmp_path):
    error = 'HTTP 401: {"detail": "bad header \\"Authorization: Bearer abc123\\""}'
    write_run_json(str(tmp_path), {"run_id": "r", "status": "failed", "error": error})
    record = load_run(tmp_path)  # what ``gems report`` reads
    assert record["error"] == 'HTTP 401: {"detail": "bad header \\"Authorization: Bearer ***\\""}'
    assert "abc123" not in (tmp_path / "run.json").read_text()


def _echoing(handler):
    """``handler``, with the key echoed in every reply: reasoning, prompts, experiences, answers."""
    from nodes.critic import Decomposition
    from nodes.planner import PlannedPrompt
    from nodes.refiner import Experience, RefinedPrompt

    def handle(messages, tools):
        out = handler(messages, tools)
        if isinstance(out, PlannedPrompt):
            return PlannedPrompt(reasoning=f"the key is {KEY}", prompt=f"{out.prompt} (key {KEY})")
        if isinstance(out, Decomposition):
            return Decomposition(checks=[*out.checks, f"Does the image show {KEY}?"])
        if isinstance(out, Experience):
            return Experience(experience=f"{out.experience} Use key {KEY}.")
        if isinstance(out, RefinedPrompt):
            return RefinedPrompt(reasoning=f"{out.reasoning} {KEY}", prompt=f"{out.prompt} {KEY}", new_seed=out.new_seed)
        return f"{out}, and my key is {KEY}" if isinstance(out, str) else out

    return handle


def test_a_key_echoed_in_a_models_replies_is_in_no_state_checkpoint_lesson_or_event(tmp_path, monkeypatch, gems_home):
    monkeypatch.setenv("GEMS_OPENAI_API_KEY", KEY)
    ctx = GemsContext(
        generator=ColourGenerator(),
        chat_model=ScriptedChatModel(handler=_echoing(loop_handler(fix_at_round=2))),
        artifact_root=str(tmp_path / "runs"),
        max_rounds=3,
        max_skills=0,
    )
    events: list[dict] = []
    db = tmp_path / "checkpoints.sqlite"
    with open_checkpointer(str(db)) as saver:
        result = run_gems("a red square", ctx, saver, thread_id="t", on_event=events.append)
    assert result.state["rounds_used"] >= 2 and "***" in result.state["current_prompt"]
    assert KEY not in json.dumps(result.state, default=str)
    assert KEY not in json.dumps(events, default=str)  # what the progress lines are made of
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    store = open_experience_store("chroma", create=False)
    lessons = store.list(10)
    assert lessons and all(KEY not in json.dumps(lesson, default=str) for lesson in lessons)
    for path in gems_home.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
