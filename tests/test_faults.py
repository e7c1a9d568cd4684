"""Faults a run meets in the wild end as a clear, resumable state, never as a wrong result."""

from __future__ import annotations

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from gems_graph.app.runner import run_gems
from gems_graph.context import GemsContext
from gems_graph.records import best_candidate, rank_key, round_best, verdict_score
from gems_graph.testing import ColourGenerator, ScriptedChatModel, loop_handler


def outage_handler(down: dict[str, bool]):
    """``loop_handler``, except that verification raises while ``down["verify"]`` is set."""
    base = loop_handler(fix_at_round=1)

    def handle(messages, tools):
        if not tools and down["verify"]:
            raise ConnectionError("critic endpoint refused the connection")
        return base(messages, tools)

    return handle


def test_a_critic_outage_is_not_a_bad_image_and_the_run_resumes(tmp_path):
    down = {"verify": True}
    ctx = GemsContext(
        generator=ColourGenerator(),
        chat_model=ScriptedChatModel(handler=outage_handler(down)),
        artifact_root=str(tmp_path),
        memory="none",
        max_rounds=3,
    )
    saver = InMemorySaver()
    result = run_gems("a red square", ctx, saver, thread_id="t")
    assert result.status == "failed" and "could not judge round 1" in result.state["error"]
    (cand,) = result.state["rounds"][0]["candidates"]
    assert cand["score"] is None and all(v["answered"] is False for v in cand["verdicts"])
    assert result.state["best"] is None  # nothing was judged, so nothing is "best"
    down["verify"] = False  # the endpoint is back
    again = run_gems(None, ctx, saver, thread_id="t", resume=True)
    assert again.status == "passed" and again.state["score"] == 1.0


def test_unanswered_checks_stay_out_of_the_score():
    answered_no = {"check_id": "c1", "passed": False, "answer": "no", "probability": None}
    unanswered = {"check_id": "c2", "passed": False, "answer": "error: x", "probability": None, "answered": False}
    yes = {"check_id": "c3", "passed": True, "answer": "yes", "probability": None}
    assert verdict_score([yes, unanswered]) == 1.0
    assert verdict_score([yes, answered_no]) == 0.5
    assert verdict_score([unanswered]) is None


def test_one_ranking_of_candidates_the_earliest_wins_ties():
    def cand(i, passed, p):
        return {
            "round": 1,
            "index": i,
            "error": None,
            "score": 0.5,
            "verdicts": [
                {"check_id": "a", "passed": passed, "answer": "", "probability": p},
                {"check_id": "b", "passed": not passed, "answer": "", "probability": 0.5},
            ],
        }

    low, high = cand(0, True, 0.6), cand(1, True, 0.9)
    assert rank_key(high) > rank_key(low)
    assert best_candidate([low, high]) is high  # same score, more confident: P(yes) breaks the tie
    twin = cand(2, True, 0.9)
    assert best_candidate([high, twin]) is high  # a true tie keeps the earliest
    assert round_best({"index": 1, "prompt": "", "candidates": [low, high], "experience": None, "thought": None}) is high


@pytest.mark.parametrize(
    "text, shown",
    [
        ("postgresql://gems:pa@ss@db.internal:5432/gems failed", "postgresql://gems:***@db.internal:5432/gems failed"),
        ("postgres://u@h/d?sslmode=require&password=zz", "postgres://u@h/d?sslmode=require&password=***"),
        ("host=h password=abc dbname=x", "host=h password=*** dbname=x"),
        ("http://127.0.0.1:8000/v1/images", "http://127.0.0.1:8000/v1/images"),  # a port is not a password
    ],
)
def test_passwords_in_urls_and_connection_strings_are_never_shown(text, shown):
    from gems_graph.errors import one_line

    assert one_line(text) == shown


def test_secrets_echoed_by_a_server_are_never_stored_or_printed(tmp_path, monkeypatch):
    import json

    from gems_graph.backends.openai_chat import GemsChatOpenAI
    from gems_graph.errors import one_line
    from tests.servers import RecordingServer, json_reply

    key = "sk-live-0123456789abcdef"
    monkeypatch.setenv("GEMS_OPENAI_API_KEY", key)
    assert one_line(f"bad key {key} and Authorization: Bearer abc.def") == "bad key *** and Authorization: Bearer ***"
    echo = {"error": {"message": f"invalid api key {key}"}}
    with RecordingServer(lambda rec: json_reply(500, echo)) as srv:
        model = GemsChatOpenAI(model="m", api_key=key, base_url=f"{srv.url}/v1", max_retries=0)
        ctx = GemsContext(chat_model=model, artifact_root=str(tmp_path / "runs"), memory="none", max_skills=0)
        saver = InMemorySaver()
        result = run_gems("a photo of a red circle", ctx, saver, thread_id="s")
    assert result.status == "failed" and "***" in result.state["error"] and key not in result.state["error"]
    (run_json,) = (tmp_path / "runs").glob("*/run.json")  # the planner failed: its folder says why
    assert json.loads(run_json.read_text())["status"] == "failed" and key not in run_json.read_text()
    assert key not in json.dumps(saver.storage, default=str)  # nor in any checkpoint


def test_an_unknown_backend_in_a_graph_context_fails_at_planning_before_a_run_folder(tmp_path):
    import pytest

    from gems_graph.graph import compile_graph
    from gems_graph.models.registry import UnknownBackendError

    ctx = GemsContext(generator="nosuch:thing", artifact_root=str(tmp_path / "runs"), memory="none")
    with pytest.raises(UnknownBackendError, match="unknown generator kind 'nosuch'"):
        compile_graph().invoke({"prompt": "a red square"}, context=ctx)
    assert not (tmp_path / "runs").exists()


# -- malformed replies: asked again once, then repaired like any unreadable reply ---------------


def _chat_run(tmp_path, chat, **ctx):
    from gems_graph.backends.openai_chat import GemsChatOpenAI
    from tests.servers import RecordingServer

    with RecordingServer(chat) as srv:
        model = GemsChatOpenAI(model="m", api_key="EMPTY", base_url=f"{srv.url}/v1", max_retries=0)
        context = GemsContext(
            generator=ColourGenerator(), chat_model=model, artifact_root=str(tmp_path / "runs"), memory="none", **{"max_skills": 0, **ctx}
        )
        return run_gems("a red square", context, InMemorySaver(), thread_id="t"), srv


@pytest.mark.parametrize("fault", ["invalid_json", "no_choices", "wrong_types"])
def test_one_malformed_reply_is_asked_again_and_the_run_goes_on(tmp_path, fault, monkeypatch):
    from tests.servers import FaultyChat, malformed, reset_endpoint_memory

    reset_endpoint_memory(monkeypatch)
    # A verdict is plain text, so only a garbled body or no choices are malformed there.
    kinds = ("planner", "decompose") if fault == "wrong_types" else ("planner", "decompose", "verify")
    chat = FaultyChat(faults={kind: [malformed(fault)] for kind in kinds})
    result, _ = _chat_run(tmp_path, chat)
    assert result.status == "passed" and result.state["error"] is None
    assert result.state["current_prompt"] == "a red square, centred"  # the planner's own answer, on the second ask
    assert [c["question"] for c in result.state["checks"]] == ["Is there a square?", "Is the square red?"]
    assert all(v.get("answered", True) for v in result.state["rounds"][0]["candidates"][0]["verdicts"])
    assert chat.kinds.count("planner") == 2 and chat.kinds.count("decompose") == 2


@pytest.mark.parametrize("fault", ["invalid_json", "no_choices", "wrong_types"])
def test_a_planner_and_critic_that_never_reply_readably_do_not_stop_the_run(tmp_path, fault, monkeypatch):
    from tests.servers import FaultyChat, malformed, reset_endpoint_memory

    reset_endpoint_memory(monkeypatch)
    chat = FaultyChat(always={"planner": malformed(fault), "decompose": malformed(fault)})
    result, _ = _chat_run(tmp_path, chat, max_skills=2)  # the planner's skill loop meets them first
    assert result.status == "passed", result.state["error"]
    assert result.state["current_prompt"] == "a red square"  # the user's prompt, as the planner's docstring promises
    notes = " ".join(result.state["notes"])
    assert "using the user's prompt as is" in notes and "falling back to one whole-prompt check" in notes
    assert [c["question"] for c in result.state["checks"]] == ["Does the image show: a red square?"]


def test_a_garbled_verdict_reply_is_unanswered_not_a_no(tmp_path, monkeypatch):
    from tests.servers import FaultyChat, malformed, reset_endpoint_memory

    reset_endpoint_memory(monkeypatch)
    chat = FaultyChat(always={"verify": malformed("invalid_json")})
    result, _ = _chat_run(tmp_path, chat, max_rounds=2)
    assert result.status == "failed" and "could not judge round 1" in result.state["error"]
    assert "could not be read" in result.state["error"]


# -- hung endpoints: every call has a per-request timeout and one total deadline ---------------


def test_a_hung_chat_endpoint_surfaces_at_the_deadline_not_after_every_retry(tmp_path):
    import time

    from gems_graph.backends.openai_chat import GemsChatOpenAI
    from tests.servers import Hang, RecordingServer

    with RecordingServer(lambda rec: Hang(30)) as srv:
        model = GemsChatOpenAI(model="m", api_key="EMPTY", base_url=f"{srv.url}/v1", max_retries=5)
        ctx = GemsContext(generator=ColourGenerator(), chat_model=model, memory="none", max_skills=0, chat_timeout=0.5, chat_deadline=2.0)
        started = time.monotonic()
        result = run_gems("a red square", ctx, InMemorySaver(), thread_id="t")
        took = time.monotonic() - started
    assert result.status == "failed" and took < 8
    assert "timed out" in result.state["error"] and "chat_timeout 0.5 s, chat_deadline 2 s" in result.state["error"]
    assert 2 <= len(srv.requests) <= 3  # five retries allowed, but only what fits in the deadline


def test_a_hung_image_server_surfaces_at_the_deadline_and_the_run_is_resumable(tmp_path):
    import time

    from tests.servers import Hang, RecordingServer

    with RecordingServer(lambda rec: Hang(30)) as srv:
        ctx = GemsContext(
            generator=f"{srv.url}/generate",
            chat_model=ScriptedChatModel(handler=loop_handler()),
            artifact_root=str(tmp_path),
            memory="none",
            generation_timeout=0.5,
            generation_deadline=1.2,
        )
        started = time.monotonic()
        result = run_gems("a red square", ctx, InMemorySaver(), thread_id="t")
        took = time.monotonic() - started
    assert result.status == "failed" and took < 8
    (cand,) = result.state["rounds"][0]["candidates"]
    assert "no answer in" in cand["error"] and "generation_timeout 0.5 s, generation_deadline 1.2 s" in cand["error"]
    assert len(srv.requests) == 2  # three attempts allowed, two fit
    assert "resume to retry the round" in result.state["error"]


def test_a_spec_pins_its_own_timeout_and_retry_after_is_honoured(monkeypatch):
    import time

    from langchain_core.messages import HumanMessage

    from gems_graph.backends.openai_chat import GemsChatOpenAI, compatible_from_spec
    from gems_graph.models.retry import CallLimits
    from tests.servers import RecordingServer, chat_completion, json_reply

    pinned = compatible_from_spec("http://127.0.0.1:1/v1#m?timeout=7").with_limits(CallLimits(1.0, 2.0))
    assert (pinned.request_timeout, pinned.deadline) == (7.0, 2.0)
    plain = compatible_from_spec("http://127.0.0.1:1/v1#m")
    assert (plain.request_timeout, plain.deadline) == (GemsContext().chat_timeout, GemsContext().chat_deadline)
    asked = []

    def respond(rec):
        asked.append(time.monotonic())
        if len(asked) == 1:
            return (429, "application/json", b'{"error": {"message": "slow down"}}', {"Retry-After": "1.5"})
        return json_reply(200, chat_completion("ok"))

    with RecordingServer(respond) as srv:
        reply = GemsChatOpenAI(model="m", api_key="EMPTY", base_url=f"{srv.url}/v1", max_retries=2).invoke([HumanMessage("hi")])
    assert reply.content == "ok" and asked[1] - asked[0] >= 1.4  # the server's wait, not the 0.5 s backoff


def test_call_limits_come_from_gems_toml_and_the_environment(tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO
    from tests.servers import Hang, RecordingServer

    (tmp_path / "gems.toml").write_text("chat_timeout = 0.4\nchat_deadline = 5.0\n")
    env = {
        **{k: v for k, v in __import__("os").environ.items() if not k.startswith("GEMS_")},
        "GEMS_HOME": str(tmp_path / "home"),
        "GEMS_CHAT_DEADLINE": "1",
        "PYTHONPATH": str(REPO),
        "GEMS_PLUGINS": "tests.plugin_backends",
    }
    with RecordingServer(lambda rec: Hang(30)) as srv:
        args = ["run", "a red square", "--generator", "colour:", "--chat-model", f"openai-compatible:{srv.url}/v1#m", "--memory", "none"]
        res = subprocess.run(
            [sys.executable, "-m", "gems_graph.app.cli", *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
        )
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "chat_timeout 0.4 s, chat_deadline 1 s" in res.stderr  # the file's timeout, the environment's deadline


# -- secrets: redacted from every error text that is stored or printed -------------------------


def test_a_key_echoed_by_the_server_is_in_no_file_and_no_output(tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO
    from tests.servers import RecordingServer, json_reply

    key = "sk-live-0123456789abcdef"
    echo = {"error": {"message": f"invalid api key {key}; Authorization: Bearer {key}"}}
    home = tmp_path / "home"
    env = {
        **{k: v for k, v in __import__("os").environ.items() if not k.startswith("GEMS_")},
        "GEMS_HOME": str(home),
        "GEMS_OPENAI_API_KEY": key,
        "PYTHONPATH": str(REPO),
        "GEMS_PLUGINS": "tests.plugin_backends",
    }

    def gems(*args):
        return subprocess.run(
            [sys.executable, "-m", "gems_graph.app.cli", *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
        )

    with RecordingServer(lambda rec: json_reply(500, echo)) as srv:
        spec = f"openai-compatible:{srv.url}/v1#m?max_retries=0"
        ran = gems("run", "a red square", "--generator", "colour:", "--chat-model", spec, "--memory", "none", "--json")
        doctor = gems("doctor", "--generator", "colour:", "--chat-model", spec, "--json")
    assert ran.returncode == 1 and "***" in ran.stdout and "***" in ran.stderr
    assert "***" in doctor.stdout  # the structured-output probe's failure, shown without the key
    for text in (ran.stdout, ran.stderr, doctor.stdout, doctor.stderr):
        assert key not in text
    written = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name == "run.json" for p in written) and any(p.name.startswith("checkpoints.sqlite") for p in written)
    for path in written:
        assert key.encode() not in path.read_bytes(), path


def test_run_json_and_eval_records_never_carry_a_key(tmp_path, monkeypatch):
    from gems_graph.eval.tasks import failed_task
    from gems_graph.persistence.artifacts import write_run_json

    key = "sk-live-0123456789abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    path = write_run_json(str(tmp_path), {"status": "failed", "notes": [f"a note that quotes {key}"], "error": f"Bearer {key}"})
    assert key not in path.read_text() and "Bearer ***" in path.read_text()
    rec = failed_task({"id": "x"}, RuntimeError(f"server said: bad key {key}"), None)
    assert key not in rec["error"] and "***" in rec["error"]


# -- gems serve-generator: hostile requests and huge images ----------------------------------


def _raw(url: str, data: bytes, wait: float = 5.0) -> bytes:
    """Send raw bytes to the server, return what it answers until it closes (or ``wait`` passes)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=wait) as sock:
        sock.sendall(data)
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except TimeoutError:
            out += b"<still open>"
    return out


@pytest.mark.parametrize("length", ["-1", "abc", "1e3", " -5"])
def test_serve_generator_refuses_a_content_length_that_is_not_a_size(length):
    from tests.servers import ThreadedGeneratorServer

    with ThreadedGeneratorServer("shapes") as srv:
        answer = _raw(srv.url, f"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode() + b"x" * 1000)
    assert answer.startswith(b"HTTP/1.1 400") and b"bad Content-Length" in answer and b"<still open>" not in answer


def test_serve_generator_drops_a_stalled_connection():
    import time

    from tests.servers import ThreadedGeneratorServer

    with ThreadedGeneratorServer("shapes", request_timeout=0.5) as srv:
        started = time.monotonic()
        half_headers = _raw(srv.url, b"POST /generate HTTP/1.1\r\nHost: x\r\n", wait=10)
        half_body = _raw(srv.url, b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{", wait=10)
        took = time.monotonic() - started
    assert b"<still open>" not in half_headers + half_body and took < 5  # closed by the server, not by our wait


def test_serve_generator_refuses_images_over_the_size_cap():
    import httpx

    from tests.servers import ThreadedGeneratorServer

    with ThreadedGeneratorServer("shapes") as srv:
        legacy = httpx.post(srv.url, json={"prompt": "a red circle", "width": 12000, "height": 12000}, timeout=10)
        api = httpx.post(f"{srv.server.base_url}/images/generations", json={"prompt": "a red circle", "size": "8192x8193"}, timeout=10)
    assert legacy.status_code == 400 and "width and height must be from 1 to 8192" in legacy.json()["error"]
    assert api.status_code == 400 and "must be from 1 to 8192, got 8192x8193" in api.json()["error"]["message"]


def _png_claiming(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header claims ``width`` x ``height`` (a decompression-bomb shape)."""
    import io
    import struct
    import zlib

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    ihdr = bytes(data[12:16]) + struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(ihdr))
    return bytes(data)


@pytest.mark.parametrize("width, height", [(12000, 12000), (20000, 20000), (9000, 10)])
def test_an_image_server_sending_a_huge_image_is_a_candidate_error_not_a_decode(width, height):
    import base64

    from gems_graph.backends.images_api import ImagesApiGenerator
    from gems_graph.models.generator import GenerationError, GenerationRequest
    from tests.servers import RecordingServer, json_reply

    huge = base64.b64encode(_png_claiming(width, height)).decode()
    with RecordingServer(lambda rec: json_reply(200, {"created": 0, "data": [{"b64_json": huge}]})) as srv:
        gen = ImagesApiGenerator(f"{srv.url}/v1", "m", max_batch=1)
        with pytest.raises(GenerationError, match=rf"sent a {width}x{height} image, over the limit|too large to decode"):
            gen.generate(GenerationRequest("a red circle", seed=0))


def test_serve_generator_port_out_of_range_is_one_line(tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO

    res = subprocess.run(
        [sys.executable, "-m", "gems_graph.app.cli", "serve-generator", "shapes", "--port", "99999"],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "PYTHONPATH": str(REPO)},
        cwd=tmp_path,
        timeout=60,
    )
    assert res.returncode == 2 and res.stderr.strip() == "error: --port 99999 is not a TCP port (0 to 65535; 0 picks a free one)"


# -- remember: a resume that writes the same lessons again confirms nothing new ----------------


def test_remember_run_again_after_a_kill_does_not_count_its_lessons_twice(tmp_path):
    from gems_graph.graph import compile_graph
    from gems_graph.memory import open_experience_store

    ctx = GemsContext(
        generator=ColourGenerator(),
        chat_model=ScriptedChatModel(handler=loop_handler(fix_at_round=2)),
        artifact_root=str(tmp_path / "runs"),
        memory="chroma",
    )
    graph = compile_graph(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    assert graph.invoke({"prompt": "a red square"}, config, context=ctx)["status"] == "passed"
    store = open_experience_store("chroma", create=False)
    before = {lesson["id"]: lesson["uses"] for lesson in store.list(10)}
    assert before and set(before.values()) == {1}
    # A kill after the store write but before remember's checkpoint: the resume runs remember again.
    (at_remember,) = [s for s in graph.get_state_history(config) if s.next == ("remember",)]
    graph.invoke(None, at_remember.config, context=ctx)
    after = {lesson["id"]: lesson["uses"] for lesson in open_experience_store("chroma", create=False).list(10)}
    assert after == before
    # Another run that learns the same thing still confirms it.
    graph.invoke({"prompt": "a red square"}, {"configurable": {"thread_id": "u"}}, context=ctx)
    again = {lesson["id"]: lesson["uses"] for lesson in open_experience_store("chroma", create=False).list(10)}
    assert all(again[i] == 2 for i in before)
