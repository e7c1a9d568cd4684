"""Fixed prompt splits for measuring the shapes world (GenEval's six categories).

Both splits are a pure function of a seed. They are disjoint as (prompt, seed)
pairs; prompts themselves are disjoint wherever the category has enough distinct
prompts (single objects have only 3, colours 12, so those repeat with other seeds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gems_graph.shapes.grammar import describe
from gems_graph.shapes.render import CATEGORIES, sample_scene

PER_CATEGORY = 24
_SEED_BASE = {"dev": 0, "test": 1_000_000}


@dataclass(frozen=True)
class SuiteItem:
    category: str
    prompt: str
    seed: int  # base seed; sample k uses seed + k


def _distinct(category: str, rng: np.random.Generator, n: int, exclude: set[str]) -> list[str]:
    pool: list[str] = []
    for _ in range(5000):
        p = describe(sample_scene(rng, category))
        if p not in pool and p not in exclude:
            pool.append(p)
        if len(pool) == n:
            break
    if len(pool) < n:  # small category: cycle through what exists, other seeds keep items distinct
        pool = [pool[i % len(pool)] for i in range(n)] if pool else []
    return pool


def _split(name: str, per_category: int = PER_CATEGORY) -> list[SuiteItem]:
    exclude = {it.prompt for it in dev_split()} if name == "test" else set()
    items = []
    for ci, cat in enumerate(CATEGORIES):
        rng = np.random.default_rng([7, ci, 0 if name == "dev" else 1])
        n_distinct = len(set(_distinct(cat, np.random.default_rng([7, ci, 2]), 4 * per_category, set())))
        ex = exclude if n_distinct >= 2 * per_category else set()
        for k, p in enumerate(_distinct(cat, rng, per_category, ex)):
            items.append(SuiteItem(cat, p, _SEED_BASE[name] + 1000 * ci + 10 * k))
    return items


def dev_split() -> list[SuiteItem]:
    """144 items (24 per category) for tuning and the README table."""
    return _split("dev")


def test_split() -> list[SuiteItem]:
    """144 held-out items, disjoint from ``dev_split``."""
    return _split("test")
