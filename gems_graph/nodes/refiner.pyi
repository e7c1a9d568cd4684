# What mypy reads for gems_graph.nodes.refiner: the module lives in the top-level nodes/ folder (see __init__.py).
from nodes.refiner import *
