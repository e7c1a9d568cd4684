"""Named presets: a set of settings that stands in for the defaults.

``gems-paper`` is the official GEMS setup, read from its code (github.com/lcqysl/GEMS,
``agent/GEMS.py`` and ``agent/server/*.py``): 5 rounds of one image each, binary
yes/no verdicts (no probabilities), the earliest image wins ties, the refiner sees
the image of every past round, at most one skill a prompt, nothing remembered
across prompts, and each generator family at the size and steps its server uses
(Z-Image-Turbo 1024x1024, 9 steps, guidance 0; Qwen-Image-2512 1328x1328, 50
steps, guidance 4). Our own node prompts stay ours: a preset is configuration.

A preset sits just above the defaults: ``defaults < preset < gems.toml < GEMS_* <
flags``, so anything set explicitly wins. It is chosen by ``--preset NAME``,
``GEMS_PRESET`` or ``preset = "NAME"`` in ``gems.toml``; ``gems config --preset
NAME`` shows what it sets, each value marked ``preset:NAME``.

The per-family values are filled in only for settings nothing else set, once the
generator is known. The family is read from the spec (``diffusers:<hub id or
folder>``, by the same rule the diffusers backend uses); for an HTTP generator,
from the model spec that its server reports at ``GET /health`` (``gems
serve-generator`` does); when that cannot be known (another server, or one that
is down) they are left to the generator's own defaults.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from gems_graph.context import ConfigError

#: The generation settings a preset may set per generator family.
GENERATION_KEYS = ("width", "height", "steps", "guidance")


class UnknownPresetError(ConfigError):
    """A preset name that is not defined; the message lists the known ones."""


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    #: ``GemsContext`` field values.
    values: Mapping[str, Any]
    #: Generation settings per generator family (keys of the diffusers backend's ``PRESETS``).
    generation: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: MappingProxyType({}))


GEMS_PAPER = Preset(
    name="gems-paper",
    description="the official GEMS setup: 5 rounds x 1 image, binary verdicts, earliest wins ties, all past images to the refiner",
    values=MappingProxyType(
        {
            "max_rounds": 5,
            "candidates_per_round": 1,
            "stop_rule": "all_pass",
            "verdict_probabilities": False,
            "verification": "per_check",
            "refiner_calls": "separate",
            "skill_routing": "model",
            "decomposition": "critic",
            "edit_verification": "all",
            "tie_break": "earliest",
            "refiner_images": -1,
            "max_skills": 1,
            "memory": "none",
        }
    ),
    generation=MappingProxyType(
        {
            "z-image-turbo": MappingProxyType({"width": 1024, "height": 1024, "steps": 9, "guidance": 0.0}),
            "qwen-image": MappingProxyType({"width": 1328, "height": 1328, "steps": 50, "guidance": 4.0}),
        }
    ),
)

PRESETS: dict[str, Preset] = {GEMS_PAPER.name: GEMS_PAPER}


def get_preset(name: str) -> Preset:
    preset = PRESETS.get(name)
    if preset is None:
        near = difflib.get_close_matches(name, list(PRESETS), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise UnknownPresetError(f"unknown preset {name!r}{hint}; known presets: {', '.join(PRESETS)}")
    return preset


def generator_model(spec: Any, *, health_timeout: float = 3.0) -> str | None:
    """The model a generator spec serves (``diffusers:`` argument without options), if it can be known.

    An HTTP generator is asked once at ``/health`` for the spec it serves.
    """
    if not isinstance(spec, str):
        return None
    from gems_graph.models.registry import split_spec

    kind, arg = split_spec(spec)
    if kind == "diffusers":
        return arg.split("?", 1)[0] or None
    if kind == "http":
        from gems_graph.backends.http_generator import from_spec

        try:
            served = from_spec(arg).health(timeout=health_timeout).get("generator")
        except Exception:  # noqa: BLE001 - unknown is an answer: the server keeps its own defaults
            return None
        if isinstance(served, str) and not served.lower().startswith(("http:", "https:")):
            return generator_model(served)
    return None


def generator_family(preset: Preset, generator: Any) -> str | None:
    """Which of ``preset.generation``'s families the generator belongs to, or None."""
    if not preset.generation:
        return None
    model = generator_model(generator)
    if model is None:
        return None
    from gems_graph.backends.diffusers_generator import PRESETS as FAMILY_PRESETS
    from gems_graph.backends.diffusers_generator import detect_preset

    detected = detect_preset(model)
    family = next((k for k, p in FAMILY_PRESETS.items() if p is detected), None)
    return family if family in preset.generation else None


def preset_generation(preset: Preset, generator: Any) -> tuple[str | None, dict[str, Any]]:
    """(family, generation settings) the preset gives ``generator``; ``(None, {})`` when unknown."""
    family = generator_family(preset, generator)
    return family, dict(preset.generation.get(family, {})) if family else {}
