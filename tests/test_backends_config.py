"""gems.toml < GEMS_* env < flags; ``gems doctor``; the serve-generator command in a real process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tomllib

import httpx
import pytest
import typer
from typer.testing import CliRunner

from gems_graph.backends.cli import doctor_command, serve_generator_command
from gems_graph.backends.doctor import doctor
from gems_graph.config import ConfigFileError, build_context, load_config, reference
from gems_graph.context import ConfigError, GemsContext
from gems_graph.testing import ColourGenerator
from tests.servers import RecordingServer, chat_completion, free_port, json_reply


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    for name in (
        "GEMS_CONFIG",
        "GEMS_GENERATOR",
        "GEMS_CHAT_MODEL",
        "GEMS_CRITIC_MODEL",
        "GEMS_MAX_ROUNDS",
        "GEMS_SEED",
        "OPENAI_API_KEY",
        "GEMS_OPENAI_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_precedence_flags_over_env_over_file(tmp_path, monkeypatch):
    cfg = tmp_path / "my.toml"
    cfg.write_text('generator = "diffusers:/models/z"\nmax_rounds = 4\nseed = 7\nguidance = 3\n')
    monkeypatch.setenv("GEMS_MAX_ROUNDS", "6")
    monkeypatch.setenv("GEMS_CRITIC_MODEL", "none")
    loaded = load_config({"seed": 9, "generator": None}, config_path=cfg)
    assert loaded.values["generator"] == "diffusers:/models/z" and loaded.sources["generator"] == f"file:{cfg}"
    assert loaded.values["max_rounds"] == 6 and loaded.sources["max_rounds"] == "env:GEMS_MAX_ROUNDS"
    assert loaded.values["seed"] == 9 and loaded.sources["seed"] == "flag"
    assert loaded.values["guidance"] == 3.0 and loaded.values["critic_model"] is None
    assert loaded.values["candidates_per_round"] == 1 and loaded.sources["candidates_per_round"] == "default"
    assert isinstance(loaded.context(), GemsContext)


def test_search_order_gems_config_then_cwd_then_home(tmp_path, monkeypatch, gems_home):
    gems_home.mkdir(parents=True, exist_ok=True)
    (gems_home / "gems.toml").write_text("max_rounds = 2\n")
    assert build_context().max_rounds == 2
    (tmp_path / "gems.toml").write_text("max_rounds = 3\n")
    assert build_context().max_rounds == 3
    other = tmp_path / "other.toml"
    other.write_text("max_rounds = 8\n")
    monkeypatch.setenv("GEMS_CONFIG", str(other))
    assert build_context().max_rounds == 8


def test_unknown_key_and_bad_values_name_key_and_file(tmp_path, monkeypatch):
    cfg = tmp_path / "gems.toml"
    cfg.write_text("max_round = 3\n")
    with pytest.raises(ConfigFileError, match=rf"{cfg}: unknown key 'max_round' \(did you mean 'max_rounds'\?\)"):
        load_config(config_path=cfg)
    cfg.write_text('max_rounds = "many"\n')
    with pytest.raises(ConfigFileError, match=r"max_rounds = 'many' must be int"):
        load_config(config_path=cfg)
    cfg.write_text('stop_rule = "sometimes"\n')
    with pytest.raises(ConfigFileError, match="stop_rule"):
        load_config(config_path=cfg)
    cfg.write_text("max_rounds = [\n")
    with pytest.raises(ConfigFileError, match="cannot read"):
        load_config(config_path=cfg)
    with pytest.raises(ConfigFileError, match="does not exist"):
        load_config(config_path=tmp_path / "missing.toml")
    cfg.unlink()
    monkeypatch.setenv("GEMS_MAX_ROUNDS", "lots")
    with pytest.raises(ConfigError, match="GEMS_MAX_ROUNDS='lots'"):
        load_config()
    monkeypatch.setenv("GEMS_MAX_ROUNDS", "500")
    with pytest.raises(ConfigError, match="max_rounds"):
        build_context()


def test_reference_is_valid_toml_of_the_defaults():
    data = tomllib.loads(reference())
    assert data["max_rounds"] == 5 and data["generator"] == GemsContext().generator
    assert "critic_model" not in data  # None defaults are documented as comments


def test_list_settings_from_file_and_env(tmp_path, monkeypatch):
    from dataclasses import fields

    lists = [f.name for f in fields(GemsContext) if "list" in str(f.type)]
    if not lists:
        pytest.skip("no list-valued setting")
    name = lists[0]
    cfg = tmp_path / "gems.toml"
    cfg.write_text(f'{name} = ["a", "b"]\n')
    assert load_config(config_path=cfg).values[name] == ["a", "b"]
    monkeypatch.setenv(f"GEMS_{name.upper()}", "x, y")
    assert load_config(config_path=cfg).values[name] == ["x", "y"]
    cfg.write_text(f"{name} = 3\n")
    with pytest.raises(ConfigFileError, match="list of strings"):
        load_config(config_path=cfg)


def _openai_like(rec):
    body = rec.json() if rec.body else {}
    if rec.path.endswith("/models"):
        return json_reply(200, {"object": "list", "data": [{"id": "m", "object": "model"}]})
    if body.get("logprobs"):
        tops = [{"token": "Yes", "logprob": -0.05}, {"token": "No", "logprob": -3.0}]
        return json_reply(200, chat_completion("Yes", logprobs=[{"token": "Yes", "logprob": -0.05, "top_logprobs": tops}]))
    if "tools" in body:
        return json_reply(200, chat_completion(tool_call={"name": "_Probe", "arguments": '{"answer": "ok"}'}))
    return json_reply(400, {"error": {"message": "json_schema not supported"}})


def test_doctor_rows_for_endpoint_and_missing_model(tmp_path):
    with RecordingServer(_openai_like) as srv:
        rows = doctor(
            {
                "generator": f"diffusers:{tmp_path / 'nope'}",
                "chat_model": f"openai-compatible:{srv.url}/v1#m",
                "critic_model": f"openai-compatible:http://127.0.0.1:{free_port()}/v1#m",
            }
        )
    by = {(r.role, r.check): r for r in rows}
    assert by[("generator", "model")].status == "fail" and "does not exist" in by[("generator", "model")].detail
    assert by[("chat_model", "reachable")].status == "ok"
    assert by[("chat_model", "structured output")].detail == "method: function_calling"
    assert by[("chat_model", "logprobs")].status == "ok" and "P(yes)=0.95" in by[("chat_model", "logprobs")].detail
    assert by[("critic_model", "reachable")].status == "fail" and "127.0.0.1" in by[("critic_model", "reachable")].detail


def test_doctor_checks_the_editor_and_whether_edits_can_happen():
    rows = doctor({"generator": ColourGenerator(), "editor": "shapes", "refiner_edits": True}, probe=False)
    editor = [r for r in rows if r.role == "editor"]
    assert [r.check for r in editor][:2] == ["kind", "create"] and editor[-1].check == "edits" and editor[-1].status == "ok"
    alone = [r for r in doctor({"generator": ColourGenerator(), "refiner_edits": True}, probe=False) if r.check == "edits"]
    assert [(r.role, r.status) for r in alone] == [("generator", "warn")] and "--edits has no effect" in alone[0].detail
    assert not [r for r in doctor({"generator": ColourGenerator()}, probe=False) if r.check == "edits"]


def test_doctor_command_json_and_exit_code(tmp_path):
    app = typer.Typer()
    app.command("doctor")(doctor_command)
    app.command("serve-generator")(serve_generator_command)
    cfg = tmp_path / "gems.toml"
    cfg.write_text(f'generator = "diffusers:{tmp_path / "nope"}"\n')
    result = CliRunner().invoke(app, ["doctor", "--config", str(cfg), "--no-probe", "--json"])
    assert result.exit_code == 1
    rows = json.loads(result.stdout)
    assert any(r["check"] == "model" and r["status"] == "fail" for r in rows)
    cfg.write_text("bogus = 1\n")
    result = CliRunner().invoke(app, ["doctor", "--config", str(cfg)])
    assert result.exit_code == 2 and "unknown key 'bogus'" in result.output


def test_serve_generator_command_in_a_real_process(tmp_path):
    from tests.tiny_pipelines import save_sd_pipeline

    folder = save_sd_pipeline(tmp_path / "tiny-sd")
    port = free_port()
    code = "import typer; from gems_graph.backends.cli import serve_generator_command as c; typer.run(c)"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, f"diffusers:{folder}?device=cpu&steps=2", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(240):
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.25)
        else:
            pytest.fail(f"server did not start: {proc.stderr.read1().decode() if proc.poll() is not None else ''}")
        from gems_graph.models.generator import GenerationRequest
        from gems_graph.models.registry import resolve_generator

        img = resolve_generator(base + "/generate").generate(GenerationRequest("a red circle", seed=1))
        assert img.size == (32, 32)
    finally:
        proc.terminate()
        proc.wait(15)
