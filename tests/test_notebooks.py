"""The notebooks run as a user runs them: 01 and 02 executed offline, 03 validated only.

Each notebook runs in a fresh kernel with its working directory a tmp folder and
GEMS_HOME a tmp folder, so runs, checkpoints and memory never land in the repo.
A cell that raises fails the test with the cell's error.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tests.conftest import repo_snapshot

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"


def execute(name: str, tmp_path: Path, monkeypatch) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    home = tmp_path / "gems_home"
    # The kernel inherits this process's environment.
    monkeypatch.setenv("GEMS_HOME", str(home))
    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "False")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    except CellExecutionError as exc:
        pytest.fail(f"{name}: a cell failed:\n{exc}")
    return nb


def outputs_text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.extend(str(v) for v in out.get("data", {}).values())
    return "\n".join(parts)


def test_01_quickstart_runs_offline(tmp_path, monkeypatch):
    before = repo_snapshot()
    nb = execute("01_quickstart.ipynb", tmp_path, monkeypatch)
    text = outputs_text(nb)
    assert "finished: passed" in text
    assert "data:image/png;base64," in text  # each round's images shown inline
    assert "<svg" in text  # the score chart
    assert list((tmp_path / "gems_home" / "runs").glob("*/report.html"))
    assert repo_snapshot() == before  # everything went under GEMS_HOME, nothing into the repository


def test_02_memory_and_skills_runs_offline(tmp_path, monkeypatch):
    nb = execute("02_memory_and_skills.ipynb", tmp_path, monkeypatch)
    text = outputs_text(nb)
    assert "skill:counting" in text
    assert 'recalled: For "a photo of three yellow squares"' in text
    assert (tmp_path / "gems_home" / "memory").is_dir()


@pytest.mark.parametrize("name", ["01_quickstart.ipynb", "02_memory_and_skills.ipynb", "03_real_models.ipynb"])
def test_notebooks_are_valid(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    assert nb.cells[0].cell_type == "markdown"
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    if name != "03_real_models.ipynb":  # 01 and 02 run offline: committed with the outputs of a real execution
        assert [c.get("execution_count") for c in code] == list(range(1, len(code) + 1))
        assert "image/png" in str([c.get("outputs") for c in code]) or "data:image/png" in str([c.get("outputs") for c in code])


#: Where a machine's own paths begin; committed outputs must not show them.
MACHINE_PATHS = re.compile(r"(?<![\w.])/(?:tmp|work|home|root|Users|var/folders)/")
#: What a notebook may import from the package: its public face and public subpackages.
PUBLIC_MODULES = {"gems_graph", "gems_graph.memory", "gems_graph.skills"}


@pytest.mark.parametrize("name", ["01_quickstart.ipynb", "02_memory_and_skills.ipynb", "03_real_models.ipynb"])
def test_notebooks_use_the_public_api_and_show_no_machine_paths_or_warnings(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    imported = {m for c in nb.cells if c.cell_type == "code" for m in re.findall(r"^\s*from (gems_graph[\w.]*) import", c.source, re.M)}
    assert imported <= PUBLIC_MODULES, imported - PUBLIC_MODULES
    text = outputs_text(nb)
    assert not MACHINE_PATHS.search(text), MACHINE_PATHS.search(text)
    streams = [out for c in nb.cells for out in c.get("outputs", []) if out.get("name") == "stderr"]
    assert not streams, [out.get("text", "")[:200] for out in streams]


def test_03_names_the_real_backends():
    source = "\n".join(c.source for c in nbformat.read(NOTEBOOKS / "03_real_models.ipynb", as_version=4).cells)
    assert "diffusers:Tongyi-MAI/Z-Image-Turbo" in source
    assert "openai-compatible:http://127.0.0.1:8000/v1#Qwen3-VL-8B-Instruct" in source
