"""A plugin module the CLI tests load through ``$GEMS_PLUGINS``.

Registers ``colour:`` and ``faulty-shapes:`` generators and ``scripted:`` chat models
so that ``gems run`` and ``gems eval`` can be driven end to end in a subprocess (and
on Ray workers). Arguments are ``key=value`` pairs joined by commas, e.g.
``colour:delay=0.3,log=/tmp/calls.tsv``, ``faulty-shapes:delay=0.2`` and ``scripted:fix=3``.
"""

from __future__ import annotations

import os
import time
import zlib

import numpy as np

from gems_graph.models.generator import GenerationRequest
from gems_graph.models.registry import register_chat_model, register_generator
from gems_graph.shapes.grammar import INVERSE_RELATION, ObjectSpec, Scene, parse_prompt
from gems_graph.shapes.render import render_scene
from gems_graph.testing import ColourGenerator, ScriptedChatModel, loop_handler


def _args(arg: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in arg.split(",") if "=" in part)


def _colour(arg: str) -> ColourGenerator:
    a = _args(arg)
    return ColourGenerator(
        delay=float(a.get("delay", 0)),
        log_path=a.get("log"),
        fail_all=a.get("fail") == "all",
        lucky_seeds={int(s) for s in a.get("lucky", "").split("+") if s},
    )


def _scripted(arg: str) -> ScriptedChatModel:
    """``scripted:fix=3,usage=10/2``: fixed from round 3 on; each reply reports 10 input and 2 output tokens."""
    a = _args(arg)
    usage = tuple(int(n) for n in a["usage"].split("/")) if "usage" in a else None
    return ScriptedChatModel(handler=loop_handler(fix_at_round=int(a["fix"]) if "fix" in a else None), usage=usage)


def faulty(scene: Scene, roll: int) -> Scene:
    """One typical mistake for the scene, chosen by ``roll``."""
    objs = list(scene.objects)
    if scene.relation:
        return Scene(tuple(objs), INVERSE_RELATION[scene.relation])
    if len(objs) == 2:
        a, b = objs
        if a.color and b.color and roll % 2:
            return Scene((ObjectSpec(a.shape, b.color, a.count), ObjectSpec(b.shape, a.color, b.count)))
        return Scene((a,))
    o = objs[0]
    if o.count > 1:
        return Scene((ObjectSpec(o.shape, o.color, o.count - 1 if o.count == 4 else o.count + 1),))
    other = {"circle": "square", "square": "triangle", "triangle": "circle"}[o.shape]
    return Scene((ObjectSpec(other, o.color, 1),))


class FaultyRenderer:
    """Procedural shapes with injected errors on about half of the (prompt, seed) pairs."""

    family = "test-shapes"

    def __init__(
        self, error_rate: float = 0.5, interrupt_after: int | None = None, delay: float = 0.0, log_path: str | None = None
    ) -> None:
        self.error_rate = error_rate
        self.interrupt_after = interrupt_after
        self.delay = delay
        self.log_path = log_path
        self.calls = 0

    def generate(self, request: GenerationRequest):
        self.calls += 1
        if self.log_path:  # which process made which image (Ray tests check it was a worker)
            with open(self.log_path, "a") as fh:
                fh.write(f"{os.getpid()}\t{request.seed}\t{request.prompt}\n")
        if self.delay:
            time.sleep(self.delay)
        if self.interrupt_after is not None and self.calls > self.interrupt_after:
            raise KeyboardInterrupt("simulated Ctrl-C in the middle of a task")
        scene = parse_prompt(request.prompt)
        roll = zlib.crc32(f"{request.prompt}|{request.seed}".encode())
        if (roll % 1000) / 1000 < self.error_rate:
            scene = faulty(scene, roll // 1000)
        image, _ = render_scene(scene, np.random.default_rng(request.seed))
        return image


def _faulty(arg: str) -> FaultyRenderer:
    a = _args(arg)
    return FaultyRenderer(delay=float(a.get("delay", 0)), log_path=a.get("log"))


register_generator("colour", _colour, replace=True)
register_generator("faulty-shapes", _faulty, replace=True)
register_chat_model("scripted", _scripted, replace=True)
