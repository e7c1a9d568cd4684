"""The labelled routing set and the routing benchmark's scoring."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from gems_graph.skills import SkillRegistry

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data" / "skill_routing.jsonl"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("skill_routing_bench", ROOT / "benchmarks" / "skill_routing.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_dataset_is_well_formed():
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    names = set(SkillRegistry().names())
    assert len(rows) >= 60
    assert sum(not r["skills"] for r in rows) >= 10  # plain prompts route to nothing
    for r in rows:
        assert set(r["skills"]) <= names, r
    for n in names:  # every skill has positives
        assert sum(n in r["skills"] for r in rows) >= 5, n


def test_benchmark_with_callable_router(capsys):
    bench = load_benchmark()
    reg = SkillRegistry()
    cases = bench.load_cases(DATA)
    perfect = bench.evaluate(cases, lambda p, r: next(c["skills"] for c in cases if c["prompt"] == p), reg)
    assert perfect["exact_match"] == 1.0
    empty = bench.evaluate(cases, lambda p, r: [], reg)
    assert all(s["tp"] == 0 for s in empty["per_skill"].values())
    table = bench.format_table(bench.evaluate(cases, bench.trigger_router(), reg))
    assert "micro" in table and "spatial-layout" in table


def test_benchmark_main_prints_table_and_writes_its_result_file(capsys, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # where a script run finds record.py
    out_file = tmp_path / "routing.json"
    assert load_benchmark().main(["--out", str(out_file)]) == 0
    out = capsys.readouterr().out
    assert "prec" in out and "recall" in out and "exact-match" in out
    result = json.loads(out_file.read_text())
    assert result["router"] == "triggers" and result["data"] == "benchmarks/data/skill_routing.jsonl"
    assert result["cases"] == sum(1 for line in DATA.read_text().splitlines() if line.strip())
    assert set(result["per_skill"]) == set(SkillRegistry().names())
    assert 0 <= result["micro"]["precision"] <= 1 and 0 <= result["micro"]["recall"] <= 1
    assert result["micro"]["support"] == sum(s["support"] for s in result["per_skill"].values())
    assert {"command", "commit", "machine"} <= set(result)


def test_chat_model_router_routes_through_the_planners_skill_loop():
    from langchain_core.messages import AIMessage, ToolMessage

    from gems_graph.nodes.planner import PlannedPrompt
    from gems_graph.testing import ScriptedChatModel

    def handler(messages, tools):
        assert "load_skill" in tools and "PlannedPrompt" in tools
        if not any(isinstance(m, ToolMessage) for m in messages):
            return AIMessage(
                "",
                tool_calls=[
                    {"name": "load_skill", "args": {"name": n}, "id": str(i)}
                    for i, n in enumerate(["counting", "counting", "negation", "text-rendering"])
                ],
            )
        return PlannedPrompt(prompt="three cats, no dogs")

    route = load_benchmark().chat_model_router(ScriptedChatModel(handler=handler), max_skills=2)
    assert route("three cats and no dogs", SkillRegistry()) == ["counting", "negation"]
