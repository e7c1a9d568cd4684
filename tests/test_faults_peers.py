"""Hostile peers: a chat model that echoes the API key in its replies, servers whose error
bodies carry ``Authorization: Bearer ...``. Nothing stored or shown carries a secret, and
what is stored stays readable."""

from __future__ import annotations

import json

import pytest

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
    from gems_graph.nodes.critic import Decomposition
    from gems_graph.nodes.planner import PlannedPrompt
    from gems_graph.nodes.refiner import Experience, RefinedPrompt

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


# -- verdicts: only a clear yes or no is an answer ----------------------------------------------


def _candidate(tmp_path):
    from PIL import Image

    from gems_graph.persistence.artifacts import save_png

    ref = save_png(Image.new("RGB", (16, 16), (220, 10, 10)), tmp_path / "c.png")
    return {"round": 1, "index": 0, "prompt": "p", "seed": 0, "params": {}, "image": ref, "verdicts": [], "score": None, "error": None}


@pytest.mark.parametrize(
    "reply, answered, passed",
    [
        ("Yes", True, True),
        ("yes, the square is red.", True, True),
        ("**No**", True, False),
        ("No, there is no square.", True, False),
        ("Yes, there is no other shape.", True, True),
        ("No, that is not correct.", True, False),
        ("Yes, but no", False, False),
        ("No... actually yes", False, False),
        ("I cannot tell", False, False),
        ("", False, False),
        ("snowman", False, False),
        ("Yesterday", False, False),
    ],
)
def test_only_a_clear_yes_or_no_is_an_answer(tmp_path, reply, answered, passed):
    from gems_graph.nodes.critic import verify

    model = ScriptedChatModel(handler=lambda messages, tools: reply)
    verdict = verify(model, {"id": "c1", "question": "Is the square red?", "source": "prompt"}, _candidate(tmp_path), "a red square")
    assert verdict.get("answered", True) is answered and verdict["passed"] is passed


def test_a_critic_that_cannot_tell_on_one_check_does_not_lower_the_score(tmp_path):
    base = loop_handler(fix_at_round=1)

    def handler(messages, tools):
        out = base(messages, tools)
        return "I cannot tell from this image." if out == "yes" and "square?" in messages[-1].content[0]["text"] else out

    ctx = GemsContext(
        generator=ColourGenerator(), chat_model=ScriptedChatModel(handler=handler), artifact_root=str(tmp_path), memory="none", max_skills=0
    )
    from langgraph.checkpoint.memory import InMemorySaver

    result = run_gems("a red square", ctx, InMemorySaver(), thread_id="t")
    assert result.status == "passed" and result.state["score"] == 1.0
    (cand,) = result.state["rounds"][0]["candidates"]
    assert [v.get("answered", True) for v in cand["verdicts"]] == [False, True]


# -- caps on what a model sends -------------------------------------------------------------------


def test_a_flood_of_checks_and_a_200_kb_prompt_are_cut_to_the_caps_with_notes(tmp_path):
    from langgraph.checkpoint.memory import InMemorySaver

    from gems_graph.context import DEFAULT_MAX_CHECKS, DEFAULT_MAX_MODEL_PROMPT_CHARS
    from gems_graph.nodes.critic import Decomposition
    from gems_graph.nodes.planner import PlannedPrompt

    base = loop_handler(fix_at_round=1)
    flood = " ".join(f"word{i}" for i in range(30_000))  # about 200 KB

    def handler(messages, tools):
        out = base(messages, tools)
        if isinstance(out, Decomposition):
            return Decomposition(checks=[f"Is there square number {i}?" for i in range(500)])
        if isinstance(out, PlannedPrompt):
            return PlannedPrompt(reasoning="", prompt=f"{out.prompt} {flood}")
        return out

    model = ScriptedChatModel(handler=handler)
    ctx = GemsContext(generator=ColourGenerator(), chat_model=model, artifact_root=str(tmp_path), memory="none", max_skills=0, max_rounds=1)
    events: list[dict] = []
    result = run_gems("a red square", ctx, InMemorySaver(), thread_id="t", on_event=events.append)
    state = result.state
    assert len(state["checks"]) == DEFAULT_MAX_CHECKS
    assert len(state["current_prompt"]) <= DEFAULT_MAX_MODEL_PROMPT_CHARS and state["current_prompt"].startswith("a red square word0")
    assert any("500 checks; kept the first 40 (max_checks)" in n for n in state["notes"])
    assert any("kept the first" in n and "(max_model_prompt_chars)" in n for n in state["notes"])
    verify_calls = [c for c in model.calls if not c[0]]
    assert len(verify_calls) == DEFAULT_MAX_CHECKS
    shown = next(e for e in events if e["event"] == "round_started")
    assert len(shown["prompt"]) <= DEFAULT_MAX_MODEL_PROMPT_CHARS


def test_the_clis_prompt_change_line_is_bounded_on_huge_prompts():
    import random
    import time

    from gems_graph.app.cli import prompt_change

    rng = random.Random(0)
    before = " ".join(f"w{rng.randrange(5000)}" for _ in range(30_000))
    after = " ".join(f"w{rng.randrange(5000)}" for _ in range(30_000))
    start = time.monotonic()
    line = prompt_change("a red square " + before, "a red square " + after + " now red")
    assert time.monotonic() - start < 5
    assert line.startswith("+ ")
    assert prompt_change("a red square", "a bright red square") == "+ bright"  # small edits stay word by word
