"""A skill folder is data: nothing in it may lead the planner to a file outside it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gems_graph.skills.cli import skills_app
from gems_graph.skills.model import SkillResourceError, SkillValidationError
from gems_graph.skills.parser import parse_skill_file
from gems_graph.skills.registry import SkillRegistry

SKILL = "---\nname: {name}\ndescription: Reads its notes.\n---\n# Notes\nRead references/notes.md.\n"


def make_skill(root: Path, name: str = "notes") -> Path:
    folder = root / name
    (folder / "references").mkdir(parents=True)
    (folder / "SKILL.md").write_text(SKILL.format(name=name))
    (folder / "references" / "notes.md").write_text("inside")
    return folder


@pytest.fixture
def secret(tmp_path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("root:x:0:0")
    return outside


@pytest.mark.parametrize("escape", ["linked_folder", "linked_file"])
def test_symlinks_that_leave_the_folder_fail_validation_and_are_never_read(tmp_path, secret, escape):
    folder = make_skill(tmp_path / "skills")
    registry = SkillRegistry([tmp_path / "skills"])  # loaded while the folder was clean
    if escape == "linked_folder":
        os.rename(folder / "references", folder / "old")
        (folder / "references").symlink_to(secret, target_is_directory=True)
        leaked = "passwd"
    else:
        (folder / "references" / "leak.md").symlink_to(secret / "passwd")
        leaked = "leak.md"
    with pytest.raises(SkillValidationError, match="leads out of the skill folder"):
        parse_skill_file(folder)
    res = CliRunner().invoke(skills_app, ["validate", str(folder)])
    assert res.exit_code != 0 and "leads out of the skill folder" in res.output
    # A link swapped in after loading is not listed and not read either.
    assert leaked not in registry.get("notes").references()
    with pytest.raises(SkillResourceError):
        registry.read_resource("notes", leaked)


@pytest.mark.parametrize("path", ["../SKILL.md", "../../outside/passwd", "/etc/passwd", "references/../../x"])
def test_dotdot_and_absolute_paths_are_refused(tmp_path, secret, path):
    folder = make_skill(tmp_path / "skills")
    registry = SkillRegistry([tmp_path / "skills"])
    assert registry.read_resource("notes", "notes.md") == "inside"
    with pytest.raises(SkillResourceError):
        registry.read_resource("notes", path)
    assert folder.is_dir()


def test_a_link_that_stays_inside_the_folder_is_fine(tmp_path):
    folder = make_skill(tmp_path / "skills")
    (folder / "references" / "alias.md").symlink_to(folder / "references" / "notes.md")
    parse_skill_file(folder)
    assert SkillRegistry([tmp_path / "skills"]).read_resource("notes", "alias.md") == "inside"
