"""``python -m gems_graph`` is the ``gems`` command."""

from gems_graph.app.cli import main

main()
