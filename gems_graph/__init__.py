"""GEMS-graph: the GEMS agent loop (memory, skills) as a LangGraph state machine."""
