"""Evaluation harness: the paper's comparison (single, rewrite, search, loop, gems)
at equal image budgets, on the shapes world, GenEval, GenEval2 or a custom JSONL.

``run_eval(EvalConfig(...))`` is the Python entry; ``gems eval`` is the CLI
(``gems_graph.eval.cli.eval_command``). Modules: ``suites`` (prompt sets),
``methods`` (how each method makes its final image, through the real graph),
``scoring`` (suite scorers), ``softtifa`` (GenEval2's metric), ``writers``
(official scorer layouts), ``tasks`` (one task: settings, key, record, log),
``harness`` (resumable runs), ``ray_executor`` (tasks on Ray), ``report`` (tables, plot).
"""

from gems_graph._lazy import lazy_exports

_EXPORTS = {
    "EvalConfig": "gems_graph.eval.tasks",
    "run_eval": "gems_graph.eval.harness",
    "METHODS": "gems_graph.eval.methods",
    "EvalItem": "gems_graph.eval.suites",
    "load_suite": "gems_graph.eval.suites",
}
__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["METHODS", "EvalConfig", "EvalItem", "load_suite", "run_eval"]
