"""GEMS memory: the refiner's bounded trajectory view, and lessons kept across runs.

- ``trajectory_view``: what the refiner reads of the current run (facts of recent
  rounds, older rounds folded, a few recent images; never raw thoughts).
- ``distill_lessons`` + ``ExperienceStore.add``: at the end of a run, its experiences
  become a few lessons stored with metadata (Chroma by default, under
  ``$GEMS_HOME/memory``; a Chroma server; or LangGraph's ``BaseStore``).
- ``ExperienceStore.recall``: at planning, the lessons most similar to the new prompt.

Heavy imports (chromadb, sentence-transformers) happen only when a store is opened.
"""

from gems_graph.memory.lessons import Lesson, distill_lessons, generator_family
from gems_graph.memory.open_store import open_experience_store
from gems_graph.memory.store import (
    ExperienceStore,
    LessonStoreBase,
    MemoryStoreError,
    NullExperienceStore,
)
from gems_graph.memory.trajectory import TrajectoryView, trajectory_view

__all__ = [
    "ExperienceStore",
    "Lesson",
    "LessonStoreBase",
    "MemoryStoreError",
    "NullExperienceStore",
    "TrajectoryView",
    "distill_lessons",
    "generator_family",
    "open_experience_store",
    "trajectory_view",
]
