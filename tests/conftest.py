"""Shared fixtures: every test gets its own GEMS home and working directory, and sees
none of the developer's ``GEMS_*`` variables, so nothing leaks in or out."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gems_graph.models import registry

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def gems_home(tmp_path, monkeypatch):
    for name in [n for n in os.environ if n.startswith("GEMS_")]:
        monkeypatch.delenv(name)
    home = tmp_path / "gems_home"
    monkeypatch.setenv("GEMS_HOME", str(home))
    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "False")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # a gems.toml or runs/ where pytest was started is not read or written
    yield home
    registry.generators.clear_cache()
    registry.chat_models.clear_cache()


def repo_snapshot() -> set[str]:
    """What the repository's top level and notebooks/ hold (to check a test added nothing)."""
    return {p.name for p in REPO.iterdir()} | {f"notebooks/{p.name}" for p in (REPO / "notebooks").iterdir()}


@pytest.fixture
def cli_backends(monkeypatch):
    """The test backends (``colour:``, ``scripted:``) for ``gems`` commands run in this process,
    and no memory. Registered again each time: an earlier test may have left a fresh registry."""
    import importlib

    import tests.plugin_backends

    monkeypatch.setenv("GEMS_PLUGINS", "tests.plugin_backends")
    monkeypatch.setenv("GEMS_MEMORY", "none")
    importlib.reload(tests.plugin_backends)
