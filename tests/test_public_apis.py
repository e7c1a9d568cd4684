"""The code leans on LangGraph's public APIs only, and type checkers see what users import.

Nodes with their own sync and async paths are ``SyncAsyncNode`` runnables: the
behaviour relied on (each path taken by its own API, the runtime and config injected,
no extra run in callbacks) is pinned here on a real graph, so a LangGraph upgrade that
changes it fails this file.
"""

from __future__ import annotations

import ast
import asyncio
import threading
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from gems_graph.graph import SyncAsyncNode, threaded_node
from tests.conftest import REPO

SOURCES = sorted([*(REPO / "gems_graph").rglob("*.py"), *(REPO / "nodes").rglob("*.py")])


def _imported_modules(path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_nothing_in_the_package_imports_a_private_langgraph_module():
    private = {
        f"{p.relative_to(REPO)}: {m}"
        for p in SOURCES
        for m in _imported_modules(p)
        if m.startswith("langgraph.") and any(part.startswith("_") for part in m.split(".")[1:])
    }
    assert not private, private


def test_type_checkers_see_every_lazy_export_from_its_module():
    tree = ast.parse((REPO / "gems_graph" / "__init__.py").read_text(encoding="utf-8"))
    guarded = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    seen = {a.asname: n.module for n in guarded.body if isinstance(n, ast.ImportFrom) for a in n.names if a.asname == a.name}
    import gems_graph

    assert seen == gems_graph._EXPORTS


def test_every_node_module_has_the_stub_that_names_it_for_type_checkers():
    modules = {p.stem for p in (REPO / "nodes").glob("*.py") if p.stem != "__init__"}
    stubs = {p.stem: p.read_text(encoding="utf-8") for p in (REPO / "gems_graph" / "nodes").glob("*.pyi")}
    assert set(stubs) == modules
    for name, text in stubs.items():
        assert f"from nodes.{name} import *" in text.splitlines(), name


# -- SyncAsyncNode on a real graph ------------------------------------------------------------


class _State(TypedDict, total=False):
    path: str
    thread: str
    tag: str
    saw_config: bool


@dataclass
class _Context:
    tag: str = "default"


def _sync(state: _State, config: RunnableConfig, runtime: Runtime[_Context]) -> dict[str, Any]:
    return {"path": "sync", "tag": runtime.context.tag, "saw_config": "configurable" in config, "thread": threading.current_thread().name}


async def _async(state: _State, config: RunnableConfig, runtime: Runtime[_Context]) -> dict[str, Any]:
    return {"path": "async", "tag": runtime.context.tag, "saw_config": "configurable" in config}


def _plain(state: _State, runtime: Runtime[_Context]) -> dict[str, Any]:
    return {"path": "plain", "tag": runtime.context.tag, "thread": threading.current_thread().name}


class _Starts(BaseCallbackHandler):
    def __init__(self) -> None:
        self.names: list[str] = []

    def on_chain_start(self, serialized: Any, inputs: Any, **kwargs: Any) -> None:
        self.names.append(kwargs.get("name") or "")


def _graph(node: Any) -> Any:
    builder = StateGraph(_State, context_schema=_Context)
    builder.add_node("work", node)
    builder.add_edge(START, "work")
    builder.add_edge("work", END)
    return builder.compile()


def test_a_sync_async_node_takes_the_sync_path_on_invoke_with_runtime_and_config():
    starts = _Starts()
    out = _graph(SyncAsyncNode(_sync, _async, name="work")).invoke({}, {"callbacks": [starts]}, context=_Context("mine"))
    assert (out["path"], out["tag"], out["saw_config"]) == ("sync", "mine", True)
    assert starts.names.count("work") == 1, starts.names  # LangGraph's node run, and no run of its own


def test_a_sync_async_node_takes_the_async_path_on_ainvoke_with_runtime_and_config():
    starts = _Starts()
    out = asyncio.run(_graph(SyncAsyncNode(_sync, _async, name="work")).ainvoke({}, {"callbacks": [starts]}, context=_Context("mine")))
    assert (out["path"], out["tag"], out["saw_config"]) == ("async", "mine", True)
    assert starts.names.count("work") == 1, starts.names


def test_a_threaded_node_runs_sync_on_invoke_and_on_the_node_pool_on_ainvoke():
    graph = _graph(threaded_node(_plain))
    assert not graph.invoke({}, context=_Context("t"))["thread"].startswith("gems-node")
    out = asyncio.run(graph.ainvoke({}, context=_Context("t")))
    assert out["tag"] == "t" and out["thread"].startswith("gems-node"), out
