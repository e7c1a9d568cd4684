# What mypy reads for gems_graph.nodes.critic: the module lives in the top-level nodes/ folder (see __init__.py).
from nodes.critic import *
