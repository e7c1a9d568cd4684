"""How nodes call chat models: structured output with one repair, images as data URLs.

Every node goes through these few functions, so a real LLM, a local server and the
offline shapes model are driven by the same code. Structured output uses the
model's own ``with_structured_output``; when the reply does not parse, the model is
shown its reply and the error once and asked again; after that the failure is raised
as ``StructuredOutputError`` for the node to record.
"""

from __future__ import annotations

import base64
import functools
import io
import math
import re
import threading
from dataclasses import dataclass
from typing import Any, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.output_parsers import BaseGenerationOutputParser, BaseOutputParser
from langchain_core.runnables import RunnableBinding, RunnableSequence
from langchain_core.utils.function_calling import convert_to_json_schema
from PIL import Image
from pydantic import BaseModel, ValidationError

from gems_graph.records import ImageRef

T = TypeVar("T", bound=BaseModel)

#: Images are shrunk so their longer side is at most this before being sent.
DEFAULT_MAX_IMAGE_SIDE = 1024


class StructuredOutputError(RuntimeError):
    """The model's reply did not fit the schema, even after one repair attempt."""


class MalformedReplyError(ValueError):
    """The endpoint answered, but not with a chat completion that can be read: a body that
    is not JSON, no choices, a structured reply with the wrong types.

    Backends retry it once (a garbled reply is usually a passing fault); after that
    ``invoke_structured`` treats it like any unreadable reply (repair, then
    ``StructuredOutputError``), and a plain call's caller records it.
    """


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


class _SplitStructured:
    """``llm | parser`` run as two calls, returning what ``include_raw=True`` returns.

    LangChain's ``include_raw=True`` wraps the call in ``RunnableParallel`` steps that
    start a thread pool on every call (a few ms each); running the model and then its
    parser directly gives the same ``{"raw", "parsed", "parsing_error"}`` without them.
    """

    def __init__(self, llm: Any, parser: Any) -> None:
        self.llm = llm
        self.parser = parser

    def invoke(self, messages: Any, config: Any = None) -> dict[str, Any]:
        raw = self.llm.invoke(messages, config)
        try:
            return {"raw": raw, "parsed": self.parser.invoke(raw, config), "parsing_error": None}
        except Exception as exc:  # noqa: BLE001 - a parse failure is data for the repair step
            return {"raw": raw, "parsed": None, "parsing_error": exc}


def _split(model: BaseChatModel, schema: type[T]) -> _SplitStructured | None:
    """The model step and the parser of ``with_structured_output(schema)``, when it is ``llm | parser``."""
    try:
        plain = model.with_structured_output(schema)
    except NotImplementedError:
        return None
    if not isinstance(plain, RunnableSequence) or not isinstance(plain.last, (BaseOutputParser, BaseGenerationOutputParser)):
        return None
    steps = plain.steps
    llm = _precomputed_trace_schema(steps[0])
    if len(steps) > 2:
        llm = RunnableSequence(llm, *steps[1:-1])
    return _SplitStructured(llm, plain.last)


def _precomputed_trace_schema(llm: Any) -> Any:
    """Rebind with the tracing schema already in JSON form.

    Tool-binding models tag calls with ``ls_structured_output_format``, whose pydantic
    schema LangChain converts to JSON on *every* call (~1.5 ms); converted once here.
    """
    fmt = getattr(llm, "kwargs", {}).get("ls_structured_output_format") if isinstance(llm, RunnableBinding) else None
    if not isinstance(fmt, dict) or not isinstance(fmt.get("schema"), type):
        return llm
    try:
        schema = _json_schema(fmt["schema"])
    except ValueError:
        return llm
    return RunnableBinding(
        bound=llm.bound,
        kwargs={**llm.kwargs, "ls_structured_output_format": {**fmt, "schema": schema}},
        config=llm.config,
        config_factories=llm.config_factories,
        custom_input_type=llm.custom_input_type,
        custom_output_type=llm.custom_output_type,
    )


@functools.lru_cache(maxsize=64)
def _json_schema(schema: type) -> dict[str, Any]:
    return convert_to_json_schema(schema)


_structured_cache: dict[tuple[int, type], tuple[BaseChatModel, Any]] = {}
_cache_lock = threading.Lock()


def structured_runnable(model: BaseChatModel, schema: type[T]) -> Any:
    """Structured output with the raw reply (as ``include_raw=True``), built once per model and schema."""
    key = (id(model), schema)
    with _cache_lock:
        hit = _structured_cache.get(key)
        if hit is not None and hit[0] is model:
            return hit[1]
    runnable = _split(model, schema) or model.with_structured_output(schema, include_raw=True)
    with _cache_lock:
        if len(_structured_cache) > 256:
            _structured_cache.clear()
        _structured_cache[key] = (model, runnable)  # the model is kept so its id stays unique
    return runnable


def invoke_structured(model: BaseChatModel, schema: type[T], messages: list[BaseMessage]) -> StructuredReply:
    """Ask for ``schema``; repair once on a bad reply; raise ``StructuredOutputError`` after."""
    runnable = structured_runnable(model, schema)
    out = _invoke_readable(runnable, messages)
    value, raw, error = _unpack(schema, out)
    if value is not None:
        return StructuredReply(value, raw, reasoning_of(raw))
    repair = [
        *messages,
        raw if raw is not None else AIMessage(content=""),
        HumanMessage(
            content=(f"Your previous reply could not be read: {error}. Reply again, following the {schema.__name__} schema exactly.")
        ),
    ]
    if raw is not None and getattr(raw, "tool_calls", None):
        # A tool call must be answered by a tool message before the next turn; keep it simple.
        repair[len(messages)] = AIMessage(content=str(raw.tool_calls))
    out = _invoke_readable(runnable, repair)
    value, raw2, error = _unpack(schema, out)
    if value is not None:
        return StructuredReply(value, raw2, reasoning_of(raw2) or reasoning_of(raw))
    raise StructuredOutputError(f"{schema.__name__}: the model's reply did not fit the schema after one repair: {error}")


def _invoke_readable(runnable: Any, messages: list[BaseMessage]) -> Any:
    """``runnable.invoke``, with a reply that could not be read as a parse failure to repair."""
    try:
        return runnable.invoke(messages)
    except MalformedReplyError as exc:
        return {"raw": None, "parsed": None, "parsing_error": exc}


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
    """The error in one line the model can act on: which fields were wrong, and why."""
    errors = getattr(err, "errors", None)
    if callable(errors):
        try:
            parts = [f"{'.'.join(map(str, e.get('loc', ()))) or 'reply'}: {e.get('msg', '')}" for e in errors()[:5]]
            return "; ".join(parts)[:300]
        except Exception:  # noqa: BLE001 - fall back to the text
            pass
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    return (" ".join(lines[:4]) if lines else repr(err))[:300]


def image_data_url(ref: ImageRef, max_side: int = DEFAULT_MAX_IMAGE_SIDE) -> str:
    """Read an image from disk and encode it for a chat model (only here, never in state).

    The same image is sent many times (once per check to the critic, then to the
    refiner for a few rounds), so encodings are cached by path, hash and size.
    """
    return _encoded_image(ref["path"], ref.get("sha256", ""), max_side)


#: A PNG file's signature, and the colour type (2: 8-bit RGB, byte 25 of the header) it may be sent as it is in.
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_RGB8 = (8, 2)


@functools.lru_cache(maxsize=16)
def _encoded_image(path: str, sha256: str, max_side: int) -> str:
    data = _sendable_png(path, max_side)
    if data is None:
        with Image.open(path) as opened:
            img = opened.convert("RGB")
            if max(img.size) > max_side:
                img.thumbnail((max_side, max_side))
            buf = io.BytesIO()
            img.save(buf, format="PNG")
        data = buf.getvalue()
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _sendable_png(path: str, max_side: int) -> bytes | None:
    """The file's bytes when it already is what would be sent (an 8-bit RGB PNG within ``max_side``):
    the run's own images are saved so, and decoding and re-encoding them is most of a send's cost."""
    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR" or len(data) < 26:
        return None
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return data if (data[24], data[25]) == _PNG_RGB8 and max(width, height) <= max_side else None


def image_block(ref: ImageRef, max_side: int = DEFAULT_MAX_IMAGE_SIDE) -> dict[str, Any]:
    """An OpenAI-style image content block, which LangChain chat models accept."""
    return {"type": "image_url", "image_url": {"url": image_data_url(ref, max_side)}}


def text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def supports_logprobs(model: Any) -> bool:
    """Whether the critic should ask ``model`` for top log-probabilities (soft verdicts).

    A backend declares it with a ``supports_logprobs`` attribute or property; models
    that declare nothing are asked when they take the OpenAI ``logprobs`` and
    ``top_logprobs`` fields (ChatOpenAI and its kin).
    """
    declared = getattr(model, "supports_logprobs", None)
    if isinstance(declared, bool):
        return declared
    fields = getattr(type(model), "model_fields", {})
    return "logprobs" in fields and "top_logprobs" in fields


def yes_probability(message: AIMessage) -> float | None:
    """P("yes") from the first answer token's ``top_logprobs``, when the server sent them.

    Sums the probability of every spelling of yes (" Yes", "yes", ...) and of no, and
    normalises over the two, as Soft-TIFA does; None when there are no logprobs.
    """
    content = _logprob_tokens(message)
    return _token_p_yes(content[0]) if content else None


def answer_probabilities(message: AIMessage, answers: int) -> list[float | None]:
    """P("yes") of each of ``answers`` yes/no answers in a reply, from its answer tokens' ``top_logprobs``.

    The reply's tokens that read as yes or no are taken in order as the answers' tokens;
    when there are not exactly ``answers`` of them (the reply said yes or no elsewhere too),
    which token belongs to which answer is not known, and every probability is None."""
    tokens = [t for t in _logprob_tokens(message) if _bare(t.get("token")) in ("yes", "no")]
    if len(tokens) != answers:
        return [None] * answers
    return [_token_p_yes(t) for t in tokens]


def _logprob_tokens(message: AIMessage) -> list[dict[str, Any]]:
    logprobs = (message.response_metadata or {}).get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    return [t for t in content if isinstance(t, dict)] if isinstance(content, list) else []


def _bare(token: Any) -> str:
    return str(token or "").strip().strip("\"'*.,:;").lower()


def _token_p_yes(token: dict[str, Any]) -> float | None:
    """P(yes) normalised over yes and no, from one token's top log-probabilities."""
    tops = token.get("top_logprobs") or [{"token": token.get("token"), "logprob": token.get("logprob")}]
    yes = no = 0.0
    for entry in tops:
        word = str(entry.get("token", "")).strip().lower()
        try:
            p = math.exp(float(entry.get("logprob")))
        except (TypeError, ValueError):
            continue
        if word == "yes":
            yes += p
        elif word == "no":
            no += p
    if yes + no == 0:
        return None
    return yes / (yes + no)


_YES_WORDS = frozenset({"yes", "yeah", "yep"})
_NO_WORDS = frozenset({"no", "nope"})
#: Words after which a new clause, and so a new answer, may begin ("Yes, but no").
_TURNS = frozenset({"but", "or", "actually", "however", "although", "though", "well", "wait"})
_TOKEN = re.compile(r"[a-z]+|[.,;:!?()\-]")


def _clause_starts(text: str) -> list[str]:
    """The first word of each clause of ``text`` (lower case)."""
    starts, fresh = [], True
    for token in _TOKEN.findall(text.lower()):
        if not token.isalpha():
            fresh = True
        elif fresh:
            starts.append(token)
            fresh = token in _TURNS
        else:
            fresh = token in _TURNS
    return starts


def read_verdict(text: str) -> bool | None:
    """A yes/no answer: True, False, or None when the reply is not one.

    The first word decides ("Yes, the square is red.", "No, there is no square"), unless
    another clause answers the opposite ("Yes, but no", "No... actually yes"): that, an
    empty reply, "I cannot tell" or a reply that is not an answer at all ("snowman") is
    None, which the critic records as unanswered rather than as a failed check.
    """
    starts = _clause_starts(text)
    if not starts:
        return None
    answers = {True if w in _YES_WORDS else False for w in starts if w in _YES_WORDS or w in _NO_WORDS}
    if starts[0] not in _YES_WORDS | _NO_WORDS or len(answers) != 1:
        return None
    return answers.pop()
