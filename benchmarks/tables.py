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


#: The cost targets of issue #27: each measure of the cheaper modes as a share of today's (at most).
COST_TARGETS = {"chat_calls": 0.30, "images_sent": 0.30, "tokens": 0.35}


def _tokens(f: dict) -> float | None:
    if f.get("input_tokens") is None or f.get("output_tokens") is None:
        return None
    return f["input_tokens"] + f["output_tokens"]


def _share(new: float | None, old: float | None) -> float | None:
    return None if new is None or not old else new / old


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _target_cell(share: float | None, target: float) -> str:
    if share is None:
        return "-"
    if share <= target:
        return f"{_pct(share)}: met"
    return f"{_pct(share)}: missed by {100 * (share - target):.0f} points"


def cost_table(result: dict) -> str:
    """Today's modes against the cheaper ones: dev choice, test figures side by side, each mode alone, the targets."""
    tol = result["gm_tolerance"]
    lines = [
        f"Dev split, gems, {result['dev_per_category']} prompts per atom bin (where a default is chosen):",
        "",
        f"| modes | GM | MLLM calls | tokens (in + out) | images sent | images generated | GM within {tol:g} point |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, f in result["dev"].items():
        lines.append(
            f"| {name} | {_f(f['gm'])} | {_f(f['chat_calls'])} | {_f(_tokens(f), 0)} | {_f(f['images_sent'])} "
            f"| {_f(f['images'], 2)} | {'yes' if f['within_tolerance'] else 'no'} |"
        )
    lines += [
        "",
        f"Test split, {result['per_category']} prompts per atom bin, budget {result['budget']}: per prompt, today's modes and the "
        "cheaper ones side by side (single makes no chat call):",
        "",
        "| method | modes | GM | MLLM calls | tokens (in + out) | images sent | images generated | generation s "
        "| stopped early | images not made |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    test = result["test"]
    for method, row in test.items():
        for name in ("today", "cheap"):
            f = row[name]
            early = ("-", "-") if method == "single" else (_pct(f["stopped_early"]), _f(f["images_saved"], 2))
            lines.append(
                f"| {method} | {name} | {_f(f['gm'])} | {_f(f['chat_calls'])} | {_f(_tokens(f), 0)} | {_f(f['images_sent'])} "
                f"| {_f(f['images'], 2)} | {_f(f['generation_seconds'], 2)} | {early[0]} | {early[1]} |"
            )
    lines += [
        "",
        "Targets (cheap as a share of today's, per prompt):",
        "",
        "| method | MLLM calls (<= 30%) | images sent (<= 30%) | tokens (<= 35%) | images generated (no more) | GM (within 1 point) "
        "| same images |",
        "|---|---|---|---|---|---|---|",
    ]
    for method, row in test.items():
        if method == "single":
            continue
        old, new = row["today"], row["cheap"]
        more = new["images"] - old["images"]
        gm = new["gm"] - old["gm"]
        lines.append(
            f"| {method} | {_target_cell(_share(new['chat_calls'], old['chat_calls']), COST_TARGETS['chat_calls'])} "
            f"| {_target_cell(_share(new['images_sent'], old['images_sent']), COST_TARGETS['images_sent'])} "
            f"| {_target_cell(_share(_tokens(new), _tokens(old)), COST_TARGETS['tokens'])} "
            f"| {'met' if more <= 0 else f'missed: {more:+.2f}'} ({_f(new['images'], 2)} vs {_f(old['images'], 2)}) "
            f"| {'met' if gm >= -1 else 'missed'} ({gm:+.1f}) | {'yes' if row['same_images'] else 'no'} |"
        )
    lines += ["", "Each mode alone (today's figures with only that mode's node changed), as a share of today's:", ""]
    lines += ["| method | mode | MLLM calls | tokens (in + out) | images sent |", "|---|---|---|---|---|"]
    for method, row in test.items():
        for mode, f in (row.get("alone") or {}).items():
            old = row["today"]
            lines.append(
                f"| {method} | {mode} | {_pct(_share(f['chat_calls'], old['chat_calls']))} "
                f"| {_pct(_share(_tokens(f), _tokens(old)))} | {_pct(_share(f['images_sent'], old['images_sent']))} |"
            )
    today = ", ".join(f"{k}={v!r}" for k, v in result["today"].items())
    cheap = ", ".join(f"{k}={v!r}" for k, v in result["cheap"].items())
    lines += ["", f"today: {today}; cheap: {cheap}. `{result['command']}` at {result['commit']} ({result['machine']})."]
    return "\n".join(lines) + "\n"


def render(name: str, view: str | None = None) -> str:
    result = json.loads((RESULTS / f"{name}.json").read_text())
    if name.startswith("shapes_quality"):
        return quality_table(result, headline=view == "headline")
    if name.startswith("critic_accuracy") and view is None:
        return critic_table(result)
    if name == "serve_generator" and view is None:
        return serve_table(result)
    if name == "cost_modes" and view is None:
        return cost_table(result)
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
