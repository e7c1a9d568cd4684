"""World knowledge comes in through inputs: the generator's prompting guide.

A generator declares how to prompt it (``prompting_guide``); the planner and the
refiner are shown it; the shapes chat model makes a world-specific move only when the
guide, a loaded skill or a recalled lesson says so, and otherwise only changes the seed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage, HumanMessage
from pydantic import Field

from gems_graph import prompt_labels as labels
from gems_graph.config import build_context, load_config
from gems_graph.context import ConfigError, GemsContext
from gems_graph.eval.methods import MethodSettings, method_context_fields
from gems_graph.graph import compile_graph
from gems_graph.models.generator import prompting_guide
from gems_graph.models.llm import invoke_structured, text_block
from gems_graph.models.registry import resolve_prompting_guide
from gems_graph.nodes.refiner import REFINE_USER_PROMPT, RefinedPrompt
from gems_graph.shapes.chat_model import KEEP_DIRECTIVE, MOVE_DIRECTIVES, ShapesChatModel, guide_moves
from gems_graph.shapes.generator import PROMPTING_GUIDE, ShapesGenerator
from gems_graph.shapes.grammar import parse_prompt
from gems_graph.testing import ColourGenerator
from tests.test_shapes_chat_model import refine

DEMO_PROMPT = "a photo of a yellow circle and a green triangle"
#: Prompts the shipped model gets wrong in round 1 at some seed (the demo's among them).
HARD_PROMPTS = (DEMO_PROMPT, "a photo of three red circles", "a photo of a green square left of a yellow triangle")


def _sentence(move: str) -> str:
    """The sentence of the shipped guide that licenses ``move``."""
    return next(s for s in PROMPTING_GUIDE.splitlines() if MOVE_DIRECTIVES[move].search(s))


def _without(*moves: str) -> str:
    return "\n".join(line for line in PROMPTING_GUIDE.splitlines() if line not in {_sentence(m) for m in moves})


# -- the capability -------------------------------------------------------------------------


def test_generators_declare_a_guide_and_image_servers_have_none():
    from gems_graph.backends.diffusers_generator import PRESETS, DiffusersGenerator
    from gems_graph.backends.http_generator import from_spec as http_from_spec
    from gems_graph.backends.images_api import from_spec as images_api_from_spec

    assert prompting_guide(ShapesGenerator()) == PROMPTING_GUIDE and len(PROMPTING_GUIDE.split()) <= 150
    assert "explicit" in PROMPTING_GUIDE.lower() and "top left" in PROMPTING_GUIDE and "large" in PROMPTING_GUIDE
    turbo = DiffusersGenerator("Tongyi-MAI/Z-Image-Turbo")
    assert "Z-Image-Turbo" in prompting_guide(turbo) and "negative prompt has no effect" in prompting_guide(turbo)
    assert "Qwen-Image" in prompting_guide(DiffusersGenerator("Qwen/Qwen-Image"))
    assert all(p.prompting_guide for k, p in PRESETS.items() if k != "diffusers")
    assert prompting_guide(DiffusersGenerator("some/unknown-model")) is None
    assert prompting_guide(images_api_from_spec("http://127.0.0.1:9/v1#m")) is None
    assert prompting_guide(http_from_spec("http://127.0.0.1:9")) is None
    assert prompting_guide(ColourGenerator()) is None  # a fake that declares nothing
    blank = type("Blank", (), {"prompting_guide": "  "})()
    assert prompting_guide(blank) is None


def test_the_context_keeps_replaces_or_removes_the_generators_guide(tmp_path):
    assert resolve_prompting_guide(GemsContext()) == PROMPTING_GUIDE
    assert resolve_prompting_guide(GemsContext(prompting_guide="Say it plainly.")) == "Say it plainly."
    assert resolve_prompting_guide(GemsContext(prompting_guide="none")) is None
    assert resolve_prompting_guide(GemsContext(prompting_guide="")) is None
    with pytest.raises(ConfigError, match="prompting_guide"):
        GemsContext(prompting_guide="x" * 5000)
    # GEMS_PROMPTING_GUIDE=none removes it (for other optional settings "none" means unset).
    assert load_config(environ={"GEMS_PROMPTING_GUIDE": "none"}).values["prompting_guide"] == "none"
    assert resolve_prompting_guide(build_context({}, config_path=_toml(tmp_path, 'prompting_guide = "Be brief."'))) == "Be brief."


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gems.toml"
    path.write_text(text + "\n")
    return path


def test_doctor_says_which_guide_the_planner_and_refiner_get():
    from gems_graph.backends.doctor import doctor

    def row(**context: Any) -> str:
        return next(r.detail for r in doctor(context, probe=False) if r.check == "prompting guide")

    assert "declared by the generator" in row()
    assert row(prompting_guide="Be brief.") == "2 words, the prompting_guide setting"
    assert row(generator=ColourGenerator()).startswith("none")
    assert row(prompting_guide="none").startswith("none")


def test_gems_run_takes_the_guide_from_a_flag(tmp_path, monkeypatch):
    import json

    from typer.testing import CliRunner

    from gems_graph.app.cli import app

    monkeypatch.setenv("GEMS_HOME", str(tmp_path / "home"))
    args = ["run", DEMO_PROMPT, "--rounds", "3", "--memory", "none", "--max-skills", "0", "--out", str(tmp_path / "runs"), "--json"]
    res = CliRunner().invoke(app, [*args, "--prompting-guide", "none"])
    assert res.exit_code == 0, res.output
    rounds = json.loads(Path(json.loads(res.stdout)["run_json"]).read_text())["rounds"]
    assert len(rounds) > 1 and not any(parse_prompt(r["prompt"]).explicit for r in rounds)


# -- the prompts ----------------------------------------------------------------------------


class RecordingShapesChatModel(ShapesChatModel):
    """The shapes chat model, keeping the text of every request it answers."""

    requests: list[str] = Field(default_factory=list)

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
        tools = [t["function"]["name"] for t in kwargs.get("tools") or []]
        if "PlannedPrompt" in tools or "RefinedPrompt" in tools:
            self.requests.append(next(t for t in tools if t in ("PlannedPrompt", "RefinedPrompt")) + "\n" + _text(messages))
        return super()._generate(messages, stop, run_manager, **kwargs)


def _text(messages: list[BaseMessage]) -> str:
    out = []
    for m in messages:
        blocks = m.content if isinstance(m.content, list) else [{"type": "text", "text": m.content}]
        out += [b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type") == "text"]
    return "\n".join(out)


def _loop(tmp_path: Path, prompt: str, chat: Any = None, **context: Any) -> dict[str, Any]:
    """The checkpointed state after a ``loop`` run (the eval's method: no skills, no memory) on the offline world."""
    from langgraph.checkpoint.memory import InMemorySaver

    fields = method_context_fields("loop", MethodSettings(out=tmp_path))
    ctx = GemsContext(**{**fields, "chat_model": chat or ShapesChatModel(), "artifact_root": str(tmp_path / "runs"), **context})
    graph, config = compile_graph(checkpointer=InMemorySaver()), {"configurable": {"thread_id": "t"}}
    graph.invoke({"prompt": prompt}, config, context=ctx)
    return graph.get_state(config).values


def test_the_planner_and_the_refiner_are_shown_the_guide(tmp_path):
    chat = RecordingShapesChatModel()
    out = _loop(tmp_path, DEMO_PROMPT, chat)
    assert out["rounds_used"] >= 2
    planner = [r for r in chat.requests if r.startswith("PlannedPrompt")]
    refiner = [r for r in chat.requests if r.startswith("RefinedPrompt")]
    assert planner and refiner
    for request in planner + refiner:
        assert labels.find_block(request, labels.PROMPTING_GUIDE) == PROMPTING_GUIDE
    custom = RecordingShapesChatModel()
    _loop(tmp_path / "custom", DEMO_PROMPT, custom, prompting_guide="Say what you want plainly.", max_rounds=2)
    assert all(labels.find_block(r, labels.PROMPTING_GUIDE) == "Say what you want plainly." for r in custom.requests)
    bare = RecordingShapesChatModel()
    _loop(tmp_path / "bare", DEMO_PROMPT, bare, prompting_guide="none", max_rounds=2)
    assert bare.requests and all(labels.PROMPTING_GUIDE not in r for r in bare.requests)


def test_the_guide_stays_out_of_checkpointed_state(tmp_path):
    out = _loop(tmp_path, DEMO_PROMPT)
    assert "3x3 grid" not in repr(out)


# -- the explicit register comes from the guide ---------------------------------------------


def _prompts(out: dict[str, Any]) -> list[str]:
    return [c["prompt"] for r in out["rounds"] for c in r["candidates"]]


def test_without_the_guide_a_loop_run_never_writes_the_explicit_register(tmp_path):
    for i, prompt in enumerate(HARD_PROMPTS):
        out = _loop(tmp_path / str(i), prompt, prompting_guide="none")
        prompts = _prompts(out)
        assert not any(parse_prompt(p).explicit or re.search(r"\bat the\b", p) for p in prompts), prompts
        assert len(set(prompts)) == 1  # the planner's terse rewrite, then new seeds only
    assert len(_prompts(_loop(tmp_path / "demo", DEMO_PROMPT, prompting_guide="none"))) > 1  # it did need refining


def test_with_the_guide_a_prompt_that_fails_round_one_is_laid_out_explicitly(tmp_path):
    out = _loop(tmp_path, DEMO_PROMPT)
    first = out["rounds"][0]["candidates"][0]
    assert first["score"] < 1.0 and not parse_prompt(first["prompt"]).explicit
    assert any(parse_prompt(p).explicit for p in _prompts(out)[1:])
    assert out["status"] == "passed"


# -- each move is taken only when a text says it --------------------------------------------


def _refine(request: str, rounds: list[tuple[str, str]], guide: str | None, lessons: tuple[str, ...] = ()) -> RefinedPrompt:
    return refine(request, rounds, lessons=lessons, guide=guide)


def _move(reply: RefinedPrompt) -> str:
    return re.search(r"strategy: ([a-z-]+)", reply.reasoning).group(1)


COUNT = ("a photo of three red circles", [("a photo of three red circles", "Are there exactly three red circles?")])
UNCOLOURED = ("a photo of a triangle and a blue circle", [("a photo of a triangle and a blue circle", "Is there a triangle?")])
LAYOUT = "a photo of a red square at the left and a blue circle at the right"
RELATION = ("a photo of a red square right of a blue circle", [(LAYOUT, "Is the red square to the right of the blue circle?")])


def test_every_move_needs_its_sentence_in_the_guide():
    assert guide_moves(PROMPTING_GUIDE) == ["add-colour", "explicit-layout", "move"]
    assert _move(_refine(*COUNT, PROMPTING_GUIDE)) == "explicit-layout"
    assert _move(_refine(*COUNT, _without("explicit-layout"))) == "new-seed"
    assert _move(_refine(*UNCOLOURED, PROMPTING_GUIDE)) == "add-colour"
    without_colour = _refine(*UNCOLOURED, _without("add-colour"))
    assert _move(without_colour) == "explicit-layout" and parse_prompt(without_colour.prompt).objects[0].color is None
    assert _move(_refine(*RELATION, PROMPTING_GUIDE)) == "move"
    assert _move(_refine(*RELATION, _without("move"))) == "new-seed"


def test_without_a_guide_or_a_lesson_the_refiner_only_changes_the_seed():
    for request, rounds in (COUNT, UNCOLOURED, RELATION):
        reply = _refine(request, rounds, None)
        assert _move(reply) == "new-seed" and reply.prompt == rounds[-1][0] and reply.new_seed


def test_the_guide_sets_the_order_of_the_moves():
    # The same two sentences, the layout one first: it now wins over naming a colour.
    colour, layout = _sentence("add-colour"), _sentence("explicit-layout")
    reordered = PROMPTING_GUIDE.replace(colour + "\n", "").replace(layout, layout + "\n" + colour)
    assert guide_moves(reordered) == ["explicit-layout", "add-colour", "move"]
    assert _move(_refine(*UNCOLOURED, reordered)) == "explicit-layout"


def test_a_recalled_lesson_licenses_a_move_the_guide_does_not_state():
    lesson = 'For "a photo of two green circles": strategy explicit-layout worked in round 2. It fixed: Are there exactly two circles?'
    assert _move(_refine(*COUNT, None, (lesson,))) == "explicit-layout"
    assert _move(_refine(*RELATION, None, ('For "x": strategy move worked in round 2.',))) == "move"


def test_keeping_what_was_right_in_its_cell_comes_from_the_guide(tmp_path):
    import numpy as np

    from gems_graph.models.llm import image_block
    from gems_graph.persistence.artifacts import save_png
    from gems_graph.shapes.grammar import ObjectSpec, Scene
    from gems_graph.shapes.render import render_scene

    assert KEEP_DIRECTIVE.search(_sentence("explicit-layout"))
    image, _ = render_scene(Scene((ObjectSpec("square", "red", place="bottom right"),)), np.random.default_rng(0))
    ref = save_png(image, tmp_path / "r1.png")
    request = "a photo of a red square and a blue circle"

    def square_place(guide: str) -> str | None:
        lines = [f"{labels.TRAJECTORY}:", f"Round 1 prompt: {request}", "  score: 0.50", "  failed: Is there a blue circle?"]
        text = REFINE_USER_PROMPT.format(
            prompt=request, guide=labels.guide_block(guide), trajectory="\n".join(lines), lessons="", feedback="", edit=""
        )
        # An exact view of the image (the oracle's), so only the guide's text decides.
        model = ShapesChatModel(judge="oracle")
        reply = invoke_structured(model, RefinedPrompt, [HumanMessage(content=[text_block(text), image_block(ref)])]).value
        return {o.shape: o.place for o in parse_prompt(reply.prompt).objects}["square"]

    assert square_place(PROMPTING_GUIDE) == "bottom right"
    clause = ", keeping those that came out right in their cells"
    assert clause in _sentence("explicit-layout")
    # Without the clause the objects are still laid out, but in a fresh layout: the square is not pinned.
    assert square_place(PROMPTING_GUIDE.replace(clause, "")) not in (None, "bottom right")
