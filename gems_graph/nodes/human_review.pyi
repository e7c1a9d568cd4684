# What mypy reads for gems_graph.nodes.human_review: the module lives in the top-level nodes/ folder (see __init__.py).
from nodes.human_review import *
