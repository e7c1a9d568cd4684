"""The shapes chat model drives every node through the same code a real LLM does."""

from __future__ import annotations

import numpy as np
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from gems_graph import prompt_labels as labels
from gems_graph.context import GemsContext
from gems_graph.graph import compile_graph
from gems_graph.memory.access import lessons_text
from gems_graph.models.generator import GenerationRequest
from gems_graph.models.llm import image_block, invoke_structured, text_block, yes_probability
from gems_graph.nodes.critic import DECOMPOSE_USER_PROMPT, VERIFY_USER_PROMPT, Decomposition
from gems_graph.nodes.planner import PLANNER_USER_PROMPT, PlannedPrompt
from gems_graph.nodes.refiner import REFINE_USER_PROMPT, RefinedPrompt
from gems_graph.shapes.chat_model import LAYOUT_DIRECTIVE, ShapesChatModel
from gems_graph.shapes.generator import PROMPTING_GUIDE
from gems_graph.shapes.grammar import PLACES, ObjectSpec, Scene, parse_prompt
from gems_graph.shapes.render import render_scene
from gems_graph.skills import default_registry
from gems_graph.testing import ColourGenerator  # noqa: F401 (shared fakes module stays importable)


class LeakyRenderer:
    """Draws the prompt's scene, but with the two colours swapped on seed 0 (colour leaking)."""

    family = "test-shapes"
    prompting_guide = PROMPTING_GUIDE  # a stand-in for the shipped model: its guide

    def generate(self, request: GenerationRequest):
        scene = parse_prompt(request.prompt)
        if request.seed == 0 and len(scene.objects) == 2:
            a, b = scene.objects
            scene = Scene((type(a)(a.shape, b.color, a.count), type(b)(b.shape, a.color, b.count)), scene.relation)
        image, _ = render_scene(scene, np.random.default_rng(request.seed))
        return image


def test_planner_request_gives_a_canonical_prompt_and_reports_unknown_words():
    reply = invoke_structured(
        ShapesChatModel(),
        PlannedPrompt,
        [HumanMessage(PLANNER_USER_PROMPT.format(prompt="A photo of TWO red circles, glowing", guide="", extra=""))],
    )
    assert reply.value.prompt == "a photo of two red circles"
    assert reply.value.unsupported == ["glowing"]


def plan(prompt, lessons=(), skills=None):
    """The shapes model's plan for ``prompt`` with these lessons recalled and these skill
    texts loaded (as the planner's tool loop hands them over)."""
    extra = lessons_text([{"text": t} for t in lessons])
    messages = [HumanMessage(PLANNER_USER_PROMPT.format(prompt=prompt, guide="", extra=extra))]
    for i, (name, body) in enumerate((skills or {}).items()):
        messages.append(AIMessage(content="", tool_calls=[{"name": "load_skill", "args": {"name": name}, "id": f"c{i}"}]))
        messages.append(ToolMessage(content=body, tool_call_id=f"c{i}", name="load_skill"))
    return invoke_structured(ShapesChatModel(), PlannedPrompt, messages).value


def test_the_planner_lays_objects_out_only_when_a_loaded_skill_says_so():
    counting = default_registry().get("counting").instructions
    assert LAYOUT_DIRECTIVE.search(counting)
    plain = plan("a photo of three red squares")
    assert plain.prompt == "a photo of three red squares"  # the generic rewrite: the terse form
    laid_out = plan("a photo of three red squares", skills={"counting": counting})
    scene = parse_prompt(laid_out.prompt)
    assert scene.explicit and scene.groups() == {("square", "red"): 3}
    assert len({o.place for o in scene.objects}) == 3 and "counting skill" in laid_out.reasoning
    # The same skill without the instruction to lay objects out: the behaviour goes with the text.
    stripped = LAYOUT_DIRECTIVE.sub("Write the number", counting)
    assert plan("a photo of three red squares", skills={"counting": stripped}).prompt == "a photo of three red squares"


def test_a_recalled_lesson_changes_the_plan_for_the_kind_of_failure_it_fixed():
    count_lesson = (
        'For "a photo of two green circles": strategy explicit-layout worked in round 2 '
        "(prompt change: ...; score +1.00). It fixed: Are there exactly two green circles?"
    )
    laid_out = plan("a photo of three red squares", [count_lesson])
    assert parse_prompt(laid_out.prompt).explicit and "recalled lesson" in laid_out.reasoning
    # A lesson about a relation does not apply to a prompt that has none.
    relation_lesson = count_lesson.replace(
        "It fixed: Are there exactly two green circles?", "It fixed: Is the circle to the left of the square?"
    )
    assert plan("a photo of three red squares", [relation_lesson]).prompt == "a photo of three red squares"
    # A lesson that names no move the model knows changes nothing.
    assert plan("a photo of three red squares", ["strategy dance worked"]).prompt == "a photo of three red squares"


def refine(request, rounds, images=(), lessons=(), guide=PROMPTING_GUIDE):
    """The shapes model's refinement, shown the shipped model's prompting guide unless told
    otherwise; ``rounds`` are (prompt, failed checks) in order."""
    lines = ["Trajectory so far:"]
    for i, (prompt, failed) in enumerate(rounds, 1):
        lines += [f"Round {i} prompt: {prompt}", "  score: 0.50", "  passed: none", f"  failed: {failed}"]
    extra = lessons_text([{"text": t} for t in lessons])
    text = REFINE_USER_PROMPT.format(
        prompt=request,
        guide=labels.guide_block(guide),
        trajectory="\n".join(lines),
        lessons=extra + "\n" if extra else "",
        feedback="",
        edit="",
    )
    content = [text_block(text), *[image_block(ref) for ref in images]]
    return invoke_structured(ShapesChatModel(), RefinedPrompt, [HumanMessage(content=content)]).value


def test_a_failed_count_is_refined_into_an_explicit_layout():
    out = refine("a photo of three red circles", [("a photo of three red circles", "Are there exactly three red circles?")])
    scene = parse_prompt(out.prompt)
    assert scene.explicit and scene.groups() == {("circle", "red"): 3}
    assert "explicit-layout" in out.reasoning and out.new_seed


def test_the_refiner_keeps_what_was_right_where_it_was_and_moves_the_rest(tmp_path):
    from gems_graph.persistence.artifacts import save_png

    # Round 1 drew the red square at the top left, but the blue circle is missing.
    drawn = Scene((ObjectSpec("square", "red", place="top left"),))
    image, _ = render_scene(drawn, np.random.default_rng(0))
    ref = save_png(image, tmp_path / "r1.png")
    request = "a photo of a red square and a blue circle"
    out = refine(request, [(request, "Is there a blue circle?")], images=[ref])
    placed = {o.shape: o.place for o in parse_prompt(out.prompt).objects}
    assert placed["square"] == "top left" and placed["circle"] not in (None, "top left")
    # Without the image it cannot know where the square was: it still lays both out.
    blind = parse_prompt(refine(request, [(request, "Is there a blue circle?")]).prompt)
    assert blind.explicit and len(blind.objects) == 2


def test_a_layout_that_still_fails_is_moved_and_lessons_reorder_the_moves():
    layout = "a photo of a red square at the left and a blue circle at the right"
    request = "a photo of a red square right of a blue circle"
    moved = refine(request, [(layout, "Is the red square to the right of the blue circle?")])
    scene = parse_prompt(moved.prompt)
    assert "strategy: move" in moved.reasoning and scene.explicit
    square, circle = scene.objects
    assert PLACES[square.place][0] > PLACES[circle.place][0]  # the relation now holds in the cells
    reseeded = refine(
        request,
        [(layout, "Is the red square to the right of the blue circle?")],
        lessons=['For "a photo of a circle above a square": strategy new-seed worked in round 2.'],
    )
    assert "strategy: new-seed" in reseeded.reasoning and reseeded.prompt == layout


def test_decompose_request_follows_geneval_rules():
    msg = HumanMessage(DECOMPOSE_USER_PROMPT.format(prompt="a photo of a red square to the left of a yellow circle"))
    checks = invoke_structured(ShapesChatModel(), Decomposition, [msg]).value.checks
    assert checks == ["Is there a red square?", "Is there a yellow circle?", "Is the red square to the left of the yellow circle?"]


def test_verify_reads_the_pixels_and_returns_logprobs(tmp_path):
    from gems_graph.persistence.artifacts import save_png

    image, _ = render_scene(parse_prompt("a photo of two blue triangles"), np.random.default_rng(1))
    ref = save_png(image, tmp_path / "x.png")
    model = ShapesChatModel()

    def ask(q):
        return model.invoke(
            [
                SystemMessage("verify"),
                HumanMessage(
                    content=[text_block(VERIFY_USER_PROMPT.format(prompt="a photo of two blue triangles", question=q)), image_block(ref)]
                ),
            ]
        )

    yes, no = ask("Are there exactly two blue triangles?"), ask("Is there a red circle?")
    assert yes.text == "yes" and yes_probability(yes) > 0.5
    assert no.text == "no" and yes_probability(no) < 0.5


def test_a_full_loop_on_shapes_fixes_colour_leaking_in_round_two(tmp_path):
    context = GemsContext(generator=LeakyRenderer(), chat_model=ShapesChatModel(), artifact_root=str(tmp_path))
    out = compile_graph().invoke({"prompt": "a photo of a blue circle and a red triangle"}, context=context)
    assert out["status"] == "passed"
    assert out["rounds_used"] == 2  # round 1 leaked colours; the refiner's layout and new seed fixed it
    assert out["best"]["round"] == 2
    assert out["best"]["verdicts"] and all(v["probability"] is not None for v in out["best"]["verdicts"])


class ColourlessBlind:
    """Draws the scene, but leaves out any object the prompt gives no colour (as the shipped model often does for triangles)."""

    family = "test-shapes"
    prompting_guide = PROMPTING_GUIDE  # whose guide says so

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def generate(self, request: GenerationRequest):
        self.prompts.append(request.prompt)
        scene = parse_prompt(request.prompt)
        scene = Scene(tuple(o for o in scene.objects if o.color is not None))
        image, _ = render_scene(scene, np.random.default_rng(request.seed))
        return image


def test_the_refiner_names_a_colour_for_a_missing_object_whose_colour_was_left_open(tmp_path):
    gen = ColourlessBlind()
    context = GemsContext(generator=gen, chat_model=ShapesChatModel(), artifact_root=str(tmp_path), memory="none")
    out = compile_graph().invoke({"prompt": "a photo of a triangle and a blue circle"}, context=context)
    assert out["status"] == "passed" and out["rounds_used"] == 2
    assert gen.prompts == ["a photo of a triangle and a blue circle", "a photo of a red triangle and a blue circle"]


def test_usage_follows_the_documented_rule(tmp_path):
    """Word pieces and punctuation marks of the text, the tool schemas and tool-call arguments; IMAGE_TOKENS an image."""
    import json

    from langchain_core.utils.function_calling import convert_to_openai_tool

    from gems_graph.persistence.artifacts import save_png
    from gems_graph.shapes.chat_model import IMAGE_TOKENS, count_tokens

    assert count_tokens("Is the square red? a_b 12x") == 9  # Is the square red ? a _ b 12x
    model = ShapesChatModel()
    ref = save_png(render_scene(parse_prompt("a red circle"), np.random.default_rng(0))[0], tmp_path / "c.png")
    question = VERIFY_USER_PROMPT.format(prompt="a red circle", question="Is there a red circle?")
    reply = model.invoke([SystemMessage("Answer yes or no."), HumanMessage(content=[text_block(question), image_block(ref)])])
    expected_in = count_tokens("Answer yes or no.") + count_tokens(question) + IMAGE_TOKENS
    assert reply.usage_metadata == {"input_tokens": expected_in, "output_tokens": 1, "total_tokens": expected_in + 1}

    out = invoke_structured(model, Decomposition, [HumanMessage(DECOMPOSE_USER_PROMPT.format(prompt="a red circle"))])
    tool_in = count_tokens(json.dumps(convert_to_openai_tool(Decomposition)))
    assert out.raw.usage_metadata["input_tokens"] == count_tokens(DECOMPOSE_USER_PROMPT.format(prompt="a red circle")) + tool_in
    assert out.raw.usage_metadata["output_tokens"] == count_tokens(json.dumps({"checks": out.value.checks}))
