"""The README's command blocks that run offline, run as written.

A block is marked by the comment line ``<!-- runs offline: tests/test_readme_blocks.py -->``
just before it; the block is read from the README, never copied here, so a command
that stops working fails this test. Each runs in a fresh folder with its own
``GEMS_HOME``, beside a ``.venv`` that is the environment the tests run in.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

MARKER = "<!-- runs offline: tests/test_readme_blocks.py -->"
BLOCK = re.compile(re.escape(MARKER) + r"\n```(sh|python)\n(.*?)\n```", re.S)


def marked_blocks() -> list[tuple[str, str, int]]:
    """(language, code, line) of every marked block in the README."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return [(m.group(1), m.group(2), text[: m.start()].count("\n") + 2) for m in BLOCK.finditer(text)]


def test_the_readme_marks_blocks_that_run():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert text.count(MARKER) == len(marked_blocks()) >= 4  # every marker is followed by a block it found


@pytest.mark.parametrize(("language", "code", "line"), marked_blocks(), ids=lambda v: str(v) if isinstance(v, int) else None)
def test_a_marked_readme_block_runs(tmp_path, language, code, line):
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parents[1], target_is_directory=True)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(REPO),
    }
    if language == "sh":
        command = ["bash", "-e", "-o", "pipefail", "-c", code]
    else:
        command = [sys.executable, "-c", code]
    res = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, f"README.md line {line}:\n{code}\n--- stderr ---\n{res.stderr[-3000:]}"
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
