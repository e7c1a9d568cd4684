"""The tree shows its layers: imports run downward only, the public face resolves, old paths still work."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import gems_graph
from gems_graph._moved import MOVED

REPO = Path(__file__).resolve().parents[1]

#: Higher imports lower, never the reverse. Modules of one rank may import each other.
RANK = {
    "errors": 0, "access_keys": 0, "terminal": 0, "text": 0, "usage": 0, "prompt_labels": 0, "_lazy": 0, "_moved": 0,
    "context": 1, "state": 1, "records": 0, "settings": 1, "events": 1, "validation": 1, "persistence": 1,
    "models": 2,
    "backends": 3, "config": 3, "presets": 3,  # settings resolution knows the backends' families
    "memory": 4, "skills": 4, "shapes": 4,
    "nodes": 5,
    "graph": 6,
    "eval": 7,
    "app": 8, "testing": 8, "__main__": 9, "__init__": 9,
}  # fmt: skip


def rank_of(module: str) -> tuple[str, int]:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    return top, RANK[top]


def module_name(path: Path) -> str:
    """The module a source file is imported as: the top-level ``nodes/`` folder is ``gems_graph.nodes``."""
    parts = path.relative_to(REPO).with_suffix("").parts
    if parts[0] == "nodes":
        parts = ("gems_graph", *parts)
    return ".".join(parts).removesuffix(".__init__")


def source_files() -> list[Path]:
    """Every module of the package (the placeholder that points at ``nodes/`` is no source of its own)."""
    placeholder = REPO / "gems_graph" / "nodes"
    return sorted([*(p for p in (REPO / "gems_graph").rglob("*.py") if placeholder not in p.parents), *(REPO / "nodes").rglob("*.py")])


def first_party_imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno


def test_imports_run_down_the_layers_only():
    upward = []
    for path in source_files():
        module = module_name(path)
        mine, my_rank = rank_of(module if module != "gems_graph" else "gems_graph.__init__")
        for target, line in first_party_imports(path):
            if target.split(".")[0] != "gems_graph" or target == "gems_graph":
                continue
            theirs, their_rank = rank_of(target)
            if their_rank > my_rank and theirs != mine:
                upward.append(f"{path.relative_to(REPO)}:{line} ({mine}) imports {target} ({theirs})")
    assert not upward, "imports that run back up a layer:\n" + "\n".join(upward)


def import_graph() -> dict[str, set[str]]:
    """First-party module -> the first-party modules it imports (anywhere in it)."""
    modules = {module_name(p): p for p in source_files()}

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    return {
        m: {k for target, _ in first_party_imports(p) if (k := known(target)) and k != m and k != "gems_graph"} for m, p in modules.items()
    }


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = 1
        for dep in sorted(graph[module]):
            if state.get(dep) == 1:
                return [*path, module, dep]
            if dep not in state and (cycle := visit(dep, [*path, module])):
                return cycle
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module, [])
            assert cycle is None, "import cycle: " + " -> ".join(cycle[cycle.index(cycle[-1]) :])


def test_nodes_never_import_a_backend():
    offenders = [
        f"{p.relative_to(REPO)}:{line}"
        for p in (REPO / "nodes").rglob("*.py")
        for target, line in first_party_imports(p)
        if target.startswith("gems_graph.backends")
    ]
    assert not offenders


@pytest.mark.parametrize("name", gems_graph.__all__)
def test_every_public_name_resolves(name):
    assert getattr(gems_graph, name) is not None


def test_unknown_public_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        gems_graph.nope  # noqa: B018


@pytest.mark.parametrize("old,new", sorted(MOVED.items()))
def test_old_import_paths_warn_and_give_the_same_module(old, new):
    code = (
        "import importlib, warnings\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        f"    old = importlib.import_module({old!r})\n"
        f"assert old is importlib.import_module({new!r}), 'not the same module'\n"
        "assert any(issubclass(x.category, DeprecationWarning) and 'moved to' in str(x.message) for x in w), [str(x.message) for x in w]\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("module", ["gems_graph", "gems_graph.app.cli"])
def test_importing_the_package_and_the_cli_stays_light(module):
    """``import gems_graph`` and ``gems --help`` must not pull in the heavy stacks."""
    heavy = ("torch", "diffusers", "chromadb", "langchain_core", "langgraph")
    code = f"import sys, {module}; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_new_modules_are_importable():
    for new in MOVED.values():
        importlib.import_module(new)
