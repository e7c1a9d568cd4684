"""``gems doctor``: check that the configured backends will work before a long run.

For the generator and each chat model: the kind is known, the backend can be created,
then whatever the backend itself declares it can check (``health_checks()``, see
``gems_graph.models.health``: packages, device, model folder, endpoint reachable and
serving the model), and (with ``probe=True``, one or two short calls) whether
structured output works and by which method, and whether the model returns logprobs
(soft verdicts) or not (0/1). The doctor never tests a backend's class or spec string.
Each check is a ``Row``; ``doctor`` never raises for a backend problem.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from pydantic import BaseModel

from gems_graph.errors import one_line, redact
from gems_graph.models.generator import supports_editing
from gems_graph.models.health import FAIL, OK, SKIP, WARN, Health, health_of
from gems_graph.models.llm import invoke_structured, supports_logprobs, text_block, yes_probability
from gems_graph.models.registry import (
    UnknownBackendError,
    generators,
    resolve_chat_model,
    resolve_editor,
    resolve_generator,
    resolve_prompting_guide,
    split_spec,
)


@dataclass
class Row:
    role: str
    spec: str
    check: str
    status: str
    detail: str = ""

    def __post_init__(self) -> None:
        # A server that echoes the key in its error body, or a spec with a password, is shown without it.
        self.spec, self.detail = redact(str(self.spec)), redact(str(self.detail))

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


class _Probe(BaseModel):
    """A tiny schema to see whether structured output works (an enum keeps replies short
    on servers that constrain tool calls with a grammar)."""

    answer: Literal["ok"]


def _rows(role: str, name: str, checks: list[Health]) -> list[Row]:
    return [Row(role, name, h.check, h.status, h.detail) for h in checks]


def check_generator(spec: str, role: str = "generator") -> list[Row]:
    """Create the generator (no model is loaded) and ask it for its own health checks."""
    kind, _ = split_spec(spec)
    try:
        generators._factory(kind)
    except UnknownBackendError as exc:
        return [Row(role, spec, "kind", FAIL, one_line(exc))]
    rows = [Row(role, spec, "kind", OK, kind)]
    try:
        gen = resolve_generator(spec)
    except Exception as exc:  # noqa: BLE001 - a bad spec or a failing factory, reported as a row
        return [*rows, Row(role, spec, "create", FAIL, one_line(exc))]
    rows.append(Row(role, spec, "create", OK, f"family {getattr(gen, 'family', '?')}"))
    return rows + _rows(role, spec, health_of(gen))


def check_chat_model(role: str, spec: Any, probe: bool = True) -> list[Row]:
    """Create the chat model, ask it for its own checks, then (``probe``) try structured output and logprobs."""
    name = spec if isinstance(spec, str) else type(spec).__name__
    try:
        model = resolve_chat_model(spec)
    except Exception as exc:  # noqa: BLE001 - reported as a row
        return [Row(role, name, "create", FAIL, one_line(exc))]
    rows = [Row(role, name, "create", OK, type(model).__name__), *_rows(role, name, health_of(model))]
    if any(r.status == FAIL for r in rows):
        return rows
    if not probe:
        return [*rows, Row(role, name, "structured output", SKIP, "probe disabled"), Row(role, name, "logprobs", SKIP, "probe disabled")]
    rows.append(_structured(role, name, model))
    rows.append(_logprobs(role, name, model, supports_logprobs(model)))
    return rows


def _structured(role: str, name: str, model: Any) -> Row:
    from langchain_core.messages import HumanMessage

    try:
        invoke_structured(_short(model), _Probe, [HumanMessage("Reply with the answer 'ok'.")])
    except Exception as exc:  # noqa: BLE001 - reported as a row
        return Row(role, name, "structured output", FAIL, f"{type(exc).__name__}: {one_line(exc, 200)}")
    method = getattr(model, "structured_method", lambda: None)()
    return Row(role, name, "structured output", OK, f"method: {method}" if method else "works")


def _short(model: Any) -> Any:
    """Cap probe replies: a small local model can ramble for minutes."""
    if hasattr(model, "max_tokens") and getattr(model, "max_tokens", None) is None:
        return model.model_copy(update={"max_tokens": 64})
    return model


def _logprobs(role: str, name: str, model: Any, supported: bool) -> Row:
    from langchain_core.messages import HumanMessage

    if not supported:
        return Row(role, name, "logprobs", WARN, "not supported: verdicts will be 0/1")
    question = text_block("Is there a red circle? Answer yes or no.")
    try:
        msg = _short(model).bind(logprobs=True, top_logprobs=5).invoke([HumanMessage(content=[question, _probe_image()])])
    except Exception as exc:  # noqa: BLE001 - reported as a row
        return Row(role, name, "logprobs", FAIL, f"{type(exc).__name__}: {one_line(exc, 200)}")
    meta = (msg.response_metadata or {}).get("logprobs")
    if not meta:
        return Row(role, name, "logprobs", WARN, "endpoint returned no logprobs: verdicts will be 0/1")
    p = yes_probability(msg)
    return Row(role, name, "logprobs", OK, f"P(yes)={p:.2f}" if p is not None else "returned (first token was not yes/no)")


def _probe_image() -> dict[str, Any]:
    """A red circle on white, asked about as the critic asks: a question with an image.

    Models that give P(yes) only when they look at an image (the shapes critic, VLM
    servers that route images differently) are probed the way a run uses them.
    """
    import base64
    import io

    from PIL import Image, ImageDraw

    img = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(img).ellipse((16, 16, 48, 48), fill=(220, 30, 30))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")}}


def _edits(context: Any) -> Row:
    """With edits on: does the model that takes them (the editor, else the generator) edit?"""
    role = "editor" if context.editor is not None else "generator"
    spec = context.editor if context.editor is not None else context.generator
    name = spec if isinstance(spec, str) else type(spec).__name__
    try:
        edits = supports_editing(resolve_editor(context))
    except Exception as exc:  # noqa: BLE001 - reported as a row
        return Row(role, name, "edits", FAIL, one_line(exc))
    if edits:
        return Row(role, name, "edits", OK, "edits images: the refiner may edit")
    return Row(role, name, "edits", WARN, "does not edit images: --edits has no effect, the refiner regenerates")


def _guide(context: Any) -> Row:
    """Which prompting guide the planner and refiner are shown: the setting's, the generator's or none."""
    spec = context.generator
    name = spec if isinstance(spec, str) else type(spec).__name__
    try:
        guide = resolve_prompting_guide(context)
    except Exception as exc:  # noqa: BLE001 - reported as a row
        return Row("generator", name, "prompting guide", FAIL, one_line(exc))
    if guide is None:
        return Row("generator", name, "prompting guide", OK, "none: the planner and refiner are told nothing about how to prompt it")
    source = "the prompting_guide setting" if context.prompting_guide is not None else "declared by the generator"
    return Row("generator", name, "prompting guide", OK, f"{len(guide.split())} words, {source}")


def doctor(context: Any = None, *, probe: bool = True) -> list[Row]:
    """Check the generator and chat model(s) of ``context`` (a ``GemsContext`` or its kwargs)."""
    from gems_graph.context import GemsContext

    if context is None:
        context = GemsContext()
    elif isinstance(context, dict):
        context = GemsContext(**context)
    rows = (
        check_generator(context.generator)
        if isinstance(context.generator, str)
        else [Row("generator", type(context.generator).__name__, "create", OK, "instance")]
    )
    if not any(r.status == FAIL for r in rows):
        rows.append(_guide(context))
    if isinstance(context.editor, str):
        rows += check_generator(context.editor, "editor")
    if context.refiner_edits and not any(r.status == FAIL for r in rows):
        rows.append(_edits(context))
    rows += check_chat_model("chat_model", context.chat_model, probe)
    if context.critic_model is not None and context.critic_model != context.chat_model:
        rows += check_chat_model("critic_model", context.critic_model, probe)
    return rows
