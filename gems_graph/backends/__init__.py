"""Backend implementations (diffusers, image servers, OpenAI-compatible chat, HTTP).

Only ``gems_graph.models.registry`` imports these; nodes see them through the
protocols in ``gems_graph.models``.
"""
