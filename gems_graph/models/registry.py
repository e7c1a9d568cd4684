"""Backend registry: spec strings -> cached generator and chat-model instances.

A spec is ``kind`` or ``kind:argument`` (``shapes``, ``diffusers:Tongyi-MAI/Z-Image-Turbo``,
``images-api:http://gpu:8000/v1#Tongyi-MAI/Z-Image-Turbo``,
``openai-compatible:http://127.0.0.1:8000/v1#Qwen3-VL-8B-Instruct``). Kinds come from
three places, so other packages can add backends without touching this one:

* built-ins, imported lazily so that e.g. diffusers is only imported when used;
* ``register_generator`` / ``register_chat_model`` calls;
* the entry-point groups ``gems_graph.generators`` and ``gems_graph.chat_models``
  (name = kind, value = a factory taking the argument string), and modules named in
  ``$GEMS_PLUGINS`` (comma-separated), imported once so they can register kinds.

Instances are cached per spec: a diffusers pipeline is loaded once per process.
Python callers may pass an instance instead of a spec; it is used as is.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from langchain_core.language_models import BaseChatModel

from gems_graph.context import NO_PROMPTING_GUIDE
from gems_graph.models.generator import Generator, prompting_guide
from gems_graph.models.retry import CallLimits, with_limits

Factory = Callable[[str], Any]

GENERATOR_GROUP = "gems_graph.generators"
CHAT_MODEL_GROUP = "gems_graph.chat_models"

# kind -> "module:function" for built-ins, imported on first use.
_BUILTIN_GENERATORS: dict[str, str] = {
    "shapes": "gems_graph.shapes.generator:from_spec",
    "diffusers": "gems_graph.backends.diffusers_generator:from_spec",
    "http": "gems_graph.backends.http_generator:from_spec",
    "openai-images": "gems_graph.backends.openai_images:from_spec",
    "images-api": "gems_graph.backends.images_api:from_spec",
}
# kind -> "module:function" that checks a spec's argument without creating the backend
# (raises ValueError naming the problem), so bad arguments fail before a run starts.
_BUILTIN_CHECKS: dict[str, str] = {
    "shapes": "gems_graph.shapes.generator:check_spec",
    "diffusers": "gems_graph.backends.diffusers_generator:check_spec",
    "http": "gems_graph.backends.http_generator:parse_spec",
    "images-api": "gems_graph.backends.images_api:parse_spec",
}
_BUILTIN_CHAT_CHECKS: dict[str, str] = {
    "shapes": "gems_graph.shapes.chat_model:from_spec",
    "shapes-oracle": "gems_graph.shapes.chat_model:oracle_from_spec",
}
_BUILTIN_CHAT_MODELS: dict[str, str] = {
    "shapes": "gems_graph.shapes.chat_model:from_spec",
    "shapes-oracle": "gems_graph.shapes.chat_model:oracle_from_spec",
    "openai": "gems_graph.backends.openai_chat:openai_from_spec",
    "openai-compatible": "gems_graph.backends.openai_chat:compatible_from_spec",
}


class UnknownBackendError(ValueError):
    """A spec names a kind nobody registered; the message lists the known kinds."""


class BackendLoadError(RuntimeError):
    """A known backend could not be created (missing package, bad argument, ...)."""


class _Registry:
    def __init__(self, what: str, builtins: dict[str, str], group: str, checks: dict[str, str]) -> None:
        self.what = what
        self.group = group
        self._builtins = dict(builtins)
        self._checks = dict(checks)
        self._factories: dict[str, Factory] = {}
        self._cache: dict[str, Any] = {}
        self._lock = threading.RLock()
        self._discovered = False

    def register(self, kind: str, factory: Factory, *, replace: bool = False) -> None:
        kind = kind.strip().lower()
        if not kind or ":" in kind:
            raise ValueError(f"invalid {self.what} kind {kind!r}")
        with self._lock:
            if kind in self._factories and not replace:
                raise ValueError(f"{self.what} kind {kind!r} is already registered (pass replace=True)")
            self._factories[kind] = factory
            self._cache = {k: v for k, v in self._cache.items() if split_spec(k)[0] != kind}

    def kinds(self) -> list[str]:
        self._discover()
        return sorted(set(self._builtins) | set(self._factories))

    def _discover(self) -> None:
        if self._discovered:
            return
        with self._lock:
            if self._discovered:
                return
            self._discovered = True
            for ep in entry_points(group=self.group):
                self._factories.setdefault(ep.name, _lazy(ep.load))
            load_plugins()

    def _factory(self, kind: str) -> Factory:
        self._discover()
        if kind in self._factories:
            return self._factories[kind]
        if kind in self._builtins:
            target = self._builtins[kind]
            return _lazy(lambda: _import(target))
        known = ", ".join(self.kinds())
        raise UnknownBackendError(f"unknown {self.what} kind {kind!r}; known kinds: {known}")

    def resolve(self, spec: Any) -> Any:
        if not isinstance(spec, str):
            return spec  # an instance passed from Python
        spec = spec.strip()
        if not spec:
            raise UnknownBackendError(f"empty {self.what} spec; known kinds: {', '.join(self.kinds())}")
        with self._lock:
            if spec in self._cache:
                return self._cache[spec]
        kind, arg = split_spec(spec)
        factory = self._factory(kind)
        try:
            instance = factory(arg)
        except (UnknownBackendError, BackendLoadError):
            raise
        except ImportError as exc:
            raise BackendLoadError(f"{self.what} {spec!r} needs a package that is not installed: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - re-raised with the spec named
            raise BackendLoadError(f"could not create {self.what} {spec!r}: {exc}") from exc
        with self._lock:
            return self._cache.setdefault(spec, instance)

    def check(self, spec: str) -> None:
        """Raise for an unknown kind, or for a built-in kind's argument its parser refuses."""
        kind, arg = split_spec(spec.strip())
        self._factory(kind)
        if kind in self._factories or kind not in self._checks:
            return  # a registered or plugged-in kind is checked when it is created
        try:
            _import(self._checks[kind])(arg)
        except ImportError:
            return  # a missing package is reported when the backend is created
        except Exception as exc:  # noqa: BLE001 - re-raised with the spec named
            raise BackendLoadError(f"invalid {self.what} {spec.strip()!r}: {exc}") from exc

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()


def _lazy(load: Callable[[], Factory]) -> Factory:
    def factory(arg: str) -> Any:
        return load()(arg)

    return factory


def _import(target: str) -> Factory:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def split_spec(spec: str) -> tuple[str, str]:
    """``"kind:arg"`` -> ``("kind", "arg")``; a bare URL is an ``http`` generator."""
    low = spec.lower()
    if low.startswith(("http://", "https://")):
        return "http", spec
    kind, _, arg = spec.partition(":")
    return kind.strip().lower(), arg.strip()


_plugins_loaded: set[str] = set()


def load_plugins() -> None:
    """Import the modules named in ``$GEMS_PLUGINS`` so they can register backends."""
    for name in filter(None, (m.strip() for m in os.environ.get("GEMS_PLUGINS", "").split(","))):
        if name in _plugins_loaded:
            continue
        _plugins_loaded.add(name)
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise BackendLoadError(f"GEMS_PLUGINS names module {name!r}, which cannot be imported: {exc}") from exc


generators = _Registry("generator", _BUILTIN_GENERATORS, GENERATOR_GROUP, _BUILTIN_CHECKS)
chat_models = _Registry("chat model", _BUILTIN_CHAT_MODELS, CHAT_MODEL_GROUP, _BUILTIN_CHAT_CHECKS)


def register_generator(kind: str, factory: Callable[[str], Generator], *, replace: bool = False) -> None:
    """Make ``kind:...`` specs resolve through ``factory(argument)``."""
    generators.register(kind, factory, replace=replace)


def register_chat_model(kind: str, factory: Callable[[str], BaseChatModel], *, replace: bool = False) -> None:
    """Make ``kind:...`` chat-model specs resolve through ``factory(argument)``."""
    chat_models.register(kind, factory, replace=replace)


def resolve_generator(spec: str | Generator, limits: CallLimits | None = None) -> Generator:
    """The generator for ``spec``, under ``limits`` (timeout, deadline) where it takes them."""
    gen = with_limits(generators.resolve(spec), limits)
    if not callable(getattr(gen, "generate", None)):
        raise BackendLoadError(f"generator {spec!r} has no generate(request) method")
    return gen


def resolve_editor(ctx: Any, limits: CallLimits | None = None) -> Generator:
    """The generator a run's edits go to: its ``editor`` when set, else its ``generator``."""
    return resolve_generator(ctx.editor if ctx.editor is not None else ctx.generator, limits)


def resolve_prompting_guide(ctx: Any) -> str | None:
    """The prompting guide a run's planner and refiner are shown: the context's
    ``prompting_guide`` when set (the text "none" or a blank one: no guide), else the
    one its generator declares (``models.generator.prompting_guide``)."""
    if ctx.prompting_guide is not None:
        text = ctx.prompting_guide.strip()
        return None if text.lower() in ("", NO_PROMPTING_GUIDE) else text
    return prompting_guide(resolve_generator(ctx.generator))


def resolve_chat_model(spec: str | BaseChatModel, limits: CallLimits | None = None) -> BaseChatModel:
    """The chat model for ``spec``, under ``limits`` (timeout, deadline) where it takes them."""
    model = with_limits(chat_models.resolve(spec), limits)
    if not isinstance(model, BaseChatModel):
        raise BackendLoadError(f"chat model {spec!r} is not a LangChain BaseChatModel")
    return model


def chat_limits(ctx: Any) -> CallLimits:
    """The chat-model limits a run's context sets (``chat_timeout``, ``chat_deadline``)."""
    return CallLimits(float(ctx.chat_timeout), float(ctx.chat_deadline))


def generation_limits(ctx: Any) -> CallLimits:
    """The generator limits a run's context sets (``generation_timeout``, ``generation_deadline``)."""
    return CallLimits(float(ctx.generation_timeout), float(ctx.generation_deadline))


def check_spec(spec: Any, registry: _Registry) -> None:
    """Fail fast on an unknown kind or a bad built-in argument without creating the backend (for CLI validation)."""
    if isinstance(spec, str):
        registry.check(spec)
