"""The cheaper modes of a run: the refiner's two answers in one call, fewer past images, fewer edit re-checks."""

from __future__ import annotations

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from gems_graph.app.runner import run_gems
from gems_graph.context import ConfigError, GemsContext
from gems_graph.presets import get_preset
from gems_graph.testing import ColourGenerator, ScriptedChatModel, loop_handler

SCENE = "a photo of a triangle left of a green square and four red circles"


def _shapes_run(tmp_path, name: str, **settings):
    ctx = GemsContext(artifact_root=str(tmp_path / name), memory="none", max_rounds=2, **settings)
    return run_gems(SCENE, ctx, InMemorySaver())


def _trajectory(result) -> list[tuple]:
    return [(r["prompt"], r["experience"], [c["score"] for c in r["candidates"]]) for r in result.state["rounds"]]


def test_combined_refiner_call_writes_the_same_rounds_with_half_the_calls(tmp_path):
    """The world's refiner reads the same facts either way, so the rounds match; the calls and uploads do not."""
    separate = _shapes_run(tmp_path, "separate", refiner_calls="separate")
    combined = _shapes_run(tmp_path, "combined", refiner_calls="combined")
    assert separate.state["rounds_used"] >= 2, "the scene must need refining for the comparison to mean anything"
    assert _trajectory(combined) == _trajectory(separate)
    refines = separate.state["rounds_used"] - 1
    before, after = (r.state["usage"]["nodes"]["refiner"] for r in (separate, combined))
    assert (before["calls"], after["calls"]) == (2 * refines, refines)
    assert after["images_sent"] == before["images_sent"] - refines  # the compression's image is not sent again
    assert after["input_tokens"] < before["input_tokens"]


def test_combined_call_keeps_an_experience_from_a_scripted_model(tmp_path):
    ctx = GemsContext(
        generator=ColourGenerator(),
        chat_model=ScriptedChatModel(handler=loop_handler(fix_at_round=2), usage=(10, 2)),
        artifact_root=str(tmp_path),
        memory="none",
        refiner_calls="combined",
    )
    result = run_gems("a red square", ctx, InMemorySaver())
    assert result.status == "passed" and result.state["rounds_used"] == 2
    assert result.state["rounds"][0]["experience"] == "The square came out blue; say red explicitly."
    assert result.state["usage"]["nodes"]["refiner"]["calls"] == 1


def test_the_paper_preset_keeps_two_refiner_calls():
    assert get_preset("gems-paper").values["refiner_calls"] == "separate"
    with pytest.raises(ConfigError, match="refiner_calls"):
        GemsContext(refiner_calls="one")
