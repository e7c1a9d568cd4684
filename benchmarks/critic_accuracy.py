"""How often the shapes world's learned critic (its VLM) is right, measured against the grader.

    .venv/bin/python benchmarks/critic_accuracy.py [--suite shapes|shapes-hard] [--split test] [--per-category 24] [--out FILE]

For every prompt of the split (the easy GenEval-style suite, or the GenEval2-style one) the shipped generator draws two images, one from the
terse prompt and one from the same scene laid out explicitly (the loop's two kinds
of prompt), with the split's seed. Each check of the prompt is asked to the critic
(``gems_graph.shapes.critic_model``) and to the pixel checker (the grader). Prints:

* answer accuracy per kind of question: presence (an object of no named colour or
  size), attribute (an object of a named colour or size), count, relation;
* the false-pass rate: of the images the grader fails, the share where the critic
  passes every check (the loop would stop on a wrong image);
* the false-fail rate: of the images the grader passes, the share where the critic
  fails a check (the loop would spend another image);
* the expected calibration error of P(yes) (10 equal-width bins);
* the request head's mean P(yes) for "does the image show the request?" on the
  images the grader passes and on those it fails (how well it tells them apart).

Writes the figures as JSON to ``--out`` (``benchmarks/results/critic_accuracy_<suite>.json``).
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from record import write_result

from gems_graph.models.generator import GenerationRequest
from gems_graph.shapes.critic_model import shipped_judge
from gems_graph.shapes.detect import detect
from gems_graph.shapes.generator import ShapesGenerator
from gems_graph.shapes.grammar import COLORS, SIZES, parse_prompt
from gems_graph.shapes.layout import explicit_prompt
from gems_graph.shapes.questions import answer_detections, checks_for_scene
from gems_graph.shapes.suite import dev_split, hard_dev_split, hard_test_split, test_split

RESULTS = Path(__file__).parent / "results"


def question_kind(question: str) -> str:
    """presence, attribute (a colour or size named), count or relation (the issue's kinds of question)."""
    q = question.lower()
    if "there exactly" in q:
        return "count"
    if q.startswith(("is the ", "are the ")):
        return "relation"
    return "attribute" if set(q.rstrip("?").split()) & {*COLORS, *SIZES} else "presence"


def expected_calibration_error(probs: list[float], labels: list[bool], bins: int = 10) -> float:
    p, y = np.asarray(probs), np.asarray(labels, dtype=float)
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (p >= lo) & ((p < hi) | (hi == 1.0))
        if inside.any():
            ece += inside.mean() * abs(p[inside].mean() - y[inside].mean())
    return float(ece)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", choices=("shapes", "shapes-hard"), default="shapes")
    ap.add_argument("--split", choices=("dev", "test"), default="test")
    ap.add_argument("--per-category", type=int, default=24)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    start = time.perf_counter()
    if a.suite == "shapes-hard":
        items = hard_dev_split() if a.split == "dev" else hard_test_split()
    else:
        items = dev_split() if a.split == "dev" else test_split()
    a.out = a.out or RESULTS / f"critic_accuracy_{a.suite}.json"
    taken: dict[str, int] = defaultdict(int)
    gen, judge = ShapesGenerator(), shipped_judge()
    right: dict[str, list[bool]] = defaultdict(list)
    probs, truths = [], []
    false_pass = grader_fails = false_fail = grader_passes = 0
    request_p: dict[bool, list[float]] = {True: [], False: []}
    for it in items:
        if taken[it.category] >= a.per_category:
            continue
        taken[it.category] += 1
        scene = parse_prompt(it.prompt)
        checks = checks_for_scene(scene)
        for prompt in (it.prompt, explicit_prompt(it.prompt, it.seed)):
            image = gen.generate(GenerationRequest(prompt=prompt, seed=it.seed))
            dets = detect(image)
            truth = [answer_detections(q, dets)[0] for q in checks]
            p_yes = judge.p_yes(image, checks, [False] * len(checks))
            for q, t, p in zip(checks, truth, p_yes):
                right[question_kind(q)].append((p >= 0.5) == t)
                probs.append(p)
                truths.append(t)
            critic_passes = all(p >= 0.5 for p in p_yes)
            if all(truth):
                grader_passes += 1
                false_fail += not critic_passes
            else:
                grader_fails += 1
                false_pass += critic_passes
            request_p[all(truth)].append(judge.p_yes(image, [it.prompt], [True])[0])
    every = [x for v in right.values() for x in v]
    result = {
        "suite": a.suite,
        "split": a.split,
        "images": grader_passes + grader_fails,
        "questions": len(every),
        "accuracy": round(float(np.mean(every)), 4),
        "accuracy_by_kind": {k: {"accuracy": round(float(np.mean(v)), 4), "questions": len(v)} for k, v in sorted(right.items())},
        "false_pass_rate": round(false_pass / max(grader_fails, 1), 4),
        "false_fail_rate": round(false_fail / max(grader_passes, 1), 4),
        "grader_pass_share": round(grader_passes / max(grader_passes + grader_fails, 1), 4),
        "ece": round(expected_calibration_error(probs, truths), 4),
        "request_head_mean_p_yes": {
            "grader_passes": round(float(np.mean(request_p[True])), 4) if request_p[True] else None,
            "grader_fails": round(float(np.mean(request_p[False])), 4) if request_p[False] else None,
        },
        "seconds": round(time.perf_counter() - start, 1),
    }
    write_result(result, a.out)
    print(f"critic on the {a.suite} {a.split} split: {result['images']} images, {result['questions']} questions")
    print(f"  accuracy {result['accuracy']:.1%}")
    for k, v in result["accuracy_by_kind"].items():
        print(f"    {k:9s} {v['accuracy']:.1%} ({v['questions']} questions)")
    print(f"  false-pass rate {result['false_pass_rate']:.1%} (of {grader_fails} images the grader fails)")
    print(f"  false-fail rate {result['false_fail_rate']:.1%} (of {grader_passes} images the grader passes)")
    head = result["request_head_mean_p_yes"]
    print(f"  ECE of P(yes) {result['ece']:.3f}")
    print(f"  request head: mean P(yes) {head['grader_passes']} on images the grader passes, {head['grader_fails']} on those it fails")
    print(f"  {result['seconds']} s; written to {a.out}")


if __name__ == "__main__":
    main()
