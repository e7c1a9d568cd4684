"""Hostile files we read: a user skill's SKILL.md, a lessons file to import, a run folder's
run.json. Each gives one line naming the file and the field, exit 2, no traceback, and
fast: nothing is expanded, recursed into or read whole before it is bounded."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gems_graph.app.cli import app
from tests.test_cli_first_contact import BACKENDS

#: A "billion laughs": nine lists of nine aliases of the list before, under a key a skill may have.
BOMB = "\n".join(
    ["compatibility:", '  - &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [f"  - &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)]
)


def _one_line_exit_2(res, *needles: str, prefix: str = "error: ") -> str:
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and res.exception is None or isinstance(res.exception, SystemExit)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), res.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _skill(root: Path, frontmatter: str) -> Path:
    folder = root / "skills" / "hostile"
    folder.mkdir(parents=True)
    (folder / "SKILL.md").write_text(f"---\nname: hostile\ndescription: a skill\n{frontmatter}\n---\nbody\n")
    return folder / "SKILL.md"


@pytest.mark.parametrize(
    "frontmatter, problem",
    [
        (BOMB, "expands to more than"),
        ("metadata:\n  hints: " + "[" * 35_000 + "]" * 35_000, "nests deeper than"),
        ("metadata:\n  triggers: [" + ", ".join(f"*a{i}" for i in range(100)) + "]", "aliases"),
    ],
    ids=["alias-bomb", "35000-deep", "many-aliases"],
)
def test_a_hostile_skill_frontmatter_fails_fast_naming_the_file(tmp_path, frontmatter, problem, cli_backends):
    if "*a0" in frontmatter:
        frontmatter = "\n".join(f"x{i}: &a{i} v" for i in range(100)) + "\n" + frontmatter
    path = _skill(tmp_path, frontmatter)
    start = time.monotonic()
    res = CliRunner().invoke(app, ["skills", "validate", str(path.parent.parent)])
    line = _one_line_exit_2(res, str(path), "frontmatter", problem, prefix=str(path))
    assert line.split(str(path))[1][1].isdigit()  # FILE:LINE
    res = CliRunner().invoke(app, ["run", "a red square", *BACKENDS, "--skills-dir", str(tmp_path / "skills")])
    _one_line_exit_2(res, str(path), problem)
    assert time.monotonic() - start < 20


# -- gems memory import ---------------------------------------------------------------------------

GOOD = {"text": "say red explicitly", "prompt": "a red square", "generator_family": "shapes", "rounds": 2, "score_gain": 0.5}


@pytest.mark.parametrize(
    "line, field",
    [
        ("[" * 100_000 + "]" * 100_000, "longer than"),
        ('{"text": "x", "skills": ' + "[" * 5_000 + "]" * 5_000 + "}", "nested too deeply"),
        (json.dumps(GOOD).replace('"score_gain": 0.5', '"score_gain": 1e400'), "out of range"),
        (json.dumps(GOOD).replace('"score_gain": 0.5', '"score_gain": NaN'), "NaN"),
        (json.dumps({**GOOD, "rounds": -3}), "'rounds'"),
        (json.dumps({**GOOD, "uses": 1.5}), "'uses'"),
        (json.dumps({**GOOD, "skills": "spatial-layout"}), "'skills' must be a list of strings"),
        (json.dumps({**GOOD, "prompt": {"a": 1}}), "'prompt' must be a string"),
        (json.dumps({**GOOD, "text": ""}), "'text'"),
        ('"just a string"', "JSON object"),
    ],
    ids=[
        "deep-list",
        "deep-field",
        "1e400",
        "NaN",
        "negative-rounds",
        "fractional-uses",
        "string-for-list",
        "object-for-string",
        "no-text",
        "not-an-object",
    ],
)
def test_a_hostile_lessons_file_is_refused_naming_the_file_line_and_field(tmp_path, line, field):
    path = tmp_path / "lessons.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + line + "\n")
    res = CliRunner().invoke(app, ["memory", "import", str(path)])
    _one_line_exit_2(res, f"{path}:2:", field)
    listed = CliRunner().invoke(app, ["memory", "list", "--json"])
    assert listed.exit_code == 0 and listed.stdout.strip() == ""  # nothing half imported


def test_a_huge_lessons_file_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "lessons.jsonl"
    with path.open("wb") as f:
        f.truncate(22 * 1024 * 1024)
    start = time.monotonic()
    _one_line_exit_2(CliRunner().invoke(app, ["memory", "import", str(path)]), str(path), "larger than")
    assert time.monotonic() - start < 10


def test_a_good_lessons_file_still_imports(tmp_path):
    path = tmp_path / "lessons.jsonl"
    path.write_text(json.dumps(GOOD) + "\n")
    res = CliRunner().invoke(app, ["memory", "import", str(path)])
    assert res.exit_code == 0 and "imported 1 lesson" in res.stdout


# -- gems report ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "record, field",
    [
        ({"rounds": "not a list"}, "rounds: expected a list, got str"),
        ({"rounds": [{"index": 1, "candidates": {"a": 1}}]}, "rounds[0].candidates: expected a list, got dict"),
        ({"rounds": [{"index": 1, "candidates": [{"verdicts": [1, 2]}]}]}, "rounds[0].candidates[0].verdicts[0]: expected an object"),
        ({"checks": [{"id": "c1", "question": ["a"]}]}, "checks[0].question: expected str"),
        ({"best": "round 1"}, "best: expected an object, got str"),
        ({"score": "high"}, "score: expected int or float, got str"),
    ],
    ids=["rounds-str", "candidates-dict", "verdict-int", "question-list", "best-str", "score-str"],
)
def test_a_run_json_of_the_wrong_shape_names_the_field(tmp_path, record, field):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps({"run_id": "r", "prompt": "p", "status": "passed", **record}))
    _one_line_exit_2(CliRunner().invoke(app, ["report", str(run_dir)]), str(run_dir / "run.json"), field)


def test_a_deeply_nested_run_json_is_one_line(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_text('{"rounds": ' + "[" * 100_000 + "]" * 100_000 + "}")
    _one_line_exit_2(CliRunner().invoke(app, ["report", str(run_dir)]), str(run_dir / "run.json"), "nested too deeply")
