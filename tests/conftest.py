"""Shared fixtures: every test gets its own GEMS home, so nothing leaks between tests."""

from __future__ import annotations

import pytest

from gems_graph import registry


@pytest.fixture(autouse=True)
def gems_home(tmp_path, monkeypatch):
    home = tmp_path / "gems_home"
    monkeypatch.setenv("GEMS_HOME", str(home))
    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "False")
    yield home
    registry.generators.clear_cache()
    registry.chat_models.clear_cache()
