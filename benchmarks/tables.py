"""Render the result tables of README.md and the docs from the files under ``benchmarks/results/``.

    .venv/bin/python benchmarks/tables.py            # rewrite the tables in README.md and docs/
    .venv/bin/python benchmarks/tables.py --check    # exit 1 if a table differs from its file

Each table sits in a page (README.md or ``docs/**/*.md``) between
``<!-- table: NAME -->`` and ``<!-- /table -->``, NAME being a result file's stem
(``shapes_quality_shapes-hard``, ``critic_accuracy_shapes``, ...); ``<!-- table: NAME
headline -->`` renders a shorter view of the same file (the README's). No figure is
copied by hand: a benchmark writes its file, this script writes the table, and
``tests/test_result_tables.py`` fails when the two disagree.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
DOCS = ROOT / "docs"
BLOCK = re.compile(r"(<!-- table: ([\w.-]+)(?: (headline))? -->\n)(.*?)(<!-- /table -->)", re.S)


def pages() -> list[Path]:
    """The pages that may hold result tables: README.md and every docs page."""
    return [README, *sorted(DOCS.rglob("*.md"))]


def _f(x, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def quality_table(result: dict, *, headline: bool = False) -> str:
    """The ablation: GM, AM, images and chat calls per prompt, then GM per category (not in the headline)."""
    methods = result["methods"]
    lines = ["| method | GM | AM | images/prompt | chat calls/prompt |", "|---|---|---|---|---|"]
    for name, m in methods.items():
        lines.append(f"| {name} | {_f(m['gm'])} | {_f(m['am'])} | {_f(m['images'], 2)} | {_f(m['chat_calls'])} |")
    if not headline:
        cats = list(next(iter(methods.values()))["by_category"])
        lines += ["", "| GM by category | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
        for c in cats:
            lines.append(f"| {c} | " + " | ".join(_f(m["by_category"].get(c)) for m in methods.values()) + " |")
    lines += [
        "",
        f"`{result['command']}` at {result['commit']} ({result['machine']}); phases took "
        + ", ".join(f"{k} {v} s" for k, v in result["seconds"].items())
        + ".",
    ]
    return "\n".join(lines) + "\n"


def critic_table(result: dict) -> str:
    """The critic against the grader: accuracy per kind, false pass / fail, calibration."""
    lines = [
        "| measure | value |",
        "|---|---|",
        f"| answer accuracy, all {result['questions']} questions | {100 * result['accuracy']:.1f}% |",
    ]
    for kind, v in result["accuracy_by_kind"].items():
        lines.append(f"| accuracy, {kind} ({v['questions']}) | {100 * v['accuracy']:.1f}% |")
    lines += [
        f"| false-pass rate (critic passes all, grader does not) | {100 * result['false_pass_rate']:.1f}% |",
        f"| false-fail rate (grader passes, critic fails one) | {100 * result['false_fail_rate']:.1f}% |",
        f"| expected calibration error of P(yes) | {result['ece']:.3f} |",
        "",
        f"`{result['command']}` at {result['commit']} ({result['machine']}), {result['images']} images, {result['seconds']} s.",
    ]
    return "\n".join(lines) + "\n"


def serve_table(result: dict) -> str:
    """Concurrent clients against one ``gems serve-generator``: failures, throughput, latency, batching."""
    lines = ["| clients | failed | images/s | of batched ideal | p50 | p99 | mean batch |", "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(
            f"| {r['clients']} | {r['failures']} | {r['images_per_second']:.1f} | {100 * r['share_of_batched_ideal']:.0f}% "
            f"| {r['p50_s']:.2f} s | {r['p99_s']:.2f} s | {r['mean_batch']:.1f} |"
        )
    ideal = result["ideal_images_per_second"]
    lines += [
        "",
        f"(the ideal: {ideal['batched']:.1f} images/s in full batches of {result['server']['max_batch']}, {ideal['alone']:.1f} alone; "
        f"`{result['command']}` at {result['commit']}, {result['machine']}.)",
    ]
    return "\n".join(lines) + "\n"


def learned_skills_table(result: dict) -> str:
    """Skills learnt on dev, measured on test: each method's score and images, the targets, and the skills kept or rejected."""
    lines = ["| method | score | images/prompt | chat calls/prompt | prompts |", "|---|---|---|---|---|"]
    for name, m in result["methods"].items():
        lines.append(f"| {name} | {_f(m['score'])} | {_f(m['images'], 2)} | {_f(m['chat_calls'])} | {m['n']} |")
    t = result["targets"]
    share = "-" if t["recovered_share"] is None else f"{100 * t['recovered_share']:.0f}%"
    lines += [
        "",
        f"- learned skills alone recover {share} of what the built-in skills add over loop "
        f"({t['learned_only_gain_points']:+.1f} of {t['builtin_gain_points']:+.1f} points; target 50%: "
        + ("met" if t["recover_half_met"] else "missed")
        + ");",
        f"- gems + learned skills against gems: {t['gems_learned_minus_gems_points']:+.1f} points, "
        f"{100 * t['gems_learned_image_saving']:.0f}% fewer images (target +2 points or 15%: "
        + ("met" if t["beat_gems_met"] else "missed")
        + ").",
        "",
        "| skill | kept | why (dev trial) |",
        "|---|---|---|",
    ]
    for sk in result["skills"]:
        lines.append(f"| {sk['name']} | {'yes' if sk['kept'] else 'no'} | {sk['why']} |")
    lines += [
        "",
        f"`{result['command']}` at {result['commit']} ({result['machine']}); {result['lessons']} lessons; phases took "
        + ", ".join(f"{k} {v} s" for k, v in result["seconds"].items())
        + ".",
    ]
    return "\n".join(lines) + "\n"


def render(name: str, view: str | None = None) -> str:
    result = json.loads((RESULTS / f"{name}.json").read_text())
    if name.startswith("shapes_quality"):
        return quality_table(result, headline=view == "headline")
    if name.startswith("critic_accuracy") and view is None:
        return critic_table(result)
    if name == "serve_generator" and view is None:
        return serve_table(result)
    if name == "learned_skills" and view is None:
        return learned_skills_table(result)
    raise ValueError(f"no table renderer for result {name!r}" + (f" (view {view!r})" if view else ""))


def table_names(text: str) -> list[str]:
    """The result files a page renders tables from."""
    return [m.group(2) for m in BLOCK.finditer(text)]


def rendered_page(text: str) -> str:
    """``text`` with every table between its markers rendered again from its result file."""
    return BLOCK.sub(lambda m: m.group(1) + render(m.group(2), m.group(3)) + m.group(5), text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 when a table is stale")
    a = ap.parse_args()
    stale = []
    for page in pages():
        text = page.read_text()
        new = rendered_page(text)
        if new == text:
            continue
        stale.append(page.relative_to(ROOT))
        if not a.check:
            page.write_text(new)
            print(f"rendered {len(table_names(text))} tables into {page.relative_to(ROOT)}")
    if a.check and stale:
        print(f"tables in {', '.join(map(str, stale))} differ from benchmarks/results/: run benchmarks/tables.py", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
