"""``openai:<model>`` and ``openai-compatible:<base_url>#<model>`` chat models.

Both return ``GemsChatOpenAI``, a ``ChatOpenAI`` that works across OpenAI-compatible
servers (OpenAI, vLLM, SGLang, Ollama, LM Studio, llama.cpp):

* **Structured output with a fallback chain.** ``with_structured_output(schema)``
  (no explicit ``method``) tries native ``json_schema``, then function calling with
  a forced tool choice, then JSON mode with the schema in the prompt, then plain
  text with the schema in the prompt; a method that the server rejects (400/422, or
  a 5xx whose message names the feature, as llama-cpp-python sends) or whose reply
  does not parse moves on to the next. The method that worked is
  remembered per endpoint (base URL + model) for the rest of the process.
* **Retries in one place, within one deadline.** ``gems_graph.models.retry``'s, not the
  SDK's (its client makes one attempt per call): ``max_retries`` (default 2, so three
  attempts) with exponential backoff that honours ``Retry-After``; each attempt waits
  at most ``timeout`` (the context's ``chat_timeout``, default 30 s) and the whole call
  at most ``deadline`` (``chat_deadline``, default 90 s), so a hung endpoint surfaces in
  1.5 minutes. Nodes do not retry model calls again, and errors report the true number
  of attempts and the time they took. A reply that does not read as a chat completion (a body that is not JSON, no
  choices, a structured reply with the wrong types) is asked once more, then raised
  as ``MalformedReplyError``, which structured output treats as a reply to repair.
* **Logprobs, safely.** ``model.bind(logprobs=True, top_logprobs=5)`` is always
  safe: if the server rejects logprobs the call is retried without them and the
  endpoint is remembered as not supporting them (its declared ``supports_logprobs``).
* **Reasoning kept apart.** ``reasoning_content`` / ``reasoning`` from the server's
  message is copied to ``additional_kwargs`` (``gems_graph.models.llm.reasoning_of`` reads it).
* **Clear errors.** Unreachable endpoint -> ``EndpointUnreachableError`` (a
  ``ConnectionError``, so retry logic treats it as transient) naming the URL; unknown
  model -> ``ChatModelNotFoundError``; 5xx or 429 after the retries ->
  ``EndpointServerError`` (``status_code`` set).
* **Key hygiene.** The key is a ``SecretStr`` from ``OPENAI_API_KEY`` /
  ``GEMS_OPENAI_API_KEY`` (``EMPTY`` for keyless local servers); it never appears in
  ``repr``, ``model_dump()`` or ``dumpd`` (serialised as a secret reference).

Specs: ``openai:gpt-4o-mini``, ``openai-compatible:http://127.0.0.1:8000/v1#Qwen3-VL-8B-Instruct``,
with options after the model like a URL query: ``...#Qwen3-VL-8B-Instruct?temperature=0&max_tokens=1024``
(``temperature``, ``top_p``, ``max_tokens``, ``seed``, ``timeout``, ``deadline``, ``max_retries``).
A ``timeout`` or ``deadline`` in the spec wins over the run's ``chat_timeout`` /
``chat_deadline``; ``GEMS_CHAT_MAX_RETRIES`` (default 2) sets the retries.
"""

from __future__ import annotations

import json
import os
import re
import threading
from typing import Any, Literal, cast

import openai
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.outputs import ChatResult
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, SecretStr, ValidationError, model_validator

from gems_graph.backends.api_keys import openai_api_key
from gems_graph.backends.http_client import served_model_check
from gems_graph.errors import one_line
from gems_graph.models.health import Health
from gems_graph.models.llm import MalformedReplyError
from gems_graph.models.retry import (
    DEFAULT_CHAT_DEADLINE,
    DEFAULT_CHAT_TIMEOUT,
    CallLimits,
    Deadline,
    acall_with_retry,
    call_with_retry,
    is_transient,
)

#: Structured-output methods in the order they are tried.
METHODS = ("json_schema", "function_calling", "json_mode", "prompt")
#: The methods ChatOpenAI's own with_structured_output takes.
OpenAIMethod = Literal["json_schema", "function_calling", "json_mode"]
OPENAI_BASE_URL = "https://api.openai.com/v1"

#: Attempts for a reply that cannot be read.
MALFORMED_REPLY_ATTEMPTS = 2
#: Retries of a transient failure when the spec or caller says nothing (``GEMS_CHAT_MAX_RETRIES``).
DEFAULT_RETRIES = 2
#: What parsing an unreadable body raises, in the SDK or in LangChain (JSON, pydantic, a missing field).
_UNREADABLE = (ValueError, LookupError, TypeError, AttributeError)

_lock = threading.Lock()
_limited: dict[tuple[int, CallLimits], tuple[Any, Any]] = {}
_working_method: dict[tuple[str, str], str] = {}
_no_logprobs: set[tuple[str, str]] = set()


class EndpointUnreachableError(ConnectionError):
    """The chat endpoint could not be reached (refused, DNS, timeout)."""


class ChatModelNotFoundError(LookupError):
    """The endpoint answered but does not serve the requested model."""


class EndpointServerError(RuntimeError):
    """The endpoint kept failing with a server error after the client's retries."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class GemsChatOpenAI(ChatOpenAI):
    """``ChatOpenAI`` with a structured-output fallback chain and per-endpoint memory.

    Retrying is ours (``gems_graph.models.retry``), not the SDK's: ``max_retries`` given
    here becomes ``retries`` and the SDK client makes one attempt per call, so every
    attempt is bounded by what is left of ``deadline``.
    """

    #: Times a transient failure (connection, timeout, 429, 5xx) is retried.
    retries: int = DEFAULT_RETRIES
    #: Seconds one call may take in all, retries included (``request_timeout`` bounds one attempt).
    deadline: float = DEFAULT_CHAT_DEADLINE
    #: Limits the spec set itself (``?timeout=``, ``?deadline=``): a run's context does not override them.
    pinned_limits: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _retries_are_ours(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        values = dict(values)
        if "retries" not in values:
            values["retries"] = DEFAULT_RETRIES if values.get("max_retries") is None else int(values["max_retries"])
        values["max_retries"] = 0
        if values.get("timeout") is None and values.get("request_timeout") is None:
            values["timeout"] = DEFAULT_CHAT_TIMEOUT
        return values

    def with_limits(self, limits: CallLimits) -> GemsChatOpenAI:
        """This model with a run's ``chat_timeout`` / ``chat_deadline`` (where the spec did not pin them)."""
        update: dict[str, Any] = {}
        if "timeout" not in self.pinned_limits and self.request_timeout != limits.timeout:
            update["request_timeout"] = limits.timeout
        if "deadline" not in self.pinned_limits and self.deadline != limits.deadline:
            update["deadline"] = limits.deadline
        if not update:
            return self
        key = (id(self), limits)
        with _lock:
            hit = _limited.get(key)
            if hit is not None and hit[0] is self:
                return hit[1]
            if len(_limited) > 256:
                _limited.clear()
            copy = self.model_copy(update=update)
            _limited[key] = (self, copy)  # the model is kept so its id stays unique
            return copy

    @property
    def endpoint_key(self) -> tuple[str, str]:
        return (str(self.openai_api_base or OPENAI_BASE_URL).rstrip("/"), str(self.model_name))

    @property
    def supports_logprobs(self) -> bool:
        """Declared capability: yes unless this endpoint has rejected logprobs before
        (binding them is safe anyway: the call is retried without them)."""
        return self.endpoint_key not in _no_logprobs

    @property
    def endpoint_url(self) -> str:
        return self.endpoint_key[0]

    def health_checks(self) -> list[Health]:
        """The endpoint is up, takes the key, and serves the model (no completion is made)."""
        key = self.openai_api_key.get_secret_value() if isinstance(self.openai_api_key, SecretStr) else None
        return [served_model_check(self.endpoint_url, str(self.model_name), key)]

    @property
    def _timeout_s(self) -> float | None:
        # ChatOpenAI also takes (connect, read) pairs and httpx timeouts; this class is given seconds.
        return cast(float | None, self.request_timeout)

    def __repr_args__(self) -> Any:
        # Keep repr short and obviously key-free (pydantic already masks SecretStr).
        return [("model_name", self.model_name), ("base_url", self.endpoint_url)]

    # -- calls ---------------------------------------------------------------------------

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        deadline, counts = Deadline(self.deadline), {"attempts": 0, "malformed": 0}

        def attempt() -> ChatResult:
            counts["attempts"] += 1
            return self._generate_once(messages, stop, run_manager, timeout=deadline.cap(self._timeout_s), **kwargs)

        try:
            return call_with_retry(
                attempt, attempts=self.retries + MALFORMED_REPLY_ATTEMPTS, retry_if=self._retry_if(counts), deadline=deadline
            )
        except openai.APIError as exc:
            raise self._translate(exc, counts["attempts"], deadline) from exc

    async def _agenerate(
        self, messages: list[BaseMessage], stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        deadline, counts = Deadline(self.deadline), {"attempts": 0, "malformed": 0}

        async def attempt() -> ChatResult:
            counts["attempts"] += 1
            return await self._agenerate_once(messages, stop, run_manager, timeout=deadline.cap(self._timeout_s), **kwargs)

        try:
            return await acall_with_retry(
                attempt, attempts=self.retries + MALFORMED_REPLY_ATTEMPTS, retry_if=self._retry_if(counts), deadline=deadline
            )
        except openai.APIError as exc:
            raise self._translate(exc, counts["attempts"], deadline) from exc

    def _retry_if(self, counts: dict[str, int]) -> Any:
        """Transient failures up to ``retries`` times, an unreadable reply once more."""

        def retry_if(exc: BaseException) -> bool:
            if isinstance(exc, MalformedReplyError):
                counts["malformed"] += 1
                return counts["malformed"] < MALFORMED_REPLY_ATTEMPTS
            return is_transient(exc) and counts["attempts"] - counts["malformed"] <= self.retries

        return retry_if

    def _generate_once(self, messages: list[BaseMessage], stop: list[str] | None, run_manager: Any, **kwargs: Any) -> ChatResult:
        kwargs = self._drop_logprobs_if_unsupported(kwargs)
        try:
            return self._readable(super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs))
        except openai.BadRequestError as exc:
            if _wants_logprobs(self, kwargs) and "logprob" in str(exc).lower():
                with _lock:
                    _no_logprobs.add(self.endpoint_key)
                return self._generate_once(messages, stop, run_manager, **kwargs)
            raise
        except openai.APIError:
            raise
        except _UNREADABLE as exc:
            raise self._malformed(exc) from exc

    async def _agenerate_once(self, messages: list[BaseMessage], stop: list[str] | None, run_manager: Any, **kwargs: Any) -> ChatResult:
        kwargs = self._drop_logprobs_if_unsupported(kwargs)
        try:
            return self._readable(await super()._agenerate(messages, stop=stop, run_manager=run_manager, **kwargs))
        except openai.BadRequestError as exc:
            if _wants_logprobs(self, kwargs) and "logprob" in str(exc).lower():
                with _lock:
                    _no_logprobs.add(self.endpoint_key)
                return await self._agenerate_once(messages, stop, run_manager, **kwargs)
            raise
        except openai.APIError:
            raise
        except _UNREADABLE as exc:
            raise self._malformed(exc) from exc

    def _readable(self, result: ChatResult) -> ChatResult:
        if not result.generations:
            raise self._malformed("the reply has no choices")
        return result

    def _malformed(self, what: Exception | str) -> MalformedReplyError:
        if isinstance(what, MalformedReplyError):
            return what
        url, model = self.endpoint_key
        detail = what if isinstance(what, str) else f"{type(what).__name__}: {one_line(what, 200)}"
        return MalformedReplyError(f"chat endpoint {url} (model {model!r}) sent a reply that could not be read ({detail})")

    def _drop_logprobs_if_unsupported(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        if self.endpoint_key in _no_logprobs and _wants_logprobs(self, kwargs):
            kwargs = {k: v for k, v in kwargs.items() if k not in ("logprobs", "top_logprobs")}
            kwargs["logprobs"] = None  # also overrides a model-level logprobs=True
        return kwargs

    def _translate(self, exc: openai.APIError, attempts: int, deadline: Deadline) -> Exception:
        url, model = self.endpoint_key
        tried = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        if isinstance(exc, openai.APIConnectionError):  # includes timeouts
            if isinstance(exc, openai.APITimeoutError):
                return EndpointUnreachableError(
                    f"chat endpoint {url} timed out (model {model!r}): no answer after {tried} in {deadline.elapsed():.1f} s "
                    f"(chat_timeout {_seconds(self.request_timeout)} s, chat_deadline {_seconds(self.deadline)} s)"
                )
            return EndpointUnreachableError(f"chat endpoint {url} cannot be reached (model {model!r}) after {tried}: {exc}")
        if isinstance(exc, openai.NotFoundError):
            return ChatModelNotFoundError(f"chat endpoint {url} does not serve model {model!r}: {_server_message(exc)}")
        if isinstance(exc, openai.AuthenticationError):
            return PermissionError(
                f"chat endpoint {url} rejected the API key (set OPENAI_API_KEY or GEMS_OPENAI_API_KEY): {_server_message(exc)}"
            )
        if isinstance(exc, openai.InternalServerError) or getattr(exc, "status_code", 0) >= 500:
            status = getattr(exc, "status_code", None)
            return EndpointServerError(
                f"chat endpoint {url} (model {model!r}) failed with HTTP {status} after {tried}: {_server_message(exc)}",
                status,
            )
        if isinstance(exc, openai.RateLimitError):
            return EndpointServerError(
                f"chat endpoint {url} (model {model!r}) kept refusing with HTTP 429 (rate limited) after {tried}: {_server_message(exc)}",
                429,
            )
        return exc

    def _create_chat_result(self, response: Any, generation_info: dict | None = None) -> ChatResult:
        result = super()._create_chat_result(response, generation_info)
        try:
            raw = (
                response
                if isinstance(response, dict)
                else response.model_dump(exclude={"choices": {"__all__": {"message": {"parsed"}}}}, warnings=False)
            )
            for gen, choice in zip(result.generations, raw.get("choices") or []):
                msg = choice.get("message") or {}
                for key in ("reasoning_content", "reasoning"):
                    if isinstance(msg.get(key), str) and msg[key].strip():
                        gen.message.additional_kwargs.setdefault("reasoning_content", msg[key])
                        break
        except Exception:  # noqa: BLE001 - reasoning is optional metadata
            pass
        return result

    # -- structured output ---------------------------------------------------------------

    def with_structured_output(
        self, schema: Any = None, *, method: str | None = None, include_raw: bool = False, strict: bool | None = None, **kwargs: Any
    ) -> Runnable:
        """Without ``method``: the fallback chain (see the module docstring)."""
        if method is not None or schema is None:
            # ChatOpenAI checks the name.
            return super().with_structured_output(
                schema, method=cast(OpenAIMethod, method or "json_schema"), include_raw=include_raw, strict=strict, **kwargs
            )
        chain = _StructuredChain(self, schema, kwargs)
        if include_raw:
            return RunnableLambda(chain.invoke, afunc=chain.ainvoke, name="gems_structured_output")

        def parsed_only(out: dict[str, Any]) -> Any:
            if out.get("parsing_error") is not None:
                raise out["parsing_error"]
            return out["parsed"]

        return RunnableLambda(chain.invoke, afunc=chain.ainvoke, name="gems_structured_output") | parsed_only

    def structured_method(self) -> str | None:
        """The structured-output method remembered for this endpoint, if any worked yet."""
        return _working_method.get(self.endpoint_key)


def _seconds(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def _wants_logprobs(model: ChatOpenAI, kwargs: dict[str, Any]) -> bool:
    return bool(kwargs.get("logprobs") or kwargs.get("top_logprobs") or model.logprobs)


def _server_message(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error")
        inner = error if isinstance(error, dict) else body
        msg = inner.get("message") or inner.get("detail")
        if msg:
            return str(msg)[:300]
    return str(getattr(exc, "message", exc))[:300]


# Errors that mean "this endpoint does not do that method": move on to the next one.
# Some servers (llama-cpp-python) answer an unknown response_format with a 500 whose
# body is a request-validation error, so a server error naming the feature counts too.
_UNSUPPORTED = (openai.BadRequestError, openai.UnprocessableEntityError, EndpointServerError)
_FEATURE_WORDS = re.compile(r"response_format|json_schema|json_object|tool_choice|tools|function|validation error", re.I)


def _unsupported(exc: Exception) -> bool:
    return not isinstance(exc, EndpointServerError) or bool(_FEATURE_WORDS.search(str(exc)))


class _StructuredChain:
    """Runs the methods in order for one schema; returns ``{"raw", "parsed", "parsing_error"}``."""

    def __init__(self, model: GemsChatOpenAI, schema: Any, kwargs: dict[str, Any]) -> None:
        self.model = model
        self.schema = schema
        self.kwargs = kwargs

    def _order(self) -> list[str]:
        known = _working_method.get(self.model.endpoint_key)
        return [known, *[m for m in METHODS if m != known]] if known else list(METHODS)

    def _runnable(self, method: str) -> Runnable:
        if method in ("json_schema", "function_calling"):
            return ChatOpenAI.with_structured_output(
                self.model, self.schema, method=cast(OpenAIMethod, method), include_raw=True, **self.kwargs
            )
        bound = (
            self.model.bind(response_format={"type": "json_object"}, **self.kwargs)
            if method == "json_mode"
            else self.model.bind(**self.kwargs)
        )

        def call(msgs: Any, config: RunnableConfig | None = None) -> dict[str, Any]:
            return _parse_json_reply(self.schema, bound.invoke(_with_schema_prompt(self.schema, msgs), config))

        return RunnableLambda(call, afunc=None)

    def _arunnable_call(self, method: str) -> Any:
        if method in ("json_schema", "function_calling"):
            return ChatOpenAI.with_structured_output(
                self.model, self.schema, method=cast(OpenAIMethod, method), include_raw=True, **self.kwargs
            ).ainvoke
        bound = (
            self.model.bind(response_format={"type": "json_object"}, **self.kwargs)
            if method == "json_mode"
            else self.model.bind(**self.kwargs)
        )

        async def call(msgs: Any, config: RunnableConfig | None = None) -> dict[str, Any]:
            return _parse_json_reply(self.schema, await bound.ainvoke(_with_schema_prompt(self.schema, msgs), config))

        return call

    def _done(self, method: str, out: Any, known: str | None) -> bool:
        ok = isinstance(out, dict) and out.get("parsed") is not None and out.get("parsing_error") is None
        if ok and known != method:
            with _lock:
                _working_method[self.model.endpoint_key] = method
        # A remembered method's parse failure is returned as is: the caller repairs it.
        return ok or method == known

    def invoke(self, messages: Any, config: RunnableConfig | None = None) -> dict[str, Any]:
        known = _working_method.get(self.model.endpoint_key)
        last_out: Any = None
        last_exc: Exception | None = None
        for method in self._order():
            try:
                out = self._runnable(method).invoke(messages, config)
            except MalformedReplyError as exc:
                out = {"raw": None, "parsed": None, "parsing_error": exc}
            except _UNSUPPORTED as exc:
                if not _unsupported(exc):
                    raise
                last_exc = exc
                continue
            if self._done(method, out, known):
                return out
            last_out = out
        if last_out is not None:
            return last_out
        raise last_exc  # type: ignore[misc]

    async def ainvoke(self, messages: Any, config: RunnableConfig | None = None) -> dict[str, Any]:
        known = _working_method.get(self.model.endpoint_key)
        last_out: Any = None
        last_exc: Exception | None = None
        for method in self._order():
            try:
                out = await self._arunnable_call(method)(messages, config)
            except MalformedReplyError as exc:
                out = {"raw": None, "parsed": None, "parsing_error": exc}
            except _UNSUPPORTED as exc:
                if not _unsupported(exc):
                    raise
                last_exc = exc
                continue
            if self._done(method, out, known):
                return out
            last_out = out
        if last_out is not None:
            return last_out
        raise last_exc  # type: ignore[misc]


def _json_schema_of(schema: Any) -> dict[str, Any]:
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return schema.model_json_schema()
    if isinstance(schema, dict) and "properties" in schema:
        return schema
    return convert_to_openai_tool(schema)["function"]["parameters"]


def _with_schema_prompt(schema: Any, messages: Any) -> list[BaseMessage]:
    """Tell the model the schema when the server cannot enforce it."""
    if isinstance(messages, PromptValue):
        messages = messages.to_messages()
    elif isinstance(messages, str):
        from langchain_core.messages import HumanMessage

        messages = [HumanMessage(content=messages)]
    note = SystemMessage(
        content="Reply with one JSON object and nothing else. It must follow this JSON schema:\n" + json.dumps(_json_schema_of(schema))
    )
    return [*messages, note]


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


def extract_json(text: str) -> Any:
    """The first JSON object in ``text`` (inside a code fence or bare); ``ValueError`` if none."""
    m = _FENCE.search(text)
    if m:
        text = m.group(1)
    start = text.find("{")
    if start < 0:
        raise ValueError("no JSON object in the reply")
    obj, _ = json.JSONDecoder().raw_decode(text[start:])
    return obj


def _parse_json_reply(schema: Any, raw: AIMessage) -> dict[str, Any]:
    text = raw.content if isinstance(raw.content, str) else "".join(b.get("text", "") for b in raw.content if isinstance(b, dict))
    try:
        data = extract_json(text)
        parsed = schema.model_validate(data) if isinstance(schema, type) and issubclass(schema, BaseModel) else data
        return {"raw": raw, "parsed": parsed, "parsing_error": None}
    except (ValueError, ValidationError) as exc:
        return {"raw": raw, "parsed": None, "parsing_error": exc}


# -- factories -------------------------------------------------------------------------------


_OPTION_TYPES: dict[str, type] = {
    "temperature": float,
    "top_p": float,
    "max_tokens": int,
    "timeout": float,
    "deadline": float,
    "max_retries": int,
    "seed": int,
}


def _split_options(model: str) -> tuple[str, dict[str, Any]]:
    """``"gpt-4o-mini?temperature=0&max_tokens=512"`` -> (model, ChatOpenAI keyword arguments)."""
    from urllib.parse import parse_qsl

    name, _, query = model.partition("?")
    opts: dict[str, Any] = {"max_retries": int(os.environ.get("GEMS_CHAT_MAX_RETRIES", str(DEFAULT_RETRIES)))}
    pinned = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in _OPTION_TYPES:
            raise ValueError(f"unknown chat-model option {key!r}; known: {', '.join(_OPTION_TYPES)}")
        try:
            opts[key] = _OPTION_TYPES[key](value)
        except ValueError:
            raise ValueError(f"chat-model option {key}={value!r} must be a {_OPTION_TYPES[key].__name__}") from None
        if key in ("timeout", "deadline"):
            if not 0 < opts[key] <= 86400:
                raise ValueError(f"chat-model option {key}={value!r} must be a number of seconds above 0 (at most 86400)")
            pinned.append(key)
    return name.strip(), {**opts, "pinned_limits": tuple(pinned)}


def openai_from_spec(arg: str) -> GemsChatOpenAI:
    """``openai:<model>``: OpenAI itself (``OPENAI_BASE_URL`` is honoured by the SDK)."""
    model, opts = _split_options(arg.strip())
    if not model:
        raise ValueError("openai needs a model name, e.g. openai:gpt-4o-mini")
    key = openai_api_key(official=True)
    if not key:
        raise ValueError(f"openai:{model} needs an API key: set OPENAI_API_KEY or GEMS_OPENAI_API_KEY")
    base_url = os.environ.get("OPENAI_BASE_URL") or None
    return GemsChatOpenAI(model=model, api_key=SecretStr(key), base_url=base_url, **opts)


def compatible_from_spec(arg: str) -> GemsChatOpenAI:
    """``openai-compatible:<base_url>#<model>``; key ``GEMS_OPENAI_API_KEY``, else ``OPENAI_API_KEY``, else ``EMPTY``."""
    base_url, sep, model = arg.strip().rpartition("#")
    model, opts = _split_options(model)
    if not sep or not base_url or not model:
        raise ValueError(
            f"openai-compatible spec must be <base_url>#<model>, e.g. http://127.0.0.1:8000/v1#Qwen3-VL-8B-Instruct; got {arg!r}"
        )
    if not base_url.lower().startswith(("http://", "https://")):
        raise ValueError(f"openai-compatible base URL must start with http:// or https://, got {base_url!r}")
    key = openai_api_key(official=False) or "EMPTY"
    return GemsChatOpenAI(model=model, api_key=SecretStr(key), base_url=base_url.rstrip("/"), **opts)
