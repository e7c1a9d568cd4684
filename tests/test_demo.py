"""What ``make demo`` runs: the default backends (shipped shapes model, shapes chat model,
SQLite, embedded Chroma), a multi-round run that writes images and a report."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def demo_prompt() -> str:
    return re.search(r"^DEMO_PROMPT \?= (.+)$", (REPO / "Makefile").read_text(), re.M).group(1).strip()


def test_the_demo_command_needs_several_rounds_and_leaves_images_and_a_report(tmp_path):
    env = {**os.environ, "GEMS_HOME": str(tmp_path / "home")}
    res = subprocess.run(
        [sys.executable, "-m", "gems_graph.app.cli", "run", demo_prompt(), "--rounds", "5", "--out", str(tmp_path / "runs"), "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=900,
    )
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["status"] in ("passed", "exhausted")
    assert summary["rounds"] >= 2, "the demo prompt should need more than one round"
    run_dir = Path(summary["run_dir"])
    pngs = sorted(run_dir.glob("round_*/*.png"))
    assert len(pngs) == summary["rounds"]
    assert (run_dir / "report.html").stat().st_size > 1000
    assert "skills" in summary and (tmp_path / "home" / "memory").exists()  # lessons were written
    # The loop at work: round 1 failed, and a rewritten prompt (not only a new seed) fixed it.
    rounds = json.loads((run_dir / "run.json").read_text())["rounds"]
    assert summary["status"] == "passed" and rounds[0]["candidates"][0]["score"] < 1.0
    assert rounds[-1]["prompt"] != rounds[0]["prompt"]
