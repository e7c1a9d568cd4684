"""The two interfaces every backend plugs in behind.

Nodes talk to a LangChain ``BaseChatModel`` for language and vision, and to a
``Generator`` for images. Real models and the offline shapes world implement the
same interfaces, so no node branches on which backend it has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from PIL import Image

#: Largest image made or accepted, in pixels (8192 x 8192): a bigger request is refused and a
#: bigger image from a server is not decoded (PIL's own bomb limit is only a warning below 2x its cap).
MAX_IMAGE_PIXELS = 8192 * 8192
#: Longest side of an image made or accepted.
MAX_IMAGE_SIDE = 8192


@dataclass(frozen=True)
class GenerationRequest:
    """One image to make. ``None`` means "the generator's own default"."""

    prompt: str
    seed: int
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    guidance: float | None = None
    negative_prompt: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def params(self) -> dict[str, Any]:
        """The generation parameters as recorded on a candidate (no prompt)."""
        out = {
            "width": self.width,
            "height": self.height,
            "steps": self.steps,
            "guidance": self.guidance,
            "negative_prompt": self.negative_prompt,
        }
        out.update(self.extra)
        return {k: v for k, v in out.items() if v is not None}


class GenerationError(RuntimeError):
    """A generator could not make an image; the message is shown to the user as is."""


@runtime_checkable
class Generator(Protocol):
    """Makes one image from a request. Must be safe to call from several threads."""

    #: Model family ("shapes", "z-image", "flux", ...): memory recalls lessons per family.
    family: str

    def generate(self, request: GenerationRequest) -> Image.Image: ...


@runtime_checkable
class BatchGenerator(Generator, Protocol):
    """A generator that makes several images in one call more cheaply than one by one.

    ``generate_batch`` returns one result per request, in order, with a
    ``GenerationError`` in place of an image it could not make. Such a backend
    coalesces concurrent ``generate`` calls itself (``backends.batching``), so
    nodes only ever call ``generate``; ``gems serve-generator`` asks for this
    capability to serve a request for ``n`` images in one batch.
    """

    def generate_batch(self, requests: list[GenerationRequest]) -> list[Image.Image | GenerationError]: ...
