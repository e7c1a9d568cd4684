"""``gems run`` in a subprocess, as a user runs it: JSON output, bad input, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.postgres_server import *  # noqa: F401,F403 (fixtures)
from tests.test_usage import RED_SQUARE_TOTAL

REPO = Path(__file__).resolve().parents[1]


def gems(args, home, *, timeout=300, **popen):
    # Memory is off here (its own tests cover it): loading the embedding model per subprocess is slow.
    env = {**os.environ, "GEMS_HOME": str(home), "GEMS_PLUGINS": "tests.plugin_backends", "PYTHONPATH": str(REPO), "GEMS_MEMORY": "none"}
    return subprocess.run(
        [sys.executable, "-m", "gems_graph.app.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=home.parent,
        **popen,
    )


BACKENDS = ["--generator", "colour:", "--chat-model", "scripted:fix=3"]


def test_run_json_prints_one_object_and_nothing_else(tmp_path):
    res = gems(["run", "a red square", "--generator", "colour:", "--chat-model", "scripted:fix=3,usage=10/2", "--json"], tmp_path)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)  # the whole of stdout is one JSON object
    assert summary["status"] == "passed" and summary["rounds"] == 3 and summary["score"] == 1.0
    assert Path(summary["best_image"]).is_file()
    assert Path(summary["run_dir"], "run.json").is_file()
    assert summary["thread_id"] and "skills" in summary and "recalled_lessons" in summary
    # 12 chat calls (tests/test_usage.py counts them by node), each reporting 10 input and 2 output tokens.
    usage = {k: v for k, v in summary["usage"].items() if k != "nodes"}
    assert usage == RED_SQUARE_TOTAL
    assert json.loads(Path(summary["run_json"]).read_text())["usage"]["total"] == usage


def test_run_shows_progress_and_where_the_results_are(tmp_path):
    res = gems(["run", "a red square", *BACKENDS, "--rounds", "2"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "round 1" in res.stderr and "round 2" in res.stderr and "candidate 0" in res.stderr
    assert "status: exhausted" in res.stdout and "best image:" in res.stdout and "run.json" in res.stdout
    # scripted: reports no usage, so tokens are unknown; calls: planner 1, critic 3 + 2, refiner 2
    assert "usage: 8 chat calls, unknown input / unknown output tokens, 6 images sent, 2 images generated" in res.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", ""], "prompt is empty"),
        (["run", "   "], "prompt is empty"),
        (["run", "a\x1b[31m red square"], "control characters"),
        (["run", "x" * 4001], "limit is 4000"),
        (["run", "a red square", "--generator", "nosuch:thing"], "unknown generator kind 'nosuch'"),
        (["run", "a red square", "--chat-model", "nosuch"], "known kinds:"),
        (["run", "a red square", "--rounds", "0"], "max_rounds=0"),
        (["run", "a red square", "--candidates", "-1"], "candidates_per_round=-1"),
        (["run", "a red square", "--rounds", "many"], "Invalid value for '--rounds'"),
        (["run", "--resume", "nope", *BACKENDS], "no run with id 'nope'"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2_and_writes_nothing(tmp_path, args, message):
    home = tmp_path / "home"
    res = gems(args, home)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert message in res.stderr
    assert res.stdout == ""
    assert not (home / "runs").exists()


def test_nul_in_prompt_is_rejected_before_anything_runs(tmp_path):
    # A NUL cannot travel in argv, so it comes through the Python API's validator.
    from gems_graph.validation import InvalidPromptError, validate_prompt

    with pytest.raises(InvalidPromptError, match="control characters"):
        validate_prompt("a\x00b")
    assert validate_prompt("two lines\n\tand a tab") == "two lines\n\tand a tab"


def test_a_failed_round_exits_1_and_keeps_its_checkpoint(tmp_path):
    res = gems(["run", "a red square", "--generator", "colour:fail=all", "--chat-model", "scripted:", "--json"], tmp_path)
    assert res.returncode == 1
    summary = json.loads(res.stdout)
    assert summary["status"] == "failed" and "every candidate of round 1 failed" in summary["error"]
    assert list(tmp_path.glob("runs/*/run.json"))
    # Resuming with a working generator retries the failed round and finishes; the
    # chat model comes back from the run's saved settings.
    res2 = gems(["run", "--resume", summary["thread_id"], "--generator", "colour:lucky=0", "--json"], tmp_path)
    assert res2.returncode == 0, res2.stderr
    again = json.loads(res2.stdout)
    assert again["status"] == "passed" and again["rounds"] == 1 and again["thread_id"] == summary["thread_id"]


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_sigkill_after_round_2_then_resume_does_not_regenerate(tmp_path, request, store):
    db = ["--checkpoint-db", request.getfixturevalue("postgres_url")] if store == "postgres" else []  # sqlite: the default file
    log = tmp_path / "calls.tsv"
    home = tmp_path / "home"
    env = {**os.environ, "GEMS_HOME": str(home), "GEMS_PLUGINS": "tests.plugin_backends", "PYTHONPATH": str(REPO), "GEMS_MEMORY": "none"}
    args = [
        sys.executable,
        "-m",
        "gems_graph.app.cli",
        "run",
        "a red square",
        "--generator",
        f"colour:delay=0.4,log={log}",
        "--chat-model",
        "scripted:fix=4",
        "--rounds",
        "5",
        *db,
    ]
    proc = subprocess.Popen(args, env=env, cwd=home.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_json = None
    deadline = time.time() + 300
    while time.time() < deadline:
        found = list((home / "runs").glob("*/run.json")) if (home / "runs").exists() else []
        if found and json.loads(found[0].read_text()).get("rounds_used") == 2:
            run_json = found[0]
            break
        time.sleep(0.05)
    assert run_json is not None, "run did not reach round 2"
    time.sleep(0.2)  # let the critic's checkpoint land, then crash hard
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_dir = run_json.parent
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in run_dir.glob("round_0[12]/*.png")}
    assert len(before) == 2
    calls_before = log.read_text().splitlines()

    res = subprocess.run(
        [sys.executable, "-m", "gems_graph.app.cli", "run", "--resume", run_dir.name, "--json", *db],
        env=env,
        cwd=home.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["status"] == "passed" and summary["rounds"] == 4
    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in run_dir.glob("round_0[12]/*.png")}
    assert after == before  # rounds 1-2 untouched: same files, same bytes
    new_calls = log.read_text().splitlines()[len(calls_before) :]
    assert not any(line.startswith("0\t") for line in new_calls)  # round 1's seed never asked again
    assert len(new_calls) <= 3  # at most rounds 3 (if it had started), 3 and 4
    assert (home / "checkpoints.sqlite").exists() == (store == "sqlite")  # the run lived in the store it was given
