"""Every table of measured figures in the README and the docs is rendered from its result file."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def tables_module():
    spec = importlib.util.spec_from_file_location("bench_tables", REPO / "benchmarks" / "tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pages_with_tables() -> list[Path]:
    tables = tables_module()
    return [p for p in tables.pages() if tables.table_names(p.read_text())]


def test_the_readme_and_the_benchmarks_page_render_their_tables():
    pages = {p.relative_to(REPO).as_posix() for p in pages_with_tables()}
    assert {"README.md", "docs/benchmarks.md"} <= pages, pages


@pytest.mark.parametrize("page", pages_with_tables(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_tables_match_their_result_files(page):
    tables = tables_module()
    text = page.read_text()
    for name in tables.table_names(text):
        assert (REPO / "benchmarks" / "results" / f"{name}.json").is_file() or name in tables.NOT_MEASURED, name
    assert tables.rendered_page(text) == text, f"{page.name}: run `python benchmarks/tables.py` after a benchmark"


def test_every_result_file_is_shown_in_a_page():
    tables = tables_module()
    shown = {name for p in tables.pages() for name in tables.table_names(p.read_text())}
    files = {p.stem for p in (REPO / "benchmarks" / "results").glob("*.json")}
    assert files <= shown, f"result files no page renders: {sorted(files - shown)}"


def test_every_benchmark_that_writes_a_result_file_has_a_table():
    tables = tables_module()
    shown = {name for p in tables.pages() for name in tables.table_names(p.read_text())}
    for script in tables.benchmarks_with_result_files():
        assert any(name == script or name.startswith(script + "_") for name in shown), f"benchmarks/{script}.py has no table"


@pytest.mark.parametrize("page", tables_module().pages(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_figure_is_typed_by_hand_beside_a_rendered_table(page):
    assert tables_module().hand_typed_figures(page.read_text()) == []


def test_a_hand_typed_figure_is_caught():
    tables = tables_module()
    text = (REPO / "docs" / "benchmarks.md").read_text()
    assert tables.hand_typed_figures(text) == []
    named = text + "\n`benchmarks/cold_start.py`: `gems --help` takes 0.24 s.\n"
    assert len(tables.hand_typed_figures(named)) == 1
    copied_figure = next(m.group(0) for m in tables.FIGURE.finditer(tables.render("critic_accuracy_shapes")) if m.group(0).endswith("%"))
    copied = text + f"\nThe critic is right on {copied_figure} of the questions.\n"
    assert len(tables.hand_typed_figures(copied)) == 1
    # A command line or a code block may hold numbers: they are not figures.
    assert tables.hand_typed_figures(text + "\n    benchmarks/memory.py --per-category 4 --seconds 0.5\n") == []
    assert tables.hand_typed_figures(text + "\nRun `benchmarks/memory.py --seconds 2.5` first.\n") == []


def test_a_result_not_measured_yet_says_so_instead_of_a_figure(tmp_path, monkeypatch):
    tables = tables_module()
    monkeypatch.setattr(tables, "RESULTS", tmp_path)
    text = tables.render("gpu_smoke")
    assert text.startswith("Not measured") and "gpu_smoke.json" in text
    assert not tables.FIGURE.search(text)
    with pytest.raises(FileNotFoundError):
        tables.render("cold_start")  # only a result no machine here can make may be absent


@pytest.mark.parametrize("page", ["README.md", "docs/benchmarks.md"])
def test_a_changed_figure_is_caught(page):
    tables = tables_module()
    text = (REPO / page).read_text()
    stale = text.replace("| loop | ", "| loop | 99.9 | ", 1)
    assert stale != text
    assert tables.rendered_page(stale) != stale
    name = tables.table_names(text)[0]
    # A row added inside a table's markers is caught as well.
    marker = next(line for line in text.splitlines() if line.startswith(f"<!-- table: {name}"))
    added = text.replace(marker + "\n", marker + "\n| stale | 99.9 |\n", 1)
    assert tables.rendered_page(added) != added


def test_a_gpu_result_once_written_replaces_the_not_measured_line(tmp_path, monkeypatch):
    tables = tables_module()
    monkeypatch.setattr(tables, "RESULTS", tmp_path)
    result = {
        "device": "NVIDIA H100",
        "torch": "2.13.0",
        "transformer_parameters_b": 6.15,
        "size": [1024, 1024],
        "steps": 9,
        "built_s": 40.0,
        "repeats": 2,
        "rows": [{"batch": 1, "s_per_batch": 1.5, "s_per_image": 1.5, "peak_gib": 30.2}],
        "stopped_before_batch": 2,
        "seconds": 90.0,
        "command": "benchmarks/gpu_smoke.py",
        "commit": "abc1234",
        "machine": "x86_64, 16 CPUs, Python 3.11.7",
    }
    (tmp_path / "gpu_smoke.json").write_text(json.dumps(result))
    text = tables.render("gpu_smoke")
    assert "| 1 | 1.50 | 1.50 | 30.2 GiB |" in text
    assert "NVIDIA H100" in text and "stopped before batch 2" in text and "Not measured" not in text
