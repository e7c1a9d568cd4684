"""``langgraph dev`` serves ``langgraph.json``'s graph the way Studio talks to it (HTTP API).

The server runs from the repo root as a user would start it, with analytics and the
version check off, ``--no-reload`` (nothing to watch in a test) and its log, the
GEMS run folders and GEMS_HOME in a tmp dir. The in-memory runtime keeps its state
in ``./.langgraph_api`` (git-ignored); the test removes it if it was not there before.
Backends come from ``tests.plugin_backends`` (``colour:`` and ``scripted:``), chosen
per run with ``context=`` exactly as a Studio assistant's settings form would.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import repo_snapshot

REPO = Path(__file__).resolve().parents[1]
LANGGRAPH = Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv")) / "bin" / "langgraph"
CONTEXT = {"generator": "colour:", "chat_model": "scripted:fix=2", "max_rounds": 4, "memory": "none"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    binary = LANGGRAPH if LANGGRAPH.exists() else shutil.which("langgraph")
    if not binary:
        pytest.skip("langgraph-cli[inmem] is not installed (pip install -e '.[dev]')")
    tmp = tmp_path_factory.mktemp("studio")
    port = free_port()
    state_dir = REPO / ".langgraph_api"
    had_state = state_dir.exists()
    env = {
        **os.environ,
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGGRAPH_NO_VERSION_CHECK": "1",
        "GEMS_HOME": str(tmp / "gems_home"),
        "GEMS_PLUGINS": "tests.plugin_backends",
        "PYTHONPATH": str(REPO),
        "ANONYMIZED_TELEMETRY": "False",
    }
    log_path = tmp / "langgraph-dev.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(binary), "dev", "--no-browser", "--no-reload", "--port", str(port), "--host", "127.0.0.1"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"langgraph dev did not come up:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.5)
        yield {"url": url, "home": tmp / "gems_home", "log": log_path}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if not had_state:
            shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server["url"], timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def assistant_id(client):
    found = client.post("/assistants/search", json={"graph_id": "gems"}).json()
    assert found, "no assistant for graph 'gems'"
    return found[0]["assistant_id"]


def test_langgraph_json_exports_the_compiled_graph_as_gems():
    config = json.loads((REPO / "langgraph.json").read_text())
    assert config["graphs"] == {"gems": "./gems_graph/graph.py:graph"}
    assert config["dependencies"] == ["."]


def test_the_graph_shows_the_four_nodes_and_conditional_edges(client, assistant_id):
    drawn = client.get(f"/assistants/{assistant_id}/graph").json()
    nodes = {n["id"] for n in drawn["nodes"]}
    assert {"planner", "generator", "critic", "refiner"} <= nodes
    conditional = {(e["source"], e["target"]) for e in drawn["edges"] if e.get("conditional")}
    assert {("planner", "generator"), ("critic", "refiner"), ("refiner", "generator")} <= conditional
    # The critic's route either refines or leaves the loop (to the end, or via remember/human review).
    assert len({target for source, target in conditional if source == "critic"}) >= 2


def test_the_settings_form_has_descriptions_and_defaults(client, assistant_id):
    schemas = client.get(f"/assistants/{assistant_id}/schemas").json()
    props = schemas["context_schema"]["properties"]
    assert props["generator"]["default"] == "shapes" and props["generator"]["description"]
    assert props["max_rounds"]["default"] == 5
    # None here means pydantic could not read GemsInput: on Python < 3.12 state.py must use
    # typing_extensions.TypedDict, or Studio shows no input form.
    assert schemas["input_schema"] is not None, "no input schema: use typing_extensions.TypedDict in gems_graph/state.py"
    assert "prompt" in schemas["input_schema"]["properties"]
    assert "best_image" in schemas["output_schema"]["properties"]
    # Every input and output field says what it is.
    for schema in ("input_schema", "output_schema"):
        undescribed = [k for k, v in schemas[schema]["properties"].items() if not v.get("description")]
        assert not undescribed, f"{schema} fields without a description: {undescribed}"
    # The state is the run's state, not the generator's Send payload (round, index, retries).
    state = schemas["state_schema"]["properties"]
    assert "rounds" in state and not {"index", "retries", "round"} & set(state)


def test_a_run_to_completion_then_a_streamed_run_then_the_thread_state(client, assistant_id, server):
    before = repo_snapshot()
    thread_id = client.post("/threads", json={}).json()["thread_id"]
    out = client.post(
        f"/threads/{thread_id}/runs/wait", json={"assistant_id": assistant_id, "input": {"prompt": "a red square"}, "context": CONTEXT}
    ).json()
    assert out["status"] == "passed" and out["rounds_used"] == 2 and out["score"] == 1.0
    assert Path(out["best_image"]).is_file()
    assert Path(out["best_image"]).is_relative_to(server["home"])  # run artifacts stay out of the repo

    second = client.post("/threads", json={}).json()["thread_id"]
    events: list[tuple[str, dict]] = []
    body = {
        "assistant_id": assistant_id,
        "input": {"prompt": "a red square"},
        "stream_mode": ["custom", "updates"],
        "context": {**CONTEXT, "chat_model": "scripted:fix=3"},
    }
    with client.stream("POST", f"/threads/{second}/runs/stream", json=body) as resp:
        assert resp.status_code == 200
        event = None
        for line in resp.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("custom", "updates"):
                events.append((event, json.loads(line.split(":", 1)[1])))
    custom = [data["event"] for kind, data in events if kind == "custom"]
    assert custom.count("round_started") == 3 and custom[-1] == "run_finished"
    assert any(kind == "updates" and "critic" in data for kind, data in events)

    state = client.get(f"/threads/{second}/state").json()
    values = state["values"]
    assert values["status"] == "passed" and values["rounds_used"] == 3
    assert Path(values["best_image"]).is_file()
    assert [r["index"] for r in values["rounds"]] == [1, 2, 3]  # per-round images, verdicts, scores in state
    assert values["rounds"][0]["candidates"][0]["verdicts"]
    assert repo_snapshot() == before  # the server's runs went to its GEMS_HOME


def test_human_review_pauses_in_the_server_and_resumes_with_a_command(client, assistant_id):
    thread_id = client.post("/threads", json={}).json()["thread_id"]
    ctx = {**CONTEXT, "human_feedback": True}
    client.post(f"/threads/{thread_id}/runs/wait", json={"assistant_id": assistant_id, "input": {"prompt": "a red square"}, "context": ctx})
    state = client.get(f"/threads/{thread_id}/state").json()
    assert state["next"] == ["human_review"]
    (pause,) = [i for task in state["tasks"] for i in task.get("interrupts", [])]
    assert pause["value"]["round"] == 1 and pause["value"]["candidates"][0]["verdicts"]
    # Feedback goes to the refiner; round 2 pauses again; then accept stops the run there.
    client.post(
        f"/threads/{thread_id}/runs/wait",
        json={"assistant_id": assistant_id, "command": {"resume": {"feedback": "redder"}}, "context": ctx},
    )
    assert client.get(f"/threads/{thread_id}/state").json()["values"]["rounds_used"] == 2
    out = client.post(
        f"/threads/{thread_id}/runs/wait", json={"assistant_id": assistant_id, "command": {"resume": {"accept": True}}, "context": ctx}
    ).json()
    assert out["status"] == "accepted" and out["rounds_used"] == 2
