"""How good the shipped shapes model is, and how much the GEMS loop adds (issue: shapes world).

    .venv/bin/python benchmarks/shapes_quality.py [--per-category 20] [--concurrency 2] [--out DIR]

Runs the eval harness on the shapes **dev** split with three methods at a budget of
5 images: ``single`` (one sample), ``search`` (best of 5 samples, picked by the
critic, which in this world is the pixel checker), ``loop`` (the GEMS loop, 5 rounds,
no memory or skills). Every final image is scored by the checker with GenEval's
rules (``gems_graph.shapes.questions.prompt_correct``) and the per-category table is
printed. Resumable: rerun with the same ``--out`` to continue.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gems_graph.eval.harness import EvalConfig, run_eval  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-category", type=int, default=20, help="prompts per category (6 categories)")
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--out", default=None, help="eval folder (default: a temporary one)")
    a = ap.parse_args()
    out = a.out or tempfile.mkdtemp(prefix="shapes_quality_")
    cfg = EvalConfig(suite="shapes", split="dev", out=out, methods=("single", "search", "loop"), budget=5,
                     per_category=a.per_category, concurrency=a.concurrency)
    result = run_eval(cfg)
    print(result["table"])
    print(f"results: {result['paths']['results']}")


if __name__ == "__main__":
    main()
