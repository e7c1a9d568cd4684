"""Parse and validate one ``SKILL.md``: YAML frontmatter + Markdown instructions.

The official GEMS format (github.com/lcqysl/GEMS, ``agent/skills/<id>/SKILL.md``) is
read as it is: no frontmatter, a ``## Description`` section and a ``## Instructions``
section (everything below it). The name comes from the folder, lower-cased with
``_`` turned into ``-`` (``aesthetic_drawing`` -> ``aesthetic-drawing``), so such a
folder overrides a built-in of the same name like any user skill; it declares no
triggers, checks, tools or hints, and is validated by the same rules.

Every problem is a ``SkillValidationError`` naming the file, the line and what is
wrong, so ``gems skills validate`` can point an author at it. Files are read with a
size cap (a 10 MB SKILL.md is refused after reading at most the cap) and must be
UTF-8 text; the frontmatter's YAML is loaded within limits on depth, aliases and
expanded size (``gems_graph.skills.safe_yaml``).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from gems_graph.skills.checks import PLACEHOLDER_RE, PLACEHOLDERS
from gems_graph.skills.model import (
    MAX_BODY_BYTES,
    MAX_DESCRIPTION_CHARS,
    MAX_NAME_CHARS,
    MAX_SKILL_FILE_BYTES,
    NAME_RE,
    SKILL_FILE,
    CheckTemplate,
    Skill,
    SkillValidationError,
    escaping_links,
)
from gems_graph.skills.safe_yaml import YamlLimitError, load_limited

#: Top-level keys of the agentskills.io format; ours live under ``metadata``.
TOP_LEVEL_KEYS = {"name", "description", "license", "compatibility", "metadata", "allowed-tools"}
METADATA_KEYS = {"triggers", "checks", "tools", "hints"}
#: Hint name -> accepted types: the generator's own settings (``GenerationRequest``).
#: Merged across loaded skills by ``SkillSession``.
HINT_TYPES: dict[str, tuple[type, ...]] = {
    "negative_prompt": (str,),
    "guidance": (int, float),
    "steps": (int,),
    "width": (int,),
    "height": (int,),
}


def read_text_capped(path: Path, cap: int, *, what: str = "file") -> str:
    """Read a UTF-8 text file of at most ``cap`` bytes, never reading more than cap+1."""
    try:
        with path.open("rb") as f:
            data = f.read(cap + 1)
    except OSError as e:
        raise SkillValidationError(path, 0, f"cannot read {what}: {e.strerror or e}") from None
    if len(data) > cap:
        raise SkillValidationError(path, 0, f"{what} is larger than the {cap // 1024} KB limit")
    if b"\x00" in data:
        raise SkillValidationError(path, _line_of(data, data.index(b"\x00")), f"{what} is binary (contains NUL bytes), expected UTF-8 text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SkillValidationError(path, _line_of(data, e.start), f"{what} is not UTF-8 text (bad byte at offset {e.start})") from None
    return text.removeprefix("\ufeff")


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def parse_skill_file(
    path: Path | str, *, known_tools: Collection[str] | None = None, expected_name: str | None = None, origin: str = "builtin"
) -> Skill:
    """Parse ``path`` (a SKILL.md, or a folder holding one) into a ``Skill``.

    ``expected_name`` defaults to the folder's name (agentskills.io: they must match).
    ``known_tools`` defaults to the tools registered in ``gems_graph.skills.tools``.
    """
    path = Path(path)
    if path.is_dir():
        path = path / SKILL_FILE
    if not path.is_file():
        raise SkillValidationError(path, 0, f"no {SKILL_FILE} here")
    for link in ([path] if path.is_symlink() else []) + escaping_links(path.parent):
        if not link.resolve().is_relative_to(path.parent.resolve()):
            raise SkillValidationError(link, 0, "is a symlink that leads out of the skill folder; a skill may only hold its own files")
    if expected_name is None:
        expected_name = path.resolve().parent.name
    if known_tools is None:
        from gems_graph.skills.tools import skill_tool_names

        known_tools = skill_tool_names()
    text = read_text_capped(path, MAX_SKILL_FILE_BYTES, what=SKILL_FILE)
    if not text.lstrip("\n").startswith("---") and _heading_line(text.splitlines(), DESCRIPTION_HEADING) is not None:
        meta, lines, body, body_line = _official_sections(path, text, expected_name)
        return _build(path, meta, lines, body, body_line, meta["name"], known_tools, origin)
    meta, lines, body_line = _split_frontmatter(path, text)
    body = "\n".join(text.splitlines()[body_line - 1 :]).strip()
    return _build(path, meta, lines, body, body_line, expected_name, known_tools, origin)


DESCRIPTION_HEADING = "## description"
INSTRUCTIONS_HEADING = "## instructions"


def official_name(folder: str) -> str:
    """The skill name of an official GEMS skill folder (``text_rendering`` -> ``text-rendering``)."""
    return folder.strip().lower().replace("_", "-")


def _heading_line(rows: list[str], heading: str) -> int | None:
    """Index of the first row that is ``heading`` (case and trailing spaces aside)."""
    return next((i for i, r in enumerate(rows) if r.strip().lower() == heading), None)


def _official_sections(path: Path, text: str, folder: str) -> tuple[dict, dict[str, int], str, int]:
    """(meta, key lines, instructions, first instructions line) of an official GEMS SKILL.md."""
    rows = text.splitlines()
    d = _heading_line(rows, DESCRIPTION_HEADING)
    assert d is not None
    i = _heading_line(rows, INSTRUCTIONS_HEADING)
    if i is None:
        raise SkillValidationError(
            path, d + 1, "has a '## Description' heading but no '## Instructions' heading (the official GEMS format needs both)"
        )
    if i < d:
        raise SkillValidationError(
            path, i + 1, "'## Instructions' must come after '## Description' (everything below it is the instructions)"
        )
    name = official_name(folder)
    if len(name) > MAX_NAME_CHARS or not NAME_RE.match(name):
        raise SkillValidationError(
            path, 1, f"folder name {folder!r} cannot be a skill name: use lowercase letters, digits and single '-' or '_' between them"
        )
    end = next((k for k in range(d + 1, len(rows)) if rows[k].startswith("##")), len(rows))
    description = "\n".join(rows[d + 1 : end]).strip()
    if not description:
        raise SkillValidationError(path, d + 1, "the '## Description' section is empty: say what the skill does and when to use it")
    body = "\n".join(rows[i + 1 :]).strip()
    if not body:
        raise SkillValidationError(path, i + 1, "the '## Instructions' section is empty")
    return {"name": name, "description": description}, {"name": 1, "description": d + 2}, body, i + 2


def _split_frontmatter(path: Path, text: str) -> tuple[dict, dict[str, int], int]:
    """Return (frontmatter mapping, key -> line, first body line)."""
    rows = text.splitlines()
    if not rows or rows[0].strip() != "---":
        raise SkillValidationError(
            path,
            1,
            "missing frontmatter: the file must start with a '---' line "
            "(or use the official GEMS '## Description' and '## Instructions' headings)",
        )
    end = next((i for i in range(1, len(rows)) if rows[i].strip() == "---"), None)
    if end is None:
        raise SkillValidationError(path, 1, "frontmatter is not closed: no second '---' line")
    src = "\n".join(rows[1:end])
    try:
        data, node = load_limited(src)
    except YamlLimitError as e:  # an alias bomb or 35,000 nested brackets: refused before it is built
        raise SkillValidationError(path, e.line + 1, f"frontmatter {e.problem}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 2
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SkillValidationError(path, line, f"bad YAML in frontmatter: {problem}") from None
    if not isinstance(data, dict):
        kind = "empty" if data is None else type(data).__name__
        raise SkillValidationError(path, 2, f"frontmatter must be a mapping of keys to values, got {kind}")
    lines = _key_lines(node, offset=2)
    return data, lines, end + 2


def _key_lines(node: Any, offset: int, prefix: str = "") -> dict[str, int]:
    """Line of each key (``metadata.tools`` for nested ones), for error messages."""
    out: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = f"{prefix}{k.value}"
            out[key] = k.start_mark.line + offset
            if isinstance(v, yaml.MappingNode):
                out.update(_key_lines(v, offset, key + "."))
            elif isinstance(v, yaml.SequenceNode):
                for i, item in enumerate(v.value):
                    out[f"{key}[{i}]"] = item.start_mark.line + offset
    return out


def _build(
    path: Path, meta: dict, lines: dict[str, int], body: str, body_line: int, expected_name: str, known_tools: Collection[str], origin: str
) -> Skill:
    def fail(key: str, problem: str) -> SkillValidationError:
        return SkillValidationError(path, lines.get(key, 2), problem)

    for key in meta:
        if str(key) not in TOP_LEVEL_KEYS:
            raise fail(
                str(key),
                f"unknown frontmatter key {key!r} (allowed: {', '.join(sorted(TOP_LEVEL_KEYS))}; put project fields under 'metadata')",
            )
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise fail("name", "'name' is missing or not a string")
    if len(name) > MAX_NAME_CHARS or not NAME_RE.match(name):
        raise fail(
            "name",
            f"invalid name {name!r}: use 1-{MAX_NAME_CHARS} lowercase letters, digits and single hyphens (no leading/trailing hyphen)",
        )
    if name != expected_name:
        raise fail("name", f"name {name!r} does not match its folder {expected_name!r}")
    desc = meta.get("description")
    if not isinstance(desc, str) or not desc.strip():
        raise fail("description", "'description' is missing or empty: say what the skill does and when to use it")
    if len(desc) > MAX_DESCRIPTION_CHARS:
        raise fail("description", f"description is {len(desc)} characters, the limit is {MAX_DESCRIPTION_CHARS}")
    if not body:
        raise SkillValidationError(path, body_line, "the instructions (Markdown body after the frontmatter) are empty")
    if len(body.encode("utf-8")) > MAX_BODY_BYTES:
        raise SkillValidationError(path, body_line, f"instructions are larger than the {MAX_BODY_BYTES // 1024} KB limit")

    md = meta.get("metadata") or {}
    if not isinstance(md, dict):
        raise fail("metadata", "'metadata' must be a mapping")
    for key in md:
        if str(key) not in METADATA_KEYS:
            raise fail(f"metadata.{key}", f"unknown metadata key {key!r} (allowed: {', '.join(sorted(METADATA_KEYS))})")
    triggers = _str_list(md, "triggers", fail)
    for i, t in enumerate(triggers):
        if t.startswith("re:"):
            try:
                re.compile(t[3:])
            except re.error as e:
                raise fail(f"metadata.triggers[{i}]", f"trigger {t!r} is not a valid regular expression: {e}") from None
    tools = _str_list(md, "tools", fail)
    for i, t in enumerate(tools):
        if t not in known_tools:
            known = ", ".join(sorted(known_tools)) or "none"
            raise fail(f"metadata.tools[{i}]", f"unknown tool {t!r}: not registered with register_skill_tool (known: {known})")
    checks = _checks(md, fail)
    hints = _hints(md, fail)
    return Skill(
        name=name,
        description=desc.strip(),
        instructions=body,
        path=path.parent,
        triggers=tuple(triggers),
        checks=checks,
        tools=tuple(tools),
        hints=MappingProxyType(hints),
        origin=origin,
    )


def _str_list(md: dict, key: str, fail) -> list[str]:
    value = md.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise fail(f"metadata.{key}", f"metadata.{key} must be a list of strings")
    for i, v in enumerate(value):
        if not isinstance(v, str) or not v.strip():
            raise fail(f"metadata.{key}[{i}]", f"metadata.{key} item {i + 1} must be a non-empty string, got {v!r}")
    return [v.strip() for v in value]


def _checks(md: dict, fail) -> tuple[CheckTemplate, ...]:
    value = md.get("checks") or []
    if not isinstance(value, list):
        raise fail("metadata.checks", "metadata.checks must be a list of questions (strings or {id, question})")
    out = []
    for i, item in enumerate(value):
        where = f"metadata.checks[{i}]"
        cid = None
        if isinstance(item, dict):
            cid, item = item.get("id"), item.get("question")
            if cid is not None and (not isinstance(cid, str) or not NAME_RE.match(cid)):
                raise fail(where, f"check id {cid!r} must be lowercase letters, digits and hyphens")
        if not isinstance(item, str) or not item.strip():
            raise fail(where, f"check {i + 1} must be a non-empty question")
        keys = PLACEHOLDER_RE.findall(item)
        for k in keys:
            if k not in PLACEHOLDERS:
                raise fail(where, f"unknown placeholder {{{k}}} in check (known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})")
        if len(set(keys)) > 1:
            raise fail(where, "a check may use only one kind of placeholder")
        out.append(CheckTemplate(question=item.strip(), id=cid))
    return tuple(out)


def _hints(md: dict, fail) -> dict[str, Any]:
    value = md.get("hints") or {}
    if not isinstance(value, dict):
        raise fail("metadata.hints", "metadata.hints must be a mapping")
    for k, v in value.items():
        types = HINT_TYPES.get(str(k))
        if types is None:
            raise fail(f"metadata.hints.{k}", f"unknown hint {k!r} (known: {', '.join(sorted(HINT_TYPES))})")
        if not isinstance(v, types) or isinstance(v, bool):
            raise fail(f"metadata.hints.{k}", f"hint {k!r} must be {' or '.join(t.__name__ for t in types)}, got {v!r}")
    return dict(value)
