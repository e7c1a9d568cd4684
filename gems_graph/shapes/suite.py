"""Fixed prompt splits for measuring the shapes world.

The easy suite (``dev_split``, ``test_split``): GenEval's six categories. Both splits
are a pure function of a seed. They are disjoint as (prompt, seed) pairs; prompts
themselves are disjoint wherever the category has enough distinct prompts (single
objects have only 3, colours 12, so those repeat with other seeds).

The hard suite (``hard_dev_split``, ``hard_test_split``): GenEval2's structure within
the shipped generator's vocabulary (``render.sample_hard_scene``: up to three groups,
counts up to five, colours, sizes, up to two chained relations), balanced over atom
counts as GenEval2 is (its categories are the atom bins "atoms 3-4" ... "atoms 9-10",
``HARD_PER_BIN`` prompts each), and disjoint between dev and test as scenes, not only
as prompts ("a circle left of a square" and "a square right of a circle" are one
scene). Scenes of more than 10 atoms, which GenEval2 does not have, are left out. Item seeds start at
2,000,000 (dev) and 3,000,000 (test), apart from the easy splits' (0, 1,000,000) and
the critic's training data (50,000,000 on).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gems_graph.shapes.atoms import atom_count
from gems_graph.shapes.grammar import INVERSE_RELATION, Scene, describe
from gems_graph.shapes.render import CATEGORIES, sample_hard_scene, sample_scene

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


HARD_PER_BIN = 60
#: GenEval2's atom-count bins (inclusive), as the hard suite's categories.
ATOM_BINS = ((3, 4), (5, 6), (7, 8), (9, 10))
HARD_SEEDS = {"dev": 2_000_000, "test": 3_000_000}


def atom_bin(n_atoms: int) -> str:
    """The category of a prompt with ``n_atoms`` atoms ("atoms 3-4", ...)."""
    for lo, hi in ATOM_BINS:
        if lo <= n_atoms <= hi:
            return f"atoms {lo}-{hi}"
    raise ValueError(f"{n_atoms} atoms is outside GenEval2's 3-10")


def scene_key(scene: Scene) -> tuple:
    """What makes two scenes the same, whatever the wording: the groups as a set, and the
    relation read one way ("B right of A" is "A left of B")."""
    objects, relation = list(scene.objects), scene.relation
    if scene.second_relation:  # a chain: the same three objects and relations, read one way
        rels = [(objects[i], rel, objects[j]) for i, rel, j in scene.relations]
        facts = sorted(
            (repr(b), INVERSE_RELATION[rel], repr(a)) if rel in ("right of", "below") else (repr(a), rel, repr(b)) for a, rel, b in rels
        )
        return ("chain", tuple(facts), tuple(sorted(repr(o) for o in objects[3:])))
    if relation in ("right of", "below"):
        objects[0], objects[1], relation = objects[1], objects[0], INVERSE_RELATION[relation]
    pair = tuple(objects[:2]) if relation else ()
    rest = objects[2:] if relation else objects
    return (relation, pair, tuple(sorted(rest, key=lambda o: (o.shape, o.color or "", o.count, o.size or ""))))


def hard_split(seed: int, per_bin: int = HARD_PER_BIN, exclude: frozenset = frozenset()) -> list[SuiteItem]:
    """``per_bin`` prompts in each atom bin, a pure function of ``seed`` (and of the scene
    keys in ``exclude``, which it never repeats); item seeds are ``seed + 1000*bin + 10*k``."""
    items = []
    seen = set(exclude)
    for bi, (lo, hi) in enumerate(ATOM_BINS):
        rng = np.random.default_rng([11, seed, bi])
        k = 0
        for _ in range(1_000_000):
            if k == per_bin:
                break
            scene = sample_hard_scene(rng)
            key = scene_key(scene)
            if not lo <= atom_count(scene) <= hi or key in seen:
                continue
            seen.add(key)
            items.append(SuiteItem(f"atoms {lo}-{hi}", describe(scene), seed + 1000 * bi + 10 * k))
            k += 1
        else:
            raise RuntimeError(f"could not draw {per_bin} distinct scenes with {lo}-{hi} atoms")
    return items


def hard_dev_split(per_bin: int = HARD_PER_BIN) -> list[SuiteItem]:
    """240 GenEval2-style items (60 per atom bin) for tuning and the README table."""
    return hard_split(HARD_SEEDS["dev"], per_bin)


def hard_test_split(per_bin: int = HARD_PER_BIN) -> list[SuiteItem]:
    """240 held-out GenEval2-style items, no scene of which is in ``hard_dev_split``."""
    from gems_graph.shapes.grammar import parse_prompt

    dev = frozenset(scene_key(parse_prompt(it.prompt)) for it in hard_dev_split(per_bin))
    return hard_split(HARD_SEEDS["test"], per_bin, dev)
