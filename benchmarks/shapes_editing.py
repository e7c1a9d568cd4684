"""Does inpainting fix the wrong object of a shapes image and keep the others?

    .venv/bin/python benchmarks/shapes_editing.py [--per-category 24] [--seeds 4] [--split dev] [--out FILE]

For every prompt of the split and ``--seeds`` seeds, the shipped shapes model makes
an image from the prompt; where one edit can fix every failed check and keep what
passed (``gems_graph.shapes.editing.plan_edit``), the wrong object's box (or a free
cell for a missing one) is inpainted with the edit prompt. The detector judges:

* **fixed**: every check passes after the edit;
* **kept**: every check that passed before still passes;
* **regenerate**: the same edit prompt generated from scratch with the same seed,
  the alternative the refiner has (fixed = every check passes).

Prints counts per category and in total, and the seconds an edit and a generation take,
and writes them to ``--out`` (``benchmarks/results/shapes_editing.json``).
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

from record import write_result

from gems_graph.models.generator import EditRequest, GenerationRequest, region_mask
from gems_graph.shapes.detect import detect
from gems_graph.shapes.editing import plan_edit
from gems_graph.shapes.generator import ShapesGenerator
from gems_graph.shapes.grammar import parse_prompt
from gems_graph.shapes.questions import answer_detections, checks_for_scene
from gems_graph.shapes.render import CATEGORIES
from gems_graph.shapes.suite import dev_split, test_split

OUT = Path(__file__).parent / "results" / "shapes_editing.json"
COLUMNS = ("images", "correct", "editable", "fixed", "kept", "regenerate")


def passed_checks(scene, image) -> set[str]:
    dets = detect(image)
    return {q for q in checks_for_scene(scene) if answer_detections(q, dets)[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-category", type=int, default=24)
    ap.add_argument("--seeds", type=int, default=4, help="images per prompt")
    ap.add_argument("--split", choices=("dev", "test"), default="dev")
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args()
    started = time.perf_counter()
    items = dev_split() if a.split == "dev" else test_split()
    per_cat: dict[str, list] = defaultdict(list)
    for it in items:
        if len(per_cat[it.category]) < a.per_category:
            per_cat[it.category].append(it)
    gen = ShapesGenerator()
    rows: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    t_gen = t_edit = 0.0
    n_gen = n_edit = 0
    for cat in CATEGORIES:
        for it in per_cat[cat]:
            scene = parse_prompt(it.prompt)
            checks = set(checks_for_scene(scene))
            for k in range(a.seeds):
                seed = it.seed + k
                start = time.perf_counter()
                image = gen.generate(GenerationRequest(prompt=it.prompt, seed=seed))
                t_gen, n_gen = t_gen + time.perf_counter() - start, n_gen + 1
                row = rows[cat]
                row["images"] += 1
                before = passed_checks(scene, image)
                if before == checks:
                    row["correct"] += 1
                    continue
                plan = plan_edit(scene, detect(image))
                if plan is None:
                    continue
                row["editable"] += 1
                mask = region_mask(image.width, image.height, plan.region())
                start = time.perf_counter()
                edited = gen.edit(EditRequest(image=image, prompt=plan.prompt, seed=seed + 500, mask=mask))
                t_edit, n_edit = t_edit + time.perf_counter() - start, n_edit + 1
                after = passed_checks(scene, edited)
                row["fixed"] += after == checks
                row["kept"] += before <= after
                regenerated = gen.generate(GenerationRequest(prompt=plan.prompt, seed=seed + 500))
                row["regenerate"] += passed_checks(scene, regenerated) == checks
    cols = COLUMNS
    print("| category | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    total: dict[str, int] = defaultdict(int)
    for cat in CATEGORIES:
        print(f"| {cat} | " + " | ".join(str(rows[cat][c]) for c in cols) + " |")
        for c in cols:
            total[c] += rows[cat][c]
    print("| all | " + " | ".join(str(total[c]) for c in cols) + " |")
    e = max(total["editable"], 1)
    print(
        f"\nedits: {total['fixed']}/{total['editable']} fixed ({100 * total['fixed'] / e:.0f}%), "
        f"{total['kept']}/{total['editable']} kept every passing check ({100 * total['kept'] / e:.0f}%); "
        f"regenerating the edit prompt instead: {total['regenerate']}/{total['editable']} ({100 * total['regenerate'] / e:.0f}%)"
    )
    print(f"seconds per generation {t_gen / max(n_gen, 1):.3f}, per edit {t_edit / max(n_edit, 1):.3f}")
    result = {
        "split": a.split,
        "per_category": a.per_category,
        "seeds": a.seeds,
        "categories": {cat: {c: rows[cat][c] for c in cols} for cat in CATEGORIES},
        "all": {c: total[c] for c in cols},
        "seconds_per_generation": round(t_gen / max(n_gen, 1), 3),
        "seconds_per_edit": round(t_edit / max(n_edit, 1), 3),
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_result(result, a.out)
    print(f"written to {a.out}")


if __name__ == "__main__":
    main()
