"""Render the README's result tables from the files under ``benchmarks/results/``.

    .venv/bin/python benchmarks/tables.py            # rewrite the tables in README.md
    .venv/bin/python benchmarks/tables.py --check    # exit 1 if a table differs from its file

Each table sits in README.md between ``<!-- table: NAME -->`` and ``<!-- /table -->``,
NAME being a result file's stem (``shapes_quality_shapes-hard``,
``critic_accuracy_shapes``, ...). No figure is copied by hand: a benchmark writes its
file, this script writes the table, and ``tests/test_result_tables.py`` fails when
the two disagree.
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
BLOCK = re.compile(r"(<!-- table: ([\w.-]+) -->\n)(.*?)(<!-- /table -->)", re.S)


def _f(x, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def quality_table(result: dict) -> str:
    """The ablation: GM, AM, images and chat calls per prompt, then GM per category."""
    methods = result["methods"]
    lines = ["| method | GM | AM | images/prompt | chat calls/prompt |", "|---|---|---|---|---|"]
    for name, m in methods.items():
        lines.append(f"| {name} | {_f(m['gm'])} | {_f(m['am'])} | {_f(m['images'], 2)} | {_f(m['chat_calls'])} |")
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


def render(name: str) -> str:
    result = json.loads((RESULTS / f"{name}.json").read_text())
    if name.startswith("shapes_quality"):
        return quality_table(result)
    if name.startswith("critic_accuracy"):
        return critic_table(result)
    raise ValueError(f"no table renderer for result {name!r}")


def rendered_readme(text: str) -> str:
    return BLOCK.sub(lambda m: m.group(1) + render(m.group(2)) + m.group(4), text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 when a table is stale")
    a = ap.parse_args()
    text = README.read_text()
    new = rendered_readme(text)
    if a.check:
        if new != text:
            print("README.md tables differ from benchmarks/results/: run benchmarks/tables.py", file=sys.stderr)
            sys.exit(1)
        return
    README.write_text(new)
    print(f"rendered {len(BLOCK.findall(text))} tables into {README}")


if __name__ == "__main__":
    main()
