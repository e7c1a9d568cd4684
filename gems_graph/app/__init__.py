"""Applications on top of the graph: the ``gems`` CLI, the run driver, composition into parent graphs, the agent server's database setup."""
