"""The deployment recipe, ``deploy/agent-server.sh``, run as a person runs it.

A private PostgreSQL (``initdb`` into a temporary folder; the script gets its superuser's
URL and creates the server's own role and database), a private Redis, and the script's
own steps: tables, then ``langhost serve`` through ``gems_graph.app.agent_server serve``
with two worker processes on loopback and two keys in ``GEMS_SERVER_KEYS``. Checked: a
request without a key, with a wrong key, or claiming Studio's scheme is 401; one key's
threads and runs are not found with the other key; a worker SIGKILLed with runs in flight
has them taken over within seconds at the recipe's heartbeat (5 s: within 4 x 5 s, plus
the sweeping worker's own delays on two busy cores), and every run still ends ``success``.
The server's start checks (keys for a non-loopback host, a prepared database) are one
line and exit 2 before any worker starts.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.postgres_server import *  # noqa: F403
from tests.redis_server import *  # noqa: F403
from tests.servers import free_port, stop_process_group, worker_pids

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "deploy" / "agent-server.sh"
SERVER_PYTHON = REPO / ".venv-server" / "bin" / "python"
ALICE, BOB = "alice-" + secrets.token_hex(12), "bob-" + secrets.token_hex(12)
#: The recipe's heartbeat (gems_graph.app.agent_server.HEARTBEAT_S): a run is swept within 4x.
HEARTBEAT_S = 5
#: Seconds allowed from the kill to the first step of a retried run: the 4x sweep bound, plus
#: the surviving worker's own start of the run (the graph, the shapes models) on two busy cores.
TAKEOVER_LIMIT_S = 4 * HEARTBEAT_S + 25


def _base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEMS_", "VIRTUAL_ENV", "LG_", "LANGGRAPH_"))}
    return {**env, "PYTHONPATH": str(REPO), "GEMS_SERVER_PYTHON": str(SERVER_PYTHON), **extra}


def _ok(url: str) -> bool:
    try:
        return httpx.get(f"{url}/ok", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def recipe_server(postgres_server, redis_server, tmp_path):
    if not SERVER_PYTHON.exists():
        pytest.skip("the server venv is missing; `make setup-dev` creates it")
    role, password, database = f"gems_{uuid.uuid4().hex[:8]}", secrets.token_hex(12), f"srv_{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = _base_env(
        PG_ADMIN_URL=postgres_server.url,
        DATABASE_URI=f"postgresql://{role}:{password}@127.0.0.1:{postgres_server.port}/{database}",
        REDIS_URI=redis_server.url,
        GEMS_HOME=str(tmp_path / "home"),
        GEMS_SERVER_KEYS=f"alice:{ALICE},bob:{BOB}",
        HOST="127.0.0.1",
        PORT=str(port),
        WORKERS="2",
        JOBS_PER_WORKER="2",
    )
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(["bash", str(SCRIPT)], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while not (_ok(url) and len(worker_pids(proc.pid)) == 2):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the recipe did not bring the server up:\n{log_path.read_text(errors='replace')[-4000:]}")
            time.sleep(0.5)
        yield {"url": url, "pid": proc.pid, "log": log_path, "password": password}
    finally:
        if proc.poll() is None:
            stop_process_group(proc)


def _retrying(call, *args, **kwargs):
    """``call`` again when the connection breaks: a request in flight on the killed worker is reset."""
    for attempt in range(20):
        try:
            return call(*args, **kwargs)
        except httpx.TransportError:
            if attempt == 19:
                raise
            time.sleep(0.5)


def test_the_recipe_serves_only_keyed_clients_their_own_runs_and_hands_a_dead_workers_runs_over_in_seconds(recipe_server):
    from langgraph_sdk import get_sync_client
    from langgraph_sdk.errors import InternalServerError, NotFoundError

    url = recipe_server["url"]
    for headers in (
        {},
        {"X-Api-Key": "not-a-key-0123456789"},
        {"Authorization": "Bearer not-a-key-0123456789"},
        {"X-Auth-Scheme": "langsmith"},
    ):
        refused = httpx.post(f"{url}/threads/search", json={}, headers=headers, timeout=30)
        assert refused.status_code == 401, (headers, refused.text)
    assert "not-a-key" not in recipe_server["log"].read_text(errors="replace")

    alice = get_sync_client(url=url, api_key=ALICE, timeout=60)
    bob = get_sync_client(url=url, api_key=BOB, timeout=60)
    (assistant,) = alice.assistants.search(graph_id="gems")  # the graph's own assistant: everyone's
    assert [a["assistant_id"] for a in bob.assistants.search(graph_id="gems")] == [assistant["assistant_id"]]

    # Prompts the shipped model fails for every round at seeds 0-3: the runs last long enough to be caught running.
    prompts = [
        "a photo of four large squares",
        "a photo of a small triangle right of a yellow square",
        "a photo of a red square above a large yellow triangle",
        "a photo of two circles, five red triangles and a green square",
    ]
    submitted = []
    for i, prompt in enumerate(prompts):
        thread = alice.threads.create()
        run = alice.runs.create(
            thread["thread_id"], assistant["assistant_id"], input={"prompt": prompt}, context={"max_rounds": 5, "seed": i}
        )
        submitted.append((thread["thread_id"], run["run_id"]))
    thread_id, run_id = submitted[0]
    assert alice.threads.get(thread_id)["metadata"]["owner"] == "alice"
    with pytest.raises(NotFoundError):
        bob.threads.get(thread_id)
    assert bob.threads.search() == [] and len(alice.threads.search(limit=100)) == len(prompts)

    # Kill a worker once two runs are running and one is past its first round.
    deadline = time.monotonic() + 300
    while True:
        running = [t for t, r in submitted if _retrying(alice.runs.get, t, r)["status"] == "running"]
        if len(running) >= 2 and any(_retrying(alice.threads.get_state, t)["values"].get("rounds") for t in running):
            break
        assert time.monotonic() < deadline, "runs never got going"
        time.sleep(0.5)
    victim = worker_pids(recipe_server["pid"])[0]
    worker_env = Path(f"/proc/{victim}/environ").read_bytes().split(b"\0")
    assert not any(v.startswith((b"PG_ADMIN_URL=", b"PGPASSWORD=")) for v in worker_env)  # the admin's credentials stay behind
    assert b"OMP_NUM_THREADS=1" in worker_env and b"LG_BG_JOB_HEARTBEAT=5" in worker_env
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()

    takeover_s = None
    while True:
        statuses = [_retrying(alice.runs.get, t, r)["status"] for t, r in submitted]
        if takeover_s is None:
            for t, _ in submitted:
                history = _retrying(alice.threads.get_history, t, limit=200)
                if any(h["metadata"].get("run_attempt") == 2 for h in history):
                    takeover_s = time.monotonic() - killed_at
                    break
        if all(s not in ("pending", "running") for s in statuses):
            break
        assert time.monotonic() < deadline + 300, statuses
        time.sleep(0.5)
    assert statuses == ["success"] * len(prompts), statuses
    assert takeover_s is not None, "no run was retried: the killed worker held none"
    print(f"takeover: {takeover_s:.1f} s from SIGKILL to the retried run's first step (heartbeat {HEARTBEAT_S} s)")
    assert takeover_s < TAKEOVER_LIMIT_S, takeover_s
    assert recipe_server["password"] not in recipe_server["log"].read_text(errors="replace")
    # Refused, though not always as 404: langgraph-runtime-pg 0.11.1 may answer another owner's run
    # with 500 (its database session is closed while the 404 is raised); nothing of the run is sent.
    with pytest.raises((NotFoundError, InternalServerError)) as refused_run:
        bob.runs.get(thread_id, run_id)
    assert run_id not in refused_run.value.response.text


def _serve(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SERVER_PYTHON), "-m", "gems_graph.app.agent_server", "serve", *args],
        cwd=REPO,
        env=_base_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_non_loopback_host_without_keys_and_an_unprepared_database_are_one_line_each_and_exit_2(postgres_server):
    if not SERVER_PYTHON.exists():
        pytest.skip("the server venv is missing; `make setup-dev` creates it")
    url = postgres_server.create_database()
    open_host = _serve("--host", "0.0.0.0", "--port", str(free_port()), DATABASE_URI=url)
    assert open_host.returncode == 2 and open_host.stdout == ""
    assert open_host.stderr.startswith("error: --host 0.0.0.0 is reachable from other machines: set GEMS_SERVER_KEYS")
    assert open_host.stderr.count("\n") == 1

    fresh = _serve("--port", str(free_port()), DATABASE_URI=url)
    assert fresh.returncode == 2 and fresh.stdout == "", fresh.stderr
    assert fresh.stderr.startswith("error: postgresql://gems:***@127.0.0.1:") and fresh.stderr.count("\n") == 1
    assert "is not prepared for the agent server (it has no alembic_version table)" in fresh.stderr
    assert postgres_server.password not in fresh.stderr
