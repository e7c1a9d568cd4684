"""SkillRegistry: built-ins, user folders, overrides, lookups and reference files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gems_graph.skills import (
    SkillError,
    SkillOverrideWarning,
    SkillRegistry,
    SkillResourceError,
    SkillValidationError,
    UnknownSkillError,
    default_registry,
)
from gems_graph.skills.model import MAX_RESOURCE_BYTES

BUILTINS = {
    "creative-drawing",
    "aesthetic-drawing",
    "spatial-layout",
    "text-rendering",
    "counting",
    "attribute-binding",
    "negation",
    "photorealistic-people",
    "world-knowledge",
}


def make_skill(root: Path, name: str, description: str = "A test skill. Use in tests.", body: str = "Do it.", metadata: str = "") -> Path:
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "SKILL.md").write_text(f"---\nname: {name}\ndescription: {description}\n{metadata}---\n{body}\n")
    return d


def test_builtins_listed_with_descriptions():
    reg = SkillRegistry()
    assert BUILTINS <= set(reg.names())
    cat = dict(reg.catalog())
    assert all(cat[n] for n in BUILTINS)
    assert [n for n, _ in reg.catalog()] == sorted(cat)


def test_user_folder_adds_skills(tmp_path):
    make_skill(tmp_path, "watercolor-style")
    reg = SkillRegistry([tmp_path])
    assert "watercolor-style" in reg
    assert reg.get("watercolor-style").origin == str(tmp_path)
    assert BUILTINS <= set(reg.names())


def test_single_skill_folder_accepted(tmp_path):
    d = make_skill(tmp_path, "solo")
    assert SkillRegistry([d], include_builtin=False).names() == ["solo"]


def test_user_skill_overrides_builtin_with_warning(tmp_path):
    make_skill(tmp_path, "counting", description="My own counting.")
    with pytest.warns(SkillOverrideWarning, match="overrides the built-in skill"):
        reg = SkillRegistry([tmp_path])
    assert reg.get("counting").description == "My own counting."


def test_missing_user_folder_is_an_error(tmp_path):
    with pytest.raises(SkillError, match="skills folder not found"):
        SkillRegistry([tmp_path / "nope"])


def test_invalid_user_skill_fails_the_registry(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "SKILL.md").write_text("---\n[1, 2]\n---\nbody\n")
    with pytest.raises(SkillValidationError, match=r"SKILL.md:2: frontmatter must be a mapping"):
        SkillRegistry([tmp_path])


def test_env_path_and_extra_dirs(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    make_skill(a, "from-env")
    make_skill(b, "from-arg")
    monkeypatch.setenv("GEMS_SKILLS_PATH", str(a))
    reg = default_registry([b])
    assert {"from-env", "from-arg"} <= set(reg.names())


@pytest.mark.parametrize(
    "name, words",
    [
        ("../counting", "cannot contain"),
        ("counting/../negation", "cannot contain"),
        ("skills/counting", "cannot contain"),
        ("..", "cannot contain"),
        ("a\\b", "cannot contain"),
        ("no-such-skill", "unknown skill 'no-such-skill'"),
        ("Counting", "lowercase"),
        ("", "non-empty"),
    ],
)
def test_get_rejects_bad_names(name, words):
    reg = SkillRegistry()
    with pytest.raises(UnknownSkillError, match=None) as ei:
        reg.get(name)
    assert words in str(ei.value)


def test_unknown_name_lists_known():
    with pytest.raises(UnknownSkillError) as ei:
        SkillRegistry().get("nope")
    assert "counting" in str(ei.value) and "spatial-layout" in str(ei.value)


# -- reference files ---------------------------------------------------------------------
@pytest.fixture
def ref_registry(tmp_path):
    d = make_skill(tmp_path / "skills", "with-refs")
    refs = d / "references"
    (refs / "sub").mkdir(parents=True)
    (refs / "guide.md").write_text("the guide")
    (refs / "sub" / "more.md").write_text("more")
    (refs / "blob.bin").write_bytes(b"\x89PNG\x00\x00")
    (refs / "big.md").write_text("z" * (MAX_RESOURCE_BYTES + 1))
    (d / "secret.txt").write_text("outside references")
    (tmp_path / "outside.txt").write_text("outside the skill")
    registry = SkillRegistry([tmp_path / "skills"], include_builtin=False)
    # A link out of the folder added after loading (loading refuses one: tests/test_skills_escape.py).
    os.symlink(tmp_path / "outside.txt", refs / "link.md")
    return registry


def test_read_resource(ref_registry):
    assert ref_registry.read_resource("with-refs", "guide.md") == "the guide"
    assert ref_registry.read_resource("with-refs", "references/guide.md") == "the guide"
    assert ref_registry.read_resource("with-refs", "sub/more.md") == "more"
    assert "guide.md" in ref_registry.get("with-refs").references()


@pytest.mark.parametrize(
    "file, words",
    [
        ("../SKILL.md", "outside the references/ folder"),
        ("../secret.txt", "outside the references/ folder"),
        ("../../outside.txt", "outside the references/ folder"),
        ("sub/../../secret.txt", "outside the references/ folder"),
        ("link.md", "outside the references/ folder"),
        ("/etc/passwd", "absolute paths"),
        ("missing.md", "no reference file"),
        ("blob.bin", "binary"),
        ("big.md", "larger than"),
        ("", "non-empty"),
        (".", "outside the references/ folder"),
    ],
)
def test_read_resource_refusals(ref_registry, file, words):
    with pytest.raises(SkillResourceError) as ei:
        ref_registry.read_resource("with-refs", file)
    assert words in str(ei.value)


def test_read_resource_unknown_skill(ref_registry):
    with pytest.raises(UnknownSkillError):
        ref_registry.read_resource("../with-refs", "guide.md")


def test_builtin_references_readable():
    reg = SkillRegistry()
    assert "Region" in reg.read_resource("spatial-layout", "regions.md")
    assert reg.get("text-rendering").references() == ["typography.md"]
