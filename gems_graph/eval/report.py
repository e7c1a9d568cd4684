"""Summaries of an eval: per method and per category, as JSON, Markdown and a plot.

Scores are percentages (100 x the mean over prompts, as GenEval and GenEval2 report).
GenEval2 evals are broken down as its ``soft_tifa_analysis.py`` does: per atom count
(prompt level, Soft-TIFA GM: the categories ``atoms_N``) and per skill (atom level,
Soft-TIFA AM: the sum of the atoms' scores over the number of atoms of that skill).
The shapes-hard suite reports the same way, its atoms answered by the pixel checker
(categories "atoms 3-4" ... in suite order, AM and GM beside the score).
Only deterministic figures go in here (no wall time), so a resumed eval writes the
same report as an uninterrupted one; timings go to ``timings.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any


def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _stats(recs: list[dict[str, Any]]) -> dict[str, Any]:
    def pct(key: str) -> float | None:
        vals = [r[key] for r in recs if r.get(key) is not None]
        return round(100 * sum(vals) / len(vals), 2) if vals else None

    def avg(key: str) -> float | None:
        m = _mean([r[key] for r in recs if r.get(key) is not None])
        return round(m, 3) if m is not None else None

    return {
        "n": len(recs),
        "score": pct("score"),
        "am": pct("am"),
        "gm": pct("gm"),
        "images": avg("images"),
        "attempts": avg("attempts"),
        "rounds": avg("rounds"),
        "chat_calls": avg("chat_calls"),
        "input_tokens": avg("input_tokens"),
        "output_tokens": avg("output_tokens"),
        "images_sent": avg("images_sent"),
        "generation_seconds": avg("generation_seconds") if all(r.get("generation_seconds") is not None for r in recs) else None,
        "errors": sum(1 for r in recs if r.get("error")),
        "edits": sum(r.get("edits") or 0 for r in recs),
        "edits_fixed": sum(r.get("edits_fixed") or 0 for r in recs),
    }


#: GenEval2's skills, in the order its analysis script prints them.
GENEVAL2_SKILLS = ("object", "attribute", "count", "position", "verb")


def by_skill(records: list[dict[str, Any]], methods: Sequence[str]) -> dict[str, dict[str, float | None]]:
    """Per skill and method: 100 x mean score of the atoms of that skill (Soft-TIFA AM, atom level)."""
    atoms = [(r["method"], a) for r in records for a in r.get("atoms") or [] if a.get("skill")]
    seen = {a["skill"] for _, a in atoms}
    skills = [k for k in GENEVAL2_SKILLS if k in seen] + sorted(seen - set(GENEVAL2_SKILLS))
    out: dict[str, dict[str, float | None]] = {}
    for k in skills:
        out[k] = {}
        for m in methods:
            ps = [a["p"] for meth, a in atoms if meth == m and a["skill"] == k]
            out[k][m] = round(100 * sum(ps) / len(ps), 2) if ps else None
    return out


def summarize(records: list[dict[str, Any]], methods: Sequence[str]) -> dict[str, Any]:
    categories = list(dict.fromkeys(r["category"] for r in records))
    summary = {
        "methods": {m: _stats([r for r in records if r["method"] == m]) for m in methods},
        "by_category": {
            c: {m: _stats([r for r in records if r["method"] == m and r["category"] == c]) for m in methods} for c in categories
        },
    }
    skills = by_skill(records, methods)
    if skills:
        summary["by_skill"] = skills
    return summary


def _fmt(x: Any, digits: int = 1) -> str:
    return "-" if x is None else f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def markdown(summary: dict[str, Any], title: str, *, atom_judge: str = "Soft-TIFA") -> str:
    """The table the CLI prints and writes to ``results.md``.

    Where the suite gives an AM (GenEval2, custom checks, shapes-hard), AM and GM are
    columns beside the score, and AM gets its own table by category. ``atom_judge``
    names what answered the atoms ("pixel checker" for shapes-hard) in the headings.
    """
    ms = summary["methods"]
    soft = any(s["am"] is not None for s in ms.values())
    head = ["method", "score"] + (["AM", "GM"] if soft else []) + ["images/prompt", "rounds", "chat calls", "errors", "n"]
    lines = [f"## {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m, s in ms.items():
        row = [m, _fmt(s["score"])] + ([_fmt(s["am"]), _fmt(s["gm"])] if soft else [])
        row += [_fmt(s["images"], 2), _fmt(s["rounds"], 2), _fmt(s["chat_calls"], 1), str(s["errors"]), str(s["n"])]
        lines.append("| " + " | ".join(row) + " |")
    head = ["method", "chat calls", "input tokens", "output tokens", "images sent", "images generated", "generation s"]
    lines += [
        "",
        "Cost per prompt (means; tokens as the chat model's server reported them, "
        "generation seconds as the generator timed its images, - where it did not):",
        "",
    ]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m, s in ms.items():
        row = [m, _fmt(s.get("chat_calls"), 1), _fmt(s.get("input_tokens"), 0), _fmt(s.get("output_tokens"), 0)]
        row += [_fmt(s.get("images_sent"), 1), _fmt(s.get("images"), 2), _fmt(s.get("generation_seconds"), 2)]
        lines.append("| " + " | ".join(row) + " |")
    cats = summary["by_category"]
    if len(cats) > 1 or any(c != "all" for c in cats):
        atoms = all(c.startswith("atoms_") for c in cats)
        bins = all(c.startswith("atoms ") for c in cats)  # shapes-hard: "atoms 3-4", in suite order
        title = (
            f"Score ({atom_judge} GM) by atom count:"
            if atoms
            else "Score (GM: every atom right) by atom count:"
            if bins
            else "Score by category:"
        )
        lines += ["", title, "", "| category | " + " | ".join(ms) + " |", "|---|" + "---|" * len(ms)]
        for c, per in sorted(cats.items(), key=lambda kv: _atom_order(kv[0])) if atoms else cats.items():
            lines.append(f"| {c} | " + " | ".join(_fmt(per[m]["score"]) for m in ms) + " |")
        if any(per[m]["am"] is not None for per in cats.values() for m in ms):
            lines += ["", f"AM ({atom_judge}, mean of atoms right) by category:", ""]
            lines += ["| category | " + " | ".join(ms) + " |", "|---|" + "---|" * len(ms)]
            for c, per in sorted(cats.items(), key=lambda kv: _atom_order(kv[0])) if atoms else cats.items():
                lines.append(f"| {c} | " + " | ".join(_fmt(per[m]["am"]) for m in ms) + " |")
        lines += ["", "Images per prompt by category:", "", "| category | " + " | ".join(ms) + " |", "|---|" + "---|" * len(ms)]
        for c, per in cats.items():
            lines.append(f"| {c} | " + " | ".join(_fmt(per[m]["images"], 2) for m in ms) + " |")
    if summary.get("by_skill"):
        title = "Soft-TIFA AM by skill (atom level):" if atom_judge == "Soft-TIFA" else f"AM by skill (atom level, {atom_judge}):"
        lines += ["", title, "", "| skill | " + " | ".join(ms) + " |", "|---|" + "---|" * len(ms)]
        for k, per in summary["by_skill"].items():
            lines.append(f"| {k} | " + " | ".join(_fmt(per[m]) for m in ms) + " |")
    edited = {m: s for m, s in ms.items() if s.get("edits")}
    if edited:
        lines += [""] + [
            f"Edits ({m}): {s['edits']} chosen, {s['edits_fixed']} fixed a failing check without breaking a passing one"
            for m, s in edited.items()
        ]
    return "\n".join(lines) + "\n"


def _atom_order(category: str) -> tuple[int, str]:
    n = category.removeprefix("atoms_")
    return (int(n), "") if n.isdigit() else (10**6, category)


def plot(summary: dict[str, Any], path: Path, title: str) -> Path:
    """Score vs images per prompt, one point per method: matplotlib PNG if installed, else SVG."""
    pts = [(m, s["images"], s["score"]) for m, s in summary["methods"].items() if s["images"] is not None and s["score"] is not None]
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        path = path.with_suffix(".svg")
        path.write_text(svg_plot(pts, title), encoding="utf-8")
        return path
    path = path.with_suffix(".png")
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    for (m, x, y), k in zip(pts, _stack(pts)):
        ax.scatter([x], [y])
        ax.annotate(m, (x, y), textcoords="offset points", xytext=(5, 4 - 11 * k))
    ax.set_xlabel("images per prompt (mean)")
    ax.set_ylabel("score (%)")
    ax.set_title(title, fontsize=9)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _stack(points: list[tuple[str, float, float]]) -> list[int]:
    """How many earlier points sit (almost) on the same spot: their labels go below."""
    seen: list[tuple[float, float]] = []
    out = []
    for _, x, y in points:
        out.append(sum(1 for a, b in seen if abs(a - x) < 0.05 and abs(b - y) < 1.0))
        seen.append((x, y))
    return out


def svg_plot(points: list[tuple[str, float, float]], title: str, w: int = 480, h: int = 320) -> str:
    """A dependency-free scatter plot: x = images per prompt, y = score in %."""
    left, right, top, bottom = 50, 20, 30, 40
    xmax = max([p[1] for p in points] + [1.0]) * 1.1
    sx = lambda x: left + (w - left - right) * x / xmax  # noqa: E731
    sy = lambda y: h - bottom - (h - top - bottom) * y / 100  # noqa: E731
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<text x="{w / 2}" y="18" text-anchor="middle" font-size="12">{escape(title)}</text>',
        f'<line x1="{left}" y1="{h - bottom}" x2="{w - right}" y2="{h - bottom}" stroke="black"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h - bottom}" stroke="black"/>',
    ]
    for tick in range(0, 101, 20):
        out.append(f'<text x="{left - 6}" y="{sy(tick) + 4:.1f}" text-anchor="end">{tick}</text>')
        out.append(f'<line x1="{left}" y1="{sy(tick):.1f}" x2="{w - right}" y2="{sy(tick):.1f}" stroke="#ddd"/>')
    for tick in range(0, int(xmax) + 1):
        out.append(f'<text x="{sx(tick):.1f}" y="{h - bottom + 14}" text-anchor="middle">{tick}</text>')
    out.append(f'<text x="{(left + w - right) / 2}" y="{h - 8}" text-anchor="middle">images per prompt (mean)</text>')
    out.append(
        f'<text x="14" y="{(top + h - bottom) / 2}" text-anchor="middle" '
        f'transform="rotate(-90 14 {(top + h - bottom) / 2})">score (%)</text>'
    )
    for (m, x, y), k in zip(points, _stack(points)):
        out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="4" fill="#3465a4"/>')
        out.append(f'<text x="{sx(x) + 6:.1f}" y="{sy(y) - 6 + 13 * k:.1f}">{escape(m)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
