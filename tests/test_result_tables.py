"""Every table of measured figures in the README is rendered from its result file."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def tables_module():
    spec = importlib.util.spec_from_file_location("bench_tables", REPO / "benchmarks" / "tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_tables_match_their_result_files():
    tables = tables_module()
    text = (REPO / "README.md").read_text()
    names = re.findall(r"<!-- table: ([\w.-]+) -->", text)
    assert names, "the README renders its result tables from benchmarks/results/"
    for name in names:
        assert (REPO / "benchmarks" / "results" / f"{name}.json").is_file(), name
    assert tables.rendered_readme(text) == text, "run `python benchmarks/tables.py` after a benchmark"


def test_a_changed_figure_is_caught(tmp_path):
    tables = tables_module()
    text = (REPO / "README.md").read_text()
    name = re.findall(r"<!-- table: ([\w.-]+) -->", text)[0]
    stale = text.replace(f"<!-- table: {name} -->\n", f"<!-- table: {name} -->\n| stale | 99.9 |\n", 1)
    assert tables.rendered_readme(stale) != stale
