"""Editing as a refinement move: the capability, the shapes world's edit planner, the refiner's choice.

The generator tests use the shipped shapes weights (a real diffusers pipeline, 32x32);
node tests use the shapes chat model or the scripted one.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from PIL import Image
from rich.console import Console

from gems_graph import prompt_labels as labels
from gems_graph.app import cli
from gems_graph.context import GemsContext
from gems_graph.graph import compile_graph
from gems_graph.models.generator import EditRequest, GenerationRequest, region_mask, supports_editing
from gems_graph.models.llm import image_block, invoke_structured, text_block
from gems_graph.nodes.critic import Decomposition
from gems_graph.nodes.planner import PlannedPrompt
from gems_graph.nodes.refiner import EDIT_OFFER, REFINE_USER_PROMPT, EditOrPrompt, Experience, RefinedPrompt
from gems_graph.persistence.artifacts import save_png
from gems_graph.persistence.report import write_report
from gems_graph.shapes.chat_model import ShapesChatModel
from gems_graph.shapes.detect import detect
from gems_graph.shapes.editing import plan_edit
from gems_graph.shapes.generator import ShapesGenerator
from gems_graph.shapes.grammar import PLACES, parse_prompt
from gems_graph.shapes.layout import cell_at
from gems_graph.shapes.questions import prompt_correct
from gems_graph.shapes.render import Placed, draw
from gems_graph.testing import ColourGenerator, ScriptedChatModel, last_text

REQUEST = "a photo of a red circle and a blue triangle"
#: The red circle is right; the triangle came out green.
#: Few denoising steps keep the real pipeline's tests to seconds on a shared CPU.
STEPS = 6
WRONG_COLOUR = [Placed("circle", "red", 5.5, 5.5, 8), Placed("triangle", "green", 26.5, 16.0, 8)]


_SHAPES = ShapesGenerator()  # loaded once for the module


def _inside(box, x, y):
    return box[0] <= x < box[2] and box[1] <= y < box[3]


# -- the capability -------------------------------------------------------------------


def test_region_mask_is_white_inside_the_region_and_rejects_bad_regions():
    mask = region_mask(32, 32, [0.5, 0.25, 1.0, 0.75])
    assert mask.mode == "L" and mask.size == (32, 32)
    assert mask.getpixel((20, 12)) == 255 and mask.getpixel((10, 12)) == 0 and mask.getpixel((20, 4)) == 0
    for bad in ([0.5, 0.5, 0.2, 0.9], [0, 0, 1.5, 1], [0, 0, 1]):
        with pytest.raises(ValueError, match="region"):
            region_mask(32, 32, bad)


def test_editing_is_declared_by_the_object():
    assert supports_editing(ShapesGenerator())
    assert not supports_editing(ColourGenerator())

    class ServerThatCannotEdit(ShapesGenerator):
        supports_editing = False

    assert not supports_editing(ServerThatCannotEdit())


def test_shapes_inpainting_keeps_the_unmasked_pixels_and_repaints_the_masked_one():
    source = draw(WRONG_COLOUR)
    edit = plan_edit(parse_prompt(REQUEST), detect(source))
    mask = region_mask(32, 32, edit.region())
    out = _SHAPES.edit(EditRequest(image=source, prompt=edit.prompt, seed=2, mask=mask, steps=STEPS))
    a, b = source.load(), out.load()
    outside = [(x, y) for x in range(32) for y in range(32) if mask.getpixel((x, y)) == 0]
    assert max(max(abs(p - q) for p, q in zip(a[xy], b[xy])) for xy in outside) <= 1
    assert out.tobytes() != source.tobytes()
    circle = next(d for d in detect(out) if d.shape == "circle")
    assert circle.color == "red" and cell_at(circle.cx, circle.cy) == (0, 0)  # kept where it was


def test_shapes_img2img_at_strength_zero_is_the_source_and_at_one_is_generation():
    gen = _SHAPES
    source = draw(WRONG_COLOUR)
    kept = gen.edit(EditRequest(image=source, prompt=REQUEST, seed=0, strength=0.0, steps=STEPS))
    assert kept.tobytes() == source.tobytes()
    fresh = gen.edit(EditRequest(image=source, prompt=REQUEST, seed=5, strength=1.0, steps=STEPS))
    assert fresh.tobytes() == gen.generate(GenerationRequest(prompt=REQUEST, seed=5, steps=STEPS)).tobytes()


# -- where the fault is (shapes world) ---------------------------------------------------


def test_a_wrong_colour_object_is_masked_by_its_box_and_the_rest_kept_in_place():
    edit = plan_edit(parse_prompt(REQUEST), detect(draw(WRONG_COLOUR)))
    assert edit is not None and "green triangle" in edit.reason
    assert _inside(edit.box, 26, 16) and not _inside(edit.box, 5, 5)
    placed = {(o.shape, o.color): o.place for o in parse_prompt(edit.prompt).objects}
    assert placed == {("circle", "red"): "top left", ("triangle", "blue"): "right"}


def test_a_missing_object_goes_in_a_free_cell():
    edit = plan_edit(parse_prompt(REQUEST), detect(draw(WRONG_COLOUR[:1])))
    assert edit is not None and "add the blue triangle" in edit.reason
    triangle = next(o for o in parse_prompt(edit.prompt).objects if o.shape == "triangle")
    c, r = PLACES[triangle.place]
    assert (c, r) != (0, 0) and _inside(edit.box, (c + 0.5) * 32 / 3, (r + 0.5) * 32 / 3) and not _inside(edit.box, 5, 5)


def test_one_too_few_of_a_count_adds_one_and_one_too_many_removes_the_smallest():
    two = [Placed("circle", "red", 5.5, 5.5, 8), Placed("circle", "red", 26.5, 5.5, 8)]
    add = plan_edit(parse_prompt("a photo of three red circles"), detect(draw(two)))
    assert add is not None and parse_prompt(add.prompt).groups() == {("circle", "red"): 3}
    three = [*two, Placed("circle", "red", 16, 26.5, 6)]
    remove = plan_edit(parse_prompt("a photo of two red circles"), detect(draw(three)))
    assert remove is not None and _inside(remove.box, 16, 26) and parse_prompt(remove.prompt).groups() == {("circle", "red"): 2}


def test_two_wrong_objects_are_left_to_regeneration():
    swapped = [Placed("circle", "blue", 5.5, 5.5, 8), Placed("triangle", "red", 26.5, 16.0, 8)]
    assert plan_edit(parse_prompt(REQUEST), detect(draw(swapped))) is None  # one edit would leave one wrong
    three = parse_prompt("a photo of a red circle, a blue triangle and a green square")
    assert plan_edit(three, detect(draw([WRONG_COLOUR[0], Placed("square", "yellow", 16, 26.5, 8)]))) is None


def test_a_relation_is_fixed_only_by_where_a_missing_object_goes_and_otherwise_regenerated():
    request = parse_prompt("a photo of a red circle left of a blue triangle")
    circle_only = detect(draw([Placed("circle", "red", 16, 16, 8)]))
    edit = plan_edit(request, circle_only)
    assert edit is not None and edit.reason.startswith("add the blue triangle")
    triangle = next(o for o in parse_prompt(edit.prompt).objects if o.shape == "triangle")
    assert PLACES[triangle.place][0] == 2  # right of the circle, so the relation holds after the edit
    wrong_side = draw([Placed("circle", "red", 26.5, 16, 8), Placed("triangle", "blue", 5.5, 16, 8)])
    assert plan_edit(request, detect(wrong_side)) is None  # both there, placed wrong: regenerate


def test_no_edit_when_nothing_of_the_request_is_there_or_nothing_fails():
    assert plan_edit(parse_prompt(REQUEST), detect(draw([Placed("square", "green", 16, 16, 8)]))) is None
    assert plan_edit(parse_prompt("a photo of a red circle"), detect(draw([Placed("circle", "blue", 16, 16, 8)]))) is None
    assert plan_edit(parse_prompt(REQUEST), detect(draw([*WRONG_COLOUR[:1], Placed("triangle", "blue", 26, 16, 8)]))) is None


def test_the_shapes_inpaint_is_conditioned_on_the_objects_inside_the_mask_only():
    from gems_graph.shapes.generator import regional_prompt

    prompt = "a photo of a red circle at the top left and a blue triangle at the right"
    assert regional_prompt(prompt, region_mask(32, 32, [0.6, 0.3, 1.0, 0.7])) == "a photo of a blue triangle at the right"
    assert regional_prompt(prompt, region_mask(32, 32, [0.0, 0.6, 0.3, 1.0])) == prompt  # nothing placed there: the whole scene
    assert regional_prompt(REQUEST, region_mask(32, 32, [0.6, 0.3, 1.0, 0.7])) == REQUEST  # not laid out: as given


def _shapes_refine(tmp_path, placed, offer: bool):
    ref = save_png(draw(placed), tmp_path / "best.png")
    trajectory = "\n".join(
        ["Trajectory so far:", f"Round 1 prompt: {REQUEST}", "  score: 0.50", "  passed: Is there a red circle?"]
        + ["  failed: Is there a blue triangle?"]
    )
    edit = EDIT_OFFER.format(round=1, index=0, failed="Is there a blue triangle?", passed="Is there a red circle?") if offer else ""
    text = REFINE_USER_PROMPT.format(prompt=REQUEST, guide="", trajectory=trajectory, lessons="", feedback="", edit=edit)
    content = [text_block(text), image_block(ref)] + ([image_block(ref)] if offer else [])
    # The rule itself, read off an exact view of the image (the oracle's); what the
    # critic sees instead is measured by benchmarks/critic_accuracy.py.
    schema = EditOrPrompt if offer else RefinedPrompt  # as the refiner asks
    return invoke_structured(ShapesChatModel(judge="oracle"), schema, [HumanMessage(content=content)]).value


def test_the_shapes_refiner_edits_only_when_offered_and_only_one_object_is_wrong(tmp_path):
    edited = _shapes_refine(tmp_path, WRONG_COLOUR, offer=True)
    assert edited.action == "edit" and "strategy: edit" in edited.reasoning
    x0, y0, x1, y1 = (v * 32 for v in edited.region)
    assert x0 <= 26 < x1 and y0 <= 16 < y1
    assert "strategy: edit" not in _shapes_refine(tmp_path, WRONG_COLOUR, offer=False).reasoning
    mostly_wrong = [Placed("square", "green", 16, 16, 8)]
    assert _shapes_refine(tmp_path, mostly_wrong, offer=True).action == "regenerate"


# -- the loop ------------------------------------------------------------------------------


class DrawsWrongThenInpaints:
    """Generation draws a fixed scene procedurally; editing is the real shapes pipeline."""

    family = "shapes"

    def __init__(self, placed=WRONG_COLOUR, fail_edits: bool = False):
        self.placed, self.fail_edits = placed, fail_edits
        self.shapes = _SHAPES
        self.generated: list[GenerationRequest] = []
        self.edits: list[EditRequest] = []

    def generate(self, request: GenerationRequest) -> Image.Image:
        self.generated.append(request)
        return draw(self.placed)

    def edit(self, request: EditRequest) -> Image.Image:
        self.edits.append(request)
        if self.fail_edits:
            raise RuntimeError("simulated editor failure")
        return self.shapes.edit(request)


def _run(tmp_path, generator, chat_model=None, **ctx):
    context = GemsContext(
        generator=generator,
        chat_model=chat_model or ShapesChatModel(),
        artifact_root=str(tmp_path / "runs"),
        memory="none",
        max_skills=0,
        generation_retries=1,
        steps=STEPS,
        **{"max_rounds": 3, "refiner_edits": True, **ctx},
    )
    app = compile_graph(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "edit"}}
    events = list(app.stream({"prompt": REQUEST}, config, context=context, stream_mode="custom"))
    state = app.get_state(config).values
    return {**state, "events": events}, state


def test_the_loop_edits_the_best_image_records_the_parent_and_mask_and_judges_the_edit(tmp_path, monkeypatch):
    gen = DrawsWrongThenInpaints()
    out, state = _run(tmp_path, gen)
    first, second = state["rounds"][0], state["rounds"][1]
    assert first["candidates"][0]["score"] == 0.5 and "edit" not in first["candidates"][0]
    edit_cand = second["candidates"][0]
    assert edit_cand["edit"]["parent"] == {"round": 1, "index": 0}
    assert edit_cand["edit"]["source"]["path"] == first["candidates"][0]["image"]["path"]
    assert Path(edit_cand["edit"]["mask"]["path"]).is_file() and edit_cand["verdicts"] and edit_cand["score"] is not None
    assert len(gen.edits) >= 1 and len(gen.generated) == 1  # round 1 generated, the rest were edits
    assert gen.edits[0].mask is not None and gen.edits[0].seed != gen.generated[0].seed
    # Best so far: an edit replaces its parent only when it ranks strictly higher.
    judged = [c for r in state["rounds"] for c in r["candidates"] if c["score"] is not None]
    assert out["score"] == max(c["score"] for c in judged)
    if out["status"] == "passed":
        assert prompt_correct(parse_prompt(REQUEST), Image.open(out["best_image"]))
    run_json = json.loads((Path(out["run_dir"]) / "run.json").read_text())
    recorded = run_json["rounds"][1]["candidates"][0]["edit"]
    assert recorded["parent"] == {"round": 1, "index": 0} and recorded["region"] and recorded["mask"]["path"]
    html = write_report(out["run_dir"]).read_text()
    assert "edit of round 1 #0" in html and 'alt="mask"' in html and 'alt="parent"' in html
    # The CLI's progress lines say "edit" for the round and its candidates.
    err = Console(file=io.StringIO(), width=200)
    monkeypatch.setattr(cli, "err", err)
    show = cli._ProgressPrinter(enabled=True)
    for event in out["events"]:
        show(event)
    printed = err.file.getvalue()
    assert "edit: round 1 candidate 0, region" in printed and ", edit): " in printed


class DrawsWrong:
    """A generator that cannot edit: it draws the same wrong scene every time."""

    family = "shapes"

    def __init__(self):
        self.generated: list[GenerationRequest] = []

    def generate(self, request: GenerationRequest) -> Image.Image:
        self.generated.append(request)
        return draw(WRONG_COLOUR)


def test_a_separate_editor_takes_the_edits_while_the_generator_makes_the_new_images(tmp_path):
    gen, editor = DrawsWrong(), DrawsWrongThenInpaints()
    out, state = _run(tmp_path, gen, editor=editor, max_rounds=2)
    edited = state["rounds"][1]["candidates"][0]
    assert edited["edit"]["parent"] == {"round": 1, "index": 0} and edited["verdicts"]
    assert len(gen.generated) == 1 and len(editor.edits) == 1 and not editor.generated
    # Without the editor the same generator is never offered an edit.
    _, alone = _run(tmp_path / "alone", DrawsWrong(), max_rounds=2)
    assert all("edit" not in c for r in alone["rounds"] for c in r["candidates"])


def test_a_failed_edit_is_recorded_like_a_failed_generation(tmp_path):
    out, state = _run(tmp_path, DrawsWrongThenInpaints(fail_edits=True))
    cand = state["rounds"][1]["candidates"][0]
    assert cand["image"] is None and "simulated editor failure" in cand["error"]
    assert cand["edit"]["parent"] == {"round": 1, "index": 0}
    assert out["status"] == "failed" and "every candidate of round 2 failed" in out["error"]


def _scripted_refiner(answer: EditOrPrompt, seen: list[str], asked: list[list[str]] | None = None):
    def handle(messages, tools):
        text = last_text(messages)
        if "PlannedPrompt" in tools:
            return PlannedPrompt(reasoning="", prompt=REQUEST)
        if "Decomposition" in tools:
            return Decomposition(checks=["Is there a red circle?", "Is there a blue triangle?"])
        if "Experience" in tools:
            return Experience(experience="The triangle is green.")
        if "EditOrPrompt" in tools or "RefinedPrompt" in tools:
            seen.append(text)
            (asked if asked is not None else []).append(tools)
            return answer if "EditOrPrompt" in tools else RefinedPrompt(prompt=answer.prompt)
        return "yes" if "circle" in (labels.find_field(text, labels.QUESTION) or "") else "no"

    return handle


def test_a_generator_that_cannot_edit_is_never_offered_nor_asked_to(tmp_path):
    """Without an edit offer the refiner's schema has no edit fields, so it cannot even be asked for one."""
    seen: list[str] = []
    asked: list[list[str]] = []
    answer = EditOrPrompt(prompt="a photo of a blue triangle", action="edit", region=[0.6, 0.3, 1.0, 0.7])
    gen = ColourGenerator()
    out, state = _run(tmp_path, gen, ScriptedChatModel(handler=_scripted_refiner(answer, seen, asked)), max_rounds=2)
    assert seen and all(labels.EDIT_SOURCE not in t for t in seen)
    assert asked and all("RefinedPrompt" in tools and "EditOrPrompt" not in tools for tools in asked)
    assert all("edit" not in c for r in state["rounds"] for c in r["candidates"]) and len(gen.calls) == 2


def test_a_scripted_llm_is_offered_the_edit_with_the_image_and_its_region_is_checked(tmp_path):
    seen: list[str] = []
    bad = EditOrPrompt(prompt="a photo of a blue triangle", action="edit", region=[0.9, 0.3, 0.2, 0.7])
    gen = DrawsWrongThenInpaints()
    out, state = _run(tmp_path, gen, ScriptedChatModel(handler=_scripted_refiner(bad, seen)), max_rounds=2)
    assert labels.find_field(seen[0], labels.EDIT_SOURCE).startswith("round 1 candidate 0")
    assert labels.find_field(seen[0], labels.EDIT_FAILED) == "Is there a blue triangle?"
    assert not gen.edits and any("region" in n and "regenerating instead" in n for n in state["notes"])


def test_the_eval_counts_edits_that_fixed_a_check_without_breaking_one():
    from gems_graph.eval.methods import edit_outcomes

    def cand(rnd, passed, parent=None):
        c = {"round": rnd, "index": 0, "verdicts": [{"check_id": k, "passed": p} for k, p in passed.items()]}
        return {**c, "edit": {"parent": {"round": parent, "index": 0}}} if parent else c

    parent = cand(1, {"c1": True, "c2": False})
    fixed = cand(2, {"c1": True, "c2": True}, parent=1)
    broke = cand(3, {"c1": False, "c2": True}, parent=1)
    unchanged = cand(4, {"c1": True, "c2": False}, parent=1)
    assert edit_outcomes([parent, fixed, broke, unchanged]) == {"edits": 3, "edits_fixed": 1}
    assert edit_outcomes([parent]) == {"edits": 0, "edits_fixed": 0}
