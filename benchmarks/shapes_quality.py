"""What each part of GEMS adds in the shapes world: the paper's ablation at one image budget.

    .venv/bin/python benchmarks/shapes_quality.py [--per-category 24] [--budget 5] [--out DIR]

Three evals through the harness, every final image scored by the pixel checker with
GenEval's rules (``gems_graph.shapes.questions.prompt_correct``):

1. **learn**: ``gems`` on the **dev** split, writing lessons into ``OUT/memory``;
2. **test**: every method on the held-out **test** split, ``gems`` recalling the
   lessons learnt on dev (warm memory; it keeps adding its own, as in real use):
   single, explicit (the same scenes in the explicit layout register: the world's
   property, measured), rewrite, search (best of N by the critic), loop (no skills,
   no memory), loop+skills, gems;
3. **cold**: ``gems`` on the test split again with an empty store, so warm and
   cold differ only in what was learnt on dev.

Prints each table (score, images per prompt, per category) and the wall time of
each phase. Resumable: rerun with the same ``--out`` to continue.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from gems_graph.eval.harness import run_eval
from gems_graph.eval.methods import METHODS
from gems_graph.eval.tasks import EvalConfig


def phase(name: str, **kw) -> dict:
    start = time.perf_counter()
    result = run_eval(EvalConfig(suite="shapes", **kw))
    print(f"\n## {name} ({time.perf_counter() - start:.0f} s)\n")
    print(result["table"])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-category", type=int, default=24, help="prompts per category (6 categories; 24 = all)")
    ap.add_argument("--budget", type=int, default=5)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--out", default=None, help="work folder (default: a temporary one)")
    a = ap.parse_args()
    out = Path(a.out or tempfile.mkdtemp(prefix="shapes_quality_"))
    common = dict(budget=a.budget, per_category=a.per_category, concurrency=a.concurrency)
    warm = f"chroma:{out / 'memory'}"
    phase("learn: gems on dev", split="dev", out=str(out / "dev"), methods=("gems",), memory=warm, **common)
    phase("test: every method (gems with lessons from dev)", split="test", out=str(out / "test"), methods=METHODS, memory=warm, **common)
    phase(
        "cold: gems on test with an empty store",
        split="test",
        out=str(out / "test-cold"),
        methods=("gems",),
        memory=f"chroma:{out / 'cold-memory'}",
        **common,
    )
    print(f"\nresults under {out}")


if __name__ == "__main__":
    main()
