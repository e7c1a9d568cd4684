"""Turn a skill's check templates into concrete checks for one prompt.

A template is a yes/no question. It may hold one placeholder filled from the user's
prompt; a template whose placeholder finds nothing in the prompt adds no check
(e.g. the text-rendering skill adds an exact-text check per quoted string):

* ``{quoted}``  - each quoted span: "..." or '...' or “...”
* ``{negated}`` - each thing the prompt excludes: "no X", "without X", "not a X"
* ``{counted}`` - each counted noun phrase: "three cats", "5 apples"
"""

from __future__ import annotations

import re
from collections.abc import Callable

from gems_graph.skills.model import Skill

_QUOTED = re.compile(r'"([^"\n]{1,200})"|“([^”\n]{1,200})”|(?<![A-Za-z])\'([^\'\n]{1,200})\'(?![A-Za-z])')
_STOP = r"(?=[,.;:!?)]|\s+(?:and|but|with|while|in|on|at|near|under|over|beside|behind|next)\b|$)"
_NEGATED = re.compile(r"\b(?:no|without|not\s+(?:a|an|any)|free\s+of|lacking|absent)\s+([a-z][a-z\- ]{0,40}?)" + _STOP, re.I)
_NUMBER_WORDS = "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|a\\s+dozen"
_COUNTED = re.compile(r"\b((?:\d{1,3}|" + _NUMBER_WORDS + r")\s+(?:[a-z\-]+\s+){0,2}?[a-z\-]+?s)\b", re.I)


def quoted_spans(prompt: str) -> list[str]:
    return _dedup(next(g for g in m.groups() if g is not None).strip() for m in _QUOTED.finditer(prompt))


def negated_things(prompt: str) -> list[str]:
    return _dedup(m.group(1).strip() for m in _NEGATED.finditer(prompt))


def counted_phrases(prompt: str) -> list[str]:
    return _dedup(m.group(1).strip() for m in _COUNTED.finditer(prompt) if not m.group(1).lower().startswith("one "))


def _constant(value: str) -> Callable[[re.Match[str]], str]:
    """A ``re.sub`` replacement that inserts ``value`` as it is (a str would be read as a template)."""
    return lambda _m: value


def _dedup(items) -> list[str]:
    out: list[str] = []
    for s in items:
        if s and s not in out:
            out.append(s)
    return out


PLACEHOLDERS: dict[str, Callable[[str], list[str]]] = {
    "quoted": quoted_spans,
    "negated": negated_things,
    "counted": counted_phrases,
}
PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_checks(skill: Skill, prompt: str) -> list[dict]:
    """The checks ``skill`` adds for ``prompt``, as ``Check`` dicts (source ``skill:<name>``)."""
    out: list[dict] = []
    seen: set[str] = set()
    for i, t in enumerate(skill.checks, 1):
        keys = PLACEHOLDER_RE.findall(t.question)
        if not keys:
            questions = [t.question]
        else:
            values = PLACEHOLDERS[keys[0]](prompt)
            questions = [PLACEHOLDER_RE.sub(_constant(v), t.question) for v in values]
        base = t.id or f"{skill.name}-{i}"
        for j, q in enumerate(questions, 1):
            if q in seen:
                continue
            seen.add(q)
            cid = base if len(questions) == 1 else f"{base}-{j}"
            out.append({"id": cid, "question": q, "source": f"skill:{skill.name}"})
    return out
