"""The closed language of the shapes world: parse GenEval-phrased prompts into scenes.

One parser is shared by the renderer (training captions), the checker (what to
verify) and the chat model (decomposition), so they can never disagree on what a
prompt means. Words outside the vocabulary are collected, never silently dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SHAPES = ("circle", "square", "triangle")
COLORS = ("red", "green", "blue", "yellow")
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4}
DIGITS = {"1": 1, "2": 2, "3": 3, "4": 4}
COUNT_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}
PLURALS = {s + "s": s for s in SHAPES}
RELATIONS = ("left of", "right of", "above", "below")
INVERSE_RELATION = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
ARTICLES = ("a", "an", "the")
FILLER = ("photo", "of", "to", "picture", "image")  # tolerated framing words


class ShapesGrammarError(ValueError):
    """The prompt contains nothing this world can draw."""


@dataclass(frozen=True)
class ObjectSpec:
    """``count`` objects of one shape, optionally of one colour."""

    shape: str
    color: str | None = None
    count: int = 1


@dataclass(frozen=True)
class Scene:
    """What a prompt asks for. ``relation`` links objects[0] to objects[1]."""

    objects: tuple[ObjectSpec, ...]
    relation: str | None = None
    unknown_words: tuple[str, ...] = ()


_TOKEN_RE = re.compile(r"[a-z]+|\d+")


def tokenize_words(text: str) -> list[str]:
    """Lower-cased word tokens; punctuation is ignored."""
    return _TOKEN_RE.findall(text.lower())


def _join_relations(words: list[str]) -> list[str]:
    """Fold "to the left of" / "left of" / "on the right of" into one relation token."""
    out: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w in ("left", "right"):
            # drop a preceding "to the" / "on the" if we just emitted it
            while out and out[-1] in ("the", "to", "on"):
                out.pop()
            if i + 1 < len(words) and words[i + 1] == "of":
                i += 1
            out.append(f"{w} of")
        elif w in ("above", "below"):
            out.append(w)
        else:
            out.append(w)
        i += 1
    return out


def parse_prompt(text: str) -> Scene:
    """Parse a prompt; raise ShapesGrammarError if it names no shape."""
    words = _join_relations(tokenize_words(text))
    objects: list[ObjectSpec] = []
    unknown: list[str] = []
    relation: str | None = None
    color: str | None = None
    count: int | None = None
    for w in words:
        if w in COLORS:
            color = w
        elif w in NUMBER_WORDS or w in DIGITS:
            count = NUMBER_WORDS.get(w) or DIGITS[w]
        elif w in SHAPES or w in PLURALS:
            shape = PLURALS.get(w, w)
            n = count if count is not None else (2 if w in PLURALS else 1)
            objects.append(ObjectSpec(shape, color, n))
            color, count = None, None
        elif w in RELATIONS:
            if relation is None and len(objects) == 1:
                relation = w
            else:
                unknown.append(w)
        elif w in ARTICLES or w in FILLER or w in ("and", "on"):
            continue
        else:
            unknown.append(w)
    if color is not None or count is not None:
        unknown.append(color or COUNT_WORDS.get(count or 0, ""))  # dangling modifier
    if not objects:
        raise ShapesGrammarError(f"no shape (circle, square, triangle) in prompt: {text!r}")
    if relation is not None and (len(objects) != 2 or any(o.count != 1 for o in objects)):
        raise ShapesGrammarError(f"a relation needs exactly two single objects: {text!r}")
    return Scene(tuple(objects), relation, tuple(u for u in unknown if u))


def _phrase(o: ObjectSpec) -> str:
    color = f"{o.color} " if o.color else ""
    if o.count == 1:
        return f"a {color}{o.shape}"
    return f"{COUNT_WORDS[o.count]} {color}{o.shape}s"


def describe(scene: Scene) -> str:
    """Canonical GenEval phrasing of a scene ("a photo of a red square left of a blue circle")."""
    parts = [_phrase(o) for o in scene.objects]
    if scene.relation:
        return f"a photo of {parts[0]} {scene.relation} {parts[1]}"
    return "a photo of " + " and ".join(parts)
