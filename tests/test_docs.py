"""The documentation site builds offline with no warning, and its generated pages follow the code.

``mkdocs build --strict`` (what ``make docs`` runs) fails on a broken link or anchor, a
missing page, an included file that is not there, or an API name that no longer
resolves. The CLI reference is the CLI's own help and the ``gems.toml`` reference is
``GemsContext``'s fields, both rendered by ``docs/hooks/generated.py`` at build time.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from gems_graph.context import GemsContext
from tests.conftest import REPO


def hooks_module():
    spec = importlib.util.spec_from_file_location("docs_hooks", REPO / "docs" / "hooks" / "generated.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_MKDOCS_2_WARNING": "1"}
    res = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = res.stdout + res.stderr
    assert res.returncode == 0, log[-4000:]
    assert not re.search(r"^(WARNING|ERROR)\b", log, re.M), log[-4000:]
    return out


def test_the_site_has_every_page_of_the_nav(site):
    nav = re.findall(r":\s+([\w/-]+\.md)$", (REPO / "mkdocs.yml").read_text(), re.M)
    assert len(nav) >= 20
    for page in nav:
        built = site / ("index.html" if page == "index.md" else page.removesuffix(".md") + "/index.html")
        assert built.is_file(), page
    on_disk = {p.relative_to(REPO / "docs").as_posix() for p in (REPO / "docs").rglob("*.md")}
    assert on_disk == set(nav), "every page under docs/ is in mkdocs.yml's nav"


def test_every_code_fence_is_closed():
    # An unclosed fence is valid Markdown (the rest of the page becomes code), so the build passes it.
    for page in [REPO / "README.md", *(REPO / "docs").rglob("*.md")]:
        fences = [line for line in page.read_text().splitlines() if line.lstrip().startswith("```")]
        assert len(fences) % 2 == 0, page


def test_the_cli_reference_is_the_cli_help(site):
    texts = hooks_module().help_texts()
    assert {"gems", "gems run", "gems eval", "gems memory import", "gems skills validate"} <= set(texts)
    page = (site / "reference" / "cli" / "index.html").read_text()
    for name in texts:
        assert f"<code>{name}</code>" in page, name
    # What the console script prints, not a copy: the same text as `gems run --help`.
    res = subprocess.run(
        [sys.executable, "-m", "gems_graph.app.cli", "run", "--help"],
        env={**os.environ, "COLUMNS": "200", "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.rstrip() == texts["gems run"].rstrip()


def test_the_configuration_reference_has_every_context_field(site):
    page = (site / "reference" / "configuration" / "index.html").read_text()
    for f in fields(GemsContext):
        assert re.search(rf"\b{f.name}\b", page), f.name


def test_the_api_reference_renders_the_public_names(site):
    import gems_graph

    page = (site / "reference" / "python-api" / "index.html").read_text()
    for name in gems_graph.__all__:
        assert re.search(rf'id="gems_graph\.[\w.]*\b{name}"', page), name


def test_no_page_fetches_from_the_network(site):
    for page in site.rglob("*.html"):
        assert "fonts.googleapis.com" not in page.read_text(), page
