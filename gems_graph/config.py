"""Layered configuration: a preset < ``gems.toml`` < ``GEMS_*`` environment variables < CLI flags.

Every key is a ``GemsContext`` field, spelt the same in each layer::

    # gems.toml
    generator = "diffusers:Tongyi-MAI/Z-Image-Turbo"
    chat_model = "openai-compatible:http://127.0.0.1:8000/v1#Qwen3-VL-8B-Instruct"
    max_rounds = 5
    candidates_per_round = 2

    # environment
    GEMS_CHAT_MODEL=openai:gpt-4o-mini GEMS_MAX_ROUNDS=3 gems run "..."

The file is the one given by ``--config``, else ``$GEMS_CONFIG``, else ``./gems.toml``
if it exists, else ``$GEMS_HOME/gems.toml`` if it exists (none is fine). A file key
that is not a setting, or a value of the wrong type, is an error naming the key and
the file. Environment values are parsed by the field's type (``none`` or an empty
value means None for optional fields, except the texts in ``NONE_IS_TEXT``; lists are
comma-separated); ``GEMS_*`` variables that are not settings (``GEMS_HOME``,
``GEMS_CONFIG``, ``GEMS_PLUGINS``, ``GEMS_OPENAI_API_KEY``, ...) are left to their own
readers. API keys never go in the file: they come from the environment only (see
``gems_graph.backends.openai_chat``).

A preset (``gems_graph.presets``, e.g. ``gems-paper``) replaces the defaults it
names; it is picked by the ``preset`` argument (``--preset``), else ``GEMS_PRESET``,
else a top-level ``preset = "NAME"`` in the file. Its values are reported with the
source ``preset:NAME``.
"""

from __future__ import annotations

import difflib
import json
import os
import tomllib
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from gems_graph.context import ConfigError, GemsContext
from gems_graph.persistence.home import gems_home
from gems_graph.presets import GENERATION_KEYS, get_preset, preset_generation

ENV_PREFIX = "GEMS_"
#: The file key (and ``GEMS_PRESET``) that names a preset; not a ``GemsContext`` field.
PRESET_KEY = "preset"


class ConfigFileError(ConfigError):
    """The config file cannot be read or holds an unknown key or a bad value."""


@dataclass
class LoadedConfig:
    """The merged settings and where each came from (``default``, ``file``, ``env``, ``flag``)."""

    values: dict[str, Any]
    sources: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    #: The preset in effect, if any.
    preset: str | None = None

    def context(self) -> GemsContext:
        return GemsContext(**self.values)


def _field_types() -> dict[str, Any]:
    hints = typing.get_type_hints(GemsContext)
    return {f.name: hints[f.name] for f in fields(GemsContext)}


def _base_types(tp: Any) -> tuple[set[type], bool, tuple | None]:
    """(plain types allowed, None allowed, Literal choices or None) for a field annotation."""
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return {type(a) for a in typing.get_args(tp)}, False, typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        allowed: set[type] = set()
        optional = False
        choices: tuple | None = None
        for arg in typing.get_args(tp):
            if arg is type(None):
                optional = True
                continue
            sub, _, ch = _base_types(arg)
            allowed |= sub
            choices = ch or choices
        return allowed, optional, choices
    if origin in (list, tuple):
        return {list}, False, None
    return ({tp} if isinstance(tp, type) else {object}), False, None


def _default(f: Any) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def find_config_file(explicit: str | os.PathLike | None = None) -> Path | None:
    """The config file to read, following the documented search order (None: no file)."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("GEMS_CONFIG")
    if env:
        return Path(env).expanduser()
    for candidate in (Path.cwd() / "gems.toml", gems_home() / "gems.toml"):
        if candidate.is_file():
            return candidate
    return None


def _unknown(key: str, where: str, known: list[str]) -> ConfigFileError:
    near = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else f"; known keys: {', '.join(known)}"
    return ConfigFileError(f"{where}: unknown key {key!r}{hint}")


def _check_type(name: str, value: Any, tp: Any, where: str) -> Any:
    allowed, optional, choices = _base_types(tp)
    if value is None and optional:
        return None
    if choices is not None and value not in choices:
        raise ConfigFileError(f"{where}: {name} = {value!r} must be one of {', '.join(map(repr, choices))}")
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if list in allowed:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        raise ConfigFileError(f"{where}: {name} = {value!r} must be a list of strings")
    if object in allowed or any(isinstance(value, t) and not (t is int and isinstance(value, bool)) for t in allowed):
        return value
    want = " or ".join(sorted(t.__name__ for t in allowed)) + (" or none" if optional else "")
    raise ConfigFileError(f"{where}: {name} = {value!r} must be {want}")


def read_config_file(path: Path) -> dict[str, Any]:
    """Read and type-check a ``gems.toml``; every error names the file."""
    if not path.is_file():
        raise ConfigFileError(f"config file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigFileError(f"{path}: cannot read it: {exc}") from exc
    types_ = _field_types()
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == PRESET_KEY:
            if not isinstance(value, str):
                raise ConfigFileError(f"{path}: {PRESET_KEY} = {value!r} must be a preset name (a string)")
            out[key] = value
            continue
        if key not in types_:
            raise _unknown(key, str(path), sorted(types_))
        out[key] = _check_type(key, value, types_[key], str(path))
    return out


#: Optional text settings where "none" and a blank value are values of their own, not None:
#: ``GEMS_PROMPTING_GUIDE=none`` removes the generator's guide, where None would keep it.
NONE_IS_TEXT = ("prompting_guide",)


def parse_env_value(name: str, raw: str, tp: Any) -> Any:
    """Turn an environment string into the field's type; ``ConfigError`` names the variable."""
    allowed, optional, choices = _base_types(tp)
    env = ENV_PREFIX + name.upper()
    text = raw.strip()
    if name in NONE_IS_TEXT:
        return text
    if optional and text.lower() in ("", "none", "null"):
        return None
    if list in allowed:  # comma-separated, like PATH-style lists
        return [part.strip() for part in text.split(",") if part.strip()]
    try:
        if bool in allowed:
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError("use true or false")
        if int in allowed:
            return int(text)
        if float in allowed:
            return float(text)
    except ValueError as exc:
        raise ConfigError(f"{env}={raw!r}: {exc}") from None
    if choices is not None and text not in choices:
        raise ConfigError(f"{env}={raw!r}: must be one of {', '.join(map(str, choices))}")
    return text


#: ``GEMS_*`` variables that are not settings but are read elsewhere (home, plugins, keys, clients).
NON_SETTING_VARIABLES = (
    "HOME",
    "CONFIG",
    "PRESET",
    "PLUGINS",
    "SKILLS_PATH",
    "OPENAI_API_KEY",
    "IMAGES_API_KEY",
    "CHAT_MAX_RETRIES",
    "CPU_THREADS",  # the models' thread budget (gems_graph.models.cpu_threads)
    "WORKER_PROCESSES",
    "EMBEDDING_RUNTIME",  # MiniLM on ONNX Runtime or torch (gems_graph.memory.embeddings)
    "CACHE_DIR",
)


def unknown_env(environ: typing.Mapping[str, str] | None = None) -> list[str]:
    """One warning per ``GEMS_*`` variable that nothing reads (a typo, most likely)."""
    environ = os.environ if environ is None else environ
    known = [ENV_PREFIX + n.upper() for n in _field_types()] + [ENV_PREFIX + n for n in NON_SETTING_VARIABLES]
    out = []
    for name in sorted(n for n in environ if n.startswith(ENV_PREFIX) and n not in known):
        near = difflib.get_close_matches(name, known, n=1)
        out.append(f"{name} is not a GEMS setting and is ignored" + (f" (did you mean {near[0]}?)" if near else ""))
    return out


def read_env(environ: typing.Mapping[str, str] | None = None) -> dict[str, Any]:
    environ = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    for name, tp in _field_types().items():
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw is not None:
            out[name] = parse_env_value(name, raw, tp)
    return out


def load_config(
    flags: dict[str, Any] | None = None,
    *,
    config_path: str | os.PathLike | None = None,
    environ: typing.Mapping[str, str] | None = None,
    preset: str | None = None,
) -> LoadedConfig:
    """Merge defaults < preset < file < env < flags (flags that are None are "not given")."""
    environ = os.environ if environ is None else environ
    loaded = LoadedConfig(values={}, sources={})
    for f in fields(GemsContext):
        default = _default(f)
        if default is not MISSING:
            loaded.values[f.name] = default
            loaded.sources[f.name] = "default"
    path = find_config_file(config_path)
    file_values = read_config_file(path) if path is not None else {}
    preset = preset or environ.get(ENV_PREFIX + PRESET_KEY.upper()) or file_values.pop(PRESET_KEY, None)
    file_values.pop(PRESET_KEY, None)
    chosen = get_preset(preset) if preset else None
    if chosen is not None:
        loaded.preset = chosen.name
        for k, v in chosen.values.items():
            loaded.values[k] = v
            loaded.sources[k] = f"preset:{chosen.name}"
    if path is not None:
        loaded.path = path
        for k, v in file_values.items():
            loaded.values[k] = v
            loaded.sources[k] = f"file:{path}"
    for k, v in read_env(environ).items():
        loaded.values[k] = v
        loaded.sources[k] = f"env:{ENV_PREFIX}{k.upper()}"
    known = set(loaded.values) | {f.name for f in fields(GemsContext)}
    for k, v in (flags or {}).items():
        if v is None:
            continue
        if k not in known:
            raise _unknown(k, "flags", sorted(known))
        loaded.values[k] = v
        loaded.sources[k] = "flag"
    if chosen is not None:
        # Per-family sizes and steps, once every layer has said which generator it is.
        family, generation = preset_generation(chosen, loaded.values.get("generator"))
        for k in GENERATION_KEYS:
            if k in generation and loaded.sources.get(k) == "default":
                loaded.values[k] = generation[k]
                loaded.sources[k] = f"preset:{chosen.name} ({family})"
    return loaded


def context_kwargs(
    flags: dict[str, Any] | None = None, *, config_path: str | os.PathLike | None = None, preset: str | None = None
) -> dict[str, Any]:
    """Keyword arguments for ``GemsContext`` after merging every layer."""
    return dict(load_config(flags, config_path=config_path, preset=preset).values)


def build_context(
    flags: dict[str, Any] | None = None, *, config_path: str | os.PathLike | None = None, preset: str | None = None
) -> GemsContext:
    """The merged ``GemsContext`` (validated by its own ``__post_init__``)."""
    return load_config(flags, config_path=config_path, preset=preset).context()


def reference() -> str:
    """A commented ``gems.toml`` listing every key with its default: the config reference."""
    lines = [
        "# gems.toml: every key is optional; env GEMS_<KEY> and CLI flags override it.",
        "",
        "# A named preset (gems-paper: the official GEMS setup) replaces the defaults below; keys set here override it.",
        '# preset = "gems-paper"',
    ]
    for f in fields(GemsContext):
        desc = f.metadata.get("description", "")
        default = _default(f)
        lines += ["", f"# {desc}", toml_assignment(f.name, default, unset="(unset by default)")]
    return "\n".join(lines) + "\n"


def toml_assignment(name: str, value: Any, *, unset: str = "(unset)", comment: str = "") -> str:
    """``name = value`` as a gems.toml line; TOML has no null, so an unset key is a comment."""
    trailer = f"    # {comment}" if comment else ""
    if value is None:
        return f"# {name} =   {unset}{trailer}"
    return f"{name} = {_toml_value(value)}{trailer}"


def _toml_value(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    return json.dumps(str(v), ensure_ascii=False)  # a JSON string is a valid TOML basic string


def load_context(config_path: str | None = None, preset: str | None = None, **overrides: Any) -> GemsContext:
    """The context the CLI would build: defaults < ``preset`` < ``gems.toml`` < ``GEMS_*`` < ``overrides``.

    ``GemsContext()`` alone is the defaults only: it reads no file and no variable.
    ``load_context(preset="gems-paper", generator=...)`` is the paper's setup.
    """
    return build_context(overrides, config_path=config_path, preset=preset)
