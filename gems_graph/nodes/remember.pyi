# What mypy reads for gems_graph.nodes.remember: the module lives in the top-level nodes/ folder (see __init__.py).
from nodes.remember import *
