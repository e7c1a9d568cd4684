"""Every table of measured figures in the README and the docs is rendered from its result file."""

from __future__ import annotations

import importlib.util
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
        assert (REPO / "benchmarks" / "results" / f"{name}.json").is_file(), name
    assert tables.rendered_page(text) == text, f"{page.name}: run `python benchmarks/tables.py` after a benchmark"


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
