"""What a new user meets in the first hour: one-line errors, the right exit codes, the
settings they wrote honoured, and a way to see and resume what happened."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

BACKENDS = ["--generator", "colour:", "--chat-model", "scripted:fix=2"]


def gems(args, cwd: Path, env_extra: dict | None = None, timeout: int = 300, stdin: str = ""):
    env = {**os.environ, "GEMS_PLUGINS": "tests.plugin_backends", "PYTHONPATH": str(REPO), "GEMS_MEMORY": "none", **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "gems_graph.app.cli", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout, input=stdin
    )


def test_version():
    res = gems(["--version"], Path.cwd())
    assert res.returncode == 0 and res.stdout.startswith("gems-graph ")


def test_shell_completion_is_offered():
    # Typer guesses the shell from the parent processes unless told not to; a test runner's may be none.
    res = gems(["--show-completion", "bash"], Path.cwd(), {"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert res.returncode == 0 and "_gems_completion" in res.stdout


def test_an_unreachable_chat_endpoint_is_one_line_a_failed_run_and_resumable(tmp_path):
    res = gems(
        [
            "run",
            "a red circle",
            "--generator",
            "colour:",
            "--chat-model",
            "openai-compatible:http://127.0.0.1:9/v1#m?max_retries=0",
            "--json",
        ],
        tmp_path,
    )
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout
    summary = json.loads(res.stdout)  # --json still prints the run's JSON object
    assert summary["status"] == "failed" and "127.0.0.1:9" in summary["error"]
    assert f"gems run --resume {summary['thread_id']}" in res.stderr


@pytest.mark.parametrize("bad_out", ["file", "under_file", "/proc/x"])
def test_an_unwritable_out_is_bad_input(tmp_path, bad_out):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    out = {"file": str(blocker), "under_file": str(blocker / "runs"), "/proc/x": "/proc/x"}[bad_out]
    res = gems(["run", "a red square", *BACKENDS, "--out", out], tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "is not a folder that can be written" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_the_prompt_limit_from_gems_toml_is_honoured(tmp_path):
    (tmp_path / "gems.toml").write_text("max_prompt_chars = 8000\n")
    long_prompt = "a red square " + "x" * 5186
    res = gems(["run", long_prompt, *BACKENDS, "--rounds", "1", "--json"], tmp_path)
    assert res.returncode == 0, res.stderr
    (tmp_path / "gems.toml").write_text("max_prompt_chars = 100\n")
    res = gems(["run", long_prompt, *BACKENDS], tmp_path)
    assert res.returncode == 2 and "limit is 100" in res.stderr


def test_a_misspelt_setting_variable_is_warned_about(tmp_path):
    res = gems(["run", "a red square", *BACKENDS, "--rounds", "1", "--json"], tmp_path, {"GEMS_MAX_ROUND": "3"})
    assert res.returncode == 0
    assert "GEMS_MAX_ROUND is not a GEMS setting" in res.stderr and "GEMS_MAX_ROUNDS" in res.stderr


def test_config_prints_each_setting_and_where_it_came_from(tmp_path):
    (tmp_path / "gems.toml").write_text("max_rounds = 3\n")
    res = gems(["config"], tmp_path, {"GEMS_CANDIDATES_PER_ROUND": "2"})
    assert res.returncode == 0, res.stderr
    assert "max_rounds = 3    # file:" in res.stdout
    assert "candidates_per_round = 2    # env:GEMS_CANDIDATES_PER_ROUND" in res.stdout
    assert 'generator = "shapes"    # default' in res.stdout


def test_debug_shows_the_traceback_and_only_then(tmp_path):
    args = ["run", "a red circle", "--generator", "colour:", "--chat-model", "openai-compatible:http://127.0.0.1:9/v1#m?max_retries=0"]
    quiet = gems(args, tmp_path)
    loud = gems([*args, "--debug"], tmp_path)
    assert quiet.returncode == 1 and "Traceback" not in quiet.stderr
    assert "Traceback" in loud.stderr


def test_the_progress_shows_what_the_refiner_changed(tmp_path):
    out = tmp_path / ("a-folder-with-a-long-name-" * 4)
    res = gems(["run", "a red square", *BACKENDS, "--rounds", "3", "--out", str(out)], tmp_path)
    assert res.returncode == 0, res.stderr
    image = next(out.glob("*/round_01/*.png"))
    assert any(str(image) in line for line in res.stderr.splitlines())  # no path broken across lines
    assert "run folder" in res.stderr and "loading models" in res.stderr
    assert "change: + FIXED" in res.stderr
    assert "c1 Is there a square?" in res.stderr  # check ids shown with their questions


def test_doctor_passes_on_the_shipped_defaults_with_its_probes(tmp_path):
    res = gems(["doctor"], tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "structured output" in res.stdout and "fail" not in res.stdout.lower().replace("failed", "")


@pytest.mark.parametrize("damage", ["garbage", "truncated", "folder"])
def test_a_damaged_checkpoint_database_is_one_line_naming_it_and_is_left_alone(tmp_path, damage):
    db = tmp_path / "checkpoints.sqlite"
    if damage == "folder":
        db.mkdir()
    else:
        ok = gems(["run", "a red square", *BACKENDS, "--rounds", "1", "--checkpoint-db", str(db), "--json"], tmp_path)
        assert ok.returncode == 0, ok.stderr
        data = db.read_bytes()
        db.write_bytes(b"this is not sqlite at all" * 100 if damage == "garbage" else data[:1000])
    before = db.read_bytes() if db.is_file() else None
    res = gems(["run", "a red square", *BACKENDS, "--checkpoint-db", str(db)], tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert str(db) in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert (db.read_bytes() if db.is_file() else None) == before  # nothing else is lost or rewritten


def test_postgres_without_the_driver_says_which_extra_to_install(tmp_path):
    import importlib.util

    if importlib.util.find_spec("langgraph.checkpoint.postgres") is not None:
        pytest.skip("the postgres extra is installed here")
    res = gems(["run", "a red square", *BACKENDS, "--checkpoint-db", "postgresql://127.0.0.1:1/x"], tmp_path)
    assert res.returncode == 2 and "gems-graph[postgres]" in res.stderr


def test_human_feedback_asks_in_the_terminal_and_a_note_reaches_the_refiner(tmp_path):
    args = ["run", "a red square", *BACKENDS, "--human-feedback", "--rounds", "3", "--out", str(tmp_path / "runs"), "--json"]
    res = gems(args, tmp_path, stdin="make it redder\naccept\n")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["status"] == "accepted" and out["rounds"] == 2
    assert "review of round 1" in res.stderr and "failed: " in res.stderr and "[0] " in res.stderr
    assert "human feedback after round 1: make it redder" in out["notes"]


def test_human_feedback_without_an_answer_pauses_and_resume_asks_again(tmp_path):
    args = ["run", "a red square", *BACKENDS, "--human-feedback", "--out", str(tmp_path / "runs"), "--json"]
    res = gems(args, tmp_path, stdin="")
    assert res.returncode == 3, res.stderr  # paused: not done, not failed
    paused = json.loads(res.stdout)
    assert paused["status"] == "paused" and f"resume with: gems run --resume {paused['thread_id']}" in res.stderr
    res = gems(["run", "--resume", paused["thread_id"], "--json"], tmp_path, stdin="accept 0\n")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["status"] == "accepted"


def test_human_feedback_asks_again_after_an_index_with_no_candidate(tmp_path):
    args = ["run", "a red square", *BACKENDS, "--human-feedback", "--out", str(tmp_path / "runs"), "--json"]
    res = gems(args, tmp_path, stdin="accept 7\naccept\n")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["status"] == "accepted"
    assert "no candidate '7' with an image; the candidates are [0]" in res.stderr


def test_runs_started_together_all_pass_the_folder_check(tmp_path):
    """Each check removes the folders it made; checks of the same missing folder at once must not fail each other."""
    import threading

    from gems_graph.app.cli import writable_folder

    failures: list[BaseException] = []
    for trial in range(20):
        target = tmp_path / f"t{trial}" / "home" / "runs"

        def check(target=target):
            try:
                writable_folder(target, "the runs folder")
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                failures.append(exc)

        threads = [threading.Thread(target=check) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert failures == []
