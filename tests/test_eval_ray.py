"""``gems eval --executor ray`` on a real local Ray cluster (2 CPUs, loopback).

One cluster serves the whole test session: Ray takes seconds to start. Workers
import this checkout (PYTHONPATH) and the test plugin (``GEMS_PLUGINS``, which the
executor forwards), and make images with the procedural ``faulty-shapes`` renderer,
which logs the process that made each image.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gems_graph.eval import EvalConfig, run_eval
from tests.conftest import REPO
from tests.servers import stop_process_group

METHODS = ["single", "search", "loop"]
PROMPTS = 4


@pytest.fixture(scope="session")
def ray_cluster():
    """A 2-CPU Ray cluster on 127.0.0.1; yields its address for other drivers."""
    import ray

    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), before) if p)  # workers inherit it
    temp = tempfile.mkdtemp(prefix="gr", dir="/tmp")  # short: Ray's unix socket paths have a length limit
    ctx = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1", _temp_dir=temp)
    try:
        yield ctx.address_info["gcs_address"]
    finally:
        ray.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


@pytest.fixture
def plugin(monkeypatch):
    monkeypatch.setenv("GEMS_PLUGINS", "tests.plugin_backends")


def _cfg(out: Path, log: Path, **kw) -> EvalConfig:
    base = dict(
        suite="shapes",
        split="dev",
        out=str(out),
        generator=f"faulty-shapes:log={log}",
        methods=METHODS,
        limit=PROMPTS,
        budget=2,
        memory="none",
        progress=False,
    )
    return EvalConfig(**{**base, **kw})


def test_ray_gives_the_same_results_as_local(ray_cluster, plugin, tmp_path):
    log = tmp_path / "calls.tsv"
    local = tmp_path / "local"
    run_eval(_cfg(local, log, concurrency=2))
    local_calls = len(log.read_text().splitlines())

    on_ray = tmp_path / "ray"
    result = run_eval(_cfg(on_ray, log, executor="ray"))

    assert result["errors"] == 0 and result["incomplete"] == 0
    assert (on_ray / "results.json").read_bytes() == (local / "results.json").read_bytes()
    for rec in json.loads((on_ray / "results.json").read_text())["records"]:
        assert (on_ray / rec["final_image"]).read_bytes() == (local / rec["final_image"]).read_bytes()
    ray_calls = log.read_text().splitlines()[local_calls:]
    assert len(ray_calls) == local_calls  # the same images, made once each
    assert os.getpid() not in {int(line.split("\t")[0]) for line in ray_calls}  # by Ray workers, not by the driver


def _gems_eval(out: Path, log: Path, address: str, home: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gems_graph.app.cli",
        "eval",
        "shapes",
        "--methods",
        ",".join(METHODS),
        "--limit",
        str(PROMPTS),
        "--budget",
        "2",
        "--memory",
        "none",
        "--generator",
        f"faulty-shapes:delay=0.3,log={log}",
        "--executor",
        "ray",
        "--address",
        address,
        "--out",
        str(out),
        "--no-progress",
    ]


def test_a_driver_killed_mid_eval_resumes_with_only_the_missing_tasks(ray_cluster, tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "GEMS_HOME": str(home), "GEMS_PLUGINS": "tests.plugin_backends", "PYTHONPATH": str(REPO)}
    out, log = tmp_path / "eval", tmp_path / "calls.tsv"
    args = _gems_eval(out, log, ray_cluster, home)
    proc = subprocess.Popen(args, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    jsonl = out / "results.jsonl"
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        if jsonl.exists() and len(jsonl.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"the eval ended before it could be killed: {proc.stderr.read()}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = [json.loads(line)["key"] for line in jsonl.read_text().splitlines()]
    total = PROMPTS * len(METHODS)
    assert 3 <= len(done_before) < total

    res = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    keys = [json.loads(line)["key"] for line in jsonl.read_text().splitlines()]
    assert len(keys) == total and set(keys[: len(done_before)]) == set(done_before)
    assert collections.Counter(keys).most_common(1)[0][1] == 1  # nothing finished ran again
    records = json.loads((out / "results.json").read_text())["records"]
    assert len(records) == total and all(r["error"] is None for r in records)

    # The interrupted, resumed eval on Ray has the results of one uninterrupted local eval.
    local = tmp_path / "local"
    run_eval(_cfg(local, tmp_path / "local.tsv", concurrency=2, generator="faulty-shapes"))
    assert json.loads((local / "results.json").read_text())["records"] == records


def test_ray_executor_needs_ray_installed(tmp_path, monkeypatch):
    """Without Ray, ``--executor ray`` is one clear line and exit 2."""
    from gems_graph.eval.cli import eval_app

    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees when it is not installed
    res = CliRunner().invoke(eval_app, ["shapes", "--limit", "1", "--executor", "ray", "--out", str(tmp_path / "e")])
    assert res.exit_code == 2
    assert "needs Ray, which is not installed: pip install 'gems-graph[ray]'" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "e").exists()


def test_an_address_nobody_listens_at_fails_in_seconds():
    from gems_graph.eval.ray_executor import check_reachable
    from gems_graph.eval.tasks import EvalConfigError
    from tests.servers import free_port

    address = f"127.0.0.1:{free_port()}"
    start = time.perf_counter()
    with pytest.raises(EvalConfigError, match=f"no Ray cluster answers at {address}"):
        check_reachable(address)
    assert time.perf_counter() - start < 5
    with pytest.raises(EvalConfigError, match="is not HOST:PORT"):
        check_reachable("gpu-box")


def _untimed(results: Path) -> object:
    """A results file without its timings (the generator's seconds are measured, so they differ run to run)."""

    def drop(x: object) -> object:
        if isinstance(x, dict):
            return {k: drop(v) for k, v in x.items() if k != "generation_seconds"}
        return [drop(v) for v in x] if isinstance(x, list) else x

    return drop(json.loads(results.read_text()))


def test_shapes_images_are_byte_identical_on_ray_and_locally(ray_cluster, tmp_path):
    """The real shapes model (torch on the CPU): the executors pin the same torch thread count, so
    every image and every score is the same; only the seconds the generator took differ."""
    base = dict(
        suite="shapes", split="dev", generator="shapes", methods=["single", "loop"], limit=2, budget=2, memory="none", progress=False
    )
    run_eval(EvalConfig(out=str(tmp_path / "local"), concurrency=2, **base))
    result = run_eval(EvalConfig(out=str(tmp_path / "ray"), executor="ray", **base))
    assert result["errors"] == 0
    assert _untimed(tmp_path / "ray" / "results.json") == _untimed(tmp_path / "local" / "results.json")
    images = sorted(p.relative_to(tmp_path / "local") for p in (tmp_path / "local").rglob("*.png") if "runs" in p.parts)
    assert len(images) >= 4 and images == sorted(
        p.relative_to(tmp_path / "ray") for p in (tmp_path / "ray").rglob("*.png") if "runs" in p.parts
    )
    differing = [str(p) for p in images if (tmp_path / "local" / p).read_bytes() != (tmp_path / "ray" / p).read_bytes()]
    assert differing == []


@pytest.fixture
def token_head(tmp_path):
    """``ray start --head`` as a person starts it where ``~/.ray/auth_token`` exists (RAY_AUTH_MODE unset)."""
    from tests.servers import free_port

    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text(os.urandom(24).hex() + "\n")
    temp = tempfile.mkdtemp(prefix="gt", dir="/tmp")  # short: Ray's unix socket paths have a length limit
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")} | {"HOME": str(home), "PYTHONPATH": str(REPO)}
    ray_bin = Path(sys.executable).parent / "ray"
    cmd = [str(ray_bin), "start", "--head", "--block", "--port", str(port), "--num-cpus", "1", "--include-dashboard=false"]
    cmd += ["--node-ip-address", "127.0.0.1", "--temp-dir", temp, "--disable-usage-stats"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        from tests.servers import wait_for

        wait_for(lambda: proc.poll() is not None or _listening(port), seconds=120)
        assert proc.poll() is None, "ray start --head failed"
        time.sleep(2)  # the raylet registers after the GCS listens
        yield {"address": f"127.0.0.1:{port}", "env": env, "home": home}
    finally:
        stop_process_group(proc)
        shutil.rmtree(temp, ignore_errors=True)


def _listening(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _shapes_eval(out: Path, address: str) -> list[str]:
    args = ["eval", "shapes", "--methods", "single", "--limit", "1", "--budget", "1", "--memory", "none", "--executor", "ray"]
    return [sys.executable, "-m", "gems_graph.app.cli", *args, "--address", address, "--out", str(out), "--no-progress"]


def test_gems_eval_follows_a_token_clusters_auth_and_says_in_one_line_what_is_missing(token_head, tmp_path):
    env = {**token_head["env"], "GEMS_HOME": str(tmp_path / "gems_home")}
    ran = subprocess.run(_shapes_eval(tmp_path / "eval", token_head["address"]), env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "InvalidAuthToken" not in ran.stderr
    assert len(json.loads((tmp_path / "eval" / "results.json").read_text())["records"]) == 1

    stranger = tmp_path / "stranger"  # a machine without the cluster's token
    stranger.mkdir()
    refused = subprocess.run(
        _shapes_eval(tmp_path / "refused", token_head["address"]),
        env={**env, "HOME": str(stranger)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert refused.returncode == 2, refused.stderr[-3000:]
    # Ray's core logs its own InvalidAuthToken warnings while it retries (20 s); the last line says what to do.
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: could not connect to Ray at {token_head['address']}") and "~/.ray/auth_token" in last, last
    assert "Traceback" not in refused.stderr
    assert not (tmp_path / "refused").exists()


def test_an_unreachable_cluster_leaves_no_output_folder(tmp_path):
    from tests.servers import free_port

    env = {**os.environ, "PYTHONPATH": str(REPO), "GEMS_HOME": str(tmp_path / "home")}
    res = subprocess.run(_shapes_eval(tmp_path / "eval", f"127.0.0.1:{free_port()}"), env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "no Ray cluster answers at 127.0.0.1:" in res.stderr
    assert not (tmp_path / "eval").exists()
