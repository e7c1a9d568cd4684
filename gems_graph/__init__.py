"""GEMS-graph: the GEMS agent loop (memory, skills) as a LangGraph state machine.

The public face. Names are imported on first use, so ``import gems_graph`` (and
``gems --help``) stays instant::

    from gems_graph import GemsContext, compile_graph, open_checkpointer, run_gems
"""

from gems_graph import _moved
from gems_graph._lazy import lazy_exports

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
