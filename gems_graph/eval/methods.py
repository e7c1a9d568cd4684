"""The five methods of the paper's comparison, each making one final image per prompt.

All but ``single`` run the real graph (``compile_graph``) with ``GemsContext``
settings, so the eval measures the code users run:

| method      | what it does                                  | images | context                                   |
| ----------- | --------------------------------------------- | ------ | ----------------------------------------- |
| single      | the raw prompt, one image (no agent)          | 1      | generator called directly                 |
| explicit    | the scene in the explicit layout register, one image (shapes only) | 1 | generator called directly |
| rewrite     | one planner rewrite, one image                | 1      | max_rounds=1, candidates=1, max_skills=0  |
| search      | best-of-N by the critic, one round            | N      | max_rounds=1, candidates=N, max_skills=0  |
| loop        | the GEMS loop without memory or skills        | <= N   | max_rounds=N, max_skills=0, refiner_images=0, memory off |
| loop+skills | the loop with skills, still without memory    | <= N   | as loop, with max_skills                  |
| loop+edit   | the loop whose refiner may edit the best image (when the generator edits) | <= N | as loop, refiner_edits=True |
| gems        | the full loop: skills, memory and images      | <= N   | max_rounds=N, skills and memory as configured |

N is the budget. ``loop+edit`` differs from ``loop`` only in the edit move: its
refiner is shown the image it may edit (the best so far), as an edit needs.
An edit counts as one image, like a generation. ``rewrite`` and ``search`` still run the critic (its decomposition
and verification are counted in ``chat_calls``); only ``search`` uses its choice.
What a task used (chat calls, input and output tokens, images sent to the chat model,
images generated) is the run's own ``usage`` (``gems_graph.usage``), the figures a
user of the graph sees in ``run.json``; the direct methods make no chat call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gems_graph.eval.suites import EvalItem
from gems_graph.usage import Usage, run_total, zero_usage

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig

    from gems_graph.state import GemsInput

METHODS = ("single", "explicit", "rewrite", "search", "loop", "loop+skills", "loop+edit", "gems")
#: Methods that call the generator once, without the graph.
DIRECT_METHODS = ("single", "explicit")


@dataclass
class MethodSettings:
    """How every method of one eval is configured (the same for all prompts)."""

    out: Path
    budget: int = 5
    generator: Any = "shapes"
    chat_model: Any = "shapes"
    critic_model: Any = None
    #: Memory spec for ``gems`` when the graph supports memory (``GemsContext.memory``).
    memory: str | None = None
    max_skills: int = 2
    skills_dirs: list[str] = field(default_factory=list)
    #: Other ``GemsContext`` fields for every run (width, height, steps, guidance, ...).
    context: dict[str, Any] = field(default_factory=dict)


def method_context_fields(method: str, s: MethodSettings) -> dict[str, Any]:
    """The ``GemsContext`` fields that make a graph run one of the methods."""
    from gems_graph.context import context_field_names

    n = s.budget
    has_memory = "memory" in context_field_names()
    fields: dict[str, Any] = {
        "rewrite": {"max_rounds": 1, "candidates_per_round": 1, "max_skills": 0},
        "search": {"max_rounds": 1, "candidates_per_round": n, "max_skills": 0},
        "loop": {"max_rounds": n, "candidates_per_round": 1, "max_skills": 0, "refiner_images": 0},
        "loop+skills": {"max_rounds": n, "candidates_per_round": 1, "max_skills": s.max_skills, "refiner_images": 0},
        "loop+edit": {"max_rounds": n, "candidates_per_round": 1, "max_skills": 0, "refiner_images": 0, "refiner_edits": True},
        "gems": {"max_rounds": n, "candidates_per_round": 1, "max_skills": s.max_skills},
    }[method]
    if has_memory:
        fields["memory"] = (s.memory or f"chroma:{s.out / 'memory'}") if method == "gems" else "none"
    return fields


def run_method(method: str, item: EvalItem, seed: int, s: MethodSettings, task_id: str) -> dict[str, Any]:
    """Make the method's final image for ``item``; return what it used (no score)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    start = time.perf_counter()
    if method in DIRECT_METHODS:
        out = _direct(method, item, seed, s, task_id)
    else:
        out = _graph(method, item, seed, s, task_id)
    out["wall_s"] = round(time.perf_counter() - start, 3)
    return out


def _direct(method: str, item: EvalItem, seed: int, s: MethodSettings, task_id: str) -> dict[str, Any]:
    from gems_graph.models.generator import GenerationRequest, generation_seconds
    from gems_graph.models.registry import resolve_generator
    from gems_graph.models.retry import call_with_retry
    from gems_graph.persistence.artifacts import save_png

    c = s.context
    prompt = item.prompt
    if method == "explicit":
        from gems_graph.shapes.layout import explicit_prompt

        prompt = explicit_prompt(item.prompt, seed)
    request = GenerationRequest(
        prompt=prompt, seed=seed, width=c.get("width"), height=c.get("height"), steps=c.get("steps"), guidance=c.get("guidance")
    )
    gen = resolve_generator(s.generator)
    image = call_with_retry(lambda: gen.generate(request), attempts=int(c.get("generation_retries", 3)))
    seconds = generation_seconds(image)
    ref = save_png(image, s.out / "runs" / method / task_id / f"seed{seed}.png")
    return {
        "final_image": ref["path"],
        "final_sha256": ref["sha256"],
        "final_prompt": prompt,
        "attempts": 1,
        "rounds": 1,
        **cost_fields({**zero_usage(), "images_generated": 1, "untimed_images": int(seconds is None), "generation_seconds": seconds}),
        "status": "done",
        "error": None,
        "critic_score": None,
        "skills": [],
        "recalled": 0,
        "notes": [],
    }


def _graph(method: str, item: EvalItem, seed: int, s: MethodSettings, task_id: str) -> dict[str, Any]:
    from langgraph.checkpoint.memory import InMemorySaver

    from gems_graph.context import GemsContext
    from gems_graph.graph import compile_graph

    ctx = GemsContext(
        **{
            **s.context,
            "generator": s.generator,
            "chat_model": s.chat_model,
            "critic_model": s.critic_model,
            "seed": seed,
            "artifact_root": str(s.out / "runs" / method),
            "skills_dirs": list(s.skills_dirs),
            **method_context_fields(method, s),
        }
    )
    graph = compile_graph(checkpointer=InMemorySaver())
    config: RunnableConfig = {"configurable": {"thread_id": task_id}, "recursion_limit": 10 + 4 * ctx.max_rounds}
    inputs: GemsInput = {"prompt": item.prompt}
    for _ in graph.stream(inputs, config, context=ctx, stream_mode="updates"):
        pass
    st = graph.get_state(config).values
    cands = [c for r in st.get("rounds") or [] for c in r["candidates"]]
    best = st.get("best")
    error = st.get("error")
    if best is None or not st.get("best_image"):
        error = error or f"no image (status {st.get('status')})"
    return {
        "final_image": st.get("best_image"),
        "final_sha256": best["image"]["sha256"] if best and best.get("image") else None,
        "final_prompt": best["prompt"] if best else None,
        "attempts": len(cands),
        "rounds": st.get("rounds_used", 0),
        **cost_fields(run_total(st.get("usage"))),
        "status": st.get("status"),
        "error": error,
        "critic_score": st.get("score"),
        "skills": list(st.get("skills") or []),
        "recalled": len(st.get("recalled_lessons") or []),
        "notes": list(st.get("notes") or []),
        **edit_outcomes(cands),
    }


def cost_fields(u: Usage) -> dict[str, Any]:
    """A task record's cost columns; ``images`` are the images generated (edits included), and
    ``generation_seconds`` the model's time for them when the backend timed every one (else None)."""
    return {
        "images": u["images_generated"],
        "chat_calls": u["calls"],
        "input_tokens": u["input_tokens"],
        "output_tokens": u["output_tokens"],
        "images_sent": u["images_sent"],
        "generation_seconds": u["generation_seconds"] if u["images_generated"] and not u["untimed_images"] else None,
    }


def edit_outcomes(cands: list[dict[str, Any]]) -> dict[str, int]:
    """How many candidates were edits, and how many of those fixed a check their parent
    failed without failing one it passed (judged by the critic's verdicts)."""
    by_key = {(c["round"], c["index"]): c for c in cands}
    edits = fixed = 0
    for c in cands:
        edit = c.get("edit")
        if not edit:
            continue
        edits += 1
        parent = by_key.get((edit["parent"]["round"], edit["parent"]["index"]))
        if parent is None or not c.get("verdicts"):
            continue
        before = {v["check_id"]: v["passed"] for v in parent["verdicts"]}
        after = {v["check_id"]: v["passed"] for v in c["verdicts"]}
        gained = any(after.get(k) and not p for k, p in before.items())
        lost = any(p and not after.get(k) for k, p in before.items())
        fixed += gained and not lost
    return {"edits": edits, "edits_fixed": fixed}
