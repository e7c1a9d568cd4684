"""Fixtures for the memory tests: the real embedding model, a real ``chroma run``
server on loopback, and one ``store`` fixture parametrised over every backend.

Import the fixtures into a test module with ``from tests.conftest_memory import *``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from gems_graph.memory.embeddings import default_embeddings
from tests.servers import free_port

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

__all__ = ["embeddings", "chroma_server", "store", "make_lesson"]


@pytest.fixture(scope="session")
def embeddings():
    """The packaged all-MiniLM-L6-v2, loaded once (the loader caches it per process)."""
    e = default_embeddings()
    e.embed_query("warm up")
    return e


def _chroma_bin() -> str:
    exe = Path(sys.executable).with_name("chroma")
    return str(exe) if exe.exists() else (shutil.which("chroma") or "chroma")


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    """``chroma run`` on 127.0.0.1:FREE_PORT with its data in a temp folder; stopped after."""
    data = tmp_path_factory.mktemp("chroma_server")
    port = free_port()
    log = open(data / "server.log", "wb")
    proc = subprocess.Popen(
        [_chroma_bin(), "run", "--path", str(data / "db"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/api/v2/heartbeat", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.close()
            pytest.fail("chroma run did not start: " + (data / "server.log").read_text(errors="replace")[-2000:])
        time.sleep(0.2)
    yield f"chroma://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


@pytest.fixture(params=["embedded", "server", "langgraph"])
def store(request, tmp_path, embeddings):
    """An empty experience store of each kind, all with the same real embeddings."""
    from gems_graph.memory import open_experience_store

    if request.param == "embedded":
        s = open_experience_store(f"chroma:{tmp_path / 'memory'}", embeddings=embeddings)
    elif request.param == "server":
        s = open_experience_store(request.getfixturevalue("chroma_server"), embeddings=embeddings)
        s.clear()  # the server lives for the session; each test starts empty
    else:
        from langgraph.store.memory import InMemoryStore

        from gems_graph.memory.langgraph_store import LangGraphExperienceStore

        s = LangGraphExperienceStore(InMemoryStore(index={"dims": 384, "embed": embeddings, "fields": ["text"]}))
    yield s
    if request.param == "server":
        s.clear()


def make_lesson(text: str, family: str = "shapes", **kw):
    """A lesson dict with the fields a distilled one has."""
    from gems_graph.memory.store import normalize_lesson

    return normalize_lesson({"text": text, "prompt": kw.pop("prompt", text), "generator_family": family, "status": "passed", **kw})
