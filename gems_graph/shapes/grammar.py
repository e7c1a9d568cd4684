"""The closed language of the shapes world: parse prompts into scenes.

Two registers describe the same scenes. The terse one is GenEval's phrasing ("a
photo of three red circles", "a red square left of a blue circle"): the model must
choose a layout itself. The explicit one lays objects out one by one on a 3x3 grid,
optionally with a size ("a photo of a red circle at the top left, a large red
circle at the centre and a red circle at the bottom right"), the way layout-guided
generation and detailed LLM-written prompts do.

GenEval2-style prompts (the hard suite) use the same words: up to three groups, each
with an optional count (up to five), colour and size, a relation between the first two
when both are single objects, and a second one chained on from the second object to a
third single one, the way GenEval2 chains them; other groups are listed after the
related ones ("a photo of a red circle left of a blue square and two green triangles",
"a photo of a large red circle left of a blue square above a small triangle", "a photo
of two red circles, five blue squares and a yellow triangle"). Every prompt that parsed
before parses as it did.

One parser is shared by the renderer (training captions), the checker (what to
verify), the text encoder (tokens) and the chat model, so they can never disagree
on what a prompt means. Words outside the vocabulary are collected, never
silently dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

SHAPES = ("circle", "square", "triangle")
COLORS = ("red", "green", "blue", "yellow")
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
DIGITS = {"1": 1, "2": 2, "3": 3, "4": 4, "5": 5}
COUNT_WORDS = {n: w for w, n in NUMBER_WORDS.items()}
PLURALS = {s + "s": s for s in SHAPES}
RELATIONS = ("left of", "right of", "above", "below")
INVERSE_RELATION = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
ARTICLES = ("a", "an", "the")
FILLER = ("photo", "of", "to", "picture", "image")  # tolerated framing words
#: The explicit register's places: cells of a 3x3 grid, (column, row) from the top left.
PLACES = {
    "top left": (0, 0),
    "top": (1, 0),
    "top right": (2, 0),
    "left": (0, 1),
    "centre": (1, 1),
    "right": (2, 1),
    "bottom left": (0, 2),
    "bottom": (1, 2),
    "bottom right": (2, 2),
}
PLACE_OF_CELL = {cell: name for name, cell in PLACES.items()}
SIZES = ("small", "large")
SIZE_SYNONYMS = {"small": "small", "tiny": "small", "large": "large", "big": "large"}
_VERTICAL = {"top": "top", "upper": "top", "bottom": "bottom", "lower": "bottom"}
_CENTRE = ("centre", "center", "middle")
PLACE_TOKEN = "at "  # prefix of a folded place token: "at top left"


class ShapesGrammarError(ValueError):
    """The prompt contains nothing this world can draw."""


@dataclass(frozen=True)
class ObjectSpec:
    """``count`` objects of one shape, optionally of one colour."""

    shape: str
    color: str | None = None
    count: int = 1
    size: str | None = None  # "small" / "large"
    place: str | None = None  # a key of PLACES (explicit register: then count is 1)


@dataclass(frozen=True)
class Scene:
    """What a prompt asks for. ``relation`` links objects[0] to objects[1] (both single
    objects); ``second_relation`` chains objects[1] to objects[2] (single too: "A left of
    B above C"); any further groups stand beside them ("... and two green triangles")."""

    objects: tuple[ObjectSpec, ...]
    relation: str | None = None
    unknown_words: tuple[str, ...] = ()
    second_relation: str | None = None

    @property
    def relations(self) -> list[tuple[int, str, int]]:
        """Every relation as (subject index, relation, object index) into ``objects``."""
        out = [(0, self.relation, 1)] if self.relation else []
        if self.second_relation:
            out.append((1, self.second_relation, 2))
        return out

    @property
    def explicit(self) -> bool:
        """Written in the explicit layout register (some object has a place)."""
        return any(o.place for o in self.objects)

    def groups(self) -> dict[tuple[str, str | None], int]:
        """How many objects of each (shape, colour) the scene asks for, listed objects merged."""
        out: dict[tuple[str, str | None], int] = {}
        for o in self.objects:
            out[(o.shape, o.color)] = out.get((o.shape, o.color), 0) + o.count
        return out


_TOKEN_RE = re.compile(r"[a-z]+|\d+")


def tokenize_words(text: str) -> list[str]:
    """Lower-cased word tokens; punctuation is ignored."""
    return _TOKEN_RE.findall(text.lower())


def _join_places(words: list[str]) -> list[str]:
    """Fold "at the top left (corner)" / "at the centre" into one place token ("at top left")."""
    out: list[str] = []
    i = 0
    while i < len(words):
        if words[i] != "at":
            out.append(words[i])
            i += 1
            continue
        j = i + 1
        if j < len(words) and words[j] == "the":
            j += 1
        vertical = _VERTICAL.get(words[j]) if j < len(words) else None
        j += vertical is not None
        horizontal = words[j] if j < len(words) and words[j] in ("left", "right") else None
        j += horizontal is not None
        if vertical is None and horizontal is None and j < len(words) and words[j] in _CENTRE:
            place, j = "centre", j + 1
        else:
            place = " ".join(w for w in (vertical, horizontal) if w)
        if not place:
            out.append("at")  # "at" without a place: reported as unknown by the parser
            i += 1
            continue
        if j < len(words) and words[j] in ("corner", "side", "edge"):
            j += 1
        out.append(PLACE_TOKEN + place)
        i = j
    return out


def normalize_words(text: str) -> list[str]:
    """The prompt as the world's tokens: places and relations folded into one token each."""
    return _join_relations(_join_places(tokenize_words(text)))


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
    words = normalize_words(text)
    objects: list[ObjectSpec] = []
    unknown: list[str] = []
    relation: str | None = None
    second: str | None = None
    color: str | None = None
    count: int | None = None
    size: str | None = None
    for w in words:
        if w in COLORS:
            color = w
        elif w in SIZE_SYNONYMS:
            size = SIZE_SYNONYMS[w]
        elif w in NUMBER_WORDS or w in DIGITS:
            count = NUMBER_WORDS.get(w) or DIGITS[w]
        elif w in SHAPES or w in PLURALS:
            shape = PLURALS.get(w, w)
            n = count if count is not None else (2 if w in PLURALS else 1)
            objects.append(ObjectSpec(shape, color, n, size))
            color, count, size = None, None, None
        elif w.startswith(PLACE_TOKEN):
            place = w[len(PLACE_TOKEN) :]
            if objects and objects[-1].count == 1 and objects[-1].place is None:
                objects[-1] = replace(objects[-1], place=place)
            else:
                unknown.append(f"at the {place}")
        elif w in RELATIONS:
            if relation is None and len(objects) == 1:
                relation = w
            elif relation is not None and second is None and len(objects) == 2:
                second = w
            else:
                unknown.append(w)
        elif w in ARTICLES or w in FILLER or w in ("and", "on"):
            continue
        else:
            unknown.append(w)
    if color is not None or count is not None or size is not None:
        unknown.append(color or size or COUNT_WORDS.get(count or 0, ""))  # dangling modifier
    if not objects:
        raise ShapesGrammarError(f"no shape (circle, square, triangle) in prompt: {text!r}")
    if relation is not None and (len(objects) < 2 or objects[0].count != 1 or objects[1].count != 1):
        raise ShapesGrammarError(f"a relation needs two single objects, before any other group: {text!r}")
    if second is not None and (len(objects) < 3 or objects[2].count != 1):
        raise ShapesGrammarError(f"a second relation chains the second object to a third single one: {text!r}")
    return Scene(tuple(objects), relation, tuple(u for u in unknown if u), second)


def _phrase(o: ObjectSpec) -> str:
    words = " ".join(w for w in (o.size, o.color) if w)
    words = f"{words} " if words else ""
    place = f" at the {o.place}" if o.place else ""
    if o.count == 1:
        return f"a {words}{o.shape}{place}"
    return f"{COUNT_WORDS[o.count]} {words}{o.shape}s"


def describe(scene: Scene) -> str:
    """Canonical phrasing of a scene: GenEval's for a terse scene ("a photo of a red square
    left of a blue circle"), objects listed one by one for an explicit one.

    Groups after a relation's pair are listed after it ("a photo of a red circle left of a
    blue square and two green triangles"), so ``parse_prompt`` reads the same scene back.
    """
    parts = [_phrase(o) for o in scene.objects]
    if scene.relation and not scene.explicit:
        if scene.second_relation:
            parts = [f"{parts[0]} {scene.relation} {parts[1]} {scene.second_relation} {parts[2]}", *parts[3:]]
        else:
            parts = [f"{parts[0]} {scene.relation} {parts[1]}", *parts[2:]]
    if len(parts) > 2:
        return "a photo of " + ", ".join(parts[:-1]) + " and " + parts[-1]
    return "a photo of " + " and ".join(parts)
