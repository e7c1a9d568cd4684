"""``gems memory ...`` on a real embedded store, through typer's CliRunner."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from gems_graph.memory import open_experience_store
from gems_graph.memory.cli import memory_app
from tests.conftest_memory import *  # noqa: F401,F403 (fixtures)
from tests.conftest_memory import make_lesson

runner = CliRunner()
COUNT = "For 'two red circles' the count was wrong; fixed by adding 'exactly two'."
POSITION = "For 'a blue square above a green triangle' the position failed; fixed by 'at the top'."


def _filled(tmp_path, embeddings):
    spec = f"chroma:{tmp_path / 'mem'}"
    ids = open_experience_store(spec, embeddings=embeddings).add([make_lesson(COUNT), make_lesson(POSITION, family="flux-dev")])
    return spec, ids


def test_list_show_search(tmp_path, embeddings):
    spec, ids = _filled(tmp_path, embeddings)
    r = runner.invoke(memory_app, ["--memory", spec, "list"])
    assert r.exit_code == 0, r.output
    assert ids[0] in r.stdout and ids[1] in r.stdout and "[flux-dev]" in r.stdout
    r = runner.invoke(memory_app, ["--memory", spec, "list", "--json"])
    assert {json.loads(line)["id"] for line in r.stdout.splitlines()} == set(ids)
    r = runner.invoke(memory_app, ["--memory", spec, "show", ids[0]])
    assert r.exit_code == 0 and json.loads(r.stdout)["text"] == COUNT
    r = runner.invoke(memory_app, ["--memory", spec, "search", "three red circles", "-k", "1"])
    assert r.exit_code == 0 and ids[0] in r.stdout and "sim=" in r.stdout and ids[1] not in r.stdout
    r = runner.invoke(memory_app, ["--memory", spec, "search", "red circles", "--family", "flux-dev", "--json"])
    assert [json.loads(line)["id"] for line in r.stdout.splitlines()] == [ids[1]]


def test_forget_clear_export_import(tmp_path, embeddings):
    spec, ids = _filled(tmp_path, embeddings)
    out = tmp_path / "export.jsonl"
    r = runner.invoke(memory_app, ["--memory", spec, "export", str(out)])
    assert r.exit_code == 0 and "exported 2" in r.stdout and len(out.read_text().splitlines()) == 2
    r = runner.invoke(memory_app, ["--memory", spec, "forget", ids[0]])
    assert r.exit_code == 0 and open_experience_store(spec).count() == 1
    r = runner.invoke(memory_app, ["--memory", spec, "forget", ids[0]])
    assert r.exit_code == 2 and "no lesson" in r.output  # a miss is bad input, as in `gems skills show`
    r = runner.invoke(memory_app, ["--memory", spec, "clear"], input="n\n")
    assert r.exit_code == 1 and open_experience_store(spec).count() == 1
    r = runner.invoke(memory_app, ["--memory", spec, "clear", "--yes"])
    assert r.exit_code == 0 and "deleted 1" in r.stdout and open_experience_store(spec).count() == 0
    r = runner.invoke(memory_app, ["--memory", spec, "import", str(out)])
    assert r.exit_code == 0, r.output
    assert "imported 2" in r.stdout and open_experience_store(spec).count() == 2


def test_default_store_is_under_gems_home(gems_home, embeddings):
    open_experience_store(None, embeddings=embeddings).add([make_lesson(COUNT)])
    r = runner.invoke(memory_app, ["list"])
    assert r.exit_code == 0 and "uses=1" in r.stdout


def test_missing_corrupt_store_and_bad_files_exit_2(tmp_path, embeddings):
    missing = tmp_path / "nowhere"
    for args in (["list"], ["show", "L1"], ["search", "x"], ["forget", "L1"], ["clear", "--yes"], ["export", str(tmp_path / "o.jsonl")]):
        r = runner.invoke(memory_app, ["--memory", f"chroma:{missing}", *args])
        assert r.exit_code == 2, (args, r.output)
        assert f"no memory store at {missing}" in r.output and len(r.output.strip().splitlines()) == 1
    assert not missing.exists()  # inspecting never creates a store
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "chroma.sqlite3").write_bytes(b"garbage" * 1000)
    r = runner.invoke(memory_app, ["--memory", f"chroma:{corrupt}", "list"])
    assert r.exit_code == 2 and "corrupt" in r.output and str(corrupt) in r.output
    spec, _ = _filled(tmp_path, embeddings)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\nnot json\n')
    r = runner.invoke(memory_app, ["--memory", spec, "import", str(bad)])
    assert r.exit_code == 2 and "bad.jsonl:2" in r.output
    r = runner.invoke(memory_app, ["--memory", spec, "import", str(tmp_path / "absent.jsonl")])
    assert r.exit_code == 2 and "no such file" in r.output
    r = runner.invoke(memory_app, ["--memory", "chroma://127.0.0.1:9", "list"])
    assert r.exit_code == 2 and "cannot reach Chroma server at http://127.0.0.1:9" in r.output
    assert open_experience_store(spec).count() == 2
