"""What a skill is once parsed, and the errors skill handling raises.

A skill is data: a description the planner sees in its catalog, instructions it
reads only after choosing the skill, checks and generation hints the skill adds to
a run, and the *names* of Python tools registered in this package. Nothing in a
skill folder is ever executed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

#: agentskills.io: 1-64 chars, lowercase letters, digits and single inner hyphens.
NAME_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MAX_NAME_CHARS = 64
MAX_DESCRIPTION_CHARS = 1024
#: Instructions are read into the planner's context: keep them small.
MAX_BODY_BYTES = 64 * 1024
#: A whole SKILL.md (frontmatter + body); larger files are refused unread.
MAX_SKILL_FILE_BYTES = MAX_BODY_BYTES + 16 * 1024
#: A reference file returned by read_skill_resource.
MAX_RESOURCE_BYTES = 64 * 1024

SKILL_FILE = "SKILL.md"
REFERENCES_DIR = "references"


class SkillError(ValueError):
    """Base class of every skill problem; the message is meant for a person."""


class SkillValidationError(SkillError):
    """A SKILL.md (or a file beside it) is invalid: ``file:line: problem``."""

    def __init__(self, file: Path | str, line: int, problem: str) -> None:
        self.file = str(file)
        self.line = line
        self.problem = problem
        super().__init__(f"{self.file}:{line}: {problem}")


class UnknownSkillError(SkillError):
    """A name that is not in the catalog (or cannot be a skill name at all)."""


class SkillResourceError(SkillError):
    """A reference file that may not or cannot be read."""


class SkillOverrideWarning(UserWarning):
    """A user skill replaces a built-in (or earlier) skill of the same name."""


@dataclass(frozen=True)
class CheckTemplate:
    """A yes/no question a skill adds; ``{quoted}`` etc. are filled from the prompt."""

    question: str
    id: str | None = None


@dataclass(frozen=True)
class Skill:
    """A parsed, validated skill folder."""

    name: str
    description: str
    #: The Markdown body: what the planner reads after ``load_skill``.
    instructions: str
    #: The skill's folder (``SKILL.md`` lives directly in it).
    path: Path
    triggers: tuple[str, ...] = ()
    checks: tuple[CheckTemplate, ...] = ()
    #: Names of tools registered with ``register_skill_tool``.
    tools: tuple[str, ...] = ()
    hints: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    #: "builtin" or the user folder it came from.
    origin: str = "builtin"

    @property
    def file(self) -> Path:
        return self.path / SKILL_FILE

    def references(self) -> list[str]:
        """Files under ``references/`` (relative to it), sorted; read on request only.
        Files that resolve outside the skill folder are never listed."""
        root = self.path / REFERENCES_DIR
        inside = self.path.resolve()
        if not root.is_dir() or not root.resolve().is_relative_to(inside):
            return []
        return sorted(
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if p.is_file() and p.resolve().is_relative_to(inside) and not any(part.startswith(".") for part in p.relative_to(root).parts)
        )


def escaping_links(folder: Path) -> list[Path]:
    """Symlinks under ``folder`` (folder links not followed) that resolve outside it.

    A skill folder is read as data: a link out of it would let a skill hand any
    file on the machine to the chat model.
    """
    inside = folder.resolve()
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in [*dirnames, *filenames]:
            p = Path(dirpath) / name
            if p.is_symlink() and not p.resolve().is_relative_to(inside):
                found.append(p)
    return sorted(found)
