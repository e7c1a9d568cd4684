"""How nodes call chat models: structured output with one repair, images as data URLs.

Every node goes through these few functions, so a real LLM, a local server and the
offline shapes model are driven by the same code. Structured output uses the
model's own ``with_structured_output``; when the reply does not parse, the model is
shown its reply and the error once and asked again; after that the failure is raised
as ``StructuredOutputError`` for the node to record.
"""

from __future__ import annotations

import base64
import io
import math
import threading
from dataclasses import dataclass
from typing import Any, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from PIL import Image
from pydantic import BaseModel, ValidationError

from gems_graph.state import ImageRef

T = TypeVar("T", bound=BaseModel)

#: Images are shrunk so their longer side is at most this before being sent.
DEFAULT_MAX_IMAGE_SIDE = 1024


class StructuredOutputError(RuntimeError):
    """The model's reply did not fit the schema, even after one repair attempt."""


@dataclass
class StructuredReply:
    value: Any
    raw: AIMessage | None
    #: Reasoning text the model returned beside its answer (e.g. ``reasoning_content``).
    thought: str | None


def reasoning_of(message: AIMessage | None) -> str | None:
    """The model's reasoning content if the server returned it, never the answer text."""
    if message is None:
        return None
    extra = message.additional_kwargs or {}
    for key in ("reasoning_content", "reasoning"):
        value = extra.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    for block in message.content if isinstance(message.content, list) else []:
        if isinstance(block, dict) and block.get("type") in ("reasoning", "thinking"):
            text = block.get("reasoning") or block.get("thinking") or block.get("text")
            if text:
                return str(text).strip()
    return None


_structured_cache: dict[tuple[int, type], tuple[BaseChatModel, Any]] = {}
_cache_lock = threading.Lock()


def structured_runnable(model: BaseChatModel, schema: type[T]) -> Any:
    """``model.with_structured_output(schema, include_raw=True)``, built once per model and schema."""
    key = (id(model), schema)
    with _cache_lock:
        hit = _structured_cache.get(key)
        if hit is not None and hit[0] is model:
            return hit[1]
    runnable = model.with_structured_output(schema, include_raw=True)
    with _cache_lock:
        if len(_structured_cache) > 256:
            _structured_cache.clear()
        _structured_cache[key] = (model, runnable)  # the model is kept so its id stays unique
    return runnable


def invoke_structured(model: BaseChatModel, schema: type[T], messages: list[BaseMessage]) -> StructuredReply:
    """Ask for ``schema``; repair once on a bad reply; raise ``StructuredOutputError`` after."""
    runnable = structured_runnable(model, schema)
    out = runnable.invoke(messages)
    value, raw, error = _unpack(schema, out)
    if value is not None:
        return StructuredReply(value, raw, reasoning_of(raw))
    repair = [
        *messages,
        raw if raw is not None else AIMessage(content=""),
        HumanMessage(
            content=(
                f"Your previous reply could not be read: {error}. Reply again, following "
                f"the {schema.__name__} schema exactly."
            )
        ),
    ]
    if raw is not None and getattr(raw, "tool_calls", None):
        # A tool call must be answered by a tool message before the next turn; keep it simple.
        repair[len(messages)] = AIMessage(content=str(raw.tool_calls))
    out = runnable.invoke(repair)
    value, raw2, error = _unpack(schema, out)
    if value is not None:
        return StructuredReply(value, raw2, reasoning_of(raw2) or reasoning_of(raw))
    raise StructuredOutputError(f"{schema.__name__}: the model's reply did not fit the schema after one repair: {error}")


def _unpack(schema: type[T], out: Any) -> tuple[T | None, AIMessage | None, str]:
    if isinstance(out, dict) and "raw" in out:
        raw = out.get("raw")
        parsed = out.get("parsed")
        err = out.get("parsing_error")
    else:
        raw, parsed, err = None, out, None
    if parsed is not None and not isinstance(parsed, schema):
        try:
            parsed = schema.model_validate(parsed)
        except ValidationError as exc:
            parsed, err = None, exc
    if parsed is None and err is None:
        err = "no structured answer in the reply"
    return parsed, raw, "" if err is None else _short(err)


def _short(err: Any) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else repr(err))[:300]


def image_data_url(ref: ImageRef, max_side: int = DEFAULT_MAX_IMAGE_SIDE) -> str:
    """Read an image from disk and encode it for a chat model (only here, never in state)."""
    with Image.open(ref["path"]) as img:
        img = img.convert("RGB")
        if max(img.size) > max_side:
            img.thumbnail((max_side, max_side))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def image_block(ref: ImageRef, max_side: int = DEFAULT_MAX_IMAGE_SIDE) -> dict[str, Any]:
    """An OpenAI-style image content block, which LangChain chat models accept."""
    return {"type": "image_url", "image_url": {"url": image_data_url(ref, max_side)}}


def text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def yes_probability(message: AIMessage) -> float | None:
    """P("yes") from the first answer token's ``top_logprobs``, when the server sent them.

    Sums the probability of every spelling of yes (" Yes", "yes", ...) and of no, and
    normalises over the two, as Soft-TIFA does; None when there are no logprobs.
    """
    meta = message.response_metadata or {}
    logprobs = meta.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not content:
        return None
    first = content[0]
    tops = first.get("top_logprobs") or [{"token": first.get("token"), "logprob": first.get("logprob")}]
    yes = no = 0.0
    for entry in tops:
        token = str(entry.get("token", "")).strip().lower()
        try:
            p = math.exp(float(entry.get("logprob")))
        except (TypeError, ValueError):
            continue
        if token == "yes":
            yes += p
        elif token == "no":
            no += p
    if yes + no == 0:
        return None
    return yes / (yes + no)


def answer_is_yes(text: str) -> bool:
    """Read a yes/no answer: the first word decides."""
    words = text.strip().lower().lstrip("*\"' ").split()
    return bool(words) and words[0].strip(".,!:;*\"'") == "yes"
