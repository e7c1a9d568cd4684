"""Checks for shapes-world prompts, and answers to them read off the pixels.

The checks follow GenEval's rules: an object asked for once must be present (at
least one), a count must be exact, a relation holds between the two objects'
centroids. ``prompt_correct`` (all checks pass) is the world's accuracy metric: the
grader's, never the loop's judge (that is the learned critic, which can disagree).
"""

from __future__ import annotations

import re

from PIL import Image

from gems_graph.shapes.detect import Detection, count, detect, matches, relation_holds, scene_confidence
from gems_graph.shapes.grammar import (
    COLORS,
    COUNT_WORDS,
    DIGITS,
    NUMBER_WORDS,
    SHAPES,
    SIZES,
    ObjectSpec,
    Scene,
    ShapesGrammarError,
    parse_prompt,
)

RELATION_WORDS = {"left of": "to the left of", "right of": "to the right of", "above": "above", "below": "below"}
_COLOR = "|".join(COLORS)
_SHAPE = "|".join(SHAPES)
_SIZE = "|".join(SIZES)
_NUMBER = "|".join([*NUMBER_WORDS, *DIGITS])
_OBJ = rf"(?:an? |the )?(?:({_SIZE}) )?(?:({_COLOR}) )?({_SHAPE})s?"
_PRESENCE = re.compile(rf"^is there {_OBJ}\b")
_COUNT = re.compile(rf"^(?:are|is) there exactly ({_NUMBER}) (?:({_SIZE}) )?(?:({_COLOR}) )?({_SHAPE})s?\b")
_RELATION = re.compile(rf"^(?:is|are) {_OBJ} (?:to the |on the )?(left of|right of|above|below) {_OBJ}\b")
#: GenEval2's attribute atoms, "Is the circle red?" / "Are the circles large?": every object of
#: that shape has the colour (or size), and there is one (``gems_graph.shapes.atoms``).
_ATTRIBUTE = re.compile(rf"^(?:is|are) (?:all )?(?:the )?({_SHAPE})s? ({_COLOR}|{_SIZE})\b")


def object_name(o: ObjectSpec) -> str:
    """The object as the checks name it: size, colour and shape ("large red circle")."""
    return " ".join(w for w in (o.size, o.color, o.shape) if w)


def checks_for_scene(scene: Scene) -> list[str]:
    checks = []
    for o in scene.objects:
        if o.count == 1:
            checks.append(f"Is there a {object_name(o)}?")
        else:
            checks.append(f"Are there exactly {COUNT_WORDS[o.count]} {object_name(o)}s?")
    for i, rel, j in scene.relations:  # further groups stand beside the related objects
        checks.append(f"Is the {object_name(scene.objects[i])} {RELATION_WORDS[rel]} the {object_name(scene.objects[j])}?")
    return checks


def _largest(dets: list[Detection], shape: str, color: str | None, size: str | None = None) -> Detection | None:
    found = [d for d in dets if matches(d, shape, color, size)]
    return max(found, key=lambda d: d.area) if found else None


def answer_detections(question: str, dets: list[Detection]) -> tuple[bool, float]:
    """(answer, P(yes)) for one check; unknown phrasing is answered "no" at 0.5."""
    q = question.strip().lower()
    conf = scene_confidence(dets)
    if m := _COUNT.match(q):
        n = NUMBER_WORDS.get(m.group(1)) or int(m.group(1))
        yes = count(dets, m.group(4), m.group(3)) == n and (not m.group(2) or count(dets, m.group(4), m.group(3), m.group(2)) == n)
    elif m := _RELATION.match(q):
        a = _largest(dets, m.group(3), m.group(2), m.group(1))
        b = _largest(dets, m.group(7), m.group(6), m.group(5))
        yes = a is not None and b is not None and relation_holds(a, b, m.group(4))
    elif m := _ATTRIBUTE.match(q):
        shape, word = m.group(1), m.group(2)
        having = count(dets, shape, size=word) if word in SIZES else count(dets, shape, word)
        yes = count(dets, shape) >= 1 and count(dets, shape) == having
    elif m := _PRESENCE.match(q):
        yes = count(dets, m.group(3), m.group(2), m.group(1)) >= 1
    else:
        return False, 0.5
    p_yes = 0.5 + 0.5 * conf if yes else 0.5 - 0.5 * conf
    return yes, round(p_yes, 4)


def answer_question(question: str, image: Image.Image, *, request: str = "") -> tuple[bool, float]:
    """Answer one check. A question outside the checker's phrasing (e.g. a skill's
    "does every object keep its colour?") is answered for the whole request: yes when
    every check of the request's scene passes."""
    dets = detect(image)
    yes, p_yes = answer_detections(question, dets)
    if p_yes != 0.5 or not request:
        return yes, p_yes
    try:
        scene = parse_prompt(request)
    except ShapesGrammarError:
        return yes, p_yes
    answers = [answer_detections(q, dets) for q in checks_for_scene(scene)]
    yes = all(a for a, _ in answers)
    return yes, min(p for _, p in answers)  # the weakest part decides, as with "all"


def prompt_correct_detections(scene: Scene, dets: list[Detection]) -> bool:
    """GenEval-style correctness of what the checker read off an image."""
    return all(answer_detections(q, dets)[0] for q in checks_for_scene(scene))


def prompt_correct(scene: Scene, image: Image.Image) -> bool:
    """GenEval-style correctness: every check of the scene passes on the image."""
    return prompt_correct_detections(scene, detect(image))
