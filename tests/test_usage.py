"""Usage accounting: chat calls, tokens and images, counted once and shown in run.json, the API and the eval."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.checkpoint.memory import InMemorySaver

from gems_graph.app.runner import run_gems
from gems_graph.context import GemsContext
from gems_graph.models.metering import count_images, metering
from gems_graph.persistence.checkpoint import open_checkpointer
from gems_graph.persistence.report import render_report
from gems_graph.testing import ColourGenerator, ScriptedChatModel, loop_handler
from gems_graph.usage import add_counts, add_usage_writes, usage_line, usage_record, zero_usage

#: "a red square" in the colour world, fixed at round 3 (checks: a square? red?), one
#: candidate a round, memory off: the calls each node makes, and the images they attach.
#: planner 1; critic 1 decompose + 2 verify in round 1, 2 verify in rounds 2 and 3;
#: refiner 2 in rounds 1 and 2 (compress with the round's image, refine with the past
#: images: 1, then 2).
EXPECTED_NODES = {
    "planner": {"calls": 1, "images_sent": 0, "images_generated": 0},
    "generator": {"calls": 0, "images_sent": 0, "images_generated": 3},
    "critic": {"calls": 7, "images_sent": 6, "images_generated": 0},
    "refiner": {"calls": 4, "images_sent": 5, "images_generated": 0},
}
#: Their sum, with the scripted model's 10 input and 2 output tokens a call.
#: The colour world's generator reports no time for its images: all three are untimed, their seconds unknown.
RED_SQUARE_TOTAL = {
    "calls": 12,
    "unreported_calls": 0,
    "input_tokens": 120,
    "output_tokens": 24,
    "images_sent": 11,
    "images_generated": 3,
    "untimed_images": 3,
    "generation_seconds": None,
}


def _context(tmp_path, usage=(10, 2), **kw):
    return GemsContext(
        generator=ColourGenerator(),
        chat_model=ScriptedChatModel(handler=loop_handler(fix_at_round=3), usage=usage),
        artifact_root=str(tmp_path),
        memory="none",
        **kw,
    )


def test_counts_add_and_unknown_tokens_stay_unknown():
    reported = usage_record("critic", 1, calls=2, input_tokens=30, output_tokens=4, images_sent=2)
    silent = usage_record("critic", 1, calls=3, unreported_calls=3, input_tokens=None, output_tokens=None, images_sent=3)
    assert add_counts(zero_usage(), silent)["input_tokens"] is None  # no call reported: unknown, not 0
    both = add_counts(reported, silent)
    assert both["calls"] == 5 and both["unreported_calls"] == 3 and both["input_tokens"] == 30 and both["images_sent"] == 5
    assert "30+ input" in usage_line(both) and "3 calls without token counts" in usage_line(both)
    assert add_counts(zero_usage(), usage_record("generator", 1, images_generated=1))["input_tokens"] == 0  # no calls: none to count


def test_the_reducer_is_batching_invariant():
    """A resumed run replays the checkpointed writes in other batches: the sum must not change."""
    writes = [
        [usage_record("planner", 1, calls=1, input_tokens=5, output_tokens=1)],
        [usage_record("generator", 1, images_generated=1)],
        [usage_record("critic", 1, calls=2, unreported_calls=2, input_tokens=None, output_tokens=None, images_sent=2)],
        [usage_record("refiner", 1, calls=2, input_tokens=9, output_tokens=3, images_sent=1)],
        [usage_record("critic", 2, calls=2, input_tokens=7, output_tokens=2, images_sent=2)],
    ]
    once = add_usage_writes(None, writes)
    assert add_usage_writes(add_usage_writes(None, writes[:2]), writes[2:]) == once
    assert once["total"] == {
        "calls": 7,
        "unreported_calls": 2,
        "input_tokens": 21,
        "output_tokens": 6,
        "images_sent": 5,
        "images_generated": 1,
        "untimed_images": 0,
        "generation_seconds": 0.0,
    }
    assert [r["round"] for r in once["rounds"]] == [1, 2] and once["rounds"][1]["nodes"]["critic"]["calls"] == 2
    assert once["nodes"]["critic"]["input_tokens"] == 7  # round 2 reported; round 1's calls are counted as unreported


def test_images_are_counted_in_every_message_of_a_call():
    block = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    messages = [SystemMessage("s"), HumanMessage(content=[{"type": "text", "text": "q"}, block, block]), HumanMessage("again")]
    assert count_images(messages) == 2


def test_a_meter_counts_what_the_model_reports_and_calls_that_report_nothing():
    model = ScriptedChatModel(handler=lambda messages, tools: "yes", usage=(7, 1))
    silent = ScriptedChatModel(handler=lambda messages, tools: "yes")
    with metering() as meter:
        model.invoke("a")
        model.invoke("b")
        silent.invoke("c")
    model.invoke("not metered")
    assert meter.record("critic", 1) == usage_record(
        "critic", 1, calls=3, unreported_calls=1, input_tokens=14, output_tokens=2, images_sent=0
    )


def test_run_json_the_api_and_the_report_show_exact_totals(tmp_path):
    result = run_gems("a red square", _context(tmp_path), InMemorySaver())
    assert result.status == "passed" and result.state["rounds_used"] == 3
    usage = result.state["usage"]
    for node, expected in EXPECTED_NODES.items():
        got = usage["nodes"][node]
        assert {k: got[k] for k in expected} == expected, node
        assert got["input_tokens"] == 10 * expected["calls"] and got["output_tokens"] == 2 * expected["calls"]
    assert usage["total"] == RED_SQUARE_TOTAL
    assert [r["total"]["calls"] for r in usage["rounds"]] == [1 + 3 + 2, 2 + 2, 2]
    run_json = json.loads(Path(result.state["run_dir"], "run.json").read_text())
    assert run_json["usage"] == usage
    summary = result.summary()
    assert summary["usage"]["calls"] == 12 and summary["usage"]["input_tokens"] == 120
    assert summary["usage"]["nodes"]["critic"]["images_sent"] == 6
    html = render_report(run_json, Path(result.state["run_dir"]))
    assert '<table class="usage">' in html and "<th>refiner</th><td>4</td><td>40</td><td>8</td><td>5</td><td>0</td>" in html


def test_the_graph_returns_usage_in_its_output(tmp_path):
    from gems_graph.graph import compile_graph

    out = compile_graph(checkpointer=InMemorySaver()).invoke(
        {"prompt": "a red square"}, {"configurable": {"thread_id": "u"}}, context=_context(tmp_path)
    )
    assert out["usage"]["total"]["calls"] == 12 and out["usage"]["total"]["images_generated"] == 3


def test_a_server_that_reports_no_usage_leaves_tokens_unknown(tmp_path):
    result = run_gems("a red square", _context(tmp_path, usage=None), InMemorySaver())
    total = result.usage_total
    assert total["calls"] == 12 and total["unreported_calls"] == 12 and total["images_sent"] == 11
    assert total["input_tokens"] is None and total["output_tokens"] is None
    assert "unknown input / unknown output tokens" in usage_line(total)


def test_usage_survives_a_pause_and_a_resume_from_the_checkpoint_file(tmp_path):
    """Round 1 is counted in one process's checkpoint, rounds 2-3 after a resume in a fresh one."""
    db = tmp_path / "cp.sqlite"
    with open_checkpointer(str(db)) as saver:
        paused = run_gems("a red square", _context(tmp_path, human_feedback=True), saver, thread_id="t")
    assert paused.review is not None and paused.usage_total["calls"] == 1 + 3
    with open_checkpointer(str(db)) as saver:
        done = run_gems(None, _context(tmp_path, human_feedback=True), saver, thread_id="t", resume=True, on_review=_feedback_until_passed)
    assert done.status == "accepted" and done.state["rounds_used"] == 3
    assert done.usage_total == RED_SQUARE_TOTAL


def _feedback_until_passed(review):
    return {"feedback": "redder"} if review["status"] == "running" else {"accept": True}


def test_a_new_run_on_the_same_thread_starts_counting_afresh(tmp_path):
    saver = InMemorySaver()
    run_gems("a red square", _context(tmp_path), saver, thread_id="same")
    again = run_gems("a red square", _context(tmp_path), saver, thread_id="same")
    assert again.usage_total["calls"] == 12


@pytest.mark.parametrize("method", ["single", "loop"])
def test_eval_records_and_tables_carry_the_runs_usage(tmp_path, method):
    from gems_graph.eval.methods import MethodSettings, run_method
    from gems_graph.eval.report import markdown, summarize
    from gems_graph.eval.suites import EvalItem

    settings = MethodSettings(
        out=tmp_path,
        budget=3,
        generator=ColourGenerator(),
        chat_model=ScriptedChatModel(handler=loop_handler(fix_at_round=3), usage=(10, 2)),
    )
    item = EvalItem(id="p0", index=0, category="all", prompt="a red square", seed=0)
    rec = run_method(method, item, 0, settings, "p0")
    if method == "single":
        assert (rec["chat_calls"], rec["input_tokens"], rec["images_sent"], rec["images"]) == (0, 0, 0, 1)
    else:
        # The loop has no skills and shows the refiner no past images: 12 calls, 6 + 2 images sent.
        assert (rec["chat_calls"], rec["input_tokens"], rec["output_tokens"], rec["images_sent"], rec["images"]) == (12, 120, 24, 8, 3)
    rows = [{**rec, "method": method, "category": "all", "score": 1.0}]
    table = markdown(summarize(rows, [method]), "t")
    assert "| method | chat calls | input tokens | output tokens | images sent | images generated | generation s |" in table
    expected = "| single | 0.0 | 0 | 0 | 0.0 | 1.00 | - |" if method == "single" else "| loop | 12.0 | 120 | 24 | 8.0 | 3.00 | - |"
    assert expected in table


def test_the_report_survives_a_usage_someone_edited(tmp_path):
    from gems_graph.persistence.report import usage_table

    assert usage_table(None) == "<p>No usage recorded.</p>"
    html = usage_table({"total": {"calls": "<script>", "input_tokens": None}, "nodes": {"<b>x</b>": "junk"}, "rounds": ["junk"]})
    assert "<script>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html and "<td>?</td>" in html
