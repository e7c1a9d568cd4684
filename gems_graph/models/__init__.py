"""What nodes call, whatever the backend: the generator protocol, chat helpers, the spec registry, retry.

Nodes import from here and never from ``gems_graph.backends``; the registry is the
one place that turns a spec string into a backend object.
"""
