"""What a prompt costs with today's modes and with the cheaper ones, at equal image budgets.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/cost_modes.py [--dev-per-category 5] [--per-category 5] [--budget 5] [--out DIR]

Two phases through the eval harness on ``shapes-hard``, every final image scored by
the grader (GM), the runs judged by the learned critic:

1. **dev**: ``gems`` on the dev split with today's modes (``TODAY``), with the
   cheaper ones showing the refiner one past image, with no past image
   (``CHEAP``: skills picked by their triggers, checks written by the planner, every
   check of a round's images asked in one call, the refiner's two answers in one),
   and with the refiner's answers drafted by the critic in its verification call
   (``refiner_calls="with_critic"``).
   A mode is a candidate default only if its GM on dev is within
   ``GM_TOLERANCE`` points of today's; the figures say which passed, and the
   candidate with the fewest MLLM calls (then tokens) is the one the test phase runs
   (``chosen_cheap``; the best GM of the cheaper ones when none passed).
2. **test**: single, search, loop and gems on the held-out test split with
   ``TODAY`` and with the chosen cheaper modes, side by side (single makes no chat
   call, so it is run once and is the same in both).

Per method and mode: GM, MLLM calls, input and output tokens, images sent to the
MLLM and images generated per prompt, the generator's seconds per prompt where it
reports them, and the early stop (prompts that stopped before the budget, images
not made). What each mode alone saves is read from the runs' own per-node usage
(``run.json``): the planner's modes change the planner's calls, verification and the
decomposition the critic's, the refiner's modes the refiner's, so swapping one
node's figures is exact when both runs made the same images, which the benchmark
checks (``same_images``) rather than assumes.

Writes ``benchmarks/results/cost_modes.json`` (rendered into docs/benchmarks.md by
``benchmarks/tables.py``). Resumable: rerun with the same ``--out`` to continue.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from statistics import mean

from record import write_result

from gems_graph.context import GemsContext
from gems_graph.eval.harness import run_eval
from gems_graph.eval.tasks import EvalConfig

RESULTS = Path(__file__).parent / "results"
#: The cheaper modes: skills picked by their triggers, checks written by the planner, every
#: check of a round's images in one call, the refiner's two answers in one, no past image.
CHEAP = {
    "skill_routing": "triggers",
    "decomposition": "planner",
    "verification": "per_round",
    "refiner_calls": "combined",
    "refiner_images": 0,
}
#: Today's modes: the library's defaults of the same settings (the paper's way of planning, asking and refining).
TODAY = {name: getattr(GemsContext(), name) for name in CHEAP}
#: Dev runs: name -> (folder under --out, modes); the test phase runs a chosen one in "test-<folder without dev->".
DEV_MODES = {
    "today": ("dev-today", TODAY),
    "cheap, one past image": ("dev-cheap", {**CHEAP, "refiner_images": 1}),
    "cheap (no past image)": ("dev-cheap-no-past-image", CHEAP),
    "cheap, drafted by the critic": ("dev-cheap-drafted", {**CHEAP, "refiner_calls": "with_critic", "refiner_images": 1}),
}
TEST_METHODS = ("search", "loop", "gems")
#: A mode that costs more GM than this on dev is not a default.
GM_TOLERANCE = 1.0
COSTS = ("chat_calls", "input_tokens", "output_tokens", "images_sent", "images")
#: Which node the modes change, to read what they alone save (the decomposition moves from the critic's node to the planner's).
MODE_NODES = {
    "skill_routing + decomposition (planner)": ("planner",),
    "verification + decomposition (critic)": ("critic",),
    "refiner_calls + refiner_images": ("refiner",),
}
#: With ``refiner_calls="with_critic"`` the refiner's (and remember's) calls move into the critic's node, so those modes are read together.
DRAFTED_MODE_NODES = {
    "skill_routing + decomposition (planner)": ("planner",),
    "verification + decomposition + refiner_calls (critic, refiner, remember)": ("critic", "refiner", "remember"),
}


def mode_nodes(cheap: dict) -> dict[str, tuple[str, ...]]:
    """``MODE_NODES``, or ``DRAFTED_MODE_NODES`` for cheaper modes in which the critic drafts the refiner's answers."""
    return DRAFTED_MODE_NODES if cheap.get("refiner_calls") == "with_critic" else MODE_NODES


def evaluate(
    out: Path, split: str, methods: tuple[str, ...], context: dict, a: argparse.Namespace, per_category: int
) -> tuple[dict, list[dict]]:
    start = time.perf_counter()
    result = run_eval(
        EvalConfig(
            suite="shapes-hard",
            split=split,
            out=str(out),
            methods=methods,
            budget=a.budget,
            per_category=per_category,
            context=context,
            progress=False,
        )
    )
    print(f"\n## {out.name} ({time.perf_counter() - start:.0f} s)\n\n{result['table']}", flush=True)
    records = json.loads((out / "results.json").read_text())["records"]
    return result["summary"], records


def run_usage(out: Path, record: dict) -> dict:
    """The run's per-node usage from its ``run.json`` (the final image lies in the run's folder)."""
    run_dir = (out / record["final_image"]).parent
    while run_dir != out and not (run_dir / "run.json").exists():
        run_dir = run_dir.parent
    return json.loads((run_dir / "run.json").read_text()).get("usage") or {}


def figures(summary: dict, records: list[dict], method: str, budget: int) -> dict:
    s = summary["methods"][method]
    rs = [r for r in records if r["method"] == method]
    timed = [r["generation_seconds"] for r in rs if r.get("generation_seconds") is not None]
    return {
        "gm": s["score"],
        "n": s["n"],
        **{k: s.get(k) for k in COSTS},
        "generation_seconds": round(mean(timed), 3) if timed and len(timed) == len(rs) else None,
        "stopped_early": sum(1 for r in rs if r["images"] < budget) / max(1, len(rs)),
        "images_saved": budget - mean(r["images"] for r in rs) if rs else None,
    }


def node_costs(out: Path, records: list[dict], method: str, nodes: tuple[str, ...]) -> dict[str, float]:
    """Mean per prompt of the named nodes' calls, tokens and images sent."""
    keys = {"chat_calls": "calls", "input_tokens": "input_tokens", "output_tokens": "output_tokens", "images_sent": "images_sent"}
    rows = []
    for r in (r for r in records if r["method"] == method):
        used = run_usage(out, r).get("nodes") or {}
        rows.append({k: sum((used.get(n) or {}).get(v) or 0 for n in nodes) for k, v in keys.items()})
    return {k: mean(row[k] for row in rows) for k in keys} if rows else {}


def alone(today: dict, records: tuple[list[dict], list[dict]], outs: tuple[Path, Path], method: str, cheap: dict) -> dict[str, dict]:
    """Each mode alone: today's totals with that mode's nodes' figures taken from the cheap run."""
    out = {}
    for mode, nodes in mode_nodes(cheap).items():
        before = node_costs(outs[0], records[0], method, nodes)
        after = node_costs(outs[1], records[1], method, nodes)
        out[mode] = {k: round(today[k] - before[k] + after[k], 2) for k in before}
    return out


def chosen_cheap(dev: dict[str, dict]) -> str:
    """The cheaper modes the test phase runs: of the dev runs within ``GM_TOLERANCE`` of
    today's, the one with the fewest MLLM calls, then tokens; the best GM if none is."""
    cheaper = {name: f for name, f in dev.items() if name != "today"}
    passed = [name for name, f in cheaper.items() if f["within_tolerance"]]
    if not passed:
        return max(cheaper, key=lambda name: cheaper[name]["gm"])
    return min(passed, key=lambda name: (cheaper[name]["chat_calls"], cheaper[name]["input_tokens"] + cheaper[name]["output_tokens"]))


def same_images(a: list[dict], b: list[dict], method: str) -> bool:
    key = {(r["item"], r["sample"]): r["final_sha256"] for r in a if r["method"] == method}
    return key == {(r["item"], r["sample"]): r["final_sha256"] for r in b if r["method"] == method}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dev-per-category", type=int, default=5, help="dev prompts per atom bin (4 bins)")
    ap.add_argument("--per-category", type=int, default=5, help="test prompts per atom bin (4 bins)")
    ap.add_argument("--budget", type=int, default=5)
    ap.add_argument("--out", default=None, help="work folder (default: a temporary one)")
    ap.add_argument("--phase", choices=("dev", "test", "all"), default="all")
    a = ap.parse_args()
    out = Path(a.out or tempfile.mkdtemp(prefix="cost_modes_"))
    dev: dict[str, dict] = {}
    if a.phase in ("dev", "all"):
        for name, (folder, context) in DEV_MODES.items():
            summary, records = evaluate(out / folder, "dev", ("gems",), context, a, a.dev_per_category)
            dev[name] = figures(summary, records, "gems", a.budget)
        for f in dev.values():
            f["within_tolerance"] = f["gm"] >= dev["today"]["gm"] - GM_TOLERANCE
    previous = RESULTS / "cost_modes.json"
    kept = json.loads(previous.read_text()) if previous.exists() else {}
    choice = chosen_cheap(dev or kept["dev"]) if a.phase in ("test", "all") else None
    test: dict[str, dict] = {}
    cheap = DEV_MODES[choice][1] if choice else kept.get("cheap", CHEAP)
    if choice:
        cheap_folder = out / DEV_MODES[choice][0].replace("dev-", "test-", 1)
        single, single_records = evaluate(out / "test-single", "test", ("single",), {}, a, a.per_category)
        runs = {
            "today": evaluate(out / "test-today", "test", TEST_METHODS, TODAY, a, a.per_category),
            "cheap": evaluate(cheap_folder, "test", TEST_METHODS, cheap, a, a.per_category),
        }
        test["single"] = {"today": figures(single, single_records, "single", a.budget)}
        test["single"]["cheap"] = test["single"]["today"]
        for method in TEST_METHODS:
            row = {name: figures(s, r, method, a.budget) for name, (s, r) in runs.items()}
            recs = (runs["today"][1], runs["cheap"][1])
            row["same_images"] = same_images(*recs, method)
            row["alone"] = alone(row["today"], recs, (out / "test-today", cheap_folder), method, cheap)
            test[method] = row
    result = {
        "suite": "shapes-hard",
        "budget": a.budget,
        "dev_per_category": a.dev_per_category,
        "per_category": a.per_category,
        "today": TODAY,
        "cheap": cheap,
        "gm_tolerance": GM_TOLERANCE,
        "dev": dev or kept.get("dev", {}),
        "test": test or kept.get("test", {}),
    }
    path = write_result(result, RESULTS / "cost_modes.json")
    print(f"\nresults under {out}; figures written to {path}")


if __name__ == "__main__":
    main()
