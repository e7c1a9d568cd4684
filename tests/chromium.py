"""Headless Chromium for tests that open HTML the way a person would.

Debian's ``chromium`` package; ``ensure_chromium()`` installs it with apt-get when
it is missing and we are root (the Makefile does the same), else the test skips.
Flags keep it offline and quiet: no sandbox (containers), no GPU, no background
networking, no component updates, no first-run UI; a fresh profile per call.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
]


def ensure_chromium() -> str:
    """Path of a chromium binary, installing Debian's package if needed (root only)."""
    found = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        res = subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True, text=True, env=env, timeout=900)
        if res.returncode != 0:  # stale package lists: refresh once
            subprocess.run(["apt-get", "update"], capture_output=True, env=env, timeout=600)
            subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True, env=env, timeout=900)
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    pytest.skip("chromium is not installed and could not be installed (apt-get install -y chromium)")


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    binary = ensure_chromium()
    with tempfile.TemporaryDirectory(prefix="gems-chromium-") as profile:
        cmd = [binary, *FLAGS, f"--user-data-dir={profile}", *args]
        env = {**os.environ, "HOME": profile}
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def screenshot(page: Path, png: Path, size: tuple[int, int] = (1200, 2000), timeout: float = 120) -> Path:
    """Render ``page`` (a local HTML file) to ``png``."""
    res = _run(
        [f"--screenshot={png}", f"--window-size={size[0]},{size[1]}", "--virtual-time-budget=5000", page.resolve().as_uri()], timeout
    )
    assert png.is_file() and png.stat().st_size > 0, f"no screenshot: {res.stderr[-2000:]}"
    return png


def dump_dom(page: Path, timeout: float = 120) -> str:
    """The DOM after the page's scripts ran (``--dump-dom``)."""
    res = _run(["--dump-dom", "--virtual-time-budget=5000", page.resolve().as_uri()], timeout)
    assert res.returncode == 0 and res.stdout, f"chromium --dump-dom failed: {res.stderr[-2000:]}"
    return res.stdout
