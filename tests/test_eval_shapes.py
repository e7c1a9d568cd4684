"""The eval harness on the shapes world: every method, resume, settings guard, CLI.

The generator here draws the prompt's scene procedurally and injects the errors
real models make (wrong colour binding, off-by-one counts, swapped positions,
missing objects) on about half of the seeds, deterministically per (prompt, seed),
so methods that try more seeds or rewrite prompts have something to fix. Pass
``--generator shapes`` to the CLI for the real trained model.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from gems_graph.eval import EvalConfig, run_eval
from gems_graph.eval.methods import METHODS
from gems_graph.eval.tasks import EvalConfigError
from gems_graph.models.registry import register_generator
from gems_graph.shapes.grammar import parse_prompt
from tests.plugin_backends import FaultyRenderer


def _cfg(out, **kw) -> EvalConfig:
    base = dict(
        suite="shapes", split="dev", out=str(out), generator=FaultyRenderer(), per_category=2, budget=3, progress=False, memory="none"
    )
    base.update(kw)
    return EvalConfig(**base)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval_small")
    return out, run_eval(_cfg(out, memory=None))  # gems gets a memory store inside the eval folder


def test_every_method_runs_and_is_scored_by_the_checker(small_run):
    out, result = small_run
    data = json.loads((out / "results.json").read_text())
    recs = data["records"]
    assert data["incomplete"] == 0 and result["errors"] == 0
    assert len(recs) == 12 * len(METHODS)
    by = {m: [r for r in recs if r["method"] == m] for m in METHODS}
    for m, rs in by.items():
        assert all(r["score"] in (0.0, 1.0) for r in rs), m
        assert all((out / r["final_image"]).is_file() for r in rs), m
    # Budgets: one image for single/explicit/rewrite, exactly N for search, at most N for the loops.
    assert all(r["images"] == 1 for r in by["single"] + by["explicit"] + by["rewrite"])
    assert all(r["images"] == 3 and r["rounds"] == 1 for r in by["search"])
    assert all(1 <= r["images"] == r["rounds"] <= 3 for r in by["loop"] + by["loop+skills"] + by["loop+edit"] + by["gems"])
    # Chat-model calls are counted: none for single, planner + critic for the others.
    assert all(r["chat_calls"] == 0 for r in by["single"] + by["explicit"])
    assert all(r["chat_calls"] >= 3 for r in by["rewrite"] + by["search"] + by["loop"])
    from gems_graph.context import context_field_names

    if "memory" in context_field_names():  # only gems remembers, and only inside the eval folder
        assert (out / "memory").is_dir()
    # Every method sees the same seed for a prompt; the loops and search fix what single gets wrong.
    assert len({(r["item"], r["seed"]) for r in recs}) == 12
    s = result["summary"]["methods"]
    assert s["search"]["score"] >= s["single"]["score"]
    assert s["loop"]["score"] > s["single"]["score"]
    # The table, per category, and the plot.
    table = (out / "results.md").read_text()
    assert "| method | score |" in table and "| position |" in table
    assert (out / result["paths"]["plot"].split("/")[-1]).is_file()
    timings = json.loads((out / "timings.json").read_text())
    assert len(timings["tasks"]) == 12 * len(METHODS) and all(t is not None and t >= 0 for t in timings["tasks"].values())


def test_final_image_is_the_one_scored(small_run):
    """The record's score is the checker's verdict on exactly the recorded final image."""
    from PIL import Image

    from gems_graph.shapes.questions import prompt_correct

    out, _ = small_run
    for r in json.loads((out / "results.json").read_text())["records"]:
        with Image.open(out / r["final_image"]) as img:
            assert float(prompt_correct(parse_prompt(r["prompt"]), img.convert("RGB"))) == r["score"]


def test_a_rerun_skips_finished_work(small_run):
    out, _ = small_run
    gen = FaultyRenderer()
    before = (out / "results.json").read_bytes()
    run_eval(_cfg(out, generator=gen, memory=None))
    assert gen.calls == 0
    assert (out / "results.json").read_bytes() == before


def test_resumed_eval_writes_the_same_results_as_an_uninterrupted_one(tmp_path):
    whole = tmp_path / "whole"
    run_eval(_cfg(whole, per_category=1, concurrency=2))

    resumed = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C inside a generator call, part way through
        run_eval(_cfg(resumed, per_category=1, generator=FaultyRenderer(interrupt_after=9)))
    done = (resumed / "results.jsonl").read_text().splitlines()
    assert 0 < len(done) < 30
    with open(resumed / "results.jsonl", "a") as fh:  # a torn line, as a crash mid-write leaves
        fh.write('{"key": "gems|dev-00')
    with pytest.raises(KeyboardInterrupt):  # interrupted again, between tasks this time
        run_eval(_cfg(resumed, per_category=1), on_record=_interrupt_after(5))
    run_eval(_cfg(resumed, per_category=1, concurrency=2))

    assert (resumed / "results.json").read_bytes() == (whole / "results.json").read_bytes()
    assert (resumed / "results.md").read_bytes() == (whole / "results.md").read_bytes()


def _interrupt_after(n: int):
    seen = []

    def hook(rec):
        seen.append(rec)
        if len(seen) >= n:
            raise KeyboardInterrupt

    return hook


def test_an_out_folder_with_other_settings_is_refused(tmp_path):
    run_eval(_cfg(tmp_path, per_category=1, methods=["single"]))
    with pytest.raises(EvalConfigError, match="budget"):
        run_eval(_cfg(tmp_path, per_category=1, methods=["single"], budget=4))
    # Adding methods to the same eval is allowed.
    run_eval(_cfg(tmp_path, per_category=1, methods=["single", "rewrite"]))


def test_generation_errors_are_recorded_and_retried(tmp_path):
    gen = FaultyRenderer(error_rate=0.0)
    gen.generate, working = (lambda request: (_ for _ in ()).throw(ValueError("model exploded"))), gen.generate
    cfg = _cfg(tmp_path, per_category=1, categories=["colors"], methods=["single", "loop"], generator=gen)
    r = run_eval(cfg)
    recs = json.loads((tmp_path / "results.json").read_text())["records"]
    assert r["errors"] == 2 and all(x["score"] == 0.0 and "exploded" in x["error"] for x in recs)
    gen.generate = working  # the outage is over: a rerun retries only the failed tasks
    r = run_eval(cfg)
    recs = json.loads((tmp_path / "results.json").read_text())["records"]
    assert r["errors"] == 0 and all(x["error"] is None and x["score"] == 1.0 for x in recs)


def test_cli_prints_the_table(tmp_path):
    from gems_graph.eval.cli import eval_app

    register_generator("eval-faulty", lambda arg: FaultyRenderer(), replace=True)
    res = CliRunner().invoke(
        eval_app,
        [
            "shapes",
            "--split",
            "test",
            "--per-category",
            "1",
            "--methods",
            "single,search",
            "--budget",
            "2",
            "--generator",
            "eval-faulty",
            "--out",
            str(tmp_path),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "| single |" in res.stdout and "| search |" in res.stdout and "test split" in res.stdout
    res = CliRunner().invoke(eval_app, ["shapes", "--methods", "single,best", "--out", str(tmp_path / "x"), "--no-progress"])
    assert res.exit_code == 2 and "methods must be a subset" in res.output
    res = CliRunner().invoke(eval_app, ["geneval2", "--out", str(tmp_path / "y")])
    assert res.exit_code == 2 and "needs PATH" in res.output


def test_custom_suite_scored_by_soft_tifa_with_an_offline_judge(tmp_path):
    """A custom JSONL with checks, judged by the shapes chat model (it returns yes/no logprobs)."""
    suite = tmp_path / "mine.jsonl"
    suite.write_text(
        json.dumps(
            {
                "id": "pair",
                "prompt": "a photo of a red circle and a blue square",
                "checks": ["Is there a red circle?", "Is there a blue square?"],
            }
        )
        + "\n"
        + json.dumps({"id": "wrong", "prompt": "a photo of a green triangle", "checks": ["Is there a yellow circle?"]})
        + "\n"
    )
    r = run_eval(
        EvalConfig(
            suite="custom",
            path=str(suite),
            out=str(tmp_path / "out"),
            methods=["single"],
            generator=FaultyRenderer(error_rate=0.0),
            judge="shapes-oracle",  # an exact judge, so the scoring itself is what is tested
            progress=False,
        )
    )
    recs = {x["item"]: x for x in json.loads((tmp_path / "out" / "results.json").read_text())["records"]}
    assert recs["pair"]["am"] > 0.5 and recs["pair"]["gm"] > 0.5 and recs["pair"]["judge_calls"] == 2
    assert recs["wrong"]["am"] < 0.5
    assert r["summary"]["methods"]["single"]["gm"] is not None


def test_hard_suite_is_scored_atom_by_atom(tmp_path):
    """shapes-hard through the harness: the score is GM (every atom right), AM beside it,
    both per method and per atom bin, and each atom kept with its kind."""
    from PIL import Image

    from gems_graph.shapes.atoms import answer_atoms, atoms_for_scene

    cfg = _cfg(
        tmp_path,
        suite="shapes-hard",
        categories=["atoms 3-4", "atoms 9-10"],
        per_category=1,
        methods=["single", "explicit", "loop"],
        budget=2,
    )
    result = run_eval(cfg)
    data = json.loads((tmp_path / "results.json").read_text())
    recs = data["records"]
    assert result["errors"] == 0 and len(recs) == 6 and data["settings"]["split"] == "dev"
    for r in recs:
        with Image.open(tmp_path / r["final_image"]) as img:
            answers = answer_atoms(parse_prompt(r["prompt"]), img.convert("RGB"))
        assert [(a["question"], a["skill"], a["p"]) for a in r["atoms"]] == [(a.question, a.kind, float(y)) for a, y in answers]
        assert r["score"] == r["gm"] == float(all(y for _, y in answers))
        assert r["am"] == pytest.approx(sum(y for _, y in answers) / len(answers))
    s = result["summary"]
    assert set(s["by_category"]) == {"atoms 3-4", "atoms 9-10"}
    assert all(s["methods"][m]["am"] is not None and s["methods"][m]["gm"] == s["methods"][m]["score"] for m in cfg.methods)
    assert all(per["am"] is not None for cat in s["by_category"].values() for per in cat.values())
    kinds = {a.kind for r in recs for a in atoms_for_scene(parse_prompt(r["prompt"]))}
    assert set(s["by_skill"]) == kinds and {"object", "count"} <= kinds
    table = result["table"]
    assert "| method | score | AM | GM |" in table and "| atoms 9-10 |" in table and "AM (pixel checker" in table


def test_hard_suite_prompt_without_an_image_counts_zero_in_am_too(tmp_path):
    gen = FaultyRenderer(error_rate=0.0)
    gen.generate = lambda request: (_ for _ in ()).throw(ValueError("model exploded"))
    run_eval(_cfg(tmp_path, suite="shapes-hard", limit=2, methods=["single"], generator=gen))
    recs = json.loads((tmp_path / "results.json").read_text())["records"]
    assert all(r["score"] == r["am"] == r["gm"] == 0.0 and r["error"] for r in recs)


def test_cli_runs_the_hard_suite_with_the_shipped_generator(tmp_path):
    from gems_graph.eval.cli import eval_app

    args = ["shapes-hard", "--split", "test", "--limit", "2", "--methods", "single,explicit", "--out", str(tmp_path), "--no-progress"]
    res = CliRunner().invoke(eval_app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)["summary"]
    assert {m: s["n"] for m, s in summary["methods"].items()} == {"single": 2, "explicit": 2}
    assert all(s["am"] is not None and s["gm"] is not None for s in summary["methods"].values())
    assert json.loads((tmp_path / "results.json").read_text())["records"][0]["item"] == "hard-test-0000"
    res = CliRunner().invoke(eval_app, ["shapes-hard", "--split", "val", "--out", str(tmp_path / "x"), "--no-progress"])
    assert res.exit_code == 2 and "split must be" in res.output
