"""``ShapesGenerator``: the offline world's text-to-image backend (family "shapes").

Loads the shipped weights (``gems_graph/shapes/weights``) once, lazily and
thread-safely, and serialises calls (one small model, CPU-bound: parallel calls
would only contend). Images come back at the model's native 32x32: the checker
reads them at that size, so ``width``/``height`` in a request are ignored, as is
``negative_prompt`` (the model was not trained with one); it declares that
(``check_size``), so ``gems serve-generator`` refuses another size rather than send 32x32.
``generate_batch`` makes several images in one pipeline call (one torch generator per
image); batched images can differ from those made alone by float rounding (one level of
255 in a few pixels).

It edits (``EditingGenerator``): inpainting inside a mask, or img2img without one,
through the same pipeline and weights (``ShapesPipeline``'s ``image=``/``mask_image=``).
An inpainting prompt in the explicit register is a regional prompt: only the objects
placed in a cell the mask covers condition the repaint (``regional_prompt``), the way
regional prompting tools do, since outside the mask the source is kept anyway. One
object drawn alone is one the model cannot confuse with another's colour.

It declares its prompting guide (``PROMPTING_GUIDE``), the "how to prompt" section a
model card would have: the language it reads and how it follows prompts, measured on
this model (the explicit register scores higher than the terse one, see docs/benchmarks.md).
The shapes chat model takes its refinement moves from these sentences only.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import cast

from PIL import Image

from gems_graph.models.cpu_threads import model_threads
from gems_graph.models.generator import EditRequest, GenerationError, GenerationRequest, timed
from gems_graph.shapes.grammar import PLACES, Scene, ShapesGrammarError, describe, parse_prompt
from gems_graph.shapes.render import SIZE

WEIGHTS = Path(__file__).parent / "weights"
DEFAULT_STEPS = 20
DEFAULT_GUIDANCE = 3.0

#: How to prompt this model, as its model card would say it (shown to the planner and refiner).
PROMPTING_GUIDE = """\
It draws circles, squares and triangles, red, green, blue or yellow, small or large, up to five of a kind.
Terse register: "three red circles", "a red square left of a blue circle above a triangle" (or right of, \
below); it picks the layout.
Explicit register: each object with its cell of a 3x3 grid (top left, top, top right, left, centre, right, \
bottom left, bottom, bottom right): "a red circle at the left and a large blue square at the right".
An object with no colour named may not show: name a colour for a missing one.
It follows an explicit layout better than a terse prompt: when a terse prompt comes out wrong, lay the \
objects out explicitly, keeping those that came out right in their cells.
When objects in a layout come out wrong, move them to free cells, keeping what was right.
Otherwise, change the seed."""


class ShapesGenerator:
    """Text-to-image for the shapes world through ``ShapesPipeline``."""

    family = "shapes"
    #: Declared capability (``models.generator.prompting_guide``).
    prompting_guide = PROMPTING_GUIDE

    def __init__(self, weights: str | Path | None = None, steps: int = DEFAULT_STEPS, guidance: float = DEFAULT_GUIDANCE):
        self.weights = Path(weights) if weights else WEIGHTS
        self.steps = steps
        self.guidance = guidance
        self._pipe = None
        self._lock = threading.Lock()

    def available(self) -> None:
        """Raise GenerationError with a clear message if the weights are missing."""
        if not (self.weights / "model_index.json").is_file():
            raise GenerationError(
                f"shapes model weights not found in {self.weights}; train them with "
                "`python -m gems_graph.shapes.train --out DIR` (it exports there)"
            )

    def _load(self):
        if self._pipe is None:
            self.available()
            import torch

            from gems_graph.models.loading import dtype_kwarg, quiet_loading
            from gems_graph.shapes.pipeline import ShapesPipeline

            # low_cpu_mem_usage=False: the model is 12 MB, and it keeps diffusers from
            # advising to install accelerate on every load.
            with quiet_loading():
                pipe = ShapesPipeline.from_pretrained(self.weights, low_cpu_mem_usage=False, **dtype_kwarg(torch.float32))
            pipe.set_progress_bar_config(disable=True)
            self._pipe = pipe
        return self._pipe

    def check_size(self, width: int | None, height: int | None) -> None:
        """``ValueError`` for any size but the model's native one."""
        native = SIZE
        if (width or native, height or native) != (native, native):
            raise ValueError(f"the shapes model makes {native}x{native} images only, not {width or native}x{height or native}")

    def generate(self, request: GenerationRequest) -> Image.Image:
        return self._run(request, "", {})

    def generate_batch(self, requests: list[GenerationRequest]) -> list[Image.Image | GenerationError]:
        """One pipeline call per group of requests sharing steps and guidance."""
        groups: dict[tuple[int, float], list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(self._settings(r), []).append(i)
        results: list[Image.Image | GenerationError] = [GenerationError("not made")] * len(requests)
        for idxs in groups.values():
            images: list[Image.Image | GenerationError]
            try:
                images = list(self._call([requests[i] for i in idxs], "", {}))
            except GenerationError as exc:
                images = [exc] * len(idxs)
            for i, image in zip(idxs, images):
                results[i] = image
        return results

    def _settings(self, request: GenerationRequest | EditRequest) -> tuple[int, float]:
        return int(request.steps or self.steps), float(request.guidance if request.guidance is not None else self.guidance)

    def edit(self, request: EditRequest) -> Image.Image:
        if request.mask is not None:
            request = replace(request, prompt=regional_prompt(request.prompt, request.mask))
        image = self._run(request, " to edit", {"image": request.image, "mask_image": request.mask, "strength": float(request.strength)})
        return image if image.size == request.image.size else image.resize(request.image.size)

    def _run(self, request: GenerationRequest | EditRequest, what: str, extra: dict) -> Image.Image:
        """One image (generation, or img2img/inpainting with ``extra``)."""
        return self._call([request], what, extra)[0]

    def _call(self, requests: list, what: str, extra: dict) -> list[Image.Image]:
        """One pipeline call for ``requests`` (same steps and guidance) under the model's lock."""
        import torch

        steps, guidance = self._settings(requests[0])
        with self._lock, model_threads():
            pipe = self._load()
            start = time.perf_counter()
            try:
                out = pipe(
                    requests[0].prompt if len(requests) == 1 else [r.prompt for r in requests],
                    num_inference_steps=steps,
                    guidance_scale=guidance,
                    generator=(
                        torch.Generator().manual_seed(int(requests[0].seed))
                        if len(requests) == 1
                        else [torch.Generator().manual_seed(int(r.seed)) for r in requests]
                    ),
                    **extra,
                )
            except Exception as e:  # noqa: BLE001 - surfaced to the user as a generation failure
                raise GenerationError(f"shapes generator failed{what}: {e}") from e
            seconds = time.perf_counter() - start
        return timed(list(out.images), seconds)


def regional_prompt(prompt: str, mask: Image.Image) -> str:
    """The objects of an explicit ``prompt`` whose cell centre the mask covers (white).

    The prompt as given when it is not in the explicit register, does not parse, or
    places nothing inside the mask (a removal: the repaint follows the whole scene).
    """
    try:
        scene = parse_prompt(prompt)
    except ShapesGrammarError:
        return prompt
    if not scene.explicit or any(o.place is None for o in scene.objects):
        return prompt
    grey = mask.convert("L")
    w, h = grey.size

    def covered(place: str) -> bool:
        c, r = PLACES[place]
        pixel = grey.getpixel((min(w - 1, int((c + 0.5) * w / 3)), min(h - 1, int((r + 0.5) * h / 3))))
        return cast(int, pixel) > 127  # an "L" image's pixel is one int

    inside = tuple(o for o in scene.objects if covered(o.place))  # type: ignore[arg-type]
    return describe(Scene(inside)) if inside else prompt


def check_spec(arg: str) -> None:
    """Refuse ``shapes:FOLDER`` without weights before a run starts (loads nothing)."""
    ShapesGenerator(arg or None).available()


def from_spec(arg: str) -> ShapesGenerator:
    """``shapes`` (shipped weights) or ``shapes:FOLDER`` (weights saved by the trainer)."""
    gen = ShapesGenerator(arg or None)
    gen.available()
    return gen
