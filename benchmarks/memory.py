"""Does remembering across runs help? Cold vs warm on the shapes world, and recall latency.

1. **cold**: a set of prompts, each run with an empty experience store (nothing to
   recall); after each run its experiences are distilled into lessons and collected.
2. **warm**: *related* prompts (same GenEval categories, other shapes and colours)
   with the store filled; the planner and refiner see the recalled lessons.
3. **recall**: median latency of ``store.recall`` for new prompts (goal < 50 ms).

Prints accuracy (runs whose every check passed) and mean rounds-to-pass for both
phases. Goal: warm needs fewer rounds than cold for the same or better accuracy.

If the graph has recall wired in (a ``memory`` field in ``GemsContext``), the graph
recalls and stores lessons itself. Until then this script does the run-end step
(compress the last round, ``distill_lessons``, ``store.add``) and gives the recalled
lessons to the planner and refiner by prefixing them to the chat model's requests
(``LessonsInjected``); the output says which mode ran.

    .venv/bin/python benchmarks/memory.py [--per-category 3] [--rounds 5] [--generator shapes]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from langchain_core.language_models import BaseChatModel  # noqa: E402
from langchain_core.messages import BaseMessage, HumanMessage  # noqa: E402
from langchain_core.outputs import ChatResult  # noqa: E402
from langchain_core.utils.function_calling import convert_to_openai_tool  # noqa: E402

from gems_graph.checkpoint import open_checkpointer  # noqa: E402
from gems_graph.context import GemsContext  # noqa: E402
from gems_graph.memory import distill_lessons, generator_family, open_experience_store  # noqa: E402
from gems_graph.registry import resolve_chat_model, resolve_generator  # noqa: E402
from gems_graph.runner import run_gems  # noqa: E402
from gems_graph.shapes.grammar import describe  # noqa: E402
from gems_graph.shapes.render import sample_scene  # noqa: E402

#: Categories where a first image is often wrong, so a loop has something to fix.
CATEGORIES = ("position", "color_attr", "counting", "two_object")
#: Tools whose requests get the recalled lessons (planner and refiner, not the critic).
LESSON_TOOLS = {"PlannedPrompt", "RefinedPrompt"}


def prompt_sets(per_category: int) -> tuple[list[str], list[str]]:
    """Cold and warm prompts: same categories, different draws (no prompt repeats)."""
    def draw(seed: int) -> list[str]:
        rng = np.random.default_rng(seed)
        return [describe(sample_scene(rng, c)) for c in CATEGORIES for _ in range(per_category)]

    cold = draw(1)
    warm = [p for p in draw(2) if p not in cold]
    return cold, warm


def lessons_block(lessons: list[dict[str, Any]]) -> str:
    if not lessons:
        return ""
    return "Lessons from earlier runs:\n" + "\n".join(f"- {l['text']}" for l in lessons) + "\n\n"


class LessonsInjected(BaseChatModel):
    """Prefixes recalled lessons to the planner's and refiner's requests.

    Stands in for the planner/refiner wiring until the graph recalls lessons itself.
    """

    inner: Any
    block: str = ""

    @property
    def _llm_type(self) -> str:
        return "lessons-injected"

    def bind_tools(self, tools: Any, *, tool_choice: Any = None, **kwargs: Any) -> Any:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], tool_choice=tool_choice, **kwargs)

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        names = {t.get("function", {}).get("name") for t in kwargs.get("tools") or []}
        if self.block and names & LESSON_TOOLS:
            messages = list(messages)
            for i in range(len(messages) - 1, -1, -1):
                m = messages[i]
                if isinstance(m, HumanMessage):
                    if isinstance(m.content, str):
                        messages[i] = HumanMessage(content=self.block + m.content)
                    else:
                        messages[i] = HumanMessage(content=[{"type": "text", "text": self.block}, *m.content])
                    break
        return self.inner._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


def run_end(store: Any, values: dict[str, Any], chat_model: Any, family: str) -> int:
    """What the graph will do at the end of a run: compress the last round, distill, add."""
    rounds = list(values.get("rounds") or [])
    checks = values.get("checks") or []
    if rounds and not rounds[-1].get("experience"):
        from nodes.refiner import compress_round

        experience, _ = compress_round(chat_model, values["prompt"], rounds[-1], checks)
        rounds[-1] = {**rounds[-1], "experience": experience}
    lessons = distill_lessons(values["prompt"], rounds, checks, generator_family=family,
                              skills=list(values.get("skills") or []), status=str(values.get("status")))
    return len(store.add(lessons))


def run_phase(name: str, prompts: list[str], args: argparse.Namespace, store: Any, workdir: Path, wired: bool) -> dict[str, Any]:
    """Cold runs recall nothing (each sees an empty store) but leave their lessons; warm runs recall."""
    cold = name == "cold"
    base_model = resolve_chat_model(args.chat_model)
    family = generator_family(resolve_generator(args.generator))
    results = []
    with open_checkpointer(str(workdir / f"{name}.sqlite")) as saver:
        for i, prompt in enumerate(prompts):
            ctx_kwargs: dict[str, Any] = dict(generator=args.generator, max_rounds=args.rounds, seed=args.seed,
                                              artifact_root=str(workdir / "runs"))
            own = workdir / f"cold-memory-{i}"  # a cold run's private, empty store
            if wired:
                ctx_kwargs.update(memory=f"chroma:{own if cold else args.store_dir}", chat_model=args.chat_model)
                recalled: list[dict[str, Any]] = []
            else:
                recalled = [] if cold else store.recall(prompt, k=args.k, generator_family=family)
                ctx_kwargs["chat_model"] = LessonsInjected(inner=base_model, block=lessons_block(recalled))
            t0 = time.perf_counter()
            res = run_gems(prompt, GemsContext(**ctx_kwargs), saver, thread_id=f"{name}-{i}")
            seconds = time.perf_counter() - t0
            values = res.state
            if not wired:
                run_end(store, values, base_model, family)
            elif cold:  # collect what the run stored into the shared store
                private = open_experience_store(f"chroma:{own}")
                private.export_jsonl(own / "lessons.jsonl")
                store.import_jsonl(own / "lessons.jsonl")
            n_recalled = len(values.get("recalled_lessons") or recalled)
            results.append({"prompt": prompt, "status": res.status, "rounds": values.get("rounds_used", 0),
                            "recalled": n_recalled, "seconds": seconds})
            print(f"  {name} {i + 1:2d}/{len(prompts)} {res.status:9s} rounds={values.get('rounds_used', 0)} "
                  f"recalled={n_recalled} {seconds:5.1f}s  {prompt}", flush=True)
    passed = [r for r in results if r["status"] == "passed"]
    return {
        "phase": name,
        "runs": len(results),
        "accuracy": len(passed) / max(1, len(results)),
        "rounds_to_pass": statistics.mean(r["rounds"] for r in passed) if passed else float("nan"),
        "mean_rounds": statistics.mean(r["rounds"] for r in results) if results else float("nan"),
        "seconds": statistics.mean(r["seconds"] for r in results) if results else float("nan"),
    }


def recall_latency(store: Any, prompts: list[str], family: str, k: int) -> float:
    store.recall("warm up the embedding model", k=k, generator_family=family)
    times = []
    for p in prompts:
        t0 = time.perf_counter()
        store.recall(p + " ", k=k, generator_family=family)  # new text: no embedding cache hit
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-category", type=int, default=3, help="prompts per category in each phase")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--k", type=int, default=3, help="lessons recalled per run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--generator", default="shapes")
    ap.add_argument("--chat-model", default="shapes")
    ap.add_argument("--workdir", default=None, help="keep runs and the store here (default: a temp folder)")
    args = ap.parse_args(argv)

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="gems-bench-memory-"))
    workdir.mkdir(parents=True, exist_ok=True)
    args.store_dir = str(workdir / "memory")
    store = open_experience_store(f"chroma:{args.store_dir}")
    wired = "memory" in {f.name for f in fields(GemsContext)}
    cold, warm = prompt_sets(args.per_category)
    print(f"memory benchmark: generator={args.generator} chat_model={args.chat_model} rounds={args.rounds} "
          f"prompts={len(cold)} cold + {len(warm)} warm; mode={'graph recall' if wired else 'injected by benchmark'}")
    print(f"workdir: {workdir}")
    rows = [run_phase("cold", cold, args, store, workdir, wired)]
    print(f"  lessons in store after cold: {store.count()}")
    rows.append(run_phase("warm", warm, args, store, workdir, wired))
    family = generator_family(resolve_generator(args.generator))
    latency = recall_latency(store, warm, family, args.k)

    print()
    print(f"{'phase':6s} {'runs':>4s} {'accuracy':>9s} {'rounds-to-pass':>15s} {'mean rounds':>12s} {'s/run':>7s}")
    for r in rows:
        print(f"{r['phase']:6s} {r['runs']:4d} {r['accuracy']:9.2f} {r['rounds_to_pass']:15.2f} {r['mean_rounds']:12.2f} {r['seconds']:7.1f}")
    print(f"recall latency: median {latency:.1f} ms over {len(warm)} prompts (k={args.k}, {store.count()} lessons)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
