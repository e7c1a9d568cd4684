"""What a new user trips over after the two commands: output scripts can read, help
that says what a value is, one exit-code rule, a paused review that says so, and a
note that changes what the offline refiner writes."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

from gems_graph.app.compose import as_tool
from gems_graph.shapes.chat_model import follow_note
from gems_graph.shapes.grammar import parse_prompt
from tests.test_cli_first_contact import BACKENDS, gems
from tests.test_compose import colour_context

SUBCOMMANDS = [
    ["run"],
    ["config"],
    ["doctor"],
    ["eval"],
    ["report"],
    ["serve-generator"],
    ["skills", "list"],
    ["skills", "show"],
    ["skills", "validate"],
    ["memory", "show"],
    ["memory", "import"],
    ["memory", "search"],
]


def test_piped_output_keeps_every_line_whole_and_plain(tmp_path):
    deep = tmp_path / ("a-folder-name-long-enough-to-pass-eighty-columns-" * 2) / "runs"
    res = gems(["run", "a red square", *BACKENDS, "--rounds", "2", "-q", "--out", str(deep)], tmp_path, {"COLUMNS": "40"})
    assert res.returncode == 0, res.stderr
    lines = dict(line.split(": ", 1) for line in res.stdout.splitlines() if ": " in line)
    assert Path(lines["best image"]).is_file() and Path(lines["run.json"]).is_file()
    assert "\x1b[" not in res.stdout + res.stderr


def test_gems_config_prints_a_toml_file_that_parses(tmp_path):
    (tmp_path / "gems.toml").write_text('max_rounds = 4\nskills_dirs = ["a \\"quoted\\" dir"]\n')
    res = gems(["config"], tmp_path, {"GEMS_CHAT_TIMEOUT": "12.5"})
    assert res.returncode == 0, res.stderr
    parsed = tomllib.loads(res.stdout)
    assert parsed["max_rounds"] == 4 and parsed["skills_dirs"] == ['a "quoted" dir'] and parsed["chat_timeout"] == 12.5
    assert "critic_model" not in parsed and re.search(r"^# critic_model = ", res.stdout, re.M)


@pytest.mark.parametrize("command", SUBCOMMANDS, ids=" ".join)
def test_help_names_values_not_python_types(tmp_path, command):
    res = gems([*command, "--help"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert not re.search(r"<(str|int|float|path|list\[[^]]*\])>", res.stdout), res.stdout


def test_the_stop_rule_lists_its_choices_and_refuses_others_in_one_line(tmp_path):
    assert "[all_pass|threshold]" in gems(["run", "--help"], tmp_path).stdout
    res = gems(["run", "a red square", "--stop-rule", "sometimes"], tmp_path)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "--stop-rule" in res.stderr and "gems run --help" in res.stderr


@pytest.mark.parametrize(
    "args",
    [["run", "a red square", "--seed", "abc"], ["run", "--no-such-flag"], ["eval"], ["memory", "show", "nope"], ["skills", "show", "nope"]],
)
def test_bad_input_is_one_line_and_exit_2_in_every_subcommand(tmp_path, args):
    (tmp_path / "home" / "memory").mkdir(parents=True, exist_ok=True)
    res = gems(args, tmp_path, {"GEMS_MEMORY": f"chroma:{tmp_path / 'home' / 'memory'}"})
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr


def test_debug_shows_the_traceback_of_a_bad_input_error(tmp_path):
    res = gems(["run", "a red square", "--generator", "nope:", "--debug"], tmp_path)
    assert res.returncode == 2
    assert "Traceback" in res.stderr and "UnknownBackendError" in res.stderr


def test_a_skill_override_is_warned_about_once_in_one_line(tmp_path):
    skill = tmp_path / "mine" / "counting"
    skill.mkdir(parents=True)
    (skill / "SKILL.md").write_text((Path(__file__).parents[1] / "skills" / "counting" / "SKILL.md").read_text())
    res = gems(["run", "a red square", *BACKENDS, "--rounds", "1", "-q", "--skills-dir", str(tmp_path / "mine")], tmp_path)
    assert res.returncode == 0, res.stderr
    warnings = [line for line in res.stderr.splitlines() if "overrides the built-in skill" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: ")
    assert "warnings.warn" not in res.stderr and "default_registry(" not in res.stderr


def test_a_paused_review_is_reported_as_paused_and_the_note_changes_the_next_prompt(tmp_path):
    res = gems(
        ["run", "a red square", "--human-feedback", "--json", "--out", str(tmp_path / "runs")],
        tmp_path,
        {"GEMS_PLUGINS": ""},
        stdin="make the square large\n",
    )
    assert res.returncode == 3, res.stderr
    summary = json.loads(res.stdout)
    assert summary["status"] == "paused" and summary["paused_after_round"] == 2
    assert f"gems run --resume {summary['thread_id']}" in res.stderr
    run = json.loads(Path(summary["run_json"]).read_text())
    assert run["status"] == "paused"
    first, second = (r["prompt"] for r in run["rounds"][:2])
    assert parse_prompt(first).objects[0].size is None and parse_prompt(second).objects[0].size == "large"


def test_follow_note_changes_only_what_the_note_names():
    rng = np.random.default_rng(0)
    scene = parse_prompt("a photo of a red circle at the centre and a blue triangle at the top")
    moved = parse_prompt(follow_note("put the circle at the top left", scene, rng))
    assert [(o.shape, o.color, o.place) for o in moved.objects] == [("circle", "red", "top left"), ("triangle", "blue", "top")]
    recoloured = parse_prompt(follow_note("make the triangle green", scene, rng))
    assert [o.color for o in recoloured.objects] == ["red", "green"]
    assert follow_note("looks great, thanks", scene, rng) is None


def test_a_note_on_a_scene_too_big_to_lay_out_is_left_to_the_other_moves():
    crowded = parse_prompt("a photo of four red circles, four blue squares and four green triangles")
    assert follow_note("make the circles large", crowded, np.random.default_rng(0)) is None


def test_the_tool_says_paused_when_the_run_waits_for_a_review(tmp_path):
    context = colour_context(tmp_path, human_feedback=True)
    result = json.loads(as_tool(context=context).invoke({"prompt": "a red square"}))
    assert result["status"] == "paused" and result["paused_after_round"] == 1


def test_doctor_asks_for_probabilities_the_way_the_critic_does(tmp_path):
    res = gems(["doctor", "--json"], tmp_path, {"GEMS_PLUGINS": ""})
    assert res.returncode == 0, res.stderr
    row = next(r for r in json.loads(res.stdout) if r["role"] == "chat_model" and r["check"] == "logprobs")
    assert row["status"] == "ok" and row["detail"].startswith("P(yes)=")


def test_the_shapes_chat_model_calls_a_picture_tool_when_asked_and_answers_from_its_result():
    from langchain_core.messages import HumanMessage, ToolMessage
    from langchain_core.tools import tool

    from gems_graph import resolve_chat_model

    @tool
    def make_picture(prompt: str) -> str:
        """Generate an image of the prompt."""
        return json.dumps({"status": "passed", "best_image": "/x.png", "score": 1.0})

    @tool
    def add(a: str) -> str:
        """Add a row to a spreadsheet."""
        return a

    model = resolve_chat_model("shapes")
    call = model.bind_tools([add, make_picture]).invoke([HumanMessage("Please draw me a picture of two red circles.")])
    assert call.tool_calls[0]["name"] == "make_picture" and call.tool_calls[0]["args"] == {"prompt": "two red circles"}
    assert not model.bind_tools([add]).invoke([HumanMessage("Please draw two red circles.")]).tool_calls
    answer = model.bind_tools([make_picture]).invoke(
        [HumanMessage("draw two red circles"), call, ToolMessage(make_picture.invoke({"prompt": "x"}), tool_call_id="1")]
    )
    assert answer.content == "Done: /x.png (passed, score 1.0)"


def test_each_round_is_a_message_with_thumbnails_that_studio_shows_and_the_setting_turns_it_off(tmp_path):
    from langgraph.checkpoint.memory import InMemorySaver

    from gems_graph import compile_graph

    def run(**kw):
        context = colour_context(tmp_path, candidates_per_round=2, **kw)
        app = compile_graph(checkpointer=InMemorySaver())
        config = {"configurable": {"thread_id": f"t{len(kw)}"}}
        app.invoke({"prompt": "a red square"}, config, context=context)
        return app.get_state(config).values

    state = run()
    assert [m.id for m in state["messages"]] == ["round-1", "round-2"]
    first = state["messages"][0].content
    assert first[0]["text"].startswith("Round 1: ") and "failed:" in first[0]["text"]
    thumbnails = [b["image_url"]["url"] for b in first[1:]]
    assert len(thumbnails) == 2 and all(u.startswith("data:image/png;base64,") and len(u) < 20_000 for u in thumbnails)
    assert not run(studio_thumbnails=0).get("messages")


def test_every_state_field_has_a_description_in_its_schema():
    from pydantic import TypeAdapter

    from gems_graph.state import GemsInput, GemsState

    for schema_class in (GemsInput, GemsState):
        properties = TypeAdapter(schema_class).json_schema()["properties"]
        own = set(schema_class.__annotations__) - (set(GemsInput.__annotations__) if schema_class is GemsState else set())
        undescribed = [name for name in own if not properties[name].get("description")]
        assert not undescribed, (schema_class.__name__, undescribed)
    assert len(GemsState.__annotations__) >= 30


def test_a_missing_model_folder_is_bad_input_found_before_a_run_exists(tmp_path):
    res = gems(["run", "a red square", "-g", f"diffusers:{tmp_path / 'no-such-model'}", "--out", str(tmp_path / "runs")], tmp_path)
    assert res.returncode == 2 and "no model folder at" in res.stderr
    assert "resume" not in res.stderr and not (tmp_path / "runs").exists()
