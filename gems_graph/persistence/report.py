"""One self-contained HTML page per run, made from ``run.json``: ``gems report RUN_DIR``.

Why a single file: a report is mailed, attached to an issue or moved to another
machine, so images are inlined as data URLs and there are no external assets.
Every string from the run (prompts, answers, notes, lessons) is escaped with
``html.escape``; a prompt is user input and may contain markup. The page sets
``document.body.dataset.imagesLoaded`` once its images have decoded, so a headless
browser test can check that nothing is broken.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Any, Optional

import typer
from PIL import Image

from gems_graph.errors import one_line
from gems_graph.persistence.run_record import ShapeError, check_shape
from gems_graph.records import is_failed
from gems_graph.terminal import fail
from gems_graph.text import word_opcodes
from gems_graph.usage import counts_of, seconds_text, tokens_text

REPORT_NAME = "report.html"
#: Largest run.json read (a 5-round run with 500 checks is about 1.3 MB).
MAX_RUN_JSON_BYTES = 64 * 1024 * 1024


class ReportError(ValueError):
    """The run folder or its ``run.json`` is missing or unreadable; the message says which."""


def load_run(run_dir: str | Path) -> dict[str, Any]:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ReportError(f"no run folder at {run_dir}")
    path = run_dir / "run.json"
    if not path.is_file():
        raise ReportError(f"{path} not found: is {run_dir} a GEMS run folder?")
    try:
        if path.stat().st_size > MAX_RUN_JSON_BYTES:
            raise ReportError(f"{path} is larger than the {MAX_RUN_JSON_BYTES // (1024 * 1024)} MB a run.json may be")
        data = json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise ReportError(f"{path}: nested too deeply to be a run.json") from None
    except (OSError, ValueError) as exc:
        raise ReportError(f"cannot read {path}: {one_line(exc)}") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path} does not hold a JSON object")
    try:
        check_shape(data)
    except ShapeError as exc:
        raise ReportError(f"{path}: field {exc}") from None
    return data


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``RUN_DIR/report.html`` (or ``out``) from ``RUN_DIR/run.json`` and return its path."""
    run_dir = Path(run_dir)
    html = render_report(load_run(run_dir), run_dir)
    target = Path(out) if out else run_dir / REPORT_NAME
    tmp = target.with_suffix(target.suffix + ".tmp")
    try:
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(target)
    finally:  # nothing half-written is left on a full disk
        tmp.unlink(missing_ok=True)
    return target


# --------------------------------------------------------------------------- pieces


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


#: Image formats a report may inline (the ones generators write).
_INLINE_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


def image_data_url(path: str | None, run_dir: Path | None = None) -> str | None:
    """The image as a data URL, or None.

    Only files that decode as images are read, and with ``run_dir`` (as the report
    does) only files inside it: a report is shared, and ``run.json`` is data that
    anyone could have edited (a ``best_image`` of ``/etc/passwd`` must not end up in
    the HTML). A run folder that was moved is searched by relative name.
    """
    if not path:
        return None
    p = Path(path)
    if run_dir is not None:
        root = run_dir.resolve()
        if not p.is_file() or not p.resolve().is_relative_to(root):
            p = run_dir / p.parent.name / p.name  # round_XX/candidate_....png under the moved folder
        if not p.is_file() or not p.resolve().is_relative_to(root):
            return None
    elif not p.is_file():
        return None
    data = p.read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
            mime = _INLINE_FORMATS.get(im.format or "")
    except Exception:  # noqa: BLE001 - not an image we inline
        return None
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}" if mime else None


def word_diff(before: str | None, after: str) -> str:
    """HTML of ``after`` with words added since ``before`` in <ins> and removed ones in <del>."""
    if before is None:
        return _e(after)
    a, b = before.split(), after.split()
    parts: list[str] = []
    for op, i1, i2, j1, j2 in word_opcodes(a, b):
        if op in ("delete", "replace"):
            parts.append(f"<del>{_e(' '.join(a[i1:i2]))}</del>")
        if op in ("insert", "replace"):
            parts.append(f"<ins>{_e(' '.join(b[j1:j2]))}</ins>")
        if op == "equal":
            parts.append(_e(" ".join(a[i1:i2])))
    return " ".join(parts)


def round_best_score(rnd: dict[str, Any]) -> float | None:
    scores = [c.get("score") for c in rnd.get("candidates") or [] if c.get("score") is not None]
    return max(scores) if scores else None


def score_chart(rounds: list[dict[str, Any]], width: int = 420, height: int = 180) -> str:
    """Inline SVG: best score of each round (dots) and best so far (line), y from 0 to 1."""
    points = [(r.get("index"), round_best_score(r)) for r in rounds]
    if not points:
        return "<p>No rounds yet.</p>"
    pad_l, pad_r, pad_t, pad_b = 44, 16, 22, 34
    n = len(points)
    x_of = (lambda i: pad_l + (width - pad_l - pad_r) * (i / (n - 1))) if n > 1 else (lambda i: pad_l + (width - pad_l - pad_r) / 2)
    y_of = lambda s: pad_t + (height - pad_t - pad_b) * (1 - s)  # noqa: E731
    out = [
        f'<svg class="chart" role="img" aria-label="best score by round" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = y_of(tick)
        out.append(
            f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{pad_l - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{tick:.2f}</text>'
        )
    best, line = None, []
    for i, (index, score) in enumerate(points):
        x = x_of(i)
        out.append(f'<text x="{x:.1f}" y="{height - 18}" text-anchor="middle" font-size="11">{_e(index)}</text>')
        if score is None:
            continue
        best = score if best is None else max(best, score)
        line.append(f"{x:.1f},{y_of(best):.1f}")
        out.append(
            f'<circle class="round-score" cx="{x:.1f}" cy="{y_of(score):.1f}" r="4" fill="#2a6fdb">'
            f"<title>round {_e(index)}: {score:.2f}</title></circle>"
        )
    if line:
        out.append(f'<polyline class="best-so-far" points="{" ".join(line)}" fill="none" stroke="#e0701b" stroke-width="2"/>')
    out.append(
        f'<text class="axis-title" x="{(pad_l + width - pad_r) / 2:.1f}" y="{height - 1}" text-anchor="middle" '
        f'font-size="11" fill="#555">round</text>'
        f'<text class="axis-title" x="10" y="{(pad_t + height - pad_b) / 2:.1f}" text-anchor="middle" font-size="11" '
        f'fill="#555" transform="rotate(-90 10 {(pad_t + height - pad_b) / 2:.1f})">score</text>'
        f'<g class="legend" font-size="11"><circle cx="{pad_l + 8}" cy="{pad_t + 4}" r="4" fill="#2a6fdb"/>'
        f'<text x="{pad_l + 16}" y="{pad_t + 8}">best of the round</text>'
        f'<line x1="{pad_l + 130}" x2="{pad_l + 146}" y1="{pad_t + 4}" y2="{pad_t + 4}" stroke="#e0701b" stroke-width="2"/>'
        f'<text x="{pad_l + 150}" y="{pad_t + 8}">best so far</text></g>'
    )
    out.append("</svg>")
    return "".join(out)


def rounds_html(run: dict[str, Any], image_width: int = 128) -> str:
    """Each round's prompt beside its candidate images and scores, as one HTML table.

    For a notebook (``display(HTML(rounds_html(state)))``): takes the graph's state or
    a loaded run.json alike.
    """
    run_dir = Path(run["run_dir"]) if run.get("run_dir") else None
    rows = []
    for r in sorted(run.get("rounds") or [], key=lambda r: r.get("index") or 0):
        cells = []
        for c in r.get("candidates") or []:
            if not c.get("image"):
                continue
            score = "-" if c.get("score") is None else f"{c['score']:.2f}"
            cells.append(
                f'<td style="text-align:center"><img src="{image_data_url(c["image"]["path"], run_dir)}" width="{image_width}" '
                f'style="image-rendering:pixelated;border:1px solid #ccc"><br>seed {_e(c.get("seed"))} · score {score}</td>'
            )
        prompt = f'<td style="text-align:left;max-width:360px"><b>round {_e(r.get("index"))}</b><br>{_e(r.get("prompt"))}</td>'
        rows.append(f"<tr>{prompt}{''.join(cells)}</tr>")
    return "<table>" + "".join(rows) + "</table>"


def check_table(checks: list[dict[str, Any]], rounds: list[dict[str, Any]]) -> str:
    """Rows are checks, columns rounds; a cell counts the round's candidates that passed."""
    if not checks:
        return "<p>No checks recorded.</p>"
    head = "".join(f"<th>round {_e(r.get('index'))}</th>" for r in rounds)
    rows = []
    for check in checks:
        cells = []
        for r in rounds:
            judged = [c for c in r.get("candidates") or [] if c.get("verdicts")]
            passed = sum(any(v.get("check_id") == check.get("id") and v.get("passed") for v in c["verdicts"]) for c in judged)
            if not judged:
                cells.append('<td class="na">-</td>')
                continue
            cls, mark = ("pass", "&#10003;") if passed == len(judged) else (("some", "&#189;") if passed else ("fail", "&#10007;"))
            label = f"{mark}" if len(judged) == 1 else f"{mark} {passed}/{len(judged)}"
            cells.append(f'<td class="{cls}">{label}</td>')
        rows.append(f'<tr><th class="q">{_e(check.get("question"))} <small>({_e(check.get("source"))})</small></th>{"".join(cells)}</tr>')
    return f'<table class="checks"><tr><th>check</th>{head}</tr>{"".join(rows)}</table>'


def usage_table(usage: Any) -> str:
    """Calls, tokens and images by node, by round and in total (``run.json``'s ``usage``)."""
    if not isinstance(usage, dict) or not isinstance(usage.get("total"), dict):
        return "<p>No usage recorded.</p>"

    def row(label: str, counts: Any) -> str:
        try:
            u = counts_of(counts)
            cells = [u["calls"], tokens_text(u, "input_tokens"), tokens_text(u, "output_tokens"), u["images_sent"], u["images_generated"]]
            cells.append(seconds_text(u) if u["images_generated"] else "-")
        except (AttributeError, KeyError, TypeError):
            cells = ["?"] * 6
        return f"<tr><th>{_e(label)}</th>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>"

    head = (
        "<tr><th></th><th>chat calls</th><th>input tokens</th><th>output tokens</th><th>images sent</th>"
        "<th>images generated</th><th>generation time</th></tr>"
    )
    nodes: dict[str, Any] = usage["nodes"] if isinstance(usage.get("nodes"), dict) else {}
    rounds = [r for r in usage.get("rounds") or [] if isinstance(r, dict)]
    by_node = "".join(row(name, counts) for name, counts in nodes.items()) + row("total", usage["total"])
    by_round = "".join(row(f"round {r.get('round')}", r.get("total")) for r in rounds)
    note = "<p><small>Tokens as the chat model's server reported them; a + marks a sum some calls reported none for.</small></p>"
    return f'<table class="usage">{head}{by_node}</table><table class="usage">{head}{by_round}</table>{note}'


def edit_strip(cand: dict[str, Any], run_dir: Path) -> str:
    """An edit candidate's making, left to right: parent -> mask -> result (empty for a generation)."""
    edit = cand.get("edit")
    if not isinstance(edit, dict):
        return ""
    parent = edit.get("parent") or {}
    name = f"round {_e(parent.get('round'))} #{_e(parent.get('index'))}"

    def thumb(ref: Any, alt: str) -> str:
        url = image_data_url((ref or {}).get("path") if isinstance(ref, dict) else None, run_dir)
        return f'<img src="{url}" alt="{alt}" width="48" height="48">' if url else f'<span class="noimg-s">{alt}</span>'

    result = thumb(cand.get("image"), "result") if cand.get("image") else '<span class="noimg-s">no result</span>'
    region = edit.get("region")
    where = "region " + ", ".join(f"{float(v):.2f}" for v in region) if isinstance(region, list) else "whole image"
    return (
        f'<div class="edit">edit of {name}: {thumb(edit.get("source"), "parent")} &rarr; '
        f"{thumb(edit.get('mask'), 'mask') if edit.get('mask') else '<span class=noimg-s>no mask</span>'} &rarr; {result}"
        f"<br><small>{_e(where)}, strength {_e(edit.get('strength'))}</small></div>"
    )


def candidate_figure(cand: dict[str, Any], checks_by_id: dict[str, str], run_dir: Path, best_key: tuple) -> str:
    image = cand.get("image") or {}
    url = image_data_url(image.get("path"), run_dir)
    score = cand.get("score")
    is_best = (cand.get("round"), cand.get("index")) == best_key
    caption = [f"#{_e(cand.get('index'))} seed {_e(cand.get('seed'))}", f"score {score:.2f}" if score is not None else "not scored"]
    if is_best:
        caption.append("<strong>best</strong>")
    if cand.get("error"):
        caption.append(f'<span class="err">{_e(cand["error"])}</span>')
    failed = [v.get("check_id") for v in cand.get("verdicts") or [] if is_failed(v)]
    body = (
        f'<img src="{url}" alt="round {_e(cand.get("round"))} candidate {_e(cand.get("index"))}" width="160" height="160">'
        if url
        else '<div class="noimg">no image</div>'
    )
    fails = (
        '<div class="failed">failed: ' + " ".join(f'<abbr title="{_e(checks_by_id.get(c, c))}">{_e(c)}</abbr>' for c in failed) + "</div>"
        if failed
        else ""
    )
    caption_html = " · ".join(caption) + fails + edit_strip(cand, run_dir)
    return f'<figure class="{"best" if is_best else ""}">{body}<figcaption>{caption_html}</figcaption></figure>'


def _first_params(rnd: dict[str, Any]) -> dict[str, Any]:
    cands = rnd.get("candidates") or []
    return {**(cands[0].get("params") or {}), "seed": cands[0].get("seed")} if cands else {}


def settings_changed(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Generation settings that differ between two rounds' first candidates ("guidance 4.0 -> 5.5, seed 0 -> 1000")."""
    keys = [k for k in ("guidance", "steps", "width", "height", "negative_prompt", "seed") if before.get(k) != after.get(k)]
    return ", ".join(f"{k} {before.get(k)} -> {after.get(k)}" for k in keys)


def _list(items: list[Any], fmt: Callable[[Any], str] = _e) -> str:
    return "<ul>" + "".join(f"<li>{fmt(i)}</li>" for i in items) + "</ul>" if items else "<p>None.</p>"


def _lesson(lesson: Any) -> str:
    if not isinstance(lesson, dict):
        return _e(lesson)
    sim = lesson.get("similarity")
    extra = f" <small>(similarity {float(sim):.2f})</small>" if isinstance(sim, (int, float)) else ""
    return f"{_e(lesson.get('text') or lesson.get('id'))}{extra}"


def _skill(skill: Any) -> str:
    return _e(skill.get("name") if isinstance(skill, dict) else skill)


CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ddd}
.prompt{font-size:16px;background:#f5f5f5;padding:8px 12px;white-space:pre-wrap}
.summary span{margin-right:18px}
.round{border:1px solid #e3e3e3;padding:10px 14px;margin:12px 0}
.round .p{white-space:pre-wrap}ins{background:#d7f5dc;text-decoration:none}del{background:#fbd8d8}
figure{display:inline-block;margin:6px 10px 6px 0;vertical-align:top;width:170px}
figure img{image-rendering:pixelated;border:1px solid #ccc;display:block}
figure.best img{border:3px solid #e0701b}figcaption{font-size:12px}
.failed{margin:2px 0 0 16px;padding:0;color:#a33}.err{color:#a33}
.noimg{width:160px;height:160px;background:#eee;display:flex;align-items:center;justify-content:center}
table.checks{border-collapse:collapse}table.checks td,table.checks th{border:1px solid #ddd;padding:4px 8px}
table.usage{border-collapse:collapse;margin-bottom:8px}table.usage td,table.usage th{border:1px solid #ddd;padding:4px 8px;text-align:right}
th.q{text-align:left;font-weight:normal}td.pass{background:#d7f5dc;text-align:center}
td.fail{background:#fbd8d8;text-align:center}td.some{background:#fff1c7;text-align:center}
.experience{color:#555;font-style:italic}
.edit{margin-top:4px}.edit img{display:inline;vertical-align:middle;border:1px solid #ccc}
.noimg-s{display:inline-block;padding:2px 4px;background:#eee}
"""

#: Sets data-images-loaded / data-images-total on <body> once every image settled.
LOADED_SCRIPT = """
(function(){
  function mark(){var imgs=[].slice.call(document.images);
    document.body.dataset.imagesTotal=imgs.length;
    document.body.dataset.imagesLoaded=imgs.filter(function(i){return i.complete&&i.naturalWidth>0;}).length;}
  mark();
  Promise.all([].slice.call(document.images).map(function(i){return i.decode?i.decode().catch(function(){}):0;})).then(mark);
  window.addEventListener('load',mark);
})();
"""


def render_report(run: dict[str, Any], run_dir: Path) -> str:
    """The HTML text of the report (see the module docstring)."""
    rounds = sorted(run.get("rounds") or [], key=lambda r: r.get("index") or 0)
    checks = run.get("checks") or []
    checks_by_id = {c.get("id"): c.get("question") for c in checks}
    best = run.get("best") or {}
    best_key = (best.get("round"), best.get("index"))
    score = run.get("score")

    sections = []
    prev_prompt = None
    prev_params: dict[str, Any] = {}
    for r in rounds:
        figures = "".join(candidate_figure(c, checks_by_id, run_dir, best_key) for c in r.get("candidates") or [])
        rs = round_best_score(r)
        exp = f'<p class="experience">Experience: {_e(r["experience"])}</p>' if r.get("experience") else ""
        params = settings_changed(prev_params, _first_params(r)) if prev_prompt is not None else ""
        edits = [c["edit"] for c in r.get("candidates") or [] if isinstance(c.get("edit"), dict)]
        if edits:
            parent = edits[0].get("parent") or {}
            changed = f" <small>(edit of round {_e(parent.get('round'))} candidate {_e(parent.get('index'))}; the edit's prompt)</small>"
        elif prev_prompt is None:
            changed = ""
        elif prev_prompt.split() == (r.get("prompt") or "").split():
            changed = f" <small>(same prompt; {_e(params or 'new seeds')})</small>"
        else:
            changed = " <small>(<ins>added</ins> / <del>removed</del> since the previous round"
            changed += f"; {_e(params)})</small>" if params else ")</small>"
        sections.append(
            f'<section class="round" id="round-{_e(r.get("index"))}"><h3>Round {_e(r.get("index"))}'
            f"{f' — best score {rs:.2f}' if rs is not None else ''}</h3>"
            f'<p class="p"><b>Prompt</b>{changed}: {word_diff(prev_prompt, r.get("prompt") or "")}</p>'
            f"<div>{figures}</div>{exp}</section>"
        )
        prev_prompt = r.get("prompt") or ""
        prev_params = _first_params(r)

    summary = [
        f"<span>status: <b>{_e(run.get('status'))}</b></span>",
        f"<span>score: <b>{score:.2f}</b></span>" if isinstance(score, (int, float)) else "<span>score: -</span>",
        f"<span>rounds: <b>{_e(run.get('rounds_used', len(rounds)))}</b></span>",
        f"<span>run: {_e(run.get('run_id'))}</span>",
    ]
    if run.get("error"):
        summary.append(f'<span class="err">error: {_e(run["error"])}</span>')
    settings = run.get("settings") or {}
    backend = ", ".join(f"{k}={_e(settings[k])}" for k in ("generator", "editor", "chat_model", "critic_model") if settings.get(k))
    best_url = image_data_url(run.get("best_image"), run_dir)
    best_html = (
        f'<figure class="best"><img src="{best_url}" alt="best image" width="240" height="240">'
        f"<figcaption>best: round {_e(best.get('round'))}, candidate {_e(best.get('index'))}</figcaption></figure>"
        if best_url
        else "<p>No image.</p>"
    )

    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>GEMS run {_e(run.get("run_id"))}</title><style>{CSS}</style></head>
<body>
<h1>GEMS run report</h1>
<p class="prompt">{_e(run.get("prompt"))}</p>
<p class="summary">{"".join(summary)}</p>
{f"<p><small>{backend}</small></p>" if backend else ""}
{best_html}
<h2>Best score by round</h2>
{score_chart(rounds)}
<h2>Checks by round</h2>
{check_table(checks, rounds)}
<h2>Rounds</h2>
{"".join(sections) or "<p>No rounds yet.</p>"}
<h2>Usage</h2>
{usage_table(run.get("usage"))}
<h2>Skills loaded</h2>
{_list(run.get("skills") or [], _skill)}
<h2>Lessons recalled</h2>
{_list(run.get("recalled_lessons") or [], _lesson)}
{f"<p>Lessons written for later runs: {len(run['lessons_written'])}</p>" if run.get("lessons_written") else ""}
<h2>Notes</h2>
{_list(run.get("notes") or [])}
<script>{LOADED_SCRIPT}</script>
</body></html>
"""


# --------------------------------------------------------------------------- CLI


def report_command(
    run_dir: Path = typer.Argument(..., help="A run folder (holds run.json), e.g. ~/.gems/runs/<id>."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Where to write the page (default RUN_DIR/report.html)."),
) -> None:
    """Write a self-contained HTML report of a run and print its path."""
    try:
        path = write_report(run_dir, out)
    except ReportError as exc:
        fail(exc)
    typer.echo(str(path))
