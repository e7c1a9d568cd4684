# What mypy reads for gems_graph.nodes.planner: the module lives in the top-level nodes/ folder (see __init__.py).
from nodes.planner import *
