"""The critic's ways of asking: one call per check (the paper), every check of an image in one call,
or every check of a round's images in one."""

from __future__ import annotations

import math

import pytest
from langchain_core.messages import AIMessage
from langgraph.checkpoint.memory import InMemorySaver

from gems_graph import prompt_labels as labels
from gems_graph.app.runner import run_gems
from gems_graph.context import ConfigError, GemsContext
from gems_graph.models.llm import answer_probabilities
from gems_graph.models.metering import metering
from gems_graph.nodes.critic import ROUND_IMAGES_PER_CALL, verify_image, verify_round
from gems_graph.persistence.artifacts import save_png
from gems_graph.presets import get_preset
from gems_graph.records import Candidate, Check
from gems_graph.testing import ColourGenerator, ScriptedChatModel, attached_images, is_red, last_text, loop_handler

CHECKS = [Check(id="c1", question="Is there a square?", source="prompt"), Check(id="c2", question="Is the square red?", source="prompt")]


def _candidate(tmp_path) -> Candidate:
    from PIL import Image

    ref = save_png(Image.new("RGB", (16, 16), (200, 10, 10)), tmp_path / "c.png")
    return Candidate(round=1, index=0, prompt="a red square", seed=0, params={}, image=ref, verdicts=[], score=None, error=None)


def _tokens(*pairs: tuple[str, float | None]) -> dict:
    """A logprobs payload: each (token, P(yes)) pair; a None P is a token that is not an answer."""
    content = []
    for token, p in pairs:
        tops = [] if p is None else [{"token": "yes", "logprob": math.log(p)}, {"token": "no", "logprob": math.log(1 - p)}]
        content.append({"token": token, "logprob": 0.0, "top_logprobs": tops})
    return {"logprobs": {"content": content}}


def test_one_call_answers_every_check_with_its_own_probability(tmp_path):
    seen = []

    def handler(messages, tools):
        seen.append(last_text(messages))
        meta = _tokens(("c1", None), (":", None), (" yes", 0.9), ("\nc2", None), (":", None), (" no", 0.2))
        return AIMessage(content="c1: yes\nc2: no", response_metadata=meta)

    model = ScriptedChatModel(handler=handler)
    with metering() as meter:
        verdicts = verify_image(model, CHECKS, _candidate(tmp_path), "a red square")
    assert [(v["check_id"], v["passed"]) for v in verdicts] == [("c1", True), ("c2", False)]
    assert verdicts[0]["probability"] == pytest.approx(0.9) and verdicts[1]["probability"] == pytest.approx(0.2)
    assert labels.read_questions(seen[0]) == [("c1", "Is there a square?"), ("c2", "Is the square red?")]
    assert meter.usage["calls"] == 1 and meter.usage["images_sent"] == 1


def test_a_check_the_reply_leaves_out_is_asked_alone(tmp_path):
    def handler(messages, tools):
        text = last_text(messages)
        if labels.read_questions(text):
            return "Sure!\n**C1**: Yes"  # c2 never answered
        return "no"

    model = ScriptedChatModel(handler=handler)
    with metering() as meter:
        verdicts = verify_image(model, CHECKS, _candidate(tmp_path), "a red square")
    assert [(v["check_id"], v["passed"], v.get("answered", True)) for v in verdicts] == [("c1", True, True), ("c2", False, True)]
    assert meter.usage["calls"] == 2


def test_a_failed_call_leaves_every_check_unanswered(tmp_path):
    def handler(messages, tools):
        raise RuntimeError("endpoint down")

    verdicts = verify_image(ScriptedChatModel(handler=handler), CHECKS, _candidate(tmp_path), "a red square")
    assert all(v["answered"] is False and "endpoint down" in v["answer"] for v in verdicts)


def test_probabilities_are_kept_only_when_each_answer_has_its_token():
    extra = AIMessage(content="c1: yes, no doubt\nc2: no", response_metadata=_tokens((" yes", 0.9), (" no", 0.4), (" no", 0.1)))
    assert answer_probabilities(extra, 2) == [None, None]  # three yes/no tokens for two answers: which is which is unknown
    plain = AIMessage(content="c1: yes\nc2: no")
    assert answer_probabilities(plain, 2) == [None, None]


def _verdicts(result):
    return [
        [(v["check_id"], v["passed"], v["probability"]) for v in c["verdicts"]] for r in result.state["rounds"] for c in r["candidates"]
    ]


def test_per_image_judges_the_shapes_world_as_per_check_does_with_one_call_an_image(tmp_path):
    """The world's critic answers each question on its own, so the verdicts are the same; the calls and uploads are not."""
    runs = {}
    for mode in ("per_check", "per_image", "per_round"):
        ctx = GemsContext(artifact_root=str(tmp_path / mode), memory="none", max_rounds=3, candidates_per_round=2, verification=mode)
        runs[mode] = run_gems("two red circles left of a blue square", ctx, InMemorySaver())
    assert _verdicts(runs["per_image"]) == _verdicts(runs["per_check"])
    per_check, per_image = (runs[m].state["usage"]["nodes"]["critic"] for m in ("per_check", "per_image"))
    images = runs["per_image"].usage_total["images_generated"]
    checks = len(runs["per_check"].state["checks"])
    assert per_check["calls"] == 1 + images * checks and per_check["images_sent"] == images * checks
    assert per_image["calls"] == 1 + images and per_image["images_sent"] == images
    assert _verdicts(runs["per_round"]) == _verdicts(runs["per_check"])
    per_round = runs["per_round"].state["usage"]["nodes"]["critic"]
    assert per_round["calls"] == 1 + runs["per_round"].state["rounds_used"] and per_round["images_sent"] == images
    assert per_round["input_tokens"] < per_image["input_tokens"]  # the instructions and the request go once a round


def _colour_candidate(tmp_path, index: int, colour: tuple[int, int, int]) -> Candidate:
    from PIL import Image

    ref = save_png(Image.new("RGB", (16, 16), colour), tmp_path / f"c{index}.png")
    return Candidate(round=1, index=index, prompt="a red square", seed=index, params={}, image=ref, verdicts=[], score=None, error=None)


def test_one_call_asks_every_check_of_a_rounds_images_each_of_its_own_image(tmp_path):
    """The ids name the image (image2.c2), the images go in that order, and a check left out is asked alone."""
    seen = []

    def per_image_answer(messages, tools):
        text = last_text(messages)
        questions = labels.read_questions(text)
        seen.append(messages)
        if not questions:  # a check asked alone
            return "yes" if is_red(attached_images(messages)[0]) else "no"
        images = attached_images(messages)
        lines = []
        for qid, question in questions:
            n = labels.image_of_question(qid)
            if qid == "image3.c2":
                continue  # left out: asked alone
            red = is_red(images[n - 1])
            lines.append(f"{qid}: {'yes' if ('red' not in question or red) else 'no'}")
        return "\n".join(lines)

    candidates = [_colour_candidate(tmp_path, i, c) for i, c in enumerate([(200, 10, 10), (10, 10, 200), (200, 10, 10)])]
    model = ScriptedChatModel(handler=per_image_answer)
    with metering() as meter:
        verdicts = verify_round(model, [(c, CHECKS) for c in candidates], "a red square")
    assert [[(v["check_id"], v["passed"]) for v in vs] for vs in verdicts] == [
        [("c1", True), ("c2", True)],
        [("c1", True), ("c2", False)],
        [("c1", True), ("c2", True)],
    ]
    first = last_text(seen[0])
    assert [qid for qid, _ in labels.read_questions(first)] == [f"image{n}.{c}" for n in (1, 2, 3) for c in ("c1", "c2")]
    assert meter.usage["calls"] == 2 and meter.usage["images_sent"] == 3 + 1


def test_per_round_sends_a_rounds_images_in_calls_of_at_most_eight(tmp_path):
    ctx = GemsContext(
        generator=ColourGenerator(),
        chat_model=ScriptedChatModel(handler=loop_handler(), usage=(10, 2)),
        artifact_root=str(tmp_path),
        memory="none",
        max_rounds=1,
        candidates_per_round=ROUND_IMAGES_PER_CALL + 2,
        verification="per_round",
    )
    result = run_gems("a red square", ctx, InMemorySaver())
    critic = result.state["usage"]["nodes"]["critic"]
    assert (critic["calls"], critic["images_sent"]) == (1 + 2, ROUND_IMAGES_PER_CALL + 2)  # decompose, then two calls


def test_the_paper_preset_asks_one_check_at_a_time():
    assert get_preset("gems-paper").values["verification"] == "per_check"
    assert GemsContext().verification == "per_check"
    with pytest.raises(ConfigError, match="verification"):
        GemsContext(verification="batched")
    assert get_preset("gems-paper").values["verification"] != "per_round"


def test_per_image_runs_the_loop_with_a_scripted_model(tmp_path):
    ctx = GemsContext(
        generator=ColourGenerator(),
        chat_model=ScriptedChatModel(handler=loop_handler(fix_at_round=2), usage=(10, 2)),
        artifact_root=str(tmp_path),
        memory="none",
        verification="per_image",
    )
    result = run_gems("a red square", ctx, InMemorySaver())
    assert result.status == "passed" and result.state["rounds_used"] == 2
    assert [c["verdicts"][1]["passed"] for r in result.state["rounds"] for c in r["candidates"]] == [False, True]
    critic = result.state["usage"]["nodes"]["critic"]
    assert (critic["calls"], critic["images_sent"], critic["input_tokens"]) == (1 + 2, 2, 30)  # decompose, then one call an image
