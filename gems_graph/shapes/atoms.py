"""GenEval2's atoms for shapes-world scenes, and the grader's answer to each on the pixels.

GenEval2 scores a prompt by its atoms, one yes/no question each, of four kinds:

* ``object``: is there at least one of the group's shape ("Is there a circle?");
* ``count``: exactly n of that shape, one included ("Is there exactly one circle?", "Are
  there exactly three circles?"), as GenEval2 asks "How many ...?" of every group;
* ``attribute``: the group's colour and its size, each when given: every object of that
  shape has it, and there is at least one ("Are the circles red?", "Is the square large?");
* ``position``: each relation ("Is the circle to the left of the square?").

Atoms name shapes only, never colours, so that one wrong thing fails one atom: a blue
circle where a red one was asked fails the attribute atom and keeps the object and
position atoms, as GenEval2's questions do. That holds because the hard suite's groups
have distinct shapes; a scene with two groups of one shape (the explicit register, or
the easy suite's "a red circle and a blue circle") is still given atoms, but they merge
the groups of that shape, so use them on scenes built by ``render.sample_hard_scene``.

A prompt's AM is the mean of its atoms' correctness, its GM-style score 1 when every
atom is right (GenEval2's headline, the share of prompts with all atoms right). The
answers come from the pixel checker (``detect``) through ``questions.answer_detections``,
the grader, never the critic of the loop.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from gems_graph.shapes.detect import Detection, detect
from gems_graph.shapes.grammar import COUNT_WORDS, Scene
from gems_graph.shapes.questions import RELATION_WORDS, answer_detections

#: The kinds of atom, in GenEval2's order (its "skills" minus the verb, which shapes lack).
ATOM_KINDS = ("object", "attribute", "count", "position")


@dataclass(frozen=True)
class Atom:
    """One yes/no question about an image and the kind of atom it checks."""

    kind: str
    question: str


def atoms_for_scene(scene: Scene) -> list[Atom]:
    """The scene's atoms, group by group (object, count, attributes), then the relations."""
    out: list[Atom] = []
    for o in scene.objects:
        out.append(Atom("object", f"Is there a {o.shape}?"))
        if o.count > 1:
            out.append(Atom("count", f"Are there exactly {COUNT_WORDS[o.count]} {o.shape}s?"))
        else:
            out.append(Atom("count", f"Is there exactly one {o.shape}?"))
        for word in (o.color, o.size):
            if word:
                out.append(Atom("attribute", f"Are the {o.shape}s {word}?" if o.count > 1 else f"Is the {o.shape} {word}?"))
    for i, rel, j in scene.relations:
        out.append(Atom("position", f"Is the {scene.objects[i].shape} {RELATION_WORDS[rel]} the {scene.objects[j].shape}?"))
    return out


def atom_count(scene: Scene) -> int:
    """How many atoms GenEval2 would count for the scene."""
    return len(atoms_for_scene(scene))


def answer_atoms(scene: Scene, image: Image.Image | list[Detection]) -> list[tuple[Atom, bool]]:
    """Every atom of the scene with the grader's answer on ``image`` (or its detections)."""
    dets = detect(image) if isinstance(image, Image.Image) else image
    return [(a, answer_detections(a.question, dets)[0]) for a in atoms_for_scene(scene)]


def atom_scores(answers: list[tuple[Atom, bool]]) -> dict[str, float]:
    """``am``: the share of atoms right; ``gm``: 1.0 when all are right (GenEval2's prompt score)."""
    ok = [yes for _, yes in answers]
    return {"am": sum(ok) / len(ok) if ok else 0.0, "gm": 1.0 if ok and all(ok) else 0.0}
