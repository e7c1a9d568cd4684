"""Writing a learned skill: the run's chat model drafts it from a lesson group, this module makes it safe.

The chat model is asked for a ``SkillDraft`` (description, triggers, instructions,
warnings) from the group's lesson records and move tallies, so any backend can write
one: a real LLM writes it as text, the shapes chat model from the records alone.
Whatever it wrote is then treated as untrusted text: every field is redacted with
the project's redaction (``gems_graph.errors.redact``), and a line that names a path
or tells the reader to load, read or open another file or skill is dropped, so a
learned skill never carries a secret, a path outside its folder or an instruction to
load other files. The SKILL.md is rendered here (frontmatter by ``yaml.safe_dump``,
provenance from the group's own counts, not the model's) and parsed by the same
validator as ``gems skills validate`` before it is written.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from gems_graph import prompt_labels as labels
from gems_graph.errors import redact
from gems_graph.models.llm import invoke_structured
from gems_graph.skills.learning import LessonGroup
from gems_graph.skills.model import MAX_DESCRIPTION_CHARS, SKILL_FILE, Skill, SkillError
from gems_graph.skills.parser import parse_skill_file

#: Beside a learned SKILL.md: its provenance and the figures of the trial that kept it.
LEARNED_FILE = "learned.json"
MAX_TRIGGERS = 24
#: A trigger a learned skill may declare: plain words (no ``re:``), at most four of them.
_PLAIN_TRIGGER = re.compile(r"^[a-z0-9][a-z0-9' -]{0,40}$")

SKILL_WRITER_SYSTEM_PROMPT = """\
You write agent skills for an agent that drives a text-to-image model. A skill is a
SKILL.md: a description the planner reads to decide when to use it, trigger words
that occur in the prompts it is for, and instructions the planner follows when it
writes the generation prompt. Write one skill from the lessons of past runs below:
the description and triggers from the prompts where the lessons applied, the
instructions from the moves that fixed the failures (the most reliable first) and
from how the first prompts that passed at once were written, unlike those that did
not (records with "first_prompt"), and warnings from the moves that did not. Never name a file, a path, a URL or another
skill, and never tell the reader to load, read or open anything."""

SKILL_WRITER_USER_PROMPT = f"""\
{labels.SKILL_NAME}: {{name}}
{labels.FAILURE_KIND}: {{kind}}
{labels.LESSON_RECORDS}:
{{records}}
{labels.MOVE_TALLY}:
{{moves}}
Write the skill."""


class SkillDraft(BaseModel):
    """A learned skill as the chat model writes it."""

    description: str = Field(description="What the skill is for and when to use it (under 600 characters).")
    triggers: list[str] = Field(default_factory=list, description="Words or short phrases that occur in the prompts it is for.")
    instructions: str = Field(description="Markdown instructions for the planner: what to do, most reliable move first.")
    warnings: list[str] = Field(default_factory=list, description="Moves that did not fix these failures, one sentence each.")


@dataclass(frozen=True)
class LearnedSkill:
    """A candidate skill: its SKILL.md text, its provenance, and what safety removed from the draft."""

    name: str
    text: str
    provenance: dict[str, Any]
    removed: tuple[str, ...] = ()

    def write(self, root: Path, figures: dict[str, Any] | None = None) -> Path:
        """Write ``root/<name>/SKILL.md`` and ``learned.json`` (provenance + figures), replacing
        an older version; validated in a scratch folder first, so a bad skill writes nothing."""
        root.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{self.name}-", dir=root))
        try:
            folder = scratch / self.name
            folder.mkdir()
            (folder / SKILL_FILE).write_text(self.text, encoding="utf-8")
            data = {"provenance": self.provenance, **({"trial": figures} if figures is not None else {})}
            (folder / LEARNED_FILE).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            parse_skill_file(folder / SKILL_FILE, origin="learned")
            target = root / self.name
            if target.exists():
                shutil.rmtree(target)
            folder.rename(target)
            return target
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def parse(self) -> Skill:
        """The candidate as the registry would read it (in a scratch folder)."""
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / self.name
            folder.mkdir()
            (folder / SKILL_FILE).write_text(self.text, encoding="utf-8")
            return parse_skill_file(folder / SKILL_FILE, origin="learned")


# -- safety ----------------------------------------------------------------------------
_PATH = re.compile(r"(?:(?<![\w.])/[\w.-]+/|~[/\\]|\.\.[/\\]|\b[A-Za-z]:\\|\bfile:|\bhttps?://|\\\\[\w.-]+\\)")
_LOAD = re.compile(
    r"\b(?:load_skill|read_skill_resource)\b|\b(?:load|read|open|include|import|fetch|source|cat|see|consult|follow)\b"
    r"[^.\n]{0,40}?(?:\bfiles?\b|\bskills?\b|\bfolders?\b|\bdirector(?:y|ies)\b|\breferences?\b|\.\w{1,4}\b)",
    re.I,
)


def unsafe_reason(line: str) -> str | None:
    """Why a line of a learned skill may not stay, or None: a secret, a path, an instruction to load something."""
    if redact(line) != line:
        return "carries a secret"
    if _PATH.search(line):
        return "names a path"
    if _LOAD.search(line):
        return "tells the reader to load another file"
    return None


def _safe_lines(text: str, where: str, removed: list[str]) -> str:
    kept = []
    for line in text.splitlines():
        why = unsafe_reason(line)
        if why is None:
            kept.append(line)
        else:
            removed.append(f"{where}: a line that {why}")
    return "\n".join(kept).strip()


def _safe_triggers(triggers: list[str], removed: list[str]) -> list[str]:
    out: list[str] = []
    for t in triggers:
        t = " ".join(str(t).lower().split())
        if not _PLAIN_TRIGGER.match(t) or len(t.split()) > 4 or unsafe_reason(t):
            removed.append(f"triggers: {t[:40]!r} (not plain words)")
        elif t not in out:
            out.append(t)
    return out[:MAX_TRIGGERS]


# -- drafting and rendering --------------------------------------------------------------
def draft_messages(group: LessonGroup) -> list[Any]:
    """What the skill writer is sent for one group."""
    records = "\n".join(f"  {json.dumps(r, ensure_ascii=False, sort_keys=True)}" for r in group.records())
    moves = "\n".join(
        f"  - {t.move}: worked {t.worked:g}, did not work {t.failed:g} (weighted; {t.lessons} lesson(s))" for t in group.moves
    )
    return [
        SystemMessage(SKILL_WRITER_SYSTEM_PROMPT),
        HumanMessage(SKILL_WRITER_USER_PROMPT.format(name=group.name, kind=group.kind, records=records, moves=moves)),
    ]


def draft_skill(model: Any, group: LessonGroup) -> LearnedSkill:
    """Ask ``model`` to write the group's skill; return it made safe and rendered (``StructuredOutputError`` if it cannot)."""
    draft: SkillDraft = invoke_structured(model, SkillDraft, draft_messages(group)).value
    return render_skill(group, draft)


def render_skill(group: LessonGroup, draft: SkillDraft) -> LearnedSkill:
    """The SKILL.md of a draft: fields made safe, frontmatter, instructions, warnings, provenance."""
    removed: list[str] = []
    # The description is one paragraph: an unsafe sentence goes, the rest stays.
    sentences = "\n".join(re.split(r"(?<=[.!?])\s+", " ".join(draft.description.split())))
    description = " ".join(_safe_lines(sentences, "description", removed).split("\n"))[:MAX_DESCRIPTION_CHARS]
    if not description:
        raise SkillError(f"{group.name}: the chat model wrote no usable description")
    triggers = _safe_triggers(list(draft.triggers), removed)
    instructions = _safe_lines(draft.instructions, "instructions", removed)
    if not instructions:
        raise SkillError(f"{group.name}: the chat model wrote no usable instructions")
    warnings = [w for w in (_safe_lines(" ".join(x.split()), "warnings", removed) for x in draft.warnings) if w]
    front: dict[str, Any] = {"name": group.name, "description": description}
    if triggers:
        front["metadata"] = {"triggers": triggers}
    prov = group.provenance()
    body = [f"# Learned: {group.kind} failures", "", instructions]
    if warnings:
        body += ["", "## What did not work", "", *[f"- {w}" for w in warnings]]
    body += [
        "",
        "## Provenance",
        "",
        f"Learnt by `gems skills learn` from {len(prov['lessons'])} lesson(s) of {len(prov['runs'])} run(s)"
        + (f", {prov['accepted_by_a_person']} accepted by a person" if prov["accepted_by_a_person"] else "")
        + ". How often each move worked (weighted lessons):",
        "",
        *[f"- {m['move']}: {m['worked']:g} worked, {m['failed']:g} did not" for m in prov["moves"]],
    ]
    body = [line for line in body if unsafe_reason(line) is None or line.startswith("Learnt by")]
    text = "---\n" + yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=100) + "---\n" + "\n".join(body) + "\n"
    skill = LearnedSkill(name=group.name, text=text, provenance=prov, removed=tuple(removed))
    skill.parse()  # the same validation as `gems skills validate`
    return skill
