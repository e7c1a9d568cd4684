"""SKILL.md parsing and validation: every error names file, line and problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from gems_graph.skills import SkillValidationError, parse_skill_file
from gems_graph.skills.model import MAX_SKILL_FILE_BYTES
from tests.test_skills_registry import BUILTINS

GOOD = """---
name: my-skill
description: Does a thing. Use when the prompt mentions things.
metadata:
  triggers: [thing, "two words"]
  checks:
    - Is there a thing?
    - id: exact
      question: Does it say "{quoted}"?
  tools: [layout_objects]
  hints:
    negative_prompt: blur
    guidance: 5.5
---
# Instructions

Do the thing well.
"""


def write(tmp_path: Path, text: str | bytes, folder: str = "my-skill") -> Path:
    d = tmp_path / folder
    d.mkdir(parents=True, exist_ok=True)
    f = d / "SKILL.md"
    f.write_bytes(text if isinstance(text, bytes) else text.encode())
    return f


def error(tmp_path: Path, text: str | bytes, folder: str = "my-skill") -> SkillValidationError:
    f = write(tmp_path, text, folder)
    with pytest.raises(SkillValidationError) as ei:
        parse_skill_file(f)
    assert ei.value.file == str(f)
    assert str(ei.value).startswith(f"{f}:{ei.value.line}: ")
    return ei.value


def test_good_skill_parses(tmp_path):
    s = parse_skill_file(write(tmp_path, GOOD).parent)
    assert s.name == "my-skill"
    assert s.instructions.startswith("# Instructions") and "Do the thing well." in s.instructions
    assert s.triggers == ("thing", "two words")
    assert [c.question for c in s.checks][0] == "Is there a thing?"
    assert s.checks[1].id == "exact"
    assert s.tools == ("layout_objects",)
    assert s.hints == {"negative_prompt": "blur", "guidance": 5.5}


@pytest.mark.parametrize(
    "text, line, words",
    [
        ("no frontmatter here\n", 1, "missing frontmatter"),
        ("---\nname: my-skill\n", 1, "not closed"),
        ("---\n- a\n- b\n---\nbody\n", 2, "must be a mapping"),
        ("---\njust a string\n---\nbody\n", 2, "must be a mapping"),
        ("---\n---\nbody\n", 2, "got empty"),
        ("---\nname: my-skill\ndescription: [unclosed\n---\nbody\n", 3, "bad YAML"),
        ("---\ndescription: d\n---\nbody\n", 2, "'name' is missing"),
        ("---\nname: other-name\ndescription: d\n---\nbody\n", 2, "does not match its folder"),
        ("---\nname: My_Skill\ndescription: d\n---\nbody\n", 2, "invalid name"),
        ("---\nname: my-skill\n---\nbody\n", 2, "'description' is missing"),
        ("---\nname: my-skill\ndescription: '" + "x" * 1025 + "'\n---\nbody\n", 3, "1025 characters"),
        ("---\nname: my-skill\ndescription: d\n---\n\n", 5, "instructions"),
        ("---\nname: my-skill\ndescription: d\ncolour: red\n---\nbody\n", 4, "unknown frontmatter key"),
        ("---\nname: my-skill\ndescription: d\nmetadata:\n  tools: [nope_tool]\n---\nbody\n", 5, "unknown tool 'nope_tool'"),
        ("---\nname: my-skill\ndescription: d\nmetadata:\n  triggers: ['re:(']\n---\nbody\n", 5, "regular expression"),
        ("---\nname: my-skill\ndescription: d\nmetadata:\n  checks: ['Has {nope}?']\n---\nbody\n", 5, "unknown placeholder"),
        ("---\nname: my-skill\ndescription: d\nmetadata:\n  hints: {cfg: 3}\n---\nbody\n", 5, "unknown hint"),
        ("---\nname: my-skill\ndescription: d\nmetadata:\n  hints:\n    guidance: high\n---\nbody\n", 6, "must be int or float"),
        ("---\nname: my-skill\ndescription: d\nmetadata: [1]\n---\nbody\n", 4, "'metadata' must be a mapping"),
        ("---\nname: my-skill\ndescription: d\nmetadata:\n  oops: 1\n---\nbody\n", 5, "unknown metadata key"),
    ],
)
def test_invalid_frontmatter(tmp_path, text, line, words):
    e = error(tmp_path, text)
    assert words in e.problem
    assert e.line == line


def test_name_with_consecutive_hyphens_rejected(tmp_path):
    e = error(tmp_path, "---\nname: my--skill\ndescription: d\n---\nbody\n", folder="my--skill")
    assert "invalid name" in e.problem


def test_ten_megabyte_file_refused_without_reading_it_all(tmp_path, monkeypatch):
    f = write(tmp_path, b"---\nname: my-skill\ndescription: d\n---\n" + b"x" * (10 * 1024 * 1024))
    reads: list[int] = []
    real_open = Path.open

    def spy_open(self, *a, **kw):
        fh = real_open(self, *a, **kw)
        real_read = fh.read

        class Wrapped:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                fh.close()

            def read(self, n=-1):
                reads.append(n)
                return real_read(n)

        return Wrapped()

    monkeypatch.setattr(Path, "open", spy_open)
    with pytest.raises(SkillValidationError, match="larger than the"):
        parse_skill_file(f)
    assert reads and all(0 < n <= MAX_SKILL_FILE_BYTES + 1 for n in reads)


def test_body_over_cap_refused(tmp_path):
    e = error(tmp_path, "---\nname: my-skill\ndescription: d\n---\n" + "y" * (66 * 1024))
    assert "instructions are larger" in e.problem and e.line == 5


def test_binary_file_refused(tmp_path):
    e = error(tmp_path, b"---\nname: my-skill\n\x00\x01\x02 binary\n")
    assert "binary" in e.problem and e.line == 3


def test_non_utf8_refused(tmp_path):
    e = error(tmp_path, b"---\nname: my-skill\ndescription: caf\xe9\n---\nbody\n")
    assert "not UTF-8" in e.problem and e.line == 3


def test_missing_file(tmp_path):
    with pytest.raises(SkillValidationError, match="no SKILL.md"):
        parse_skill_file(tmp_path)


def test_all_builtin_skills_valid():
    from gems_graph.skills import builtin_skills_dir

    root = builtin_skills_dir()
    assert root is not None
    skills = [parse_skill_file(p) for p in sorted(root.glob("*/SKILL.md"))]
    names = {s.name for s in skills}
    assert BUILTINS <= names
    for s in skills:
        assert s.triggers and s.checks, s.name
        assert 200 < len(s.instructions) < 4000, s.name
