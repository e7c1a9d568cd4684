"""``diffusers:<hub id or folder>``: any diffusers text-to-image pipeline as a Generator.

Spec options follow a ``?`` like a URL query::

    diffusers:Tongyi-MAI/Z-Image-Turbo
    diffusers:/models/qwen-image?device=cuda&dtype=bfloat16&offload=1
    diffusers:./tiny?device=cpu&steps=2&width=32&height=32

``device`` (auto|cuda|mps|cpu, auto picks the first available), ``dtype``
(bfloat16|float16|float32; default bf16 on CUDA, fp16 on MPS, fp32 on CPU),
``offload=1`` (model CPU offload, needs ``accelerate``), ``slicing=1`` (attention
slicing), ``family`` (force a preset) and any preset default (``steps``,
``guidance``, ``width``, ``height``, ``negative_prompt``), ``batch_window`` (seconds
concurrent ``generate`` calls wait to share a batch, default 0.05) and ``max_batch``
(default 8).

The pipeline is loaded lazily on the first call (so a spec can be validated
without loading weights), once per process, and calls are serialised with a lock
because diffusers pipelines are not re-entrant. Failures become ``GenerationError``
with a message a user can act on, so the graph records them on the candidate.

Editing (``edit(EditRequest)``, see ``edit_pipeline_classes``): with a mask the
family's inpainting pipeline, without one its image-to-image pipeline, built from the
loaded one with ``from_pipe`` (the same components, no second load) and cached. A
loaded pipeline that takes ``mask_image`` itself (``StableDiffusionXLInpaintPipeline``,
``FluxFillPipeline``) is used as is, with a full mask when the edit has none (and
generates by repainting all of a blank image); an
instruction editor that takes ``image`` itself (``FluxKontextPipeline``,
``QwenImageEditPipeline``) gets the source and the prompt as the instruction. A masked
edit keeps the source's pixels outside the mask: the pipeline's result is pasted in
inside it only (4-channel inpainting keeps the outside only up to the VAE's round trip,
fill and instruction models not at all). ``supports_editing`` says whether the family
can edit, from the model_index.json class without loading weights where it can.

Each family preset carries the prompting guide of its documentation
(``backends.prompting_guides``); the generator declares it as ``prompting_guide``.
"""

from __future__ import annotations

import inspect
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qsl

from PIL import Image

from gems_graph.backends import prompting_guides as guides
from gems_graph.backends.batching import BatchCoalescer
from gems_graph.errors import one_line
from gems_graph.models.cpu_threads import model_threads
from gems_graph.models.generator import EditRequest, GenerationError, GenerationRequest, timed
from gems_graph.models.health import FAIL, OK, WARN, Health, imports_check
from gems_graph.models.loading import dtype_kwarg, quiet_loading


@dataclass(frozen=True)
class Preset:
    """A model family's recommended defaults; every field is overridable per request."""

    family: str
    steps: int | None = None
    guidance: float | None = None
    width: int | None = None
    height: int | None = None
    #: Pipeline argument that receives ``guidance`` (Qwen-Image uses true CFG).
    guidance_arg: str = "guidance_scale"
    #: The model needs a source image (an instruction editor that cannot draw from text alone).
    edit_only: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    #: How the family's documentation says to prompt it (``backends.prompting_guides``); None: no guide.
    prompting_guide: str | None = None


PRESETS: dict[str, Preset] = {
    "z-image-turbo": Preset("z-image", 9, 0.0, 1024, 1024, prompting_guide=guides.Z_IMAGE_TURBO),
    "z-image": Preset("z-image", 50, 4.0, 1024, 1024, prompting_guide=guides.Z_IMAGE),
    "qwen-image": Preset("qwen-image", 50, 4.0, 1328, 1328, guidance_arg="true_cfg_scale", prompting_guide=guides.QWEN_IMAGE),
    "flux-schnell": Preset("flux-schnell", 4, 0.0, 1024, 1024, prompting_guide=guides.FLUX_SCHNELL),
    "flux-dev": Preset("flux-dev", 28, 3.5, 1024, 1024, prompting_guide=guides.FLUX_DEV),
    "sdxl": Preset("sdxl", 30, 7.0, 1024, 1024, prompting_guide=guides.SDXL),
    "sd3.5": Preset("sd3.5", 28, 4.5, 1024, 1024, prompting_guide=guides.SD35),
    # Editing families (edit() takes width/height from the source image).
    "sdxl-inpaint": Preset("sdxl-inpaint", 30, 8.0, 1024, 1024, prompting_guide=guides.SDXL_INPAINT),
    "flux-fill": Preset("flux-fill", 50, 30.0, 1024, 1024, prompting_guide=guides.FLUX_FILL),
    "flux-kontext": Preset("flux-kontext", 28, 2.5, 1024, 1024, prompting_guide=guides.FLUX_KONTEXT),
    "qwen-image-edit": Preset(
        "qwen-image-edit", 50, 4.0, 1024, 1024, guidance_arg="true_cfg_scale", edit_only=True, prompting_guide=guides.QWEN_IMAGE_EDIT
    ),
    "diffusers": Preset("diffusers"),
}


def detect_preset(name: str = "", pipeline_class: str = "") -> Preset:
    """Pick a preset from the hub id / folder name, else from the pipeline class name."""
    n = name.lower().replace("_", "-")
    c = pipeline_class.lower()
    if "kontext" in n or "fluxkontext" in c:
        return PRESETS["flux-kontext"]
    if ("flux" in n and "fill" in n) or "fluxfill" in c:
        return PRESETS["flux-fill"]
    if "qwen-image-edit" in n or "qwenimageedit" in c:
        return PRESETS["qwen-image-edit"]
    if ("inpaint" in n and "xl" in n) or "stablediffusionxlinpaint" in c:
        return PRESETS["sdxl-inpaint"]
    if "z-image" in n or "zimage" in n:
        return PRESETS["z-image"] if ("z-image" in n and "turbo" not in n) else PRESETS["z-image-turbo"]
    if "qwen-image" in n or "qwenimage" in c:
        return PRESETS["qwen-image"]
    if "flux" in n:
        return PRESETS["flux-schnell"] if "schnell" in n else PRESETS["flux-dev"]
    if "stable-diffusion-3" in n or "sd3" in n or "stablediffusion3" in c:
        return PRESETS["sd3.5"]
    if "xl" in n and ("stable-diffusion" in n or "sdxl" in n) or "stablediffusionxl" in c:
        return PRESETS["sdxl"]
    if "zimage" in c:
        return PRESETS["z-image-turbo"]  # the distilled Turbo is what people run
    if "flux" in c:
        return PRESETS["flux-dev"]
    return PRESETS["diffusers"]


def _auto_sibling(task: str, pipeline_class_name: str) -> type[Any] | None:
    """The pipeline class diffusers' AutoPipeline maps ``pipeline_class_name`` to for ``task``
    ("inpaint" or "img2img"), or None: the lookup ``AutoPipelineFor*.from_pipe`` does."""
    from diffusers.pipelines import auto_pipeline as auto

    mapping = {"inpaint": auto.AUTO_INPAINT_PIPELINES_MAPPING, "img2img": auto.AUTO_IMAGE2IMAGE_PIPELINES_MAPPING}[task]
    # diffusers leaves this list untyped: each item maps a model name to a pipeline class.
    for task_mapping in cast(list[dict[str, type[Any]]], auto.SUPPORTED_TASKS_MAPPINGS):
        for model_name, cls in task_mapping.items():
            if cls.__name__ == pipeline_class_name:
                return mapping.get(model_name)
    return None


def _takes(pipeline_cls: type, argument: str) -> bool:
    return argument in inspect.signature(pipeline_cls.__call__).parameters


def edit_pipeline_classes(pipeline_cls: type) -> tuple[type | None, type | None]:
    """(pipeline class for a masked edit, for an unmasked edit) of a loaded pipeline class; None where it cannot.

    A pipeline that takes ``mask_image`` (inpaint, fill) does both itself. Otherwise the
    family's AutoPipeline siblings; an image-to-image or instruction pipeline (one that
    takes ``image``) is its own unmasked route, and where the family has no inpainting
    pipeline a masked edit runs it on the whole image (the outside is pasted back).
    """
    if _takes(pipeline_cls, "mask_image"):
        return pipeline_cls, pipeline_cls
    inpaint = _auto_sibling("inpaint", pipeline_cls.__name__)
    img2img = _auto_sibling("img2img", pipeline_cls.__name__)
    if img2img is None and _takes(pipeline_cls, "image"):
        img2img = pipeline_cls
    return inpaint or img2img, img2img


def _diffusers_class(name: str) -> type | None:
    """A diffusers pipeline class by name (from a model_index.json), or None for a custom one."""
    if not name:
        return None
    import diffusers

    try:
        cls = getattr(diffusers, name, None)
    except Exception:  # noqa: BLE001 - a class whose optional dependencies are missing counts as unknown
        return None
    return cls if isinstance(cls, type) else None


def _fit_size(size: int, multiple: int) -> int:
    """``size`` rounded down to ``multiple`` (at least one multiple): what the pipeline can make."""
    return max(multiple, size // multiple * multiple)


def _steps_for_strength(steps: int, strength: float) -> int:
    """Steps such that ``int(steps * strength)`` (what img2img/inpaint pipelines run) is at least
    one: a small strength would otherwise leave no step and fail deep inside the pipeline."""
    while int(steps * strength) < 1:
        steps = max(steps + 1, math.ceil(1 / strength))
    return steps


def pick_device(device: str = "auto") -> str:
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def device_check(requested: str = "auto") -> Health:
    """Which device a pipeline would run on; a CPU is a warning for real models."""
    try:
        import torch
    except ImportError:
        return Health("device", FAIL, "torch is not installed")
    device = pick_device(requested)
    if device == "cpu":
        return Health("device", WARN, "cpu only: real text-to-image models will be very slow")
    detail = device
    if device.startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        detail = f"cuda: {props.name}, {props.total_memory / 2**30:.0f} GiB"
    return Health("device", OK, detail)


def pick_dtype(device: str, dtype: Any = None) -> Any:
    import torch

    if dtype is None:
        return {"cuda": torch.bfloat16, "mps": torch.float16}.get(device.split(":")[0], torch.float32)
    if isinstance(dtype, str):
        name = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}.get(dtype, dtype)
        value = getattr(torch, name, None)
        if not isinstance(value, torch.dtype) or not value.is_floating_point:
            raise ValueError(f"unknown dtype {dtype!r}; use bfloat16, float16 or float32")
        return value
    return dtype


# One pipeline per (path, device, dtype, offload, slicing) per process, with its call lock.
_PIPELINES: dict[tuple, tuple[Any, threading.Lock]] = {}
_PIPELINES_LOCK = threading.Lock()


def _looks_local(path: str) -> bool:
    return path.startswith(("/", "./", "../", "~", "\\")) or (len(path) > 1 and path[1] == ":") or os.path.exists(path)


class DiffusersGenerator:
    """A diffusers pipeline behind the ``Generator`` protocol, batched per round."""

    def __init__(
        self,
        pipeline_or_path: Any,
        *,
        family: str | None = None,
        device: str = "auto",
        dtype: Any = None,
        cpu_offload: bool = False,
        attention_slicing: bool = False,
        defaults: dict[str, Any] | None = None,
        batch_window: float = 0.05,
        max_batch: int = 8,
    ) -> None:
        self._batches = BatchCoalescer(self.generate_batch, window=batch_window, max_batch=max_batch)
        self._device_arg = device
        self._dtype_arg = dtype
        self.cpu_offload = cpu_offload
        self.attention_slicing = attention_slicing
        self.defaults = dict(defaults or {})
        self._load_lock = threading.Lock()
        if isinstance(pipeline_or_path, (str, os.PathLike)):
            self.path = os.fspath(pipeline_or_path)
            self._pipe, self._call_lock = None, None
            self._index_class = self._class_from_model_index(self.path)
            preset = detect_preset(self.path, self._index_class)
        else:
            self.path = getattr(getattr(pipeline_or_path, "config", None), "_name_or_path", "") or ""
            self._pipe, self._call_lock = pipeline_or_path, threading.Lock()
            self._index_class = type(pipeline_or_path).__name__
            preset = detect_preset(self.path, self._index_class)
        if family is not None:
            preset = PRESETS.get(family, Preset(family))
        self.preset = preset
        self.family = preset.family
        #: Edit pipelines built from the loaded one with ``from_pipe``, by class.
        self._edit_pipes: dict[type, Any] = {}

    @property
    def prompting_guide(self) -> str | None:
        """Declared capability (``models.generator.prompting_guide``): the family preset's guide."""
        return self.preset.prompting_guide

    def __repr__(self) -> str:
        return f"DiffusersGenerator({self.path!r}, family={self.family!r})"

    def health_checks(self) -> list[Health]:
        """Packages, device and model folder, without loading the pipeline."""
        checks = [imports_check(["torch", "diffusers", "transformers"]), device_check(self._device_arg)]
        if self._pipe is not None:
            return [*checks, Health("model", OK, "pipeline object")]
        full = os.path.expanduser(self.path)
        if os.path.isdir(full):
            ok = os.path.isfile(os.path.join(full, "model_index.json"))
            checks.append(Health("model", OK if ok else FAIL, full if ok else f"{full} has no model_index.json"))
        elif _looks_local(self.path):
            checks.append(Health("model", FAIL, f"folder {self.path} does not exist"))
        else:
            checks.append(Health("model", WARN, f"hub id {self.path}: downloaded on first use unless cached"))
        return checks

    @staticmethod
    def _class_from_model_index(path: str) -> str:
        """Read the pipeline class from a local folder's model_index.json without loading it."""
        import json

        try:
            with open(os.path.join(os.path.expanduser(path), "model_index.json"), encoding="utf-8") as fh:
                return str(json.load(fh).get("_class_name", ""))
        except (OSError, ValueError):
            return ""

    # -- loading -------------------------------------------------------------------------

    @property
    def pipeline(self) -> Any:
        """The loaded pipeline (loads it on first use); raises ``GenerationError`` on failure."""
        if self._pipe is None:
            with self._load_lock:
                if self._pipe is None:
                    self._pipe, self._call_lock = self._load()
        return self._pipe

    def _load(self) -> tuple[Any, threading.Lock]:
        path = os.path.expanduser(self.path)
        if _looks_local(self.path) and not os.path.isdir(path):
            raise GenerationError(f"diffusers model folder {self.path!r} does not exist")
        device = pick_device(self._device_arg)
        dtype = pick_dtype(device, self._dtype_arg)
        key = (os.path.abspath(path) if os.path.isdir(path) else path, device, str(dtype), self.cpu_offload, self.attention_slicing)
        with _PIPELINES_LOCK:
            if key in _PIPELINES:
                return _PIPELINES[key]
            try:
                from diffusers import DiffusionPipeline

                with quiet_loading():
                    pipe = DiffusionPipeline.from_pretrained(path, **dtype_kwarg(dtype))
            except ImportError:
                raise
            except Exception as exc:  # noqa: BLE001 - hub/IO/config errors all mean "cannot load"
                where = "local folder" if os.path.isdir(path) else "hub id (not a local folder)"
                raise GenerationError(f"could not load diffusers model {self.path!r} ({where}): {one_line(exc)}") from exc
            if self.cpu_offload and device != "cpu":
                pipe.enable_model_cpu_offload(device=device)
            else:
                pipe.to(device)
            if self.attention_slicing:
                pipe.enable_attention_slicing()
            pipe.set_progress_bar_config(disable=True)
            _PIPELINES[key] = (pipe, threading.Lock())
            return _PIPELINES[key]

    # -- editing -------------------------------------------------------------------------

    @property
    def supports_editing(self) -> bool:
        """Whether this pipeline's family edits: from the model_index.json class, without
        loading weights, when diffusers knows it; otherwise decided by loading the pipeline."""
        try:
            cls = type(self._pipe) if self._pipe is not None else _diffusers_class(self._index_class)
            if cls is None:
                cls = type(self.pipeline)
        except (GenerationError, ImportError):
            return False
        return any(c is not None for c in edit_pipeline_classes(cls))

    def edit(self, request: EditRequest) -> Image.Image:
        """Inpaint inside ``request.mask``, or img2img / instruction-edit the source without one.

        The result has the source's size; outside the mask it is the source. Strength 0
        returns the source (there is no step to run); instruction editors ignore strength.
        """
        source = request.image.convert("RGB")
        if request.strength <= 0:
            return source.copy()
        pipe = self.pipeline
        masked_cls, unmasked_cls = edit_pipeline_classes(type(pipe))
        target = masked_cls if request.mask is not None else unmasked_cls
        if target is None:
            how = "inpainting or image-to-image" if request.mask is not None else "image-to-image or instruction-editing"
            raise GenerationError(
                f"{self.family} ({type(pipe).__name__}) cannot edit: diffusers has no {how} pipeline for it; "
                "edit with an inpainting or editing model (SD/SDXL, FLUX.1-Fill, FLUX.1-Kontext, Qwen-Image-Edit, Z-Image)"
            )
        edit_pipe = self._edit_pipeline(pipe, target)
        p = self.resolved_params(request)
        multiple = 2 * int(getattr(edit_pipe, "vae_scale_factor", 8) or 8)
        p["width"], p["height"] = _fit_size(source.width, multiple), _fit_size(source.height, multiple)
        if "steps" in p and _takes(type(edit_pipe), "strength"):
            p["steps"] = _steps_for_strength(int(p["steps"]), float(request.strength))
        mask = request.mask.convert("L").resize(source.size) if request.mask is not None else None
        extra: dict[str, Any] = {"image": source, "strength": float(request.strength)}
        if _takes(type(edit_pipe), "mask_image"):  # an inpaint/fill pipeline without a mask repaints everywhere
            extra["mask_image"] = mask if mask is not None else Image.new("L", source.size, 255)
        result = self._run_group(edit_pipe, [request], p, [p], extra, "editing")[0]
        if isinstance(result, GenerationError):
            raise result
        if result.size != source.size:
            result = result.resize(source.size, Image.Resampling.LANCZOS)
        return Image.composite(result, source, mask) if mask is not None else result

    def _edit_pipeline(self, pipe: Any, cls: type[Any]) -> Any:
        """``pipe`` itself, or the ``cls`` sibling sharing its components (built once, cached)."""
        if type(pipe) is cls:
            return pipe
        with self._load_lock:
            if cls not in self._edit_pipes:
                try:
                    sibling = cls.from_pipe(pipe)
                except Exception as exc:  # noqa: BLE001 - a family whose components do not fit the sibling
                    raise GenerationError(
                        f"{self.family} cannot edit: building {cls.__name__} from {type(pipe).__name__} failed: {one_line(exc)}"
                    ) from exc
                sibling.set_progress_bar_config(disable=True)
                self._edit_pipes[cls] = sibling
            return self._edit_pipes[cls]

    # -- generation ----------------------------------------------------------------------

    def resolved_params(self, request: GenerationRequest | EditRequest) -> dict[str, Any]:
        """Request values, else the generator's defaults, else the family preset."""
        p = self.preset
        out: dict[str, Any] = {"steps": p.steps, "guidance": p.guidance, "width": p.width, "height": p.height}
        out.update(p.extra)
        out.update(self.defaults)
        for name in ("steps", "guidance", "width", "height", "negative_prompt"):
            value = getattr(request, name, None)  # an EditRequest has no size: it is the source's
            if value is not None:
                out[name] = value
        out.update(request.extra)
        return {k: v for k, v in out.items() if v is not None}

    def generate(self, request: GenerationRequest) -> Image.Image:
        """One image; concurrent calls (a round's candidates, fanned out with ``Send``)
        arriving within ``batch_window`` seconds share one pipeline batch."""
        return self._batches.submit(request)

    async def agenerate(self, request: GenerationRequest) -> Image.Image:
        """``generate`` under ``ainvoke``: runs in flight hand their requests over without holding threads."""
        return await self._batches.asubmit(request)

    def generate_batch(self, requests: list[GenerationRequest]) -> list[Image.Image | GenerationError]:
        """One pipeline call per group of requests sharing parameters; one torch generator per image.

        Per-image generators make an image depend only on its own seed, so a candidate
        is the same whether it was made alone or in a batch.
        """
        if not requests:
            return []
        if self.preset.edit_only:
            only_edits = GenerationError(
                f"{self.family} ({self.path}) only edits: it needs a source image, so it cannot make a round's new images; "
                "generate with a text-to-image model (e.g. diffusers:Qwen/Qwen-Image)"
            )
            return [only_edits for _ in requests]
        try:
            pipe = self.pipeline
        except GenerationError as exc:
            return [exc for _ in requests]
        groups: dict[tuple, list[int]] = {}
        params = [self.resolved_params(r) for r in requests]
        for i, p in enumerate(params):
            key = tuple(sorted((k, repr(v)) for k, v in p.items() if k != "negative_prompt"))
            groups.setdefault(key, []).append(i)
        results: list[Any] = [None] * len(requests)
        for idxs in groups.values():
            p = params[idxs[0]]
            ran = self._run_group(pipe, [requests[i] for i in idxs], p, [params[i] for i in idxs], _blank_canvas(pipe, p, len(idxs)))
            for i, res in zip(idxs, ran):
                results[i] = res
        return results

    def _run_group(
        self, pipe: Any, reqs: list[Any], p: dict[str, Any], each: list[dict], extra: dict | None = None, what: str = "generating"
    ) -> list[Any]:
        """One pipeline call (``extra``: an edit's image/mask/strength) with the error contract:
        OOM splits the batch, then every failure becomes a ``GenerationError`` in the results."""
        import torch

        lock = self._call_lock
        if lock is None:  # set with the pipeline, which callers load first
            raise GenerationError("the diffusers pipeline is not loaded")
        try:
            with lock, model_threads():
                return self._call(pipe, reqs, p, each, extra or {})
        except torch.OutOfMemoryError:
            _free_memory()
            if len(reqs) > 1:  # a smaller batch may fit: try one image at a time
                return [self._run_group(pipe, [r], p, [e], extra, what)[0] for r, e in zip(reqs, each)]
            size = f"{p.get('width', '?')}x{p.get('height', '?')}"
            return [GenerationError(f"out of memory {what} a {size} image with {self.path!r}; lower the size, or use offload=1")]
        except GenerationError as exc:
            return [exc for _ in reqs]
        except Exception as exc:  # noqa: BLE001 - any pipeline failure becomes a candidate error
            return [GenerationError(f"{self.family} pipeline failed: {type(exc).__name__}: {one_line(exc)}") for _ in reqs]

    def _call(self, pipe: Any, reqs: list[Any], p: dict[str, Any], each: list[dict], extra: dict[str, Any]) -> list[Any]:
        import numpy as np
        import torch

        accepted = set(inspect.signature(pipe.__call__).parameters)
        gen_device = "cpu" if self.cpu_offload else str(getattr(pipe, "device", "cpu"))
        if gen_device.startswith("mps"):
            gen_device = "cpu"  # mps generators are not reproducible across runs
        kwargs: dict[str, Any] = {
            "prompt": [r.prompt for r in reqs],
            "generator": [torch.Generator(device=gen_device).manual_seed(int(r.seed)) for r in reqs],
            "output_type": "pil",
        }
        if "steps" in p:
            kwargs["num_inference_steps"] = int(p["steps"])
        if "guidance" in p:
            kwargs[self.preset.guidance_arg if self.preset.guidance_arg in accepted else "guidance_scale"] = float(p["guidance"])
        for name in ("width", "height"):
            if name in p:
                kwargs[name] = int(p[name])
        negatives = [e.get("negative_prompt") for e in each]
        if any(negatives) and "negative_prompt" in accepted:
            kwargs["negative_prompt"] = [n or "" for n in negatives]
        for k, v in p.items():
            if k not in ("steps", "guidance", "width", "height", "negative_prompt") and k in accepted:
                kwargs[k] = v
        kwargs.update(extra)
        kwargs = {k: v for k, v in kwargs.items() if k in accepted or k == "prompt"}
        start = time.perf_counter()
        out = pipe(**kwargs)
        images = list(out.images)  # decoded to PIL: the device's work is done
        seconds = time.perf_counter() - start
        flagged = getattr(out, "nsfw_content_detected", None) or [False] * len(images)
        results: list[Any] = []
        for img, nsfw in zip(images, flagged):
            if nsfw or not np.asarray(img).any():
                results.append(GenerationError("the image came back all black: the pipeline's safety checker filtered it"))
            else:
                results.append(img.convert("RGB"))
        return timed(results, seconds)


def _blank_canvas(pipe: Any, p: dict[str, Any], n: int) -> dict[str, Any]:
    """How an inpainting or fill pipeline (it takes ``mask_image``) generates: it repaints all
    of a blank image (full mask, strength 1), so FLUX.1-Fill or an SDXL inpainting checkpoint
    can also make the round's new images. Other pipelines generate from the prompt alone."""
    if not _takes(type(pipe), "mask_image"):
        return {}
    scale = int(getattr(pipe, "vae_scale_factor", 8) or 8)
    default = int(getattr(pipe, "default_sample_size", 0) or 0) * scale or 1024
    size = (int(p.get("width") or default), int(p.get("height") or default))
    return {"image": [Image.new("RGB", size, (127, 127, 127))] * n, "mask_image": [Image.new("L", size, 255)] * n, "strength": 1.0}


def _free_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def spec_flag(value: str) -> bool:
    """A spec option's ``1/true/yes/on`` or ``0/false/no/off``; ``ValueError`` otherwise."""
    text = value.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{value!r} is not 1 or 0")


_INT_KEYS = {"steps", "width", "height"}


def check_spec(arg: str) -> None:
    """What the CLI checks before a run exists: the spec parses, and a model written as a
    path (``/``, ``./``, ``../``, ``~``) is a folder that is there (a hub id is found when loaded)."""
    path, _ = parse_spec(arg)
    if path.startswith(("/", "./", "../", "~")) and not Path(path).expanduser().is_dir():
        raise ValueError(f"no model folder at {path}")


def parse_spec(arg: str) -> tuple[str, dict[str, Any]]:
    """``"path?device=cpu&offload=1&steps=4"`` -> (path, DiffusersGenerator keyword arguments)."""
    path, _, query = arg.partition("?")
    path = path.strip()
    if not path:
        raise ValueError("diffusers spec needs a hub id or a folder, e.g. diffusers:Tongyi-MAI/Z-Image-Turbo")
    kwargs: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        key = key.strip().lower()
        if key == "device":
            kwargs["device"] = value
        elif key == "dtype":
            kwargs["dtype"] = value
        elif key == "family":
            kwargs["family"] = value
        elif key in ("offload", "cpu_offload", "slicing", "attention_slicing"):
            try:
                flag = spec_flag(value)
            except ValueError:
                raise ValueError(f"diffusers option {key}={value!r}: use 1 or 0") from None
            kwargs["cpu_offload" if "offload" in key else "attention_slicing"] = flag
        elif key in _INT_KEYS:
            defaults[key] = int(value)
        elif key == "guidance":
            defaults[key] = float(value)
        elif key == "negative_prompt":
            defaults[key] = value
        elif key == "batch_window":
            kwargs[key] = float(value)
        elif key == "max_batch":
            kwargs[key] = int(value)
        else:
            raise ValueError(
                f"unknown diffusers option {key!r}; known: device, dtype, family, offload, slicing, steps, guidance, "
                "width, height, negative_prompt, batch_window, max_batch"
            )
    if defaults:
        kwargs["defaults"] = defaults
    return path, kwargs


def from_spec(arg: str) -> DiffusersGenerator:
    """Registry factory for ``diffusers:<path-or-id>[?options]`` (loads lazily)."""
    path, kwargs = parse_spec(arg)
    if "dtype" in kwargs:
        pick_dtype("cpu", kwargs["dtype"])  # validate now, not at first generation
    return DiffusersGenerator(path, **kwargs)
