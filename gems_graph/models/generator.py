"""The two interfaces every backend plugs in behind.

Nodes talk to a LangChain ``BaseChatModel`` for language and vision, and to a
``Generator`` for images. Real models and the offline shapes world implement the
same interfaces, so no node branches on which backend it has. What a generator can
do beyond ``generate`` it declares (``BatchGenerator``, ``EditingGenerator``), and
callers ask the object (``supports_editing``, ``prompting_guide``), never its class or spec.
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


#: The key of ``Image.info`` where a backend puts how long the model took for that image:
#: the pipeline call's time (GPU seconds when it runs on a GPU) or an image server's
#: ``inference_time_s``; an image made in a batch carries its share of the batch's time.
#: The generator node adds it to the run's usage (``generation_seconds``).
GENERATION_SECONDS = "gems_generation_seconds"


def timed(images: list[Any], seconds: float | None) -> list[Any]:
    """``images`` (PIL images, or errors left as they are), each with its share of ``seconds``."""
    made = [im for im in images if isinstance(im, Image.Image)]
    if seconds is not None and seconds >= 0 and made:
        for im in made:
            im.info[GENERATION_SECONDS] = seconds / len(made)
    return images


def generation_seconds(image: Any) -> float | None:
    """The seconds the backend reported for ``image``, or None."""
    value = getattr(image, "info", {}).get(GENERATION_SECONDS)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0 else None


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


@dataclass(frozen=True)
class EditRequest:
    """Change an image: inpaint inside ``mask`` (white = repaint) or, without one, img2img.

    ``prompt`` describes the image as it should be after the edit (inpainting and
    img2img models) or says what to change (instruction editors); ``strength`` is how
    far from the source the result may go (0 keeps it, 1 repaints from noise).
    """

    image: Image.Image
    prompt: str
    seed: int
    mask: Image.Image | None = None
    strength: float = 1.0
    steps: int | None = None
    guidance: float | None = None
    negative_prompt: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def params(self) -> dict[str, Any]:
        """The edit's parameters as recorded on a candidate (no images, no prompt)."""
        out = {"strength": self.strength, "steps": self.steps, "guidance": self.guidance, "negative_prompt": self.negative_prompt}
        out.update(self.extra)
        return {k: v for k, v in out.items() if v is not None}


@runtime_checkable
class EditingGenerator(Generator, Protocol):
    """A generator that edits images (inpainting, img2img or instruction editing).

    A backend whose ability depends on its configuration (the model it loaded, the
    server it talks to) also sets ``supports_editing`` to say whether it can now;
    the refiner offers the edit move only for generators ``supports_editing`` accepts.
    """

    def edit(self, request: EditRequest) -> Image.Image: ...


def supports_editing(generator: Any) -> bool:
    """Whether ``generator`` declares editing: an ``edit`` method, and no ``supports_editing`` of False."""
    declared = getattr(generator, "supports_editing", None)
    if isinstance(declared, bool) and not declared:
        return False
    return callable(getattr(generator, "edit", None))


def size_refusal(generator: Any, width: int | None, height: int | None) -> str | None:
    """Why ``generator`` cannot make a ``width`` x ``height`` image, or None when it can or does not say.

    A backend with sizes it cannot make declares ``check_size(width, height)``, which raises
    ``ValueError`` with the reason (``None`` for a side means the model's default);
    ``gems serve-generator`` answers such a request 400 instead of an image of another size.
    """
    check = getattr(generator, "check_size", None)
    if not callable(check):
        return None
    try:
        check(width, height)
    except ValueError as exc:
        return str(exc)
    return None


def prompting_guide(generator: Any) -> str | None:
    """The generator's declared prompting guide (its model card's "how to prompt" section), or None.

    A backend declares it as a ``prompting_guide`` attribute or property; the planner and
    the refiner are shown it, since a chat model knows how to prompt an image model only
    from what it is told. Anything but non-blank text counts as no guide.
    """
    declared = getattr(generator, "prompting_guide", None)
    return declared.strip() if isinstance(declared, str) and declared.strip() else None


def region_mask(width: int, height: int, region: list[float] | tuple[float, ...]) -> Image.Image:
    """A mask (mode ``L``, white = repaint) of ``region``: (left, top, right, bottom) as
    fractions of the image, the form the refiner answers in whatever the resolution.

    Raises ``ValueError`` for a region that is not four numbers from 0 to 1 with
    left < right and top < bottom.
    """
    if len(region) != 4 or not all(isinstance(v, (int, float)) for v in region):
        raise ValueError(f"an edit region is [left, top, right, bottom] as fractions of the image, got {region!r}")
    left, top, right, bottom = (float(v) for v in region)
    if not (0.0 <= left < right <= 1.0 and 0.0 <= top < bottom <= 1.0):
        raise ValueError(f"edit region {region!r} must satisfy 0 <= left < right <= 1 and 0 <= top < bottom <= 1")
    box = (
        int(left * width),
        int(top * height),
        max(int(left * width) + 1, round(right * width)),
        max(int(top * height) + 1, round(bottom * height)),
    )
    mask = Image.new("L", (width, height), 0)
    mask.paste(255, box)
    return mask
