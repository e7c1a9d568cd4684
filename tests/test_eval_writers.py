"""GenEval and GenEval2 suites and writers, checked against the real benchmark files.

The files live in ``../shared/data`` beside the repository (third-party data, not
copied into this tree); the tests skip when that folder is absent.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from gems_graph.eval import EvalConfig, load_suite, run_eval
from gems_graph.eval.suites import SuiteError
from gems_graph.eval.writers import write_geneval, write_geneval2
from gems_graph.testing import ColourGenerator

DATA = Path(__file__).parents[2] / "shared" / "data"
GENEVAL = DATA / "geneval" / "evaluation_metadata.jsonl"
GENEVAL2 = DATA / "geneval2" / "geneval2_sample.jsonl"


def _need(path: Path) -> None:
    if not path.is_file():
        pytest.skip(f"benchmark file {path} is absent (expected in ../shared/data beside the repository)")


def _png(path: Path, colour=(10, 200, 10)) -> str:
    Image.new("RGB", (8, 8), colour).save(path)
    return str(path)


def test_geneval_suite_reads_all_553_prompts_with_their_tags():
    _need(GENEVAL)
    items = load_suite("geneval", GENEVAL)
    assert len(items) == 553
    assert Counter(i.category for i in items) == {
        "single_object": 80,
        "two_object": 99,
        "counting": 80,
        "colors": 94,
        "position": 100,
        "color_attr": 100,
    }
    assert [i.id for i in items[:2]] == ["00000", "00001"] and items[0].prompt == "a photo of a bench"


def test_geneval_writer_makes_the_official_layout(tmp_path):
    _need(GENEVAL)
    lines = GENEVAL.read_text().splitlines()
    items = load_suite("geneval", GENEVAL)[:3]
    images = {(it.id, k): _png(tmp_path / f"{it.id}_{k}.png") for it in items for k in range(4)}
    out = write_geneval(tmp_path / "geneval", items, images)
    assert sorted(p.name for p in out.iterdir()) == ["00000", "00001", "00002"]
    for n in range(len(items)):
        folder = out / f"{n:05d}"
        meta = (folder / "metadata.jsonl").read_text()
        assert meta.strip() == lines[n]  # the prompt's line, verbatim
        assert json.loads(meta) == json.loads(lines[n])
        assert sorted(p.name for p in (folder / "samples").iterdir()) == ["0000.png", "0001.png", "0002.png", "0003.png"]


def test_geneval_eval_writes_the_layout_for_each_method(tmp_path):
    _need(GENEVAL)
    r = run_eval(
        EvalConfig(
            suite="geneval",
            path=str(GENEVAL),
            out=str(tmp_path),
            methods=["single"],
            samples=2,
            limit=3,
            generator=ColourGenerator(),
            progress=False,
        )
    )
    root = Path(r["paths"]["geneval_single"])
    assert root == tmp_path / "geneval" / "single"
    assert sorted(p.name for p in root.iterdir()) == ["00000", "00001", "00002"]
    assert sorted(p.name for p in (root / "00002" / "samples").iterdir()) == ["0000.png", "0001.png"]
    recs = json.loads((tmp_path / "results.json").read_text())["records"]
    assert all(x["score"] is None for x in recs)  # GenEval's own detector scores these
    assert len({x["seed"] for x in recs}) == 6  # samples use different seeds


def test_geneval2_suite_and_writer(tmp_path):
    _need(GENEVAL2)
    items = load_suite("geneval2", GENEVAL2)
    raw = [json.loads(line) for line in GENEVAL2.read_text().splitlines()]
    assert len(items) == 100
    assert all(list(map(list, it.vqa)) == rec["vqa_list"] for it, rec in zip(items, raw))
    assert items[0].category == f"atoms_{raw[0]['atom_count']}"
    images = {it.id: _png(tmp_path / f"{it.id}.png") for it in items[:10]}
    path = write_geneval2(tmp_path / "g2" / "single.json", items, images)
    mapping = json.loads(path.read_text())
    assert list(mapping) == [rec["prompt"] for rec in raw[:10]]  # keyed by the exact prompt string
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in mapping.values())


def test_suite_errors_name_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a cat"}\n{"prompt": \n')
    with pytest.raises(SuiteError, match="bad.jsonl:2"):
        load_suite("custom", bad)
    with pytest.raises(SuiteError, match="not a GenEval line"):
        load_suite("geneval", _one(tmp_path))


def _one(tmp_path: Path) -> Path:
    p = tmp_path / "one.jsonl"
    p.write_text('{"prompt": "a cat"}\n')
    return p


def test_custom_suite_checks_become_yes_questions(tmp_path):
    p = tmp_path / "mine.jsonl"
    p.write_text(
        json.dumps(
            {
                "prompt": "a red cube",
                "id": "cube",
                "category": "colour",
                "checks": ["Is there a cube?", ["How many cubes are in the image?", "one"]],
            }
        )
        + "\n"
    )
    (item,) = load_suite("custom", p)
    assert item.id == "cube" and item.category == "colour"
    assert item.vqa == (("Is there a cube?", "Yes"), ("How many cubes are in the image?", "one"))
