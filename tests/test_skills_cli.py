"""`gems skills list | show | validate` through typer's CliRunner on the sub-app."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from gems_graph.skills.cli import skills_app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(skills_app, list(args))


def test_list():
    r = run("list")
    assert r.exit_code == 0
    for n in ("spatial-layout", "text-rendering", "world-knowledge"):
        assert n in r.stdout


def test_list_json_with_user_dir_override(tmp_path):
    d = tmp_path / "counting"
    d.mkdir()
    (d / "SKILL.md").write_text("---\nname: counting\ndescription: Mine.\n---\nbody\n")
    r = run("list", "--json", "--skills-dir", str(tmp_path))
    assert r.exit_code == 0
    rows = {x["name"]: x for x in json.loads(r.stdout)}
    assert rows["counting"]["description"] == "Mine." and rows["counting"]["origin"] == str(tmp_path)
    assert "overrides the built-in skill" in r.stderr


def test_show():
    r = run("show", "spatial-layout")
    assert r.exit_code == 0
    assert "tools: layout_objects" in r.stdout and "# Spatial layout" in r.stdout
    assert "references: regions.md" in r.stdout


def test_show_bad_names():
    for name, words in (("nope", "unknown skill 'nope'"), ("../counting", "cannot contain"), ("a/b", "cannot contain")):
        r = run("show", name)
        assert r.exit_code == 2 and words in r.stderr and r.stdout == ""


def test_validate_ok_builtin_folder():
    from gems_graph.skills import builtin_skills_dir

    r = run("validate", str(builtin_skills_dir()))
    assert r.exit_code == 0 and r.stdout.count("ok: ") >= 9


def test_validate_reports_file_line_problem(tmp_path):
    d = tmp_path / "broken"
    d.mkdir()
    f = d / "SKILL.md"
    f.write_text("---\nname: broken\ndescription: d\nmetadata:\n  tools: [nope]\n---\nbody\n")
    r = run("validate", str(d))
    assert r.exit_code == 2
    assert r.stderr.strip().startswith(f"{f}:5: unknown tool 'nope'")


def test_validate_binary_and_big(tmp_path):
    d = tmp_path / "bin"
    d.mkdir()
    (d / "SKILL.md").write_bytes(b"\x00\xff" * 10)
    r = run("validate", str(d / "SKILL.md"))
    assert r.exit_code == 2 and "binary" in r.stderr
    (d / "SKILL.md").write_bytes(b"a" * (10 * 1024 * 1024))
    r = run("validate", str(d))
    assert r.exit_code == 2 and "larger than" in r.stderr


def test_validate_missing_and_empty(tmp_path):
    assert run("validate", str(tmp_path / "nope")).exit_code == 2
    r = run("validate", str(tmp_path))
    assert r.exit_code == 2 and "no SKILL.md" in r.stderr


def test_missing_skills_dir_exits_2(tmp_path):
    r = run("list", "--skills-dir", str(tmp_path / "nope"))
    assert r.exit_code == 2 and "skills folder not found" in r.stderr
