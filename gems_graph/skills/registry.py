"""``SkillRegistry``: the built-in skills plus user skill folders, by name.

Built-ins ship in the wheel (``gems_graph/skills/builtin``, mapped from the
repository's top-level ``skills/``). Skills that ``gems skills learn`` kept come
next, from ``$GEMS_HOME/skills/learned`` (never among the built-ins; origin
``"learned"``). User folders come after them, in order; a
later skill with the same name overrides an earlier one with a
``SkillOverrideWarning``, so a user can replace a built-in without forking.
Everything is parsed and validated when the registry is built: a bad user skill
is an error at start-up, not in the middle of a run.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

from gems_graph.skills.model import (
    MAX_RESOURCE_BYTES,
    NAME_RE,
    REFERENCES_DIR,
    SKILL_FILE,
    Skill,
    SkillError,
    SkillOverrideWarning,
    SkillResourceError,
    SkillValidationError,
    UnknownSkillError,
)
from gems_graph.skills.parser import parse_skill_file, read_text_capped

#: Extra skill folders, separated by os.pathsep, added after the built-ins.
SKILLS_PATH_ENV = "GEMS_SKILLS_PATH"
#: The origin of a skill read from the learned skills folder.
LEARNED_ORIGIN = "learned"


def learned_skills_dir() -> Path:
    """Where ``gems skills learn`` writes the skills it keeps: ``$GEMS_HOME/skills/learned``."""
    from gems_graph.persistence.home import gems_home

    return gems_home() / "skills" / "learned"


def builtin_skills_dir() -> Path | None:
    """Where the built-in skills are: in the installed package, else the repo's ``skills/``."""
    packaged = Path(__file__).resolve().parent / "builtin"
    if any(packaged.glob(f"*/{SKILL_FILE}")):
        return packaged
    repo = Path(__file__).resolve().parents[2] / "skills"
    return repo if repo.is_dir() else None


def skill_folders(root: Path) -> list[Path]:
    """Skill folders under ``root``: ``root`` itself if it holds a SKILL.md, else its children."""
    if (root / SKILL_FILE).is_file():
        return [root]
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")) and (p / SKILL_FILE).is_file())


class SkillRegistry:
    """Skills by name. ``dirs`` are user folders (of skill folders, or one skill folder)."""

    def __init__(
        self,
        dirs: Iterable[str | Path] = (),
        *,
        include_builtin: bool = True,
        builtin_dir: str | Path | None = None,
        learned_dir: str | Path | None = None,
    ) -> None:
        self._skills: dict[str, Skill] = {}
        roots: list[tuple[Path, str]] = []
        if include_builtin:
            b = Path(builtin_dir) if builtin_dir is not None else builtin_skills_dir()
            if b is not None:
                roots.append((b, "builtin"))
        if learned_dir is not None and Path(learned_dir).is_dir():
            roots.append((Path(learned_dir), LEARNED_ORIGIN))
        for d in dirs:
            p = Path(d).expanduser()
            if not p.is_dir():
                raise SkillError(f"{p}: skills folder not found")
            roots.append((p, str(p)))
        for root, origin in roots:
            for folder in skill_folders(root):
                self._add(parse_skill_file(folder / SKILL_FILE, origin=origin))

    def _add(self, skill: Skill) -> None:
        old = self._skills.get(skill.name)
        if old is not None:
            kind = "built-in skill" if old.origin == "builtin" else "skill"
            msg = f"skill {skill.name!r} from {skill.path} overrides the {kind} from {old.path}"
            if msg not in _overrides_warned:  # a registry is built more than once a run: say it once
                _overrides_warned.add(msg)
                warnings.warn(msg, SkillOverrideWarning, stacklevel=4)
        self._skills[skill.name] = skill

    # -- lookup -----------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(self._skills)

    def catalog(self) -> list[tuple[str, str]]:
        """(name, description) of every skill, sorted by name: all the planner sees up front."""
        return [(n, self._skills[n].description) for n in self.names()]

    def get(self, name: str) -> Skill:
        """The skill called ``name``; ``UnknownSkillError`` names the known ones otherwise."""
        if not isinstance(name, str) or not name:
            raise UnknownSkillError(f"skill name must be a non-empty string, got {name!r}")
        if "/" in name or "\\" in name or ".." in name:
            raise UnknownSkillError(f"invalid skill name {name!r}: names cannot contain '/', '\\' or '..'")
        skill = self._skills.get(name)
        if skill is None:
            hint = "" if NAME_RE.match(name) else " (names are lowercase letters, digits and hyphens)"
            raise UnknownSkillError(f"unknown skill {name!r}{hint}; known skills: {', '.join(self.names()) or 'none'}")
        return skill

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._skills

    def __iter__(self) -> Iterator[Skill]:
        return (self._skills[n] for n in self.names())

    def __len__(self) -> int:
        return len(self._skills)

    # -- references -----------------------------------------------------------
    def read_resource(self, name: str, file: str) -> str:
        """Text of ``references/<file>`` of skill ``name``; refuses anything outside it."""
        skill = self.get(name)
        if not isinstance(file, str) or not file.strip():
            raise SkillResourceError("file must be a non-empty relative path inside references/")
        rel = file.strip().replace("\\", "/")
        if rel.startswith(f"{REFERENCES_DIR}/"):
            rel = rel[len(REFERENCES_DIR) + 1 :]
        inside = skill.path.resolve()
        root = (skill.path / REFERENCES_DIR).resolve()
        if Path(rel).is_absolute() or rel.startswith("/"):
            raise SkillResourceError(f"{file!r}: absolute paths are not allowed; give a path inside references/")
        target = (root / rel).resolve()
        # resolve() follows symlinks, and both must stay inside the skill folder itself: a
        # references/ that is a link elsewhere (say to /etc) is refused like a ../ path.
        if not root.is_relative_to(inside) or not target.is_relative_to(root) or target == root:
            raise SkillResourceError(f"{file!r} is outside the references/ folder of skill {name!r}")
        if not target.is_file():
            have = ", ".join(skill.references()) or "none"
            raise SkillResourceError(f"skill {name!r} has no reference file {rel!r} (files: {have})")
        try:
            return read_text_capped(target, MAX_RESOURCE_BYTES, what="reference file")
        except SkillValidationError as e:
            raise SkillResourceError(f"{file!r}: {e.problem}") from None


#: Override warnings already given in this process.
_overrides_warned: set[str] = set()


def default_registry(extra_dirs: Iterable[str | Path] = (), *, include_builtin: bool = True) -> SkillRegistry:
    """Built-ins (unless ``include_builtin`` is false), then learned skills, then folders from
    ``$GEMS_SKILLS_PATH``, then ``extra_dirs`` (e.g. ``--skills-dir``)."""
    env = [p for p in os.environ.get(SKILLS_PATH_ENV, "").split(os.pathsep) if p.strip()]
    return SkillRegistry([*env, *extra_dirs], learned_dir=learned_skills_dir(), include_builtin=include_builtin)


def learned_fingerprint() -> tuple[tuple[str, int], ...]:
    """(skill file, mtime) of every learned skill: a cached registry is rebuilt when it changes."""
    root = learned_skills_dir()
    if not root.is_dir():
        return ()
    return tuple(sorted((str(p), p.stat().st_mtime_ns) for p in root.glob(f"*/{SKILL_FILE}")))
