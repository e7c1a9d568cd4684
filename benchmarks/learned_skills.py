"""Skills learnt on the hard suite's dev split, measured on its test split (issue #30).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/learned_skills.py --per-category 4

1. dev: ``gems`` (writing lessons into a warm store) and ``loop`` on a per-category
   sample of ``shapes-hard --split dev``;
2. ``gems skills learn`` from that eval folder's runs (the dev runs only), each candidate tried
   on the same dev sample (``loop+skills`` with and without it), kept only when it helps,
   once for each configuration a learned skill is measured in: beside the built-in
   skills (for ``gems + learned``) and with ``--no-builtin-skills`` (for
   ``loop + learned only``, whose runs have no built-in skills to compare against);
3. test, the same budget, a per-category sample of ``--split test``:
   ``loop``; ``loop+skills`` (built-in skills, no memory); ``gems`` (built-in skills
   and the warm memory from dev); ``gems + learned`` (built-in and learned skills,
   memory cold); ``loop + learned only`` (the learned skills, no built-ins, no memory).

Targets (issue #30): the learned skills alone recover at least half of what the
built-in skills add over ``loop``; ``gems + learned`` beats ``gems`` by >= 2 points
or uses 15% fewer images. Writes ``benchmarks/results/learned_skills.json`` and the
kept skills under ``benchmarks/results/learned_skills/``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from record import RESULTS, write_result

from gems_graph.eval.harness import run_eval
from gems_graph.eval.tasks import EvalConfig


def _eval(out: Path, split: str, methods: list[str], a: argparse.Namespace, **kw) -> dict:
    cfg = EvalConfig(
        suite="shapes-hard", split=split, out=out, methods=methods, budget=a.budget, per_category=a.per_category, progress=False, **kw
    )
    return run_eval(cfg)["summary"]["methods"]


def _row(summary: dict, method: str) -> dict:
    m = summary[method]
    return {"n": m["n"], "score": round(m["score"], 2), "images": round(m["images"], 3), "chat_calls": round(m["chat_calls"], 2)}


#: What the candidates are tried against -> the folder the kept ones go to (the trials beside it, in "trials-<folder>").
LEARNS = {"built-in skills": "learned", "no skills": "learned-alone"}


def learn(work: Path, against: str, a: argparse.Namespace) -> dict:
    """``gems skills learn`` from the dev runs (only: the warm store also takes the test runs' lessons
    as gems runs on test), its candidates tried against ``against``; its JSON report."""
    out = work / LEARNS[against]
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "gems_graph.app.cli", "skills", "learn", "--memory", "none", "--from-eval", str(work / "dev")]
    cmd += ["--split", "dev", "--per-category", str(a.per_category), "--budget", str(a.budget), "--min-gain", str(a.min_gain)]
    cmd += ["--out", str(out), "--trial-dir", str(work / f"trials-{LEARNS[against]}"), "--json"]
    cmd += [] if against == "built-in skills" else ["--no-builtin-skills"]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
    if done.returncode != 0:
        sys.exit(f"gems skills learn failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-category", type=int, default=2, help="prompts per category on each split (4 categories)")
    ap.add_argument("--budget", type=int, default=5)
    ap.add_argument("--min-gain", type=float, default=1.0, help="points a candidate must add on dev to be kept")
    ap.add_argument("--work", type=Path, default=None, help="keep the evals here (default: a temporary folder)")
    a = ap.parse_args()
    work = a.work or Path(tempfile.mkdtemp(prefix="gems-learned-skills-"))
    home = work / "home"
    os.environ["GEMS_HOME"] = str(home)  # nothing learnt here leaks into the user's own home
    # Phase times survive a rerun on the same --work (every eval resumes, so a rerun takes seconds).
    times = work / "seconds.json"
    seconds: dict[str, float] = json.loads(times.read_text()) if times.is_file() else {}

    def took(phase: str, start: float) -> None:
        seconds.setdefault(phase, round(time.perf_counter() - start, 1))
        times.write_text(json.dumps(seconds))

    t = time.perf_counter()
    warm = f"chroma:{work / 'warm'}"
    _eval(work / "dev", "dev", ["gems", "loop"], a, memory=warm)
    took("dev", t)

    t = time.perf_counter()
    reports = {against: learn(work, against, a) for against in LEARNS}
    took("learn", t)
    learned, learned_alone = work / LEARNS["built-in skills"], work / LEARNS["no skills"]

    t = time.perf_counter()
    base = _eval(work / "test-base", "test", ["loop", "loop+skills", "gems"], a, memory=warm)
    with_learned = _eval(work / "test-learned", "test", ["gems"], a, memory=f"chroma:{work / 'cold'}", skills_dirs=[str(learned)])
    learned_only = _eval(
        work / "test-learned-only",
        "test",
        ["loop+skills"],
        a,
        memory="none",
        skills_dirs=[str(learned_alone)],
        context={"builtin_skills": False},
    )
    took("test", t)

    methods = {
        "loop": _row(base, "loop"),
        "loop+skills (built-in)": _row(base, "loop+skills"),
        "gems (built-in + warm memory)": _row(base, "gems"),
        "gems + learned skills (memory cold)": _row(with_learned, "gems"),
        "loop + learned skills only": _row(learned_only, "loop+skills"),
    }
    builtin_gain = methods["loop+skills (built-in)"]["score"] - methods["loop"]["score"]
    learned_gain = methods["loop + learned skills only"]["score"] - methods["loop"]["score"]
    gems, gems_learned = methods["gems (built-in + warm memory)"], methods["gems + learned skills (memory cold)"]
    saving = 1 - gems_learned["images"] / gems["images"] if gems["images"] else 0.0
    # A configuration no skill was kept for runs without learned skills: its row says nothing about them.
    kept = {against: sum(1 for c in r["candidates"] if c.get("kept")) for against, r in reports.items()}
    targets = {
        "kept_beside_builtins": kept["built-in skills"],
        "kept_alone": kept["no skills"],
        "builtin_gain_points": round(builtin_gain, 2),
        "learned_only_gain_points": round(learned_gain, 2),
        "recovered_share": round(learned_gain / builtin_gain, 3) if builtin_gain else None,
        "recover_half_met": bool(kept["no skills"]) and bool(builtin_gain) and learned_gain >= builtin_gain / 2,
        "gems_learned_minus_gems_points": round(gems_learned["score"] - gems["score"], 2),
        "gems_learned_image_saving": round(saving, 3),
        "beat_gems_met": bool(kept["built-in skills"]) and (gems_learned["score"] - gems["score"] >= 2 or saving >= 0.15),
    }
    # Every candidate's text goes in the repository, kept or rejected, as an example of what was learnt.
    skills = []
    examples = RESULTS / "learned_skills"
    shutil.rmtree(examples, ignore_errors=True)
    for against, report in reports.items():
        folder_name = LEARNS[against]
        for c in report["candidates"]:
            entry = {"against": against, **{k: c.get(k) for k in ("name", "kept", "why", "trial")}}
            kept_folder = work / folder_name / c["name"]
            folder = kept_folder if c.get("kept") else work / f"trials-{folder_name}" / "candidates" / c["name"] / c["name"]
            if c.get("trial") and (folder / "SKILL.md").is_file():  # a candidate this learn wrote and tried
                entry["text"] = (folder / "SKILL.md").read_text(encoding="utf-8")
                shutil.copytree(folder, examples / folder_name / ("kept" if c.get("kept") else "rejected") / c["name"])
            elif c.get("text"):
                entry["text"] = c["text"]
            skills.append(entry)
    result = {
        "suite": "shapes-hard",
        "budget": a.budget,
        "per_category": a.per_category,
        "min_gain": a.min_gain,
        "lessons": reports["built-in skills"]["lessons"],
        "methods": methods,
        "targets": targets,
        "skills": skills,
        "seconds": seconds,
    }
    path = write_result(result, RESULTS / "learned_skills.json")
    print(json.dumps({"methods": methods, "targets": targets, "skills": [(s["name"], s["kept"], s["why"]) for s in skills]}, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
