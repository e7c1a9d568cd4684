"""``gems doctor``: check that the configured backends will work before a long run.

For the generator and each chat model: the kind is known, its packages import, the
device (for local models), the endpoint is reachable and serves the model, and (with
``probe=True``, one or two short calls) whether structured output works and by which
method, and whether the endpoint returns logprobs (soft verdicts) or not (0/1).
Each check is a ``Row``; ``doctor`` never raises for a backend problem.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import asdict, dataclass
from typing import Any, Literal

from pydantic import BaseModel

from gems_graph.errors import one_line

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"


@dataclass
class Row:
    role: str
    spec: str
    check: str
    status: str
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


class _Probe(BaseModel):
    """A tiny schema to see whether structured output works (an enum keeps replies short
    on servers that constrain tool calls with a grammar)."""

    answer: Literal["ok"]


def _imports(role: str, spec: str, modules: list[str]) -> Row:
    missing = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        return Row(role, spec, "imports", FAIL, f"missing: {', '.join(missing)} (pip install {' '.join(missing)})")
    return Row(role, spec, "imports", OK, ", ".join(modules))


def _device_row(role: str, spec: str, requested: str = "auto") -> Row:
    from gems_graph.backends.diffusers_generator import pick_device

    try:
        import torch
    except ImportError:
        return Row(role, spec, "device", FAIL, "torch is not installed")
    device = pick_device(requested)
    detail = device
    if device.startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        detail = f"cuda: {props.name}, {props.total_memory / 2**30:.0f} GiB"
    status = OK if device != "cpu" else WARN
    if device == "cpu":
        detail = "cpu only: real text-to-image models will be very slow"
    return Row(role, spec, "device", status, detail)


def check_generator(spec: str) -> list[Row]:
    from gems_graph.models.registry import UnknownBackendError, generators, split_spec

    role = "generator"
    kind, arg = split_spec(spec)
    try:
        generators._factory(kind)
    except UnknownBackendError as exc:
        return [Row(role, spec, "kind", FAIL, one_line(exc))]
    rows = [Row(role, spec, "kind", OK, kind)]
    if kind == "diffusers":
        from gems_graph.backends.diffusers_generator import _looks_local, parse_spec

        rows.append(_imports(role, spec, ["torch", "diffusers", "transformers"]))
        try:
            path, kwargs = parse_spec(arg)
        except ValueError as exc:
            return [*rows, Row(role, spec, "spec", FAIL, one_line(exc))]
        rows.append(_device_row(role, spec, kwargs.get("device", "auto")))
        full = os.path.expanduser(path)
        if os.path.isdir(full):
            ok = os.path.isfile(os.path.join(full, "model_index.json"))
            rows.append(Row(role, spec, "model", OK if ok else FAIL, full if ok else f"{full} has no model_index.json"))
        elif _looks_local(path):
            rows.append(Row(role, spec, "model", FAIL, f"folder {path} does not exist"))
        else:
            rows.append(Row(role, spec, "model", WARN, f"hub id {path}: downloaded on first use unless cached"))
    elif kind == "http":
        from gems_graph.backends.http_generator import from_spec
        from gems_graph.models.generator import GenerationError

        try:
            health = from_spec(arg).health()
            rows.append(Row(role, spec, "reachable", OK, f"{health.get('generator', '?')} ({health.get('family', '?')})"))
        except (GenerationError, ValueError) as exc:
            rows.append(Row(role, spec, "reachable", FAIL, one_line(exc)))
    elif kind == "images-api":
        from gems_graph.backends.images_api import from_spec

        try:
            gen = from_spec(arg)
        except ValueError as exc:
            return [*rows, Row(role, spec, "spec", FAIL, one_line(exc))]
        rows.append(_models_row(role, spec, gen.base_url, gen.model, gen.api_key))
    elif kind == "openai-images":
        rows.append(_imports(role, spec, ["openai"]))
        key = os.environ.get("OPENAI_API_KEY") or os.environ.get("GEMS_OPENAI_API_KEY")
        rows.append(Row(role, spec, "api key", OK if key else FAIL, "set" if key else "set OPENAI_API_KEY or GEMS_OPENAI_API_KEY"))
    else:
        try:
            from gems_graph.models.registry import resolve_generator

            gen = resolve_generator(spec)
            rows.append(Row(role, spec, "create", OK, f"family {getattr(gen, 'family', '?')}"))
        except Exception as exc:  # noqa: BLE001 - reported as a row
            rows.append(Row(role, spec, "create", FAIL, one_line(exc)))
    return rows


def check_chat_model(role: str, spec: Any, probe: bool = True) -> list[Row]:
    from gems_graph.models.registry import resolve_chat_model

    name = spec if isinstance(spec, str) else type(spec).__name__
    try:
        model = resolve_chat_model(spec)
    except Exception as exc:  # noqa: BLE001 - reported as a row
        return [Row(role, name, "create", FAIL, one_line(exc))]
    rows = [Row(role, name, "create", OK, type(model).__name__)]
    from gems_graph.backends.openai_chat import GemsChatOpenAI
    from gems_graph.models.llm import supports_logprobs

    if isinstance(model, GemsChatOpenAI):
        rows.append(_reachable(role, name, model))
        if rows[-1].status == FAIL:
            return rows
    if not probe:
        return [*rows, Row(role, name, "structured output", SKIP, "probe disabled"), Row(role, name, "logprobs", SKIP, "probe disabled")]
    rows.append(_structured(role, name, model))
    rows.append(_logprobs(role, name, model, supports_logprobs(model)))
    return rows


def _reachable(role: str, name: str, model: Any) -> Row:
    key = model.openai_api_key.get_secret_value() if model.openai_api_key else None
    return _models_row(role, name, model.endpoint_url, model.model_name, key)


def _models_row(role: str, name: str, base_url: str, model: str, key: str | None) -> Row:
    """``GET {base_url}/models`` of an OpenAI-style server (chat or images): reachable, key accepted, model served."""
    import httpx

    url = base_url + "/models"
    try:
        resp = httpx.get(url, headers={"Authorization": f"Bearer {key or 'EMPTY'}"}, timeout=10)
    except httpx.HTTPError as exc:
        return Row(role, name, "reachable", FAIL, f"{url}: {type(exc).__name__}: {one_line(exc)}")
    if resp.status_code == 401:
        return Row(role, name, "reachable", FAIL, f"{url}: API key rejected (401)")
    if resp.status_code != 200:
        return Row(role, name, "reachable", WARN, f"{url}: HTTP {resp.status_code} (model list not available)")
    try:
        ids = [m.get("id") for m in resp.json().get("data", [])]
    except (ValueError, AttributeError):
        ids = []
    if ids and model not in ids:
        return Row(role, name, "reachable", WARN, f"{url} does not list {model!r}; it serves: {', '.join(map(str, ids[:8]))}")
    return Row(role, name, "reachable", OK, base_url)


def _structured(role: str, name: str, model: Any) -> Row:
    from langchain_core.messages import HumanMessage

    from gems_graph.models.llm import invoke_structured

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

    from gems_graph.models.llm import yes_probability

    if not supported:
        return Row(role, name, "logprobs", WARN, "not supported: verdicts will be 0/1")
    try:
        msg = _short(model).bind(logprobs=True, top_logprobs=5).invoke([HumanMessage("Is the sky blue on a clear day? Answer yes or no.")])
    except Exception as exc:  # noqa: BLE001 - reported as a row
        return Row(role, name, "logprobs", FAIL, f"{type(exc).__name__}: {one_line(exc, 200)}")
    meta = (msg.response_metadata or {}).get("logprobs")
    if not meta:
        return Row(role, name, "logprobs", WARN, "endpoint returned no logprobs: verdicts will be 0/1")
    p = yes_probability(msg)
    return Row(role, name, "logprobs", OK, f"P(yes)={p:.2f}" if p is not None else "returned (first token was not yes/no)")


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
    rows += check_chat_model("chat_model", context.chat_model, probe)
    if context.critic_model is not None and context.critic_model != context.chat_model:
        rows += check_chat_model("critic_model", context.critic_model, probe)
    return rows
