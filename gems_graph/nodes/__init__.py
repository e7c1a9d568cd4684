"""The graph's nodes (planner, generator, critic, refiner, ...), one module each.

Their source is the repository's top-level ``nodes/`` folder, the layout the project
was asked for. A wheel ships that folder here, as ``gems_graph.nodes``
(``[tool.setuptools.package-dir]`` in ``pyproject.toml``), so the package never
claims the generic top-level name ``nodes`` in a user's environment. In a source
checkout this placeholder, which no wheel ships, points the package at the folder.
"""

from pathlib import Path as _Path

__path__ = [str(_Path(__file__).resolve().parents[2] / "nodes")]
