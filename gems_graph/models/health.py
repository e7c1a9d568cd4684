"""Health checks as a capability: a backend says whether it will work before a long run.

``gems doctor`` asks each backend object for ``health_checks()`` and prints what it
returns; it never switches on a backend's class or spec string. A backend that
declares nothing is checked only by being created (and, for chat models, by the
doctor's generic probes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"


@dataclass(frozen=True)
class Health:
    """One thing checked: its name ("reachable", "device", ...), ok/warn/fail/skip, and what was seen."""

    check: str
    status: str
    detail: str = ""


@runtime_checkable
class HealthChecked(Protocol):
    """A backend that can check itself cheaply: no model loaded, no image made, seconds at most."""

    def health_checks(self) -> list[Health]: ...


def health_of(backend: Any) -> list[Health]:
    """The backend's own checks, or none if it declares no such capability."""
    return list(backend.health_checks()) if isinstance(backend, HealthChecked) else []


def imports_check(modules: list[str]) -> Health:
    """Whether the packages a backend needs import here."""
    import importlib

    missing = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        return Health("imports", FAIL, f"missing: {', '.join(missing)} (pip install {' '.join(missing)})")
    return Health("imports", OK, ", ".join(modules))
