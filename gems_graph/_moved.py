"""Import paths of the previous release, kept working for one release.

The flat modules moved into layers (``models/``, ``persistence/``, ``app/``). An
old path still imports, as the very module at its new path, and warns once with
``DeprecationWarning`` so notebooks and scripts written against the last release
keep running while they are updated.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from typing import Any

#: Old module path -> new module path. Removed in the release after next.
MOVED = {
    "gems_graph.registry": "gems_graph.models.registry",
    "gems_graph.llm": "gems_graph.models.llm",
    "gems_graph.retry": "gems_graph.models.retry",
    "gems_graph.model_loading": "gems_graph.models.loading",
    "gems_graph.backends.base": "gems_graph.models.generator",
    "gems_graph.home": "gems_graph.persistence.home",
    "gems_graph.artifacts": "gems_graph.persistence.artifacts",
    "gems_graph.checkpoint": "gems_graph.persistence.checkpoint",
    "gems_graph.report": "gems_graph.persistence.report",
    "gems_graph.cli": "gems_graph.app.cli",
    "gems_graph.runner": "gems_graph.app.runner",
    "gems_graph.compose": "gems_graph.app.compose",
}


class _MovedLoader(importlib.abc.Loader):
    def __init__(self, new: str) -> None:
        self.new = new

    def create_module(self, spec: Any) -> Any:
        warnings.warn(f"{spec.name} moved to {self.new}; the old path goes in the next release", DeprecationWarning, stacklevel=2)
        return importlib.import_module(self.new)

    def exec_module(self, module: Any) -> None:
        """The new module is already executed."""


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        new = MOVED.get(name)
        return importlib.util.spec_from_loader(name, _MovedLoader(new)) if new else None


def install() -> None:
    """Put the old paths on the import system (idempotent)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _MovedFinder())
