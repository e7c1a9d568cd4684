"""The ``gems-paper`` preset and the knobs it sets: each one changes what a run does.

Layering and per-family sizes are checked through ``load_config`` (and an HTTP
generator's ``/health`` on loopback); the knobs through the critic and refiner
nodes against an OpenAI-compatible server on loopback that returns logprobs.
"""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path

import pytest
from langgraph.runtime import Runtime
from PIL import Image

from gems_graph.config import load_config
from gems_graph.context import ConfigError, GemsContext
from gems_graph.memory.trajectory import trajectory_view
from gems_graph.models.registry import resolve_chat_model
from gems_graph.nodes.critic import critic
from gems_graph.persistence.artifacts import save_png
from gems_graph.presets import UnknownPresetError
from gems_graph.records import best_candidate
from tests.servers import RecordingServer, chat_completion, json_reply, reset_endpoint_memory

ZIMAGE = "diffusers:Tongyi-MAI/Z-Image-Turbo"
QWEN = "diffusers:Qwen/Qwen-Image-2512"


def test_paper_preset_sets_the_official_knobs_and_the_families_sizes():
    loaded = load_config({"generator": ZIMAGE}, preset="gems-paper")
    v, src = loaded.values, loaded.sources
    assert loaded.preset == "gems-paper"
    assert (v["max_rounds"], v["candidates_per_round"], v["max_skills"], v["memory"]) == (5, 1, 1, "none")
    assert (v["verdict_probabilities"], v["tie_break"], v["refiner_images"]) == (False, "earliest", -1)
    assert (v["width"], v["height"], v["steps"], v["guidance"]) == (1024, 1024, 9, 0.0)
    assert src["max_rounds"] == "preset:gems-paper" and src["steps"] == "preset:gems-paper (z-image-turbo)"
    q = load_config({"generator": QWEN}, preset="gems-paper").values
    assert (q["width"], q["height"], q["steps"], q["guidance"]) == (1328, 1328, 50, 4.0)
    shapes = load_config({}, preset="gems-paper").values  # a family the preset does not list keeps its own defaults
    assert shapes["width"] is None and shapes["steps"] is None and shapes["max_rounds"] == 5
    GemsContext(**v)  # the preset's values are valid settings


def test_explicit_settings_override_the_preset_in_every_layer(tmp_path, monkeypatch):
    cfg = tmp_path / "gems.toml"
    cfg.write_text('preset = "gems-paper"\nmax_skills = 2\n')
    monkeypatch.setenv("GEMS_TIE_BREAK", "probability")
    loaded = load_config({"generator": QWEN, "max_rounds": 3, "steps": 20}, config_path=cfg)
    v, src = loaded.values, loaded.sources
    assert loaded.preset == "gems-paper"  # named in the file
    assert (v["max_rounds"], src["max_rounds"]) == (3, "flag")
    assert (v["steps"], src["steps"]) == (20, "flag") and v["width"] == 1328  # the other family values still apply
    assert (v["max_skills"], src["max_skills"]) == (2, f"file:{cfg}")
    assert (v["tie_break"], src["tie_break"]) == ("probability", "env:GEMS_TIE_BREAK")
    assert v["verdict_probabilities"] is False
    monkeypatch.setenv("GEMS_PRESET", "gems-paper")
    assert load_config({}).values["refiner_images"] == -1  # GEMS_PRESET alone
    assert load_config({}, preset=None, environ={}).values["refiner_images"] == 3  # no preset anywhere: the defaults


def test_an_unknown_preset_is_a_one_line_error_with_a_suggestion(tmp_path):
    with pytest.raises(UnknownPresetError, match=r"unknown preset 'gems-papr' \(did you mean 'gems-paper'\?\); known presets: gems-paper"):
        load_config({}, preset="gems-papr")
    cfg = tmp_path / "gems.toml"
    cfg.write_text("preset = 5\n")
    with pytest.raises(ConfigError, match="preset = 5 must be a preset name"):
        load_config({}, config_path=cfg)


def test_an_http_generators_family_comes_from_its_servers_health():
    def respond(rec):
        assert rec.path == "/health"
        return json_reply(200, {"status": "ok", "generator": QWEN, "family": "qwen-image"})

    with RecordingServer(respond) as srv:
        v = load_config({"generator": f"{srv.url}/generate"}, preset="gems-paper").values
    assert (v["width"], v["steps"]) == (1328, 50)
    with RecordingServer(lambda rec: json_reply(500, {"error": "down"})) as srv:
        v = load_config({"generator": f"{srv.url}/generate"}, preset="gems-paper").values
    assert v["width"] is None and v["steps"] is None  # unknown: the server's own defaults apply


def test_eval_preset_settings_split_the_context_from_what_the_eval_owns():
    from gems_graph.eval.cli import preset_settings

    context, owned = preset_settings("gems-paper", ZIMAGE)
    assert owned == {"max_rounds": 5, "max_skills": 1, "memory": "none"}
    assert context["verdict_probabilities"] is False and context["tie_break"] == "earliest" and context["refiner_images"] == -1
    assert (context["width"], context["steps"], context["guidance"]) == (1024, 9, 0.0)
    assert preset_settings(None, ZIMAGE) == ({}, {})


# -- the knobs change behaviour ---------------------------------------------------------


def _colour_of(body: dict) -> tuple[int, int, int]:
    url = next(p["image_url"]["url"] for p in body["messages"][-1]["content"] if p.get("type") == "image_url")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB").getpixel((0, 0))


def _confident_server(rec):
    """Answers every check "Yes"; more confident for the green image than for the red one."""
    body = rec.json()
    p_yes = 0.95 if _colour_of(body)[1] > 100 else 0.6
    tops = [{"token": "Yes", "logprob": math.log(p_yes), "bytes": None}, {"token": "No", "logprob": math.log(1 - p_yes), "bytes": None}]
    logprobs = [{"token": "Yes", "logprob": math.log(p_yes), "bytes": None, "top_logprobs": tops}] if body.get("logprobs") else None
    return json_reply(200, chat_completion("Yes", logprobs=logprobs))


def _round_state(tmp_path, colours):
    cands = []
    for i, colour in enumerate(colours):
        ref = save_png(Image.new("RGB", (16, 16), colour), tmp_path / f"c{i}.png")
        cands.append(
            {"round": 1, "index": i, "prompt": "p", "seed": i, "params": {}, "image": ref, "verdicts": [], "score": None, "error": None}
        )
    checks = [{"id": "c1", "question": "Is there a square?", "source": "prompt"}]
    return {"prompt": "a square", "run_dir": str(tmp_path), "round_index": 1, "current_prompt": "p", "pending": cands, "checks": checks}


@pytest.mark.parametrize(
    "probabilities, tie_break, asks_logprobs, best_index",
    [
        (True, "probability", True, 1),  # ours: the more confident image wins the tie
        (True, "earliest", True, 0),  # probabilities kept, but the earliest wins
        (False, "earliest", False, 0),  # the paper: binary verdicts, the earliest wins
    ],
)
def test_verdict_probabilities_and_the_tie_rule_change_the_critics_choice(
    tmp_path, monkeypatch, probabilities, tie_break, asks_logprobs, best_index
):
    reset_endpoint_memory(monkeypatch)
    with RecordingServer(_confident_server) as srv:
        model = resolve_chat_model(f"openai-compatible:{srv.url}/v1#vlm")
        ctx = GemsContext(chat_model=model, verdict_probabilities=probabilities, tie_break=tie_break, verify_concurrency=1)
        out = critic(_round_state(tmp_path, [(200, 10, 10), (10, 200, 10)]), Runtime(context=ctx, stream_writer=lambda _: None))
        bodies = [r.json() for r in srv.requests]
    assert all(("logprobs" in b) is asks_logprobs for b in bodies) and len(bodies) == 2
    probs = [v["probability"] for c in out["rounds"][0]["candidates"] for v in c["verdicts"]]
    assert probs == ([pytest.approx(0.6), pytest.approx(0.95)] if probabilities else [None, None])
    assert out["best"]["index"] == best_index


def test_tie_rule_in_the_one_ranking():
    def cand(i, p):
        verdicts = [{"check_id": "c1", "passed": True, "answer": "yes", "probability": p}]
        return {"round": 1, "index": i, "error": None, "score": 1.0, "verdicts": verdicts}

    low, high = cand(0, 0.6), cand(1, 0.9)
    assert best_candidate([low, high]) is high
    assert best_candidate([low, high], tie_break="earliest") is low
    assert best_candidate([high, cand(2, 0.9)]) is high  # an exact tie keeps the earliest under either rule


def test_refiner_images_minus_one_shows_every_past_round(tmp_path):
    rounds = []
    for i in range(1, 6):
        ref = save_png(Image.new("RGB", (8, 8), (i * 40, 0, 0)), tmp_path / f"r{i}.png")
        cand = {"round": i, "index": 0, "prompt": f"p{i}", "seed": i, "params": {}, "image": ref, "error": None, "score": 0.0}
        cand["verdicts"] = [{"check_id": "c1", "passed": False, "answer": "no", "probability": None}]
        rounds.append({"index": i, "prompt": f"p{i}", "candidates": [cand], "experience": None, "thought": None})
    checks = [{"id": "c1", "question": "Is it red?", "source": "prompt"}]
    every = trajectory_view(rounds, checks, max_images=-1).images
    assert [Path(r["path"]).name for r in every] == ["r1.png", "r2.png", "r3.png", "r4.png", "r5.png"]
    assert [Path(r["path"]).name for r in trajectory_view(rounds, checks, max_images=3).images] == ["r3.png", "r4.png", "r5.png"]
    assert trajectory_view(rounds, checks, max_images=0).images == []
    with pytest.raises(ConfigError, match="refiner_images"):
        GemsContext(refiner_images=-2)


def test_gems_run_with_the_preset_keeps_explicit_flags(tmp_path):
    import json
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "GEMS_HOME": str(tmp_path / "home"), "GEMS_PLUGINS": "tests.plugin_backends", "PYTHONPATH": str(repo)}
    args = ["run", "a red square", "-g", "colour:", "-m", "scripted:fix=9", "--preset", "gems-paper", "--rounds", "2", "--json"]
    res = subprocess.run(
        [sys.executable, "-m", "gems_graph.app.cli", *args], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["rounds"] == 2 and summary["status"] == "exhausted"  # --rounds beats the preset's 5
    settings = json.loads(Path(summary["run_dir"], "run.json").read_text())["settings"]
    assert settings["max_rounds"] == 2 and settings["memory"] == "none" and settings["max_skills"] == 1
    assert settings["verdict_probabilities"] is False and settings["tie_break"] == "earliest" and settings["refiner_images"] == -1
