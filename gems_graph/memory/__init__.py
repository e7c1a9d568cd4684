"""GEMS memory: the refiner's bounded trajectory view, and lessons kept across runs.

- ``trajectory_view``: what the refiner reads of the current run (facts of recent
  rounds, older rounds folded, a few recent images; never raw thoughts).
- ``distill_lessons`` + ``ExperienceStore.add``: at the end of a run, its experiences
  become a few lessons stored with metadata (Chroma by default, under
  ``$GEMS_HOME/memory``; a Chroma server; or LangGraph's ``BaseStore``).
- ``ExperienceStore.recall``: at planning, the lessons most similar to the new prompt.

Names are imported on first use; chromadb and sentence-transformers only when a store is opened.
"""

from gems_graph._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["Lesson", "distill_lessons", "generator_family"], "gems_graph.memory.lessons"),
    **dict.fromkeys(["ExperienceStore", "LessonStoreBase", "MemoryStoreError", "NullExperienceStore"], "gems_graph.memory.store"),
    "open_experience_store": "gems_graph.memory.open_store",
    "store_for_run": "gems_graph.memory.access",
    **dict.fromkeys(["TrajectoryView", "trajectory_view"], "gems_graph.memory.trajectory"),
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
