# What mypy reads for gems_graph.nodes.skill_planning: the module lives in the top-level nodes/ folder (see __init__.py).
from nodes.skill_planning import *
