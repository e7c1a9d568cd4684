"""The exported graph on a self-hosted LangGraph server that scales out.

``langhost serve`` (the stock ``langgraph-api`` Agent Server on the MIT
``langgraph-runtime-pg`` runtime) serves ``langgraph.json`` from the repo root with
two uvicorn worker processes, on a private PostgreSQL (threads, runs, checkpoints)
and a private Redis (queue wake-ups, run heartbeats, streaming), all on loopback.
The runtime pins its own ``langgraph-api``, so the server runs from ``.venv-server``
(``make setup-dev`` builds it); this test drives it from the dev venv through
``langgraph_sdk``, as a client application would.

Twenty runs of the shapes world (its default generator and chat model, two rounds at
most) are queued at once; while they run, one worker process is SIGKILLed. Its runs'
heartbeats lapse, the surviving worker's sweep puts them back in the queue, and the
retry resumes from the last checkpoint (same run id, so LangGraph continues the run
instead of starting it over). Every run must then have finished with its images on
disk, and no step may have run twice: one input checkpoint per thread, one planner
step, one generator step per round, one image file per candidate.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from gems_graph.shapes.suite import dev_split
from tests.conftest import repo_snapshot
from tests.postgres_server import *  # noqa: F403
from tests.redis_server import *  # noqa: F403
from tests.servers import free_port, stop_process_group, worker_pids

REPO = Path(__file__).resolve().parents[1]
SERVER_BIN = REPO / ".venv-server" / "bin"
LANGHOST = SERVER_BIN / "langhost"
RUNS = 20
WORKERS = 2
JOBS_PER_WORKER = 2
#: The runtime's heartbeat period: a run whose heartbeat is missing for twice this is swept
#: back to the queue. The default (120 s) is sized for production; with 3 s a dead worker's
#: runs are back in the queue within about 12 s, and a live worker's event loop would have to
#: stall for 6 s to lose a run it holds.
HEARTBEAT_S = 3
#: The shapes world's defaults (generator, chat model, embedded Chroma memory), two rounds at most.
CONTEXT = {"max_rounds": 2}


@pytest.fixture
def agent_server(postgres_server, redis_server, tmp_path):
    if not LANGHOST.exists():
        pytest.skip(f"{LANGHOST.relative_to(REPO)} is missing; `make setup-dev` creates the server venv")
    database = postgres_server.create_database()
    port = free_port()
    home = tmp_path / "server_home"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GEMS_", "VIRTUAL_ENV"))},
        "DATABASE_URI": database,
        "REDIS_URI": redis_server.url,
        "GEMS_HOME": str(home),
        "LG_BG_JOB_HEARTBEAT": str(HEARTBEAT_S),
        # Four runs at once on two cores: one torch thread each (the default, a thread per core
        # in every run, took half again as much CPU time for the same 20 runs).
        "OMP_NUM_THREADS": "1",
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGGRAPH_NO_VERSION_CHECK": "1",
        "ANONYMIZED_TELEMETRY": "False",
        "PYTHONPATH": str(REPO),
        # The tables are set up once, below, before the workers start (see gems_graph.app.agent_server).
        "LG_RUNTIME_PG_AUTO_MIGRATE": "false",
    }
    prepared = subprocess.run(
        [str(SERVER_BIN / "python"), "-m", "gems_graph.app.agent_server"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    log_path = tmp_path / "langhost.log"
    cmd = [str(LANGHOST), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(WORKERS)]
    cmd += ["--n-jobs-per-worker", str(JOBS_PER_WORKER)]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while not (_ok(url) and len(worker_pids(proc.pid)) == WORKERS):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"langhost serve did not come up:\n{log_path.read_text(errors='replace')[-4000:]}")
            time.sleep(0.5)
        yield {"url": url, "pid": proc.pid, "home": home, "log": log_path}
    finally:
        if proc.poll() is None:
            stop_process_group(proc)


def _ok(url: str) -> bool:
    try:
        return httpx.get(f"{url}/ok", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _retrying(call, *args, **kwargs):
    """``call`` again when the connection breaks: a request in flight on the killed worker is reset."""
    for attempt in range(20):
        try:
            return call(*args, **kwargs)
        except httpx.TransportError:
            if attempt == 19:
                raise
            time.sleep(0.5)


def _sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_twenty_runs_survive_a_killed_worker_with_nothing_lost_or_run_twice(agent_server):
    from langgraph_sdk import get_sync_client

    before = repo_snapshot()
    client = get_sync_client(url=agent_server["url"], timeout=60)
    (assistant,) = client.assistants.search(graph_id="gems")
    items = dev_split()[::7][:RUNS]
    submitted = []
    for item in items:
        thread = client.threads.create()
        run = client.runs.create(
            thread["thread_id"], assistant["assistant_id"], input={"prompt": item.prompt}, context={**CONTEXT, "seed": item.seed}
        )
        submitted.append((thread["thread_id"], run["run_id"], item))

    def statuses() -> dict[str, str]:
        return {run_id: _retrying(client.runs.get, thread_id, run_id)["status"] for thread_id, run_id, _ in submitted}

    # Kill a worker mid-run: once several runs are in flight and one of them is past its first round.
    deadline = time.monotonic() + 300  # about 2 minutes on 2 busy cores
    while True:
        running = [(t, r) for t, r, _ in submitted if _retrying(client.runs.get, t, r)["status"] == "running"]
        if len(running) >= WORKERS and any(_retrying(client.threads.get_state, t)["values"].get("rounds") for t, _ in running):
            break
        assert time.monotonic() < deadline, f"runs never got going: {statuses()}"
        time.sleep(0.5)
    workers = worker_pids(agent_server["pid"])
    victim = workers[0]
    os.kill(victim, signal.SIGKILL)

    while True:
        now = statuses()
        if all(s not in ("pending", "running") for s in now.values()):
            break
        assert time.monotonic() < deadline, f"runs did not finish in time: {now}\n{agent_server['log'].read_text(errors='replace')[-3000:]}"
        time.sleep(1)
    assert set(now.values()) == {"success"}, now
    # uvicorn replaced the killed worker: the server is back to two.
    replacements = worker_pids(agent_server["pid"])
    assert victim not in replacements and len(replacements) == WORKERS

    resumed, recalled = [], 0
    for thread_id, run_id, item in submitted:
        assert [r["run_id"] for r in _retrying(client.runs.list, thread_id)] == [run_id]  # one run per thread, none added by a retry
        values = _retrying(client.threads.get_state, thread_id)["values"]
        assert values["prompt"] == item.prompt
        assert values["status"] in ("passed", "exhausted") and values["error"] is None
        rounds = values["rounds"]
        assert [r["index"] for r in rounds] == list(range(1, values["rounds_used"] + 1)) and values["rounds_used"] <= 2
        candidates = [c for r in rounds for c in r["candidates"]]
        assert len(candidates) == len(rounds)  # one candidate a round (the default)
        for cand in candidates:
            image = cand["image"]
            assert cand["error"] is None and Path(image["path"]).is_file() and _sha256(image["path"]) == image["sha256"]
            assert cand["seed"] >= item.seed and (cand["seed"] - item.seed) % 1000 == 0  # the run's own seed rule
        assert candidates[0]["seed"] == item.seed
        assert Path(values["best_image"]).is_file()
        assert Path(values["best_image"]).is_relative_to(agent_server["home"])
        run_dir = Path(values["run_dir"])
        assert sorted(p.name for p in run_dir.glob("round_*/*.png")) == sorted(Path(c["image"]["path"]).name for c in candidates)
        assert (run_dir / "run.json").is_file()
        recalled += bool(values["recalled_lessons"])

        history = _retrying(client.threads.get_history, thread_id, limit=200)
        assert len({h["metadata"]["step"] for h in history}) == len(history)  # one chain of steps, none repeated
        assert sum(h["metadata"]["source"] == "input" for h in history) == 1
        assert sum(h["next"] == ["planner"] for h in history) == 1
        assert sum("generator" in h["next"] for h in history) == len(rounds)
        attempts = {h["metadata"].get("run_attempt") for h in history}
        if 2 in attempts:
            # Killed after its first checkpoint (attempt 1 in its history), it went on from there: one chain
            # of steps, planned once (asserted above). Killed before it, it had nothing to go on from.
            resumed.append(thread_id)
    # The killed worker held runs in flight; each was swept back and resumed exactly once.
    assert 1 <= len(resumed) <= JOBS_PER_WORKER, resumed
    # The workers share the embedded experience store in the server's GEMS_HOME: later runs recalled earlier runs' lessons.
    assert recalled > 0
    assert repo_snapshot() == before


def _server_python(*args: str, url: str) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URI": url, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [str(SERVER_BIN / "python"), "-m", "gems_graph.app.agent_server", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_replicas_prepare_one_fresh_database_at_once(postgres_server):
    if not (SERVER_BIN / "python").exists():
        pytest.skip("the server venv is missing; `make setup-dev` creates it")
    import psycopg

    url = postgres_server.create_database()
    procs = [_server_python(url=url) for _ in range(2)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    assert [rc for rc, _, _ in results] == [0, 0], [err[-2000:] for _, _, err in results]
    assert all("prepared postgresql://gems:***@" in out for _, out, _ in results)
    assert all(postgres_server.password not in out + err for _, out, err in results)
    with psycopg.connect(url) as conn:
        tables = {r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
        assert {"alembic_version", "assistants", "threads", "runs"} <= tables  # the runtime's
        assert {"checkpoints", "checkpoint_writes", "checkpoint_migrations"} <= tables  # LangGraph's checkpointer
        assert {"store", "store_migrations"} <= tables  # LangGraph's store
        # Each checkpoint migration recorded once: the second replica waited and found nothing to do.
        versions = [r[0] for r in conn.execute("SELECT v FROM checkpoint_migrations")]
        assert len(versions) == len(set(versions)) > 0


def test_preparing_an_unreachable_database_is_one_line_without_the_password(postgres_server):
    if not (SERVER_BIN / "python").exists():
        pytest.skip("the server venv is missing; `make setup-dev` creates it")
    url = postgres_server.url_for("postgres", password="not-the-password")
    rc, out, err = (p := _server_python(url=url)).wait(timeout=60), *p.communicate()
    assert rc == 1 and out == ""
    assert err.startswith("error: cannot prepare postgresql://gems:***@127.0.0.1:") and err.count("\n") == 1
    assert "not-the-password" not in err
