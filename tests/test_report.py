"""Run report: a real run in the colour world, written to HTML, opened in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from gems_graph.context import GemsContext
from gems_graph.graph import compile_graph
from gems_graph.persistence.report import report_command, word_diff, write_report
from gems_graph.testing import ColourGenerator, ScriptedChatModel, loop_handler
from tests.chromium import dump_dom, screenshot

PROMPT = "a red square <script>alert('x')</script> & \"friends\""


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """Three rounds, two candidates each; round 3 fixes the colour."""
    context = GemsContext(
        generator=ColourGenerator(),
        chat_model=ScriptedChatModel(handler=loop_handler(fix_at_round=3)),
        artifact_root=str(tmp_path / "runs"),
        candidates_per_round=2,
        memory="none",
    )
    out = compile_graph().invoke({"prompt": PROMPT}, context=context)
    assert out["status"] == "passed" and out["rounds_used"] == 3
    run_dir = Path(out["run_dir"])
    # Lessons and skills as the memory and skills issues add them to run.json.
    record = json.loads((run_dir / "run.json").read_text())
    record["recalled_lessons"] = [{"id": "l1", "text": "Say <b>red</b> first.", "similarity": 0.9}]
    record["skills"] = ["attribute-binding"]
    (run_dir / "run.json").write_text(json.dumps(record))
    return run_dir


def test_report_is_escaped_and_complete(run_dir):
    page = write_report(run_dir)
    assert page == run_dir / "report.html"
    html = page.read_text()
    assert "<script>alert" not in html and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "&lt;b&gt;red&lt;/b&gt;" in html  # lesson text escaped too
    assert "attribute-binding" in html and "Is the square red?" in html
    assert "<ins>FIXED</ins>" in html  # round 3's change against round 2
    assert html.count("<img ") == 7  # best + 3 rounds x 2 candidates
    assert "file:" not in html and 'src="/' not in html  # nothing points outside the page
    assert "<svg" in html and html.count('class="round-score"') == 3


def test_report_survives_moving_the_run_folder(run_dir, tmp_path):
    moved = tmp_path / "elsewhere" / run_dir.name
    shutil.copytree(run_dir, moved)
    shutil.rmtree(run_dir)
    html = write_report(moved).read_text()
    assert html.count('src="data:image/png;base64,') == 7


def test_report_opens_in_chromium_with_every_image_loaded(run_dir, tmp_path):
    page = write_report(run_dir)
    moved = tmp_path / "mailed" / "report.html"  # self-contained: works away from the run folder
    moved.parent.mkdir()
    shutil.copy(page, moved)
    shutil.rmtree(run_dir)
    dom = dump_dom(moved)
    body = re.search(r"<body[^>]*>", dom).group(0)
    total = int(re.search(r'data-images-total="(\d+)"', body).group(1))
    loaded = int(re.search(r'data-images-loaded="(\d+)"', body).group(1))
    assert total == 7 and loaded == total
    png = screenshot(moved, tmp_path / "report.png")
    from PIL import Image

    with Image.open(png) as shot:
        assert shot.size == (1200, 2000)
        assert len(shot.convert("RGB").getcolors(maxcolors=1 << 20)) > 20  # rendered, not blank


def test_word_diff_marks_added_and_removed_words():
    assert word_diff("a blue square", "a red square now") == "a <del>blue</del> <ins>red</ins> square <ins>now</ins>"
    assert word_diff(None, "<x>") == "&lt;x&gt;"


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command("report")(report_command)

    @app.callback()
    def main() -> None:  # a group, as in the real `gems` CLI
        pass

    return app


def test_report_command_prints_the_path(run_dir):
    res = CliRunner().invoke(_cli(), ["report", str(run_dir)])
    assert res.exit_code == 0, res.output
    assert res.output.strip() == str(run_dir / "report.html")


@pytest.mark.parametrize("make", ["missing", "no_json"])
def test_report_command_rejects_a_folder_without_a_run(tmp_path, make):
    target = tmp_path / "nope"
    if make == "no_json":
        target.mkdir()
    res = CliRunner().invoke(_cli(), ["report", str(target)])
    assert res.exit_code == 2
    assert "error:" in res.output and ("no run folder" in res.output or "run.json" in res.output)


def test_a_report_inlines_only_images_inside_the_run_folder(run_dir, tmp_path):
    """run.json is data anyone may edit: a best_image naming any other file is not inlined."""
    secret = tmp_path / "secret.png"
    secret.write_text("root:x:0:0:not-an-image")
    fake = run_dir / "round_01" / "notes.png"  # inside the folder, but not an image
    fake.write_text("hello")
    record = json.loads((run_dir / "run.json").read_text())
    for target in ("/etc/passwd", str(secret), str(fake)):
        record["best_image"] = target
        (run_dir / "run.json").write_text(json.dumps(record))
        html = write_report(run_dir).read_text()
        assert "cm9vdDp4" not in html and "aGVsbG8" not in html  # base64 of the files' first bytes
    record["best_image"] = str(sorted(run_dir.glob("round_*/*.png"))[0])
    (run_dir / "run.json").write_text(json.dumps(record))
    assert "data:image/png;base64," in write_report(run_dir).read_text()


def test_round_boxes_say_what_changed_and_the_chart_is_labelled(run_dir):
    html = write_report(run_dir).read_text()
    assert "same prompt; seed" in html  # round 2 kept the prompt: the seeds changed
    assert html.count('class="axis-title"') == 2 and 'class="legend"' in html
    assert '<abbr title="Is the square red?">c2</abbr>' in html  # failed checks by id, question on hover
    assert "<h2>Experiences</h2>" not in html and html.count("say red explicitly") == 2  # once per round box
