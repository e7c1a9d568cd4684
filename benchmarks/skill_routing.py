"""Skill routing quality: precision and recall per skill on labelled prompts.

    python benchmarks/skill_routing.py                      # declared triggers
    python benchmarks/skill_routing.py --chat-model openai:gpt-4o-mini

A router is any callable ``(prompt, registry) -> list[str]``. ``--chat-model
triggers`` (the default) measures ``route_by_triggers``, which is what the offline
shapes chat model uses; any other spec is resolved through the backend registry
and asked once per prompt, with the planner's catalog text and the ``load_skill``
tool bound, which skills it would load (the paper's single routing call). The
figures are written to ``--out`` (``benchmarks/results/skill_routing_<router>.json``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from gems_graph.skills import SkillRegistry, default_registry, route_by_triggers

Router = Callable[[str, SkillRegistry], list[str]]
DEFAULT_DATA = Path(__file__).resolve().parent / "data" / "skill_routing.jsonl"
RESULTS = Path(__file__).resolve().parent / "results"


def load_cases(path: Path) -> list[dict]:
    cases = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            row = json.loads(line)
            if not isinstance(row.get("prompt"), str) or not isinstance(row.get("skills"), list):
                raise ValueError(f"{path}:{i}: need {{'prompt': str, 'skills': [str]}}")
            cases.append(row)
    return cases


def trigger_router(limit: int | None = None) -> Router:
    return lambda prompt, registry: route_by_triggers(prompt, registry, limit=limit)


def chat_model_router(model, max_skills: int = 2) -> Router:
    """Route as the planner node does: its prompts, ``load_skill`` bound, the skills it loads."""
    from gems_graph.nodes.planner import PLANNER_SYSTEM_PROMPT, PLANNER_USER_PROMPT, PlannedPrompt
    from gems_graph.nodes.skill_planning import plan_with_skills

    def route(prompt: str, registry: SkillRegistry) -> list[str]:
        plan = plan_with_skills(
            model,
            prompt=prompt,
            system_prompt=PLANNER_SYSTEM_PROMPT,
            user_prompt=PLANNER_USER_PROMPT.format(prompt=prompt, guide="", extra=""),
            schema=PlannedPrompt,
            registry=registry,
            max_skills=max_skills,
        )
        return list(plan.session.loaded)

    return route


def evaluate(cases: Iterable[dict], router: Router, registry: SkillRegistry) -> dict:
    """Per-skill tp/fp/fn, plus exact-match rate and the misses for inspection."""
    names = registry.names()
    stats = {n: {"tp": 0, "fp": 0, "fn": 0} for n in names}
    exact, total, misses = 0, 0, []
    for case in cases:
        want, got = set(case["skills"]), set(router(case["prompt"], registry))
        total += 1
        exact += want == got
        if want != got:
            misses.append({"prompt": case["prompt"], "want": sorted(want), "got": sorted(got)})
        for n in names:
            stats[n]["tp"] += n in want and n in got
            stats[n]["fp"] += n not in want and n in got
            stats[n]["fn"] += n in want and n not in got
    return {"per_skill": stats, "exact_match": exact / max(total, 1), "cases": total, "misses": misses}


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def summary(result: dict) -> dict:
    """Precision, recall and support per skill and over all skills (micro), as the result file keeps them."""

    def scores(tp: int, fp: int, fn: int) -> dict:
        return {"precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn), "support": tp + fn}

    per_skill = {name: scores(s["tp"], s["fp"], s["fn"]) for name, s in result["per_skill"].items()}
    totals = [sum(s[k] for s in result["per_skill"].values()) for k in ("tp", "fp", "fn")]
    return {"cases": result["cases"], "exact_match": result["exact_match"], "per_skill": per_skill, "micro": scores(*totals)}


def default_out(router: str) -> Path:
    """``benchmarks/results/skill_routing_<router>.json``, the router's spec made a file name."""
    return RESULTS / f"skill_routing_{re.sub(r'[^A-Za-z0-9_.-]+', '-', router).strip('-')}.json"


def format_table(result: dict) -> str:
    def f(x: float | None) -> str:
        return "   -" if x is None else f"{x:.2f}"

    rows = [f"{'skill':<24}{'prec':>6}{'recall':>8}{'support':>9}"]
    tp = fp = fn = 0
    for name, s in result["per_skill"].items():
        tp, fp, fn = tp + s["tp"], fp + s["fp"], fn + s["fn"]
        rows.append(f"{name:<24}{f(_ratio(s['tp'], s['tp'] + s['fp'])):>6}{f(_ratio(s['tp'], s['tp'] + s['fn'])):>8}{s['tp'] + s['fn']:>9}")
    rows.append(f"{'micro':<24}{f(_ratio(tp, tp + fp)):>6}{f(_ratio(tp, tp + fn)):>8}{tp + fn:>9}")
    rows.append(f"exact-match {result['exact_match']:.2f} over {result['cases']} prompts")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chat-model", default="triggers", help="'triggers' (declared triggers) or a chat-model spec")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--skills-dir", action="append", default=[], help="extra skill folder (repeatable)")
    ap.add_argument(
        "--limit", type=int, default=None, help="most skills a prompt may route to (default: no cap for triggers, 2 for chat models)"
    )
    ap.add_argument("--show-misses", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="result file (default: benchmarks/results/skill_routing_<router>.json)")
    args = ap.parse_args(argv)
    registry = default_registry(args.skills_dir)
    if args.chat_model == "triggers":
        router = trigger_router(args.limit)
    else:
        from gems_graph.models.registry import resolve_chat_model

        router = chat_model_router(resolve_chat_model(args.chat_model), max_skills=args.limit or 2)
    t0 = time.perf_counter()
    result = evaluate(load_cases(args.data), router, registry)
    dt = time.perf_counter() - t0
    print(f"router: {args.chat_model}   data: {args.data}")
    print(format_table(result))
    print(f"{dt * 1000 / max(result['cases'], 1):.2f} ms per prompt")
    from record import write_result  # benchmarks/ is on sys.path when this runs as a script

    out = args.out or default_out(args.chat_model)
    data = args.data.resolve()
    data_name = data.relative_to(RESULTS.parent.parent).as_posix() if data.is_relative_to(RESULTS.parent.parent) else str(data)
    ms_per_prompt = round(dt * 1000 / max(result["cases"], 1), 2)
    write_result({"router": args.chat_model, "data": data_name, **summary(result), "ms_per_prompt": ms_per_prompt}, out)
    print(f"written to {out}")
    if args.show_misses:
        for m in result["misses"]:
            print(f"  miss: {m['prompt']!r} want={m['want']} got={m['got']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
