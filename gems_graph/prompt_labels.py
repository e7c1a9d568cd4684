"""The labels in front of each field of the nodes' prompts: the contract with chat models.

Node prompts are formatted from these constants, and the shapes world's chat model
reads its inputs back by the same constants, so renaming a label in one place
cannot silently break the other (a contract test formats every node prompt and
checks that each field is found). Real LLMs read the same text.
"""

from __future__ import annotations

import json
import re

USER_REQUEST = "User request"
ORIGINAL_REQUEST = "Original request"
DESCRIPTION = "Description"
QUESTION = "Question"
#: A block of every check of one image, one indented ``id: question`` line each (``questions_block``).
QUESTIONS = "Questions"
IMAGE_REQUEST = "The image was made for this request"
#: A question's id about one of several attached images (``verification="per_round"``): ``image2.c1``.
IMAGE_CHECK_ID = "image{image}.{check}"
REASONING = "Reasoning behind this round's prompt"
FEEDBACK = "Feedback from a person"
LESSONS = "Lessons from past runs"
TRAJECTORY = "Trajectory so far"
#: A round's block: ``Round N prompt: ...`` then indented score / passed / failed / experience lines.
ROUND_PROMPT = "Round {index} prompt"
SCORE = "score"
PASSED = "passed"
FAILED = "failed"
EXPERIENCE = "experience"
#: The summary that replaces older rounds when the trajectory outgrows its budget.
FOLDED = "Lessons so far (rounds {first}-{last}, folded)"
NONE = "none"
#: The generator's prompting guide, a block: the label's line, then the guide's lines indented.
PROMPTING_GUIDE = "How to prompt the image model (its prompting guide)"
#: The skill writer's fields (``gems skills learn``): the skill's name, the kind of failure
#: its lessons concern, their records (one indented JSON object a line) and the move tallies.
SKILL_NAME = "Skill name"
FAILURE_KIND = "Failure kind"
LESSON_RECORDS = "Lesson records (one JSON object a line)"
MOVE_TALLY = "Moves and how often they worked"
#: After a skill's description in the planner's catalog: the words it declares it is for (a JSON list).
SKILL_TRIGGERS = "use when the request mentions"


def skill_catalog_line(name: str, description: str, triggers: list[str]) -> str:
    """One catalog entry: ``- name: description [use when the request mentions: ["...", ...]]``."""
    line = f"- {name}: {' '.join(description.split())}"
    return f"{line} [{SKILL_TRIGGERS}: {json.dumps(triggers)}]" if triggers else line


def skill_catalog_triggers(text: str) -> dict[str, list[str]]:
    """Each catalog entry's name and declared triggers, read back from a planner prompt."""
    out: dict[str, list[str]] = {}
    for m in re.finditer(rf"^- ([\w.-]+): .*\[{re.escape(SKILL_TRIGGERS)}: (\[.*\])\]$", text, re.M):
        try:
            out[m.group(1)] = [str(t) for t in json.loads(m.group(2))]
        except ValueError:
            continue
    return out


#: The refiner's edit offer (only when the generator edits): the image it may edit
#: (attached last) and that image's checks; an edited round's line says what it edited.
EDIT_SOURCE = "Image you may edit"
EDIT_FAILED = "its failed checks"
EDIT_PASSED = "its passed checks"
EDITED = "edit of"
#: With ``edit_verification="changed"``: that image's checks with their ids, a block (``checks_block``).
EDIT_CHECKS = "its checks"


def read_records(text: str) -> list[dict]:
    """The JSON objects of the ``LESSON_RECORDS`` block (indented lines up to the next label)."""
    block = text.split(f"{LESSON_RECORDS}:\n", 1)[1] if f"{LESSON_RECORDS}:\n" in text else ""
    out = []
    for line in block.splitlines():
        if not line.startswith("  "):
            break
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def guide_block(guide: str | None) -> str:
    """The guide under ``PROMPTING_GUIDE``, every line indented so its end can be found, ending in
    a newline; "" without a guide."""
    if not guide or not guide.strip():
        return ""
    lines = [f"  {line.strip()}" for line in guide.strip().splitlines()]
    return f"{PROMPTING_GUIDE}:\n" + "\n".join(lines) + "\n"


def questions_block(questions: list[tuple[str, str]]) -> str:
    """``QUESTIONS``'s block: the label's line, then one indented ``id: question`` line per check."""
    return checks_block(QUESTIONS, questions)


def checks_block(label: str, checks: list[tuple[str, str]]) -> str:
    """A block of ``id: question`` lines under ``label`` (as ``questions_block`` writes ``QUESTIONS``)."""
    return f"{label}:\n" + "\n".join(f"  {qid}: {' '.join(q.split())}" for qid, q in checks) + "\n"


def read_checks(text: str, label: str) -> list[tuple[str, str]]:
    """The (id, question) lines of ``label``'s block, as ``checks_block`` wrote them."""
    block = find_block(text, label) or ""
    return [(qid.strip(), q.strip()) for qid, sep, q in (line.partition(":") for line in block.splitlines()) if sep and qid.strip()]


def read_questions(text: str) -> list[tuple[str, str]]:
    """The (id, question) lines of the ``QUESTIONS`` block, as ``questions_block`` wrote them."""
    return read_checks(text, QUESTIONS)


#: ``IMAGE_CHECK_ID`` read back: the image number and the check's own id.
_IMAGE_CHECK_ID = re.compile(re.escape(IMAGE_CHECK_ID).replace(r"\{image\}", r"(\d+)").replace(r"\{check\}", r"(.+)") + "$")


def image_of_question(qid: str) -> int | None:
    """The image number (1 = the first attached) an ``IMAGE_CHECK_ID`` names, or None for a plain check id."""
    m = _IMAGE_CHECK_ID.match(qid)
    return int(m.group(1)) if m else None


def find_block(text: str, label: str) -> str | None:
    """The indented lines after the line ``label:``, dedented and joined by newlines, or None."""
    m = re.search(rf"^{re.escape(label)}:[ \t]*\n((?:[ \t]+.*(?:\n|$))*)", text, re.M)
    return "\n".join(line.strip() for line in m.group(1).splitlines()).strip() if m else None


def find_field(text: str, label: str) -> str | None:
    """The rest of the first line that starts with ``label:`` (after indentation), or None."""
    m = re.search(rf"^[ \t-]*{re.escape(label)}:[ \t]*(.*)$", text, re.M)
    return m.group(1).strip() if m else None


def find_all(text: str, label: str) -> list[str]:
    """Every line's value for ``label:``, in order."""
    return [v.strip() for v in re.findall(rf"^[ \t-]*{re.escape(label)}:[ \t]*(.*)$", text, re.M)]


def round_prompts(text: str) -> list[tuple[int, str]]:
    """``(index, prompt)`` of every ``Round N prompt:`` line."""
    pattern = re.escape(ROUND_PROMPT).replace(re.escape("{index}"), r"(\d+)")
    return [(int(n), p.strip()) for n, p in re.findall(rf"^{pattern}:[ \t]*(.*)$", text, re.M)]
