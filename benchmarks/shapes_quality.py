"""What each part of GEMS adds in the shapes world: the paper's ablation at one image budget.

    .venv/bin/python benchmarks/shapes_quality.py [--suite shapes-hard] [--per-category 15] [--budget 5] [--out DIR]

Four evals through the harness, every final image scored by the grader (the pixel
checker; GM and AM by atoms on ``shapes-hard``, GenEval's rules on ``shapes``), the
loop judged by the learned critic:

1. **learn**: ``gems`` on the **dev** split, writing lessons into ``OUT/memory``;
2. **test**: every method on the held-out **test** split, ``gems`` recalling the
   lessons learnt on dev (warm memory; it keeps adding its own, as in real use):
   single, explicit (the same scenes in the explicit layout register: the world's
   property, measured), rewrite, search (best of N by the critic), loop (no skills,
   no memory), loop+skills, loop+edit, gems;
3. **cold**: ``gems`` on the test split again with an empty store, so warm and
   cold differ only in what was learnt on dev;
4. **oracle**: ``loop`` on the test split judged by ``shapes-oracle`` (the grader's
   own checker as the critic): what the learned critic's errors cost.

Prints each table and the wall time of each phase, and writes the figures (GM, AM,
images and chat calls per prompt, per category, the command, commit and machine) to
``benchmarks/results/shapes_quality_<suite>.json``. Resumable: rerun with the same
``--out`` to continue.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from record import write_result

from gems_graph.eval.harness import run_eval
from gems_graph.eval.methods import METHODS
from gems_graph.eval.tasks import EvalConfig

RESULTS = Path(__file__).parent / "results"


def phase(name: str, suite: str, **kw) -> tuple[dict, float]:
    start = time.perf_counter()
    result = run_eval(EvalConfig(suite=suite, **kw))
    took = time.perf_counter() - start
    print(f"\n## {name} ({took:.0f} s)\n")
    print(result["table"])
    return result, took


def rows(summary: dict, rename: dict[str, str] | None = None) -> dict[str, dict]:
    """Per method: the headline figures and the score per category."""
    out = {}
    for method, s in summary["methods"].items():
        per_cat = {c: per[method]["score"] for c, per in summary["by_category"].items()}
        out[(rename or {}).get(method, method)] = {
            "gm": s["score"],
            "am": s["am"],
            "images": s["images"],
            "chat_calls": s["chat_calls"],
            "n": s["n"],
            "by_category": per_cat,
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", choices=("shapes", "shapes-hard"), default="shapes-hard")
    ap.add_argument("--per-category", type=int, default=None, help="prompts per category (default: the whole split)")
    ap.add_argument("--budget", type=int, default=5)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--out", default=None, help="work folder (default: a temporary one)")
    a = ap.parse_args()
    out = Path(a.out or tempfile.mkdtemp(prefix="shapes_quality_"))
    common = dict(budget=a.budget, per_category=a.per_category, concurrency=a.concurrency)
    warm = f"chroma:{out / 'memory'}"
    figures: dict[str, dict] = {}
    seconds: dict[str, float] = {}
    _, seconds["learn"] = phase("learn: gems on dev", a.suite, split="dev", out=str(out / "dev"), methods=("gems",), memory=warm, **common)
    test, seconds["test"] = phase(
        "test: every method (gems with lessons from dev)",
        a.suite,
        split="test",
        out=str(out / "test"),
        methods=METHODS,
        memory=warm,
        **common,
    )
    figures.update(rows(test["summary"], {"gems": "gems (warm)"}))
    cold, seconds["cold"] = phase(
        "cold: gems on test with an empty store",
        a.suite,
        split="test",
        out=str(out / "test-cold"),
        methods=("gems",),
        memory=f"chroma:{out / 'cold-memory'}",
        **common,
    )
    figures.update(rows(cold["summary"], {"gems": "gems (cold)"}))
    oracle, seconds["oracle"] = phase(
        "oracle: the loop judged by the grader's checker",
        a.suite,
        split="test",
        out=str(out / "test-oracle"),
        methods=("loop",),
        critic_model="shapes-oracle",
        **common,
    )
    figures.update(rows(oracle["summary"], {"loop": "loop (oracle judge)"}))
    result = {
        "suite": a.suite,
        "split": "test",
        "budget": a.budget,
        "per_category": a.per_category,
        "methods": figures,
        "seconds": {k: round(v) for k, v in seconds.items()},
    }
    path = write_result(result, RESULTS / f"shapes_quality_{a.suite}.json")
    print(f"\nresults under {out}; figures written to {path}")


if __name__ == "__main__":
    main()
