"""The command blocks of the README and the docs that run offline, run as written.

A block is marked by the comment line ``<!-- runs offline: tests/test_readme_blocks.py -->``
just before it, in README.md or a page under ``docs/``; the block is read from the
page, never copied here, so a command that stops working fails this test. Each runs in a fresh folder with its own
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


def pages() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def marked_blocks(page: Path) -> list[tuple[str, str, int]]:
    """(language, code, line) of every marked block in ``page``."""
    text = page.read_text(encoding="utf-8")
    return [(m.group(1), m.group(2), text[: m.start()].count("\n") + 2) for m in BLOCK.finditer(text)]


def all_blocks() -> list[tuple[str, str, str, int]]:
    """(page, language, code, line) of every marked block, README first."""
    return [(p.relative_to(REPO).as_posix(), *block) for p in pages() for block in marked_blocks(p)]


def test_the_readme_and_the_docs_mark_blocks_that_run():
    for page in pages():  # every marker is followed by a block it found
        assert page.read_text(encoding="utf-8").count(MARKER) == len(marked_blocks(page)), page
    readme = [language for page, language, _, _ in all_blocks() if page == "README.md"]
    assert {"sh", "python"} <= set(readme)  # the PATH block and the Python example
    assert len(all_blocks()) >= 4


@pytest.mark.parametrize(
    ("page", "language", "code", "line"), all_blocks(), ids=lambda v: str(v) if isinstance(v, int) or v.endswith(".md") else None
)
def test_a_marked_block_runs(tmp_path, page, language, code, line):
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
    assert res.returncode == 0, f"{page} line {line}:\n{code}\n--- stderr ---\n{res.stderr[-3000:]}"
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
