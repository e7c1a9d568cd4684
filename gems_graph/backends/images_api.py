"""``images-api:<base_url>#<model>``: an image server that speaks the OpenAI Images API.

For vLLM-Omni (``vllm serve Tongyi-MAI/Z-Image-Turbo --omni``), SGLang Diffusion
(``sglang serve --model-path ...``) and ``gems serve-generator``, which all serve
``POST {base_url}/images/generations``::

    images-api:http://gpu-box:8000/v1#Tongyi-MAI/Z-Image-Turbo
    images-api:http://gpu-box:8000/v1#Qwen/Qwen-Image?batch=4&timeout=900

What was followed: vLLM-Omni's "Image Generation API" page
(``docs/serving/image_generation_api.md``) and its request model
(``vllm_omni/entrypoints/openai/protocol/images.py``). The request is JSON with the
OpenAI fields ``model``, ``prompt``, ``n`` (1-10), ``size`` ("WIDTHxHEIGHT") and
``response_format`` ("b64_json"), and vLLM-Omni's extension fields ``seed``,
``num_inference_steps``, ``guidance_scale`` (``true_cfg_scale`` for the Qwen-Image
family, as the diffusers presets route it), ``negative_prompt`` and
``extra_params`` (model-specific arguments: a request's ``extra``); a field we
have no value for is left out so the server uses the model's default. The reply
is ``{"created", "data": [{"b64_json": ...}, ...]}``. Errors come back as FastAPI's
``{"detail": ...}`` (400 bad parameters or model mismatch, 422 validation) or 503
while the engine is not initialised.

Batching: a round's candidates (and other runs' requests in this process) with the
same prompt and parameters and consecutive seeds go out as one request with ``n``
and the first seed (``backends.batching``; ``batch=<n>`` caps it, ``batch=1``
sends one request per image). Candidate seeds of a round are consecutive, so a
round is one request. Per-image seeds: the API has one ``seed`` per request.
SGLang Diffusion seeds image ``i`` of a request with ``seed + i`` (its input
validation stage expands one seed into ``n``), and so does ``gems serve-generator``:
there each candidate's image depends on its own seed only, alone or batched (up to
float rounding where the server batched it with other clients' images: a level of 255
in a few pixels; ``--max-batch 1`` there makes it exact).
vLLM-Omni seeds one generator for the whole request: the same round gives the same
images run after run, but image ``i > 0`` is not what its seed alone would give; use
``batch=1`` where that matters (e.g. re-making one candidate).

Errors: connection errors, timeouts, 429 and 5xx are retried (``http_client``,
shared with ``http:``; ``retries=<n>``, default 3; ``timeout=<s>`` per request, default the run's ``generation_timeout``, 120 s;
each image within ``generation_deadline``, 240 s);
a 4xx is a ``GenerationError`` with the server's message (a content-policy or
safety refusal says so), recorded on each candidate of that request. An image the
server could not make inside an otherwise good reply (``gems serve-generator``
sends ``{"b64_json": null, "error": msg}`` for it) fails only that candidate.

Edits (``POST {base_url}/images/edits``, ``ImagesApiGenerator.edit``): multipart/form-data
as OpenAI's "Create image edit" reference and vLLM-Omni's "Image Edit API" page
(``docs/serving/image_edit_api.md``) and route (``edit_images`` in
``vllm_omni/entrypoints/openai/api_server.py``) take it. Files: ``image`` (the source,
PNG) and, for an inpainting edit, the mask, sent as one PNG under both names the servers
read: ``mask`` (OpenAI: its transparent pixels, alpha 0, mark where to edit) and
``mask_image`` (vLLM-Omni: white is inpainted). ``edit_mask`` makes that PNG from our mask
(mode ``L``, white = repaint): RGBA, white and transparent where to repaint, black and
opaque elsewhere, so both readings agree. Without a mask the edit is img2img. Text fields:
``model``, ``prompt``, ``n`` (1), ``size`` (the source's ``WIDTHxHEIGHT``: the edit comes
back at the source's size), ``response_format`` ("b64_json"), and the extension fields
generation sends: ``seed``, ``num_inference_steps``, ``guidance_scale`` /
``true_cfg_scale``, ``negative_prompt``, plus ``strength`` (vLLM-Omni passes it to the
pipeline) and ``extra_params`` as JSON text (read by ``gems serve-generator``; vLLM-Omni's
edit form has no such field and ignores it). The reply, errors and retries are those of
generations. Edits are not coalesced: each has its own source image.

Whether the server edits cannot be known offline, so it is declared: ``edits=1`` in the
spec (``images-api:http://gpu:8000/v1#Qwen/Qwen-Image-Edit?edits=1``) sets
``supports_editing``, and only then does the refiner offer the edit move. A server that
answers 404 or 405 on ``/images/edits`` (no such route, or ``gems serve-generator`` with a
generator that cannot edit) gives a ``GenerationError`` "the server at ... does not serve
/images/edits", and this generator stops offering edits for the rest of the process.
``gems serve-generator`` also lists ``"edits": true|false`` in its ``/v1/models`` entry;
``gems doctor`` compares the declaration with it (fail: declared but the server says the
model cannot edit; vLLM-Omni's list says nothing, and then only the first edit tells).

The key, if the server wants one (``vllm serve --api-key``), comes from
``GEMS_IMAGES_API_KEY``; it is sent as a bearer token and never logged. The family
(which lessons memory recalls) comes from the model name, as for ``diffusers:``
(``Tongyi-MAI/Z-Image-Turbo`` -> ``z-image``), so a diffusers box and a vLLM-Omni
box serving the same model share lessons; ``family=<name>`` overrides it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Hashable
from typing import Any
from urllib.parse import parse_qsl

import httpx
from PIL import Image, ImageOps

from gems_graph.backends.batching import BatchCoalescer, params_key
from gems_graph.backends.diffusers_generator import PRESETS, detect_preset, spec_flag
from gems_graph.backends.http_client import (
    MAX_RESPONSE_BYTES,
    ImageServerClient,
    decode_b64_image,
    error_code,
    error_text,
    is_refusal,
    png_bytes,
    served_model_check,
    server_seconds,
)
from gems_graph.models.generator import EditRequest, GenerationError, GenerationRequest, timed
from gems_graph.models.health import FAIL, OK, SKIP, Health
from gems_graph.models.retry import CallLimits

#: The most images vLLM-Omni takes in one request (``n`` is 1-10).
MAX_N = 10
API_KEY_VARIABLE = "GEMS_IMAGES_API_KEY"


def family_for_model(model: str) -> str:
    """The family of a served model, by name: a known diffusers preset, else the name's last part."""
    preset = detect_preset(model)
    if preset is not PRESETS["diffusers"]:
        return preset.family
    return model.rstrip("/").rsplit("/", 1)[-1].lower() or "images-api"


def size_field(width: int | None, height: int | None) -> str | None:
    """``"WIDTHxHEIGHT"`` when both are set; otherwise the server's default size."""
    return f"{int(width)}x{int(height)}" if width and height else None


def edit_mask(mask: Image.Image) -> Image.Image:
    """Our mask (mode ``L``, white = repaint) as the one PNG both edits conventions read the same:
    RGBA, transparent where to repaint (OpenAI's ``mask``: alpha 0 marks the edit) and white
    there on black elsewhere (vLLM-Omni's ``mask_image`` and diffusers read it as grey: white
    is inpainted)."""
    grey = mask.convert("L")
    return Image.merge("RGBA", (grey, grey, grey, ImageOps.invert(grey)))


def mask_from_alpha(mask: Image.Image) -> Image.Image:
    """An OpenAI ``mask`` (transparent = edit) as ours (mode ``L``, white = repaint);
    ``ValueError`` for a mask without an alpha channel, which OpenAI refuses too."""
    if mask.mode == "P" and "transparency" in mask.info:
        mask = mask.convert("RGBA")
    if "A" not in mask.getbands():
        raise ValueError(
            f"'mask' has no alpha channel (mode {mask.mode}): its transparent pixels mark where to edit; "
            "send a PNG with transparency, or the mask as 'mask_image' (white = repaint)"
        )
    return ImageOps.invert(mask.getchannel("A"))


def _batch_key(request: GenerationRequest) -> Hashable:
    """Requests that can share one API request: same prompt and parameters (seeds may differ)."""
    return (request.prompt, params_key(request))


class ImagesApiGenerator:
    """Client for ``POST {base_url}/images/generations``; thread-safe, batches per round."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        family: str | None = None,
        max_batch: int = 8,
        batch_window: float = 0.05,
        timeout: float | None = None,
        retries: int = 3,
        backoff: float = 0.5,
        api_key: str | None = None,
        edits: bool = False,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        if not base_url.lower().startswith(("http://", "https://")):
            raise ValueError(f"images-api base URL must start with http:// or https://, got {base_url!r}")
        if not model:
            raise ValueError("images-api needs a model name after '#', e.g. images-api:http://gpu:8000/v1#Tongyi-MAI/Z-Image-Turbo")
        if not 1 <= int(max_batch) <= MAX_N:
            raise ValueError(f"images-api option batch={max_batch}: use 1 to {MAX_N} (the API's n)")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.family = family or family_for_model(model)
        self.max_batch = int(max_batch)
        #: Declared by the spec (``edits=1``): the refiner offers edits only then. Turned off,
        #: for this process, when the server answers that it does not serve ``/images/edits``.
        self.supports_editing = bool(edits)
        self._no_edits = (
            f"images-api:{self.base_url}#{model} was not declared to edit; add ?edits=1 to the spec if the server serves /images/edits"
        )
        self._guidance_field = "true_cfg_scale" if detect_preset(model).guidance_arg == "true_cfg_scale" else "guidance_scale"
        key = api_key if api_key is not None else os.environ.get(API_KEY_VARIABLE)
        self._http = ImageServerClient(
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            headers={"Authorization": f"Bearer {key}"} if key else None,
            max_response_bytes=max_response_bytes,
        )
        self._batches = BatchCoalescer(self.generate_batch, window=batch_window, max_batch=self.max_batch, key=_batch_key)

    def with_limits(self, limits: CallLimits) -> ImagesApiGenerator:
        """Take a run's generation timeout and deadline (see ``ImageServerClient.limit``)."""
        self._http.limit(limits)
        return self

    def health_checks(self) -> list[Health]:
        """The server is up, takes the key, and lists the model; and what its model list says about edits."""
        reachable = served_model_check(self.base_url, self.model, self.api_key)
        edits = self._edits_check() if reachable.status != FAIL else None
        return [reachable] + ([edits] if edits else [])

    def _edits_check(self) -> Health | None:
        """The declaration (``edits=1``) against the ``"edits"`` flag ``gems serve-generator`` lists
        for the model; vLLM-Omni lists none, and then only the first edit can tell."""
        try:
            resp = self._http.http.get(self.models_url, timeout=10)
            entry = next((m for m in resp.json().get("data", []) if isinstance(m, dict) and m.get("id") == self.model), {})
        except (httpx.HTTPError, ValueError, AttributeError, TypeError):
            entry = {}
        listed = entry.get("edits")
        if not isinstance(listed, bool):
            if not self.supports_editing:
                return None
            return Health("edits", SKIP, f"declared by edits=1; {self.models_url} does not say whether it edits (a 404 turns edits off)")
        if listed and self.supports_editing:
            return Health("edits", OK, f"{self.model} edits ({self.edits_url})")
        if listed:
            return Health("edits", OK, f"the server edits with {self.model}; add ?edits=1 to the spec to let the refiner edit")
        if self.supports_editing:
            return Health("edits", FAIL, f"declared by edits=1, but {self.models_url} says {self.model} cannot edit")
        return None

    def __repr__(self) -> str:
        return f"ImagesApiGenerator({self.base_url!r}, {self.model!r})"

    @property
    def generations_url(self) -> str:
        return f"{self.base_url}/images/generations"

    @property
    def edits_url(self) -> str:
        return f"{self.base_url}/images/edits"

    @property
    def models_url(self) -> str:
        return f"{self.base_url}/models"

    @property
    def api_key(self) -> str | None:
        """The bearer token sent (``gems doctor`` checks ``GET {base_url}/models`` with it)."""
        auth = self._http.http.headers.get("Authorization", "")
        return auth.removeprefix("Bearer ") or None

    def generate(self, request: GenerationRequest) -> Image.Image:
        """One image; concurrent calls with the same prompt and parameters share one request."""
        return self._batches.submit(request)

    async def agenerate(self, request: GenerationRequest) -> Image.Image:
        """``generate`` under ``ainvoke``: runs in flight hand their requests over without holding threads."""
        return await self._batches.asubmit(request)

    def generate_batch(self, requests: list[GenerationRequest]) -> list[Image.Image | GenerationError]:
        """One API request per run of consecutive seeds among requests that share a prompt and parameters."""
        results: list[Any] = [None] * len(requests)
        groups: dict[Hashable, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(_batch_key(r), []).append(i)
        for idxs in groups.values():
            for run in _consecutive_runs(sorted(idxs, key=lambda i: requests[i].seed), requests, self.max_batch):
                for i, res in zip(run, self._request([requests[i] for i in run])):
                    results[i] = res
        return results

    def request_body(self, first: GenerationRequest, n: int) -> dict[str, Any]:
        """The JSON for ``n`` images of ``first``'s prompt and parameters, seeded from ``first.seed``."""
        body: dict[str, Any] = {"model": self.model, "prompt": first.prompt, "n": n, "response_format": "b64_json", "seed": first.seed}
        optional = {
            "size": size_field(first.width, first.height),
            "num_inference_steps": first.steps,
            self._guidance_field: first.guidance,
            "negative_prompt": first.negative_prompt,
            "extra_params": dict(first.extra) or None,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        return body

    def _request(self, reqs: list[GenerationRequest]) -> list[Image.Image | GenerationError]:
        where = f"image server {self.generations_url}"
        body = self.request_body(reqs[0], len(reqs))
        try:
            resp = self._http.call(lambda http, timeout: http.post(self.generations_url, json=body, timeout=timeout), where)
        except GenerationError as exc:
            return [exc] * len(reqs)
        return self._reply_images(resp, where, len(reqs))

    def _reply_images(self, resp: httpx.Response, where: str, n: int) -> list[Image.Image | GenerationError]:
        """The ``n`` images of a reply, a ``GenerationError`` in place of each one that did not come."""
        if resp.status_code != 200:
            message = error_text(resp)
            if is_refusal(error_code(resp), message):
                err = GenerationError(f"{self.model} refused the prompt (content policy): {message}")
            else:
                err = GenerationError(f"{where} refused the request: HTTP {resp.status_code}: {message}")
            return [err] * n
        try:
            payload = resp.json()
            data = payload["data"]
            if not isinstance(data, list):
                raise TypeError("'data' is not a list")
        except (ValueError, KeyError, TypeError) as exc:
            return [GenerationError(f"{where} sent a reply without a 'data' list: {exc}")] * n
        out: list[Image.Image | GenerationError] = []
        for k in range(n):
            item = data[k] if k < len(data) and isinstance(data[k], dict) else {}
            if k >= len(data):
                out.append(GenerationError(f"{where} returned {len(data)} images for n={n}"))
            elif not item.get("b64_json") and item.get("error"):
                out.append(GenerationError(f"{where} could not make image {k} of the batch: {item['error']}"))
            else:
                try:
                    out.append(timed([decode_b64_image(item.get("b64_json"), where)], server_seconds(item))[0])
                except GenerationError as exc:
                    out.append(exc)
        if not any(server_seconds(item) is not None for item in data if isinstance(item, dict)):
            timed(out, server_seconds(payload))  # one time for the whole reply: each image its share
        return out

    def edit(self, request: EditRequest) -> Image.Image:
        """One edit: ``POST {base_url}/images/edits``, multipart, as ``edit_form`` builds it.

        Not coalesced (each edit has its own source image). A 404 or 405 means the server
        does not edit: the error says so and this generator stops offering edits.
        """
        if not self.supports_editing:
            raise GenerationError(self._no_edits)
        where = f"image server {self.edits_url}"
        fields, files = self.edit_form(request)
        resp = self._http.call(lambda http, timeout: http.post(self.edits_url, data=fields, files=files, timeout=timeout), where)
        if resp.status_code in (404, 405):
            self.supports_editing = False
            self._no_edits = f"the server at {self.base_url} does not serve /images/edits (HTTP {resp.status_code}: {error_text(resp)})"
            raise GenerationError(self._no_edits)
        result = self._reply_images(resp, where, 1)[0]
        if isinstance(result, GenerationError):
            raise result
        return result

    def edit_form(self, request: EditRequest) -> tuple[dict[str, str], list[tuple[str, tuple[str, bytes, str]]]]:
        """The edits form for ``request``: (text fields, files), as httpx sends them.

        Files: ``image`` (the source, PNG) and, for an inpainting edit, the mask (``edit_mask``)
        twice, as ``mask`` (OpenAI) and ``mask_image`` (vLLM-Omni); a server reads the one it
        knows. ``size`` is the source's: the edit comes back at the source's size.
        """
        fields = {
            "model": self.model,
            "prompt": request.prompt,
            "n": "1",
            "size": size_field(*request.image.size) or "auto",
            "response_format": "b64_json",
            "seed": str(int(request.seed)),
            "strength": repr(float(request.strength)),
        }
        optional = {
            "num_inference_steps": request.steps,
            self._guidance_field: request.guidance,
            "negative_prompt": request.negative_prompt,
            "extra_params": json.dumps(request.extra) if request.extra else None,
        }
        fields.update({k: str(v) for k, v in optional.items() if v is not None})
        files = [("image", ("image.png", png_bytes(request.image.convert("RGB")), "image/png"))]
        if request.mask is not None:
            mask = png_bytes(edit_mask(request.mask))
            files += [("mask", ("mask.png", mask, "image/png")), ("mask_image", ("mask.png", mask, "image/png"))]
        return fields, files

    def close(self) -> None:
        self._http.close()


def _consecutive_runs(order: list[int], requests: list[GenerationRequest], limit: int) -> list[list[int]]:
    """Split indexes (sorted by seed) into runs of consecutive seeds, at most ``limit`` long."""
    runs: list[list[int]] = []
    for i in order:
        run = runs[-1] if runs else None
        if run and len(run) < limit and requests[i].seed == requests[run[-1]].seed + 1:
            run.append(i)
        else:
            runs.append([i])
    return runs


_OPTIONS: dict[str, Callable[[str], Any]] = {
    "batch": int,
    "batch_window": float,
    "timeout": float,
    "retries": int,
    "family": str,
    "edits": spec_flag,
}


def parse_spec(arg: str) -> tuple[str, str, dict[str, Any]]:
    """``"http://gpu:8000/v1#Org/Model?batch=4"`` -> (base_url, model, ImagesApiGenerator keyword arguments)."""
    base_url, sep, rest = arg.strip().rpartition("#")
    model, _, query = rest.partition("?")
    model = model.strip()
    if not sep or not base_url or not model:
        raise ValueError(
            f"images-api spec must be <base_url>#<model>, e.g. images-api:http://gpu:8000/v1#Tongyi-MAI/Z-Image-Turbo; got {arg!r}"
        )
    kwargs: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in _OPTIONS:
            raise ValueError(f"unknown images-api option {key!r}; known: {', '.join(_OPTIONS)}")
        try:
            kwargs["max_batch" if key == "batch" else key] = _OPTIONS[key](value)
        except ValueError:
            kind = "1 or 0" if _OPTIONS[key] is spec_flag else f"a {_OPTIONS[key].__name__}"
            raise ValueError(f"images-api option {key}={value!r} must be {kind}") from None
    return base_url.strip(), model, kwargs


def from_spec(arg: str) -> ImagesApiGenerator:
    """Registry factory for ``images-api:<base_url>#<model>[?options]``."""
    base_url, model, kwargs = parse_spec(arg)
    return ImagesApiGenerator(base_url, model, **kwargs)
