"""Skills in the official GEMS format load as they are: no frontmatter, ``## Description``
and ``## Instructions`` headings, the name from the folder.

The four folders below are written for this test in that format (short texts of our
own, not the official repository's).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gems_graph.skills import SkillRegistry, SkillValidationError, parse_skill_file
from gems_graph.skills.cli import skills_app
from gems_graph.skills.model import SkillOverrideWarning
from tests.test_planner_skills import run as run_graph
from tests.test_planner_skills import skill_loading_handler

OFFICIAL = {
    "aesthetic_drawing": (
        "Aesthetic Drawing",
        "Makes an image look polished and beautiful: lighting, palette, composition. Use for artistic or stylised requests.",
        "Name one lighting setup (golden hour, soft studio light) and a limited palette.\n"
        "Describe the composition: rule of thirds, a clear subject, a calm background.\n"
        "Keep every object and attribute the user asked for; style never replaces content.",
    ),
    "creative_drawing": (
        "Creative Drawing",
        "Turns an abstract or imaginative idea into a concrete visual scene. Use when the request is a concept, a metaphor or surreal.",
        "Pick one concrete visual metaphor for the idea and describe it as a scene.\n"
        "Say what is in the foreground and the background, and the mood.",
    ),
    "spatial": (
        "Spatial",
        "Places objects where the request says: left/right, above/below, in front of, behind. Use when positions matter.",
        "List each object with its region of the frame (left third, upper half, foreground).\n"
        "Write one clause per object, in the order the relations are given.",
    ),
    "text_rendering": (
        "Text Rendering",
        "Renders quoted text legibly on signs, labels and posters. Use when the request contains words to show.",
        'Quote the exact text once, in double quotes, and say where it appears ("on the sign above the door").\n'
        "Ask for a clean, bold sans-serif font and high contrast with the background.",
    ),
}


def write_official(root: Path, folder: str, title: str, description: str, instructions: str) -> Path:
    d = root / folder
    d.mkdir(parents=True, exist_ok=True)
    text = f"# Skill: {title}\n\n## Description\n{description}\n\n## Instructions\n{instructions}\n"
    (d / "SKILL.md").write_text(text, encoding="utf-8")
    return d / "SKILL.md"


@pytest.fixture
def official_dir(tmp_path) -> Path:
    root = tmp_path / "official"
    for folder, (title, desc, body) in OFFICIAL.items():
        write_official(root, folder, title, desc, body)
    return root


def test_the_four_official_skills_load_with_name_description_and_instructions(official_dir):
    reg = SkillRegistry([official_dir], include_builtin=False)
    assert reg.names() == ["aesthetic-drawing", "creative-drawing", "spatial", "text-rendering"]
    for folder, (title, desc, body) in OFFICIAL.items():
        skill = reg.get(folder.replace("_", "-"))
        assert skill.description == desc
        assert skill.instructions == body  # everything below '## Instructions', nothing above it
        assert title not in skill.instructions and "## " not in skill.instructions
        assert skill.triggers == () and skill.checks == () and skill.tools == ()
    assert dict(reg.catalog())["spatial"] == OFFICIAL["spatial"][1]


def test_gems_skills_validate_accepts_the_official_folder(official_dir):
    r = CliRunner().invoke(skills_app, ["validate", str(official_dir)])
    assert r.exit_code == 0, r.output
    assert [line.split()[1] for line in r.stdout.splitlines()] == ["aesthetic-drawing", "creative-drawing", "spatial", "text-rendering"]


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("# Skill: X\n\n## Description\nDoes x.\n", 3, "no '## Instructions' heading"),
        ("## Instructions\nDo x.\n\n## Description\nDoes x.\n", 1, "must come after '## Description'"),
        ("## Description\n\n## Instructions\nDo x.\n", 1, "the '## Description' section is empty"),
        ("## Description\nDoes x.\n## Instructions\n\n", 3, "the '## Instructions' section is empty"),
        ("# Skill: X\nJust some notes.\n", 1, "missing frontmatter"),
    ],
)
def test_official_format_errors_name_the_file_and_line(tmp_path, text, line, message):
    f = tmp_path / "my_skill" / "SKILL.md"
    f.parent.mkdir()
    f.write_text(text)
    with pytest.raises(SkillValidationError, match=message) as e:
        parse_skill_file(f)
    assert e.value.line == line and e.value.file == str(f)
    r = CliRunner().invoke(skills_app, ["validate", str(f.parent)])
    assert r.exit_code != 0 and f"{f}:{line}: " in r.output and "Traceback" not in r.output


def test_a_folder_name_that_cannot_be_a_skill_name_is_refused(tmp_path):
    f = write_official(tmp_path, "Text Rendering!", "T", "Renders text.", "Quote it.")
    with pytest.raises(SkillValidationError, match="folder name 'Text Rendering!' cannot be a skill name"):
        parse_skill_file(f)


def test_official_skills_override_builtins_and_are_routed_like_ours(official_dir, tmp_path):
    """In the graph: the catalog shows the official descriptions, ``load_skill`` returns the
    official instructions, and the run records the skill; aesthetic_drawing replaces ours."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reg = SkillRegistry([official_dir])
    assert reg.get("aesthetic-drawing").path == official_dir / "aesthetic_drawing"
    assert any(issubclass(w.category, SkillOverrideWarning) for w in caught)

    seen: list[dict] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkillOverrideWarning)
        out = run_graph(skill_loading_handler(["spatial"], seen), tmp_path / "runs", skills_dirs=[str(official_dir)], max_skills=1)
    catalog = seen[0]["system"]
    for desc in (d for _, d, _ in OFFICIAL.values()):
        assert desc in catalog
    assert OFFICIAL["spatial"][2].splitlines()[0] not in catalog  # instructions only on demand
    assert any(OFFICIAL["spatial"][2].splitlines()[0] in t for t in seen[1]["tool_results"])
    assert json.loads(Path(out["run_dir"], "run.json").read_text())["skills"] == ["spatial"]
