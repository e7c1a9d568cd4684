"""GEMS-graph: the GEMS agent loop (memory, skills) as a LangGraph state machine.

The public face. Names are imported on first use, so ``import gems_graph`` (and
``gems --help``) stays instant::

    from gems_graph import GemsContext, compile_graph, open_checkpointer, run_gems
"""

from typing import TYPE_CHECKING

from gems_graph import _moved
from gems_graph._lazy import lazy_exports

if TYPE_CHECKING:  # what type checkers see for the lazy names below ("X as X": re-exported)
    from gems_graph.app.compose import as_tool as as_tool
    from gems_graph.app.compose import gems_subgraph_node as gems_subgraph_node
    from gems_graph.app.runner import RunResult as RunResult
    from gems_graph.app.runner import run_gems as run_gems
    from gems_graph.config import load_context as load_context
    from gems_graph.context import ConfigError as ConfigError
    from gems_graph.context import GemsContext as GemsContext
    from gems_graph.graph import build_graph as build_graph
    from gems_graph.graph import compile_graph as compile_graph
    from gems_graph.models.generator import GenerationError as GenerationError
    from gems_graph.models.generator import GenerationRequest as GenerationRequest
    from gems_graph.models.generator import Generator as Generator
    from gems_graph.models.registry import register_chat_model as register_chat_model
    from gems_graph.models.registry import register_generator as register_generator
    from gems_graph.models.registry import resolve_chat_model as resolve_chat_model
    from gems_graph.models.registry import resolve_generator as resolve_generator
    from gems_graph.persistence.checkpoint import open_async_checkpointer as open_async_checkpointer
    from gems_graph.persistence.checkpoint import open_checkpointer as open_checkpointer
    from gems_graph.persistence.report import load_run as load_run
    from gems_graph.persistence.report import rounds_html as rounds_html
    from gems_graph.persistence.report import score_chart as score_chart
    from gems_graph.persistence.report import write_report as write_report
    from gems_graph.records import Candidate as Candidate
    from gems_graph.records import Check as Check
    from gems_graph.records import ImageRef as ImageRef
    from gems_graph.records import Round as Round
    from gems_graph.records import Verdict as Verdict
    from gems_graph.state import GemsInput as GemsInput
    from gems_graph.state import GemsOutput as GemsOutput
    from gems_graph.state import GemsState as GemsState

_EXPORTS = {
    "GemsContext": "gems_graph.context",
    "ConfigError": "gems_graph.context",
    "load_context": "gems_graph.config",
    "build_graph": "gems_graph.graph",
    "compile_graph": "gems_graph.graph",
    "GemsState": "gems_graph.state",
    "GemsInput": "gems_graph.state",
    "GemsOutput": "gems_graph.state",
    "ImageRef": "gems_graph.records",
    "Check": "gems_graph.records",
    "Verdict": "gems_graph.records",
    "Candidate": "gems_graph.records",
    "Round": "gems_graph.records",
    "Generator": "gems_graph.models.generator",
    "GenerationRequest": "gems_graph.models.generator",
    "GenerationError": "gems_graph.models.generator",
    "resolve_generator": "gems_graph.models.registry",
    "resolve_chat_model": "gems_graph.models.registry",
    "register_generator": "gems_graph.models.registry",
    "register_chat_model": "gems_graph.models.registry",
    "open_checkpointer": "gems_graph.persistence.checkpoint",
    "open_async_checkpointer": "gems_graph.persistence.checkpoint",
    "write_report": "gems_graph.persistence.report",
    "load_run": "gems_graph.persistence.report",
    "rounds_html": "gems_graph.persistence.report",
    "score_chart": "gems_graph.persistence.report",
    "run_gems": "gems_graph.app.runner",
    "RunResult": "gems_graph.app.runner",
    "gems_subgraph_node": "gems_graph.app.compose",
    "as_tool": "gems_graph.app.compose",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)

_moved.install()
