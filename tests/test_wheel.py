"""The wheel as a user installs it: into a fresh virtualenv, beside an application
that has a ``nodes`` package of its own (a common name in LangGraph apps).

The repository keeps its top-level ``nodes/`` folder; the wheel ships it as
``gems_graph.nodes`` and claims no generic top-level name.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

#: What a wheel is built from; copied so the build leaves nothing in the repository.
SOURCES = ["pyproject.toml", "README.md", "gems_graph", "nodes", "skills"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(REPO / name, src / name)
    out = tmp_path_factory.mktemp("dist")
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return next(out.glob("gems_graph-*.whl"))


def test_the_wheel_ships_the_nodes_under_the_package_and_no_top_level_nodes(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith((".dist-info", ".data"))}
    assert tops == {"gems_graph"}, tops
    assert "gems_graph/nodes/critic.py" in names and "gems_graph/skills/builtin/counting/SKILL.md" in names


def test_the_wheel_is_typed_and_its_nodes_are_the_modules_themselves(wheel):
    """PEP 561: ``py.typed`` ships, so users' type checkers read the package's annotations;
    the checkout's re-export stubs (gems_graph/nodes/*.pyi) do not, or they would shadow
    the node modules with imports of a top-level ``nodes`` the wheel does not have."""
    names = zipfile.ZipFile(wheel).namelist()
    assert "gems_graph/py.typed" in names
    assert not [n for n in names if n.endswith(".pyi")], [n for n in names if n.endswith(".pyi")]


def test_an_app_with_its_own_nodes_package_imports_and_runs_gems(wheel, tmp_path):
    env_dir = tmp_path / "fresh"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = Path(
        subprocess.check_output([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip()
    )
    # The dependencies come from the test environment's site-packages, added as a plain path:
    # its .pth files (the editable install of this checkout among them) are not read from there.
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    res = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr[-3000:]
    app = tmp_path / "app"
    (app / "nodes").mkdir(parents=True)
    (app / "nodes" / "__init__.py").write_text("WHO = 'the app'\n")
    code = (
        "import nodes, gems_graph\n"
        "from gems_graph import GemsContext, compile_graph\n"
        "assert nodes.WHO == 'the app', nodes.__file__\n"
        f"assert gems_graph.__file__.startswith({str(site)!r}), gems_graph.__file__\n"
        "out = compile_graph().invoke({'prompt': 'a red square'}, context=GemsContext(memory='none', max_rounds=1))\n"
        "print(out['status'], out['rounds_used'])\n"
    )
    run = subprocess.run(
        [str(python), "-c", code],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=600,
        env={"GEMS_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split()[1] == "1"
