"""``gems serve-generator``: serve any generator spec over HTTP, in two protocols.

One GPU box loads the model once; many agents call it. Stdlib only
(``ThreadingHTTPServer``) so serving adds no dependency. Routes:

* ``POST /v1/images/generations``: the OpenAI Images API as vLLM-Omni and SGLang
  Diffusion serve it (see ``images_api``), so one ``images-api:`` spec reaches a
  diffusers box and a vLLM-Omni box alike. ``n`` images are made with seeds
  ``seed, seed+1, ...`` (as SGLang does): in one ``generate_batch`` call where the
  generator declares that capability, else one by one. ``seed`` absent: a random one.
  An image that fails inside a batch comes back as ``{"b64_json": null, "error": msg}``
  (the rest still arrive); when every image fails the answer is 422.
  Errors are OpenAI-shaped: ``{"error": {"message", "type", "code"}}``.
* ``POST /v1/images/edits``: the OpenAI edits form (multipart/form-data, parsed by
  ``form_data``; or JSON with base64 ``image``/``mask``/``mask_image``), served when the
  generator edits (``supports_editing``) by ``generator.edit(EditRequest(...))``; see
  ``parse_edit_request`` for the fields. ``n`` edits are made one by one with seeds
  ``seed, seed+1, ...``, answered like generations. A generator that cannot edit gets 404
  "model ... cannot edit images" (the body unread), which ``images-api:`` clients read as
  "does not serve /images/edits". A missing image, a file that is not an image, a mask of
  another size, a ``mask`` without alpha, a ``size`` other than the image's get 400.
* ``GET /v1/models``: ``{"object": "list", "data": [{"id": served model name, "family", "edits", ...}]}``
  (``family`` and ``edits`` are ours, for people reading it; clients take the family from the name);
  the name is ``--served-model-name``, else the spec's model (``Tongyi-MAI/Z-Image-Turbo``
  for ``diffusers:Tongyi-MAI/Z-Image-Turbo?device=cuda``). A request naming another
  model gets 400, as vLLM-Omni answers.
* ``POST /`` or ``POST /generate``: our ``http:`` protocol (JSON, see
  ``http_generator``), a form with ``prompt``, or the official GEMS servers' call
  (``POST /generate?prompt=...``, no body) -> ``image/png``.
* ``GET /health`` -> ``{"status": "ok", "generator": spec, "family", "busy", "queued", "max_concurrency", "edits"}``
* ``GET /metrics``: the queue's figures in Prometheus' text format (``serving_queue``):
  queue depth and capacity, images running, made and failed, images/s over the last
  minute, requests refused or dropped by reason, batch sizes and queue waits as histograms.

Queueing (``serving_queue``): every image (each of a request's ``n``, each edit) waits in
one bounded queue; ``max_concurrency`` workers run it, coalescing queued images from any
client that share parameters into one ``generate_batch`` call of up to ``max_batch``
(where the generator declares that capability), waiting at most ``batch_window`` seconds
after the oldest one for company. A request waits for its images up to
``request_deadline`` seconds (default 100, under the clients' default 120 s
``generation_timeout``, so a client reads the server's answer rather than its own
timeout); past it, images not started are dropped and the answer is 504. Only a full
queue (``max_queue`` images waiting) is answered 503 with ``Retry-After``. While a request
waits the server watches its connection: a client that has gone has its images dropped.

Limits, on every POST route: a body over ``max_body_bytes`` (on the edits route
``max_edit_bytes``, 32 MiB by default: it carries images) gets 413 without being read,
a ``Content-Length`` that is not a number of bytes gets 400; the request line, headers
and body must all arrive within ``request_timeout`` seconds (default 30) of the
connection's turn starting, however slowly they trickle in, or the connection is
closed, so stalled or trickling clients do not hold a thread each. ``RequestLimits``
caps steps (``max_steps``), pixels (``max_pixels``) and ``n`` (``max_n``): over a cap is
400 with the cap's option named; an image over ``MAX_IMAGE_PIXELS`` (8192 x 8192) is
refused before it is made (an uploaded one before it is decoded), and a size the
generator declares it cannot make (``size_refusal``: the shapes model makes 32x32 only)
is 400 rather than an image of another size. On ``/generate`` a generator failure is
422 ``{"error": msg}``; a bad request is 400.

Access (``access_keys``): with ``GEMS_SERVER_KEYS`` set, every route but ``/health`` needs
one of its keys (``Authorization: Bearer KEY``, which ``images-api:`` clients send from
``GEMS_IMAGES_API_KEY``); a missing or wrong key is 401 with ``WWW-Authenticate: Bearer``,
the body unread. Without keys only loopback clients are served, and ``make_server``
refuses a non-loopback ``host`` unless ``open_access`` says that something in front of
the server (a proxy, a private network) decides who gets in.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import random
import select
import socket
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future, wait
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from PIL import Image

from gems_graph.access_keys import SERVER_KEYS_VARIABLE, AccessKeys, admit, is_loopback
from gems_graph.backends.batching import params_key
from gems_graph.backends.form_data import parse_form_data
from gems_graph.backends.http_client import open_image, png_bytes
from gems_graph.backends.images_api import MAX_N, mask_from_alpha, size_field
from gems_graph.backends.serving_queue import QueueFull, ServingQueue
from gems_graph.models.generator import (
    MAX_IMAGE_PIXELS,
    MAX_IMAGE_SIDE,
    EditRequest,
    GenerationError,
    GenerationRequest,
    size_refusal,
    supports_editing,
)
from gems_graph.models.registry import resolve_generator, split_spec

log = logging.getLogger(__name__)

_INT_FIELDS = ("seed", "width", "height", "steps")
IMAGES_ROUTE = "/v1/images/generations"
EDITS_ROUTE = "/v1/images/edits"
#: Default bound on an edits body (it carries the source image and the mask).
MAX_EDIT_BYTES = 32 * 1024 * 1024
MODELS_ROUTE = "/v1/models"
#: Seconds a request's line, headers and body may take to arrive before the connection is closed.
REQUEST_TIMEOUT = 30.0
#: Seconds a request may wait for its images (queue and generation) before the answer is 504.
REQUEST_DEADLINE = 100.0
#: Images that may wait at once; more get 503.
MAX_QUEUE = 256
#: Most images in one pipeline call, and seconds the oldest queued image waits for company.
MAX_BATCH = 8
BATCH_WINDOW = 0.02
#: Seconds between two looks at a waiting request's connection (has its client gone?).
_POLL = 0.2
_LEGACY_ROUTES = ("", "/generate")


def served_model_name(spec: str) -> str:
    """The model id ``/v1/models`` lists for a spec: its argument without options, else its kind."""
    kind, arg = split_spec(spec)
    return arg.partition("?")[0].strip() or kind


@dataclass(frozen=True)
class RequestLimits:
    """What one request may ask for: steps, pixels and ``n`` (a request over one gets 400)."""

    max_steps: int = 200
    max_pixels: int = 2048 * 2048
    max_n: int = MAX_N

    def check(self, steps: int | None, width: int | None, height: int | None, n: int = 1) -> None:
        """``ValueError`` naming the cap a request is over."""
        if steps is not None and not 1 <= steps <= self.max_steps:
            raise ValueError(f"steps must be from 1 to {self.max_steps} (serve-generator --max-steps), got {steps}")
        if width and height and width * height > self.max_pixels:
            raise ValueError(f"{width}x{height} is over {self.max_pixels} pixels (serve-generator --max-pixels)")
        if not 1 <= n <= self.max_n:
            raise ValueError(f"'n' must be from 1 to {self.max_n} (serve-generator --max-n), got {n}")


class GeneratorServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        generator: Any,
        spec: str,
        max_body_bytes: int,
        max_concurrency: int,
        model_name: str | None = None,
        request_timeout: float = REQUEST_TIMEOUT,
        max_edit_bytes: int = MAX_EDIT_BYTES,
        *,
        max_queue: int = MAX_QUEUE,
        max_batch: int = MAX_BATCH,
        batch_window: float = BATCH_WINDOW,
        request_deadline: float = REQUEST_DEADLINE,
        limits: RequestLimits | None = None,
        keys: AccessKeys | None = None,
    ) -> None:
        self.request_timeout = request_timeout
        #: The keys clients must present; None lets every client in (``open_access``).
        self.keys = keys
        super().__init__(address, _Handler)
        self.generator = generator
        self.spec = spec
        self.model_name = model_name or served_model_name(spec)
        self.max_body_bytes = max_body_bytes
        self.max_edit_bytes = max_edit_bytes
        self.max_concurrency = max_concurrency
        self.request_deadline = request_deadline
        self.limits = limits or RequestLimits()
        batch = getattr(generator, "generate_batch", None)
        self.generate_run: Callable[[list[Any]], list[Any]] = batch if callable(batch) else _one(generator.generate)
        self.batches = callable(batch)
        self.edit_run = _one(getattr(generator, "edit", None))
        self.queue = ServingQueue(max_queue=max_queue, max_batch=max_batch, window=batch_window, workers=max_concurrency)

    @property
    def busy(self) -> int:
        """Images in a pipeline call now."""
        return self.queue.running

    def generation_key(self, request: GenerationRequest) -> Hashable | None:
        """Queued requests with the same key share a batch; None (a generator that does not batch) never does."""
        return ("generate", params_key(request)) if self.batches else None

    def check(self, request: GenerationRequest, n: int = 1) -> GenerationRequest:
        """``ValueError`` for a request over the limits or of a size the generator cannot make."""
        check_size(request)
        self.limits.check(request.steps, request.width, request.height, n)
        refusal = size_refusal(self.generator, request.width, request.height)
        if refusal:
            raise ValueError(refusal)
        return request

    def server_close(self) -> None:
        super().server_close()
        self.queue.close()

    @property
    def root(self) -> str:
        host, port = cast(tuple[str, int], self.server_address[:2])  # a TCP server's address
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        """The ``http:`` protocol's endpoint."""
        return f"{self.root}/generate"

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL for ``images-api:{base_url}#{model_name}``."""
        return f"{self.root}/v1"


def _one(make: Any) -> Callable[[list[Any]], list[Any]]:
    """A batch runner that makes one image (``make(item)``), for a generator that does not batch."""

    def run(items: list[Any]) -> list[Any]:
        return [make(item) for item in items]

    return run


def _json_object(body: bytes, what: str = "body") -> dict[str, Any]:
    """A request body (or field) that must be a JSON object (empty counts as ``{}``); ``ValueError`` otherwise."""
    try:
        parsed = json.loads(body.decode("utf-8") or "{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{what} is not JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise ValueError(f"{what} must be a JSON object")
    return parsed


def parse_request(body: bytes, content_type: str, query: str = "") -> GenerationRequest:
    """A JSON or form body, or a query string (the official GEMS call) -> ``GenerationRequest``;
    ``ValueError`` with a reason when bad."""
    data: dict[str, Any] = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
    if "application/x-www-form-urlencoded" in content_type:
        data.update({k: v[0] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()})
    elif body.strip() or not data:
        data.update(_json_object(body))
    prompt = data.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("'prompt' must be a non-empty string")
    kwargs: dict[str, Any] = {"prompt": prompt, "seed": 0}
    for name in _INT_FIELDS:
        if data.get(name) not in (None, ""):
            kwargs[name] = _int(data[name], name)
    if data.get("guidance") not in (None, ""):
        kwargs["guidance"] = _float(data["guidance"], "guidance")
    if isinstance(data.get("negative_prompt"), str):
        kwargs["negative_prompt"] = data["negative_prompt"]
    if isinstance(data.get("extra"), dict):
        kwargs["extra"] = data["extra"]
    return GenerationRequest(**kwargs)


def parse_images_request(body: bytes, model_name: str) -> tuple[GenerationRequest, int]:
    """An OpenAI Images API body (vLLM-Omni's fields) -> (the first image's request, n)."""
    kwargs, size, n = _images_fields(_json_object(body), model_name)
    if size is not None:
        kwargs["width"], kwargs["height"] = size
    return GenerationRequest(**kwargs), n


def _images_fields(data: dict[str, Any], model_name: str) -> tuple[dict[str, Any], tuple[int, int] | None, int]:
    """The fields generations and edits share -> (request keyword arguments, size or None, n).

    Values may be JSON values or form text (the edits form): numbers are parsed from either.
    """
    prompt = data.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("'prompt' must be a non-empty string")
    if data.get("model") not in (None, "", model_name):
        raise ValueError(f"model {data['model']!r} is not served here; this server serves {model_name!r}")
    n = _int(data["n"], "n") if data.get("n") not in (None, "") else 1
    if not 1 <= n <= MAX_N:
        raise ValueError(f"'n' must be between 1 and {MAX_N}, got {n}")
    if data.get("response_format") not in (None, "", "b64_json"):
        raise ValueError(f"only response_format 'b64_json' is supported, got {data['response_format']!r}")
    kwargs: dict[str, Any] = {"prompt": prompt}
    seed = data.get("seed")
    kwargs["seed"] = random.randrange(2**31) if seed in (None, "") else _int(seed, "seed")
    size_text, size = data.get("size"), None
    if size_text not in (None, "", "auto"):
        w, sep, h = str(size_text).lower().partition("x")
        try:
            size = (int(w), int(h))
        except ValueError:
            raise ValueError(f"'size' must be WIDTHxHEIGHT, e.g. '1024x1024', got {size_text!r}") from None
        if not sep or min(size) < 1:
            raise ValueError(f"'size' must be WIDTHxHEIGHT, e.g. '1024x1024', got {size_text!r}")
    if data.get("num_inference_steps") not in (None, ""):
        kwargs["steps"] = _int(data["num_inference_steps"], "num_inference_steps")
    for name in ("guidance_scale", "true_cfg_scale"):  # Qwen-Image clients send true CFG; both mean our ``guidance``
        if data.get(name) not in (None, "") and "guidance" not in kwargs:
            kwargs["guidance"] = _float(data[name], name)
    if isinstance(data.get("negative_prompt"), str):
        kwargs["negative_prompt"] = data["negative_prompt"]
    extra = data.get("extra_params")
    if isinstance(extra, str) and extra:  # the edits form sends it as JSON text
        extra = _json_object(extra.encode("utf-8"), "'extra_params'")
    if extra not in (None, ""):
        if not isinstance(extra, dict):
            raise ValueError("'extra_params' must be a JSON object")
        kwargs["extra"] = extra
    return kwargs, size, n


_IMAGE_FIELDS = ("image", "image[]")
_MASK_FIELDS = ("mask", "mask_image")


def parse_edit_request(body: bytes, content_type: str, model_name: str) -> tuple[EditRequest, int]:
    """An edits request -> (the first edit's request, n).

    ``multipart/form-data`` as OpenAI and vLLM-Omni take it: ``image`` (one file; ``image[]``
    also), an optional mask as ``mask`` (OpenAI: transparent = edit) or ``mask_image``
    (vLLM-Omni: white = repaint; ``mask`` wins when both come), ``strength`` (0-1, default 1)
    and the generation fields. Or JSON with the same fields and base64 ``image``/``mask``/
    ``mask_image`` (data URLs too). ``size``, when given, must be the image's own size.
    """
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "multipart/form-data":
        data, uploads = _form(body, content_type)
    elif kind in ("application/json", ""):
        data = _json_object(body)
        uploads = {name: _b64_upload(data.pop(name), name) for name in _IMAGE_FIELDS + _MASK_FIELDS if name in data}
    else:
        raise ValueError(f"send the edit as multipart/form-data (or JSON with base64 images), not {content_type!r}")
    kwargs, size, n = _images_fields(data, model_name)
    images = [uploads[name] for name in _IMAGE_FIELDS if name in uploads]
    if not images:
        raise ValueError("'image' is required: the image to edit, as a file part")
    if len(images) > 1:
        raise ValueError("send one 'image': this server edits one image at a time")
    image = _upload_image(images[0], "image").convert("RGB")
    if size is not None and size != image.size:
        raise ValueError(f"'size' {size[0]}x{size[1]} is not the image's {image.width}x{image.height}; edits come back at the image's size")
    mask = None
    if "mask" in uploads:
        mask = mask_from_alpha(_upload_image(uploads["mask"], "mask"))
    elif "mask_image" in uploads:
        mask = _upload_image(uploads["mask_image"], "mask_image").convert("L")
    if mask is not None and mask.size != image.size:
        raise ValueError(
            f"the mask is {mask.width}x{mask.height} but the image is {image.width}x{image.height}; they must be the same size"
        )
    strength = _float(data["strength"], "strength") if data.get("strength") not in (None, "") else 1.0
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"'strength' must be from 0 to 1, got {strength:g}")
    return EditRequest(image=image, mask=mask, strength=strength, **kwargs), n


def _form(body: bytes, content_type: str) -> tuple[dict[str, str], dict[str, bytes]]:
    """A multipart body -> (text fields, file parts by name); ``ValueError`` for a field sent twice."""
    fields: dict[str, str] = {}
    uploads: dict[str, bytes] = {}
    for part in parse_form_data(body, content_type):
        if part.name in fields or part.name in uploads:
            if part.name in _IMAGE_FIELDS:
                raise ValueError("send one 'image': this server edits one image at a time")
            raise ValueError(f"form field {part.name!r} was sent twice")
        if part.filename is not None or part.name in _IMAGE_FIELDS + _MASK_FIELDS:
            uploads[part.name] = part.data
        else:
            fields[part.name] = part.text()
    return fields, uploads


def _b64_upload(value: Any, name: str) -> bytes:
    """A JSON body's base64 image (or ``data:image/...;base64,`` URL) -> bytes."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"'{name}' must be a base64-encoded image")
    if value.startswith("data:"):
        value = value.partition(",")[2]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"'{name}' is not valid base64") from None


def _upload_image(data: bytes, name: str) -> Image.Image:
    """An uploaded image, size-checked before it is decoded; ``ValueError`` naming the field."""
    try:
        return open_image(data)
    except ValueError as exc:
        raise ValueError(f"'{name}' must be an image file (PNG, JPEG, WebP) of at most {MAX_IMAGE_PIXELS} pixels; got {exc}") from None


def check_size(request: GenerationRequest) -> GenerationRequest:
    """``ValueError`` when the request asks for an image over ``MAX_IMAGE_PIXELS`` or ``MAX_IMAGE_SIDE``."""
    w, h = request.width, request.height
    if (w is not None and not 1 <= w <= MAX_IMAGE_SIDE) or (h is not None and not 1 <= h <= MAX_IMAGE_SIDE):
        raise ValueError(f"width and height must be from 1 to {MAX_IMAGE_SIDE}, got {w}x{h}")
    if w is not None and h is not None and w * h > MAX_IMAGE_PIXELS:
        raise ValueError(f"{w}x{h} is over the limit of {MAX_IMAGE_PIXELS} pixels")
    return request


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"'{name}' must be an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"'{name}' must be an integer") from None


def _float(value: Any, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"'{name}' must be a number") from None


def seeded(first: Any, n: int) -> list[Any]:
    """``n`` copies of a request seeded ``first.seed + i`` (as SGLang does)."""
    return [replace(first, seed=first.seed + i) for i in range(n)]


class _DeadlineReader(io.RawIOBase):
    """The connection's reads, each given only the time left before ``deadline``: a client
    that trickles a byte every few seconds still has to finish within ``request_timeout``."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.deadline: float | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the request did not arrive within --request-timeout")
            self.sock.settimeout(left)
        return self.sock.recv_into(buffer)


def _client_gone(sock: socket.socket) -> bool:
    """True when the peer has closed the connection (readable with nothing to read)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


def _png_b64(image: Image.Image) -> str:
    return base64.b64encode(png_bytes(image)).decode("ascii")


def _error_line(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, GenerationError) else f"{type(exc).__name__}: {exc}"


class _Handler(BaseHTTPRequestHandler):
    server: GeneratorServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        # A socket timeout for every write, and a deadline for reading each request: a
        # stalled or trickling client is dropped (the stdlib handler answers a timeout by
        # closing the connection).
        self.timeout = self.server.request_timeout  # type: ignore[misc]  # typeshed: a ClassVar; setup() reads it per handler
        super().setup()
        self.rfile.close()
        self._reader = _DeadlineReader(self.connection)
        self.rfile = io.BufferedReader(self._reader)
        self._started = time.monotonic()

    def handle_one_request(self) -> None:
        self._reader.deadline = time.monotonic() + self.server.request_timeout
        super().handle_one_request()

    def parse_request(self) -> bool:
        self._started = time.monotonic()
        return super().parse_request()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.info("%s %s", self.address_string(), format % args)

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self._reader.deadline = None  # the request has been read; writes get the plain socket timeout
        self.connection.settimeout(self.server.request_timeout)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode(), "application/json", headers)

    def _error(self, status: int, message: str, openai: bool, headers: dict[str, str] | None = None) -> None:
        """``{"error": msg}`` on our own routes, OpenAI's ``{"error": {"message", "type", "code"}}`` on /v1."""
        if not openai:
            return self._json(status, {"error": message}, headers)
        kind = {
            400: "invalid_request_error",
            401: "authentication_error",
            404: "not_found",
            413: "invalid_request_error",
            503: "server_busy",
            504: "timeout",
        }.get(status, "generation_error")
        self._json(status, {"error": {"message": message, "type": kind, "code": status}}, headers)

    @property
    def _route(self) -> str:
        return urlsplit(self.path).path.rstrip("/")

    def _admitted(self) -> bool:
        """Whether the client may use this route; answers 401 (the body unread) when it may not."""
        if self.server.keys is None or self._route == "/health":
            return True
        try:
            admit(self.server.keys, dict(self.headers.items()), self.client_address[0])
        except PermissionError as exc:
            self.close_connection = True
            self._error(401, str(exc), self._route.startswith("/v1"), {"WWW-Authenticate": "Bearer"})
            return False
        return True

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        srv = self.server
        if not self._admitted():
            return None
        if self._route == "/health":
            return self._json(
                200,
                {
                    "status": "ok",
                    "generator": srv.spec,
                    "family": getattr(srv.generator, "family", "unknown"),
                    "busy": srv.busy,
                    "queued": srv.queue.depth,
                    "max_concurrency": srv.max_concurrency,
                    "edits": supports_editing(srv.generator),
                },
            )
        if self._route == MODELS_ROUTE:
            model = {
                "id": srv.model_name,
                "object": "model",
                "created": 0,
                "owned_by": "gems",
                "family": getattr(srv.generator, "family", None),
                "edits": supports_editing(srv.generator),
            }
            return self._json(200, {"object": "list", "data": [model]})
        if self._route == "/metrics":
            return self._send(200, srv.queue.prometheus().encode(), "text/plain; version=0.0.4; charset=utf-8")
        return self._json(
            404,
            {
                "error": f"not found; use GET /health, GET /metrics, GET {MODELS_ROUTE}, POST /generate, "
                f"POST {IMAGES_ROUTE} or POST {EDITS_ROUTE}"
            },
        )

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        srv = self.server
        if not self._admitted():
            return None
        route = self._route
        if route == EDITS_ROUTE:
            if not supports_editing(srv.generator):
                self.close_connection = True  # the body stays unread
                return self._error(
                    404,
                    f"model {srv.model_name!r} cannot edit images: this server does not serve {EDITS_ROUTE} for it "
                    f"(it serves {IMAGES_ROUTE})",
                    True,
                )
            body = self._read_body(True, srv.max_edit_bytes, "--max-edit-bytes")
            return None if body is None else self._edits(body)
        openai = route == IMAGES_ROUTE
        if route not in _LEGACY_ROUTES and not openai:
            return self._json(404, {"error": f"not found; POST to /generate, {IMAGES_ROUTE} or {EDITS_ROUTE}"})
        body = self._read_body(openai, srv.max_body_bytes, "--max-body-bytes")
        if body is None:
            return None
        if openai:
            return self._images(body)
        return self._legacy(body)

    def _read_body(self, openai: bool, limit: int, option: str) -> bytes | None:
        """The request body, or ``None`` after answering 411/400/413 (the body then stays unread)."""
        length = self.headers.get("Content-Length")
        if length is None:
            if self.headers.get("Transfer-Encoding") is None:
                return b""  # e.g. the official GEMS client: POST /generate?prompt=..., no body
            self.close_connection = True
            self._error(411, "Content-Length is required", openai)
            return None
        size = int(length.strip()) if length.strip().isdigit() else -1
        if size < 0:  # "-1" would read to the end of the stream, whatever its size
            self.close_connection = True
            self._error(400, f"bad Content-Length {length[:40]!r}: it must be a number of bytes", openai)
            return None
        if size > limit:
            self.close_connection = True  # the unread body must not be parsed as the next request
            self._error(413, f"body of {size} bytes is over the {limit}-byte limit (serve-generator {option})", openai)
            return None
        return self.rfile.read(size)

    def _legacy(self, body: bytes) -> None:
        srv = self.server
        try:
            request = srv.check(parse_request(body, self.headers.get("Content-Type", ""), urlsplit(self.path).query))
        except ValueError as exc:
            return self._json(400, {"error": str(exc)})
        results = self._wait([request], srv.generate_run, srv.generation_key(request), False)
        if results is None:
            return None
        image = results[0]
        if isinstance(image, GenerationError):
            return self._json(422, {"error": str(image)})
        if isinstance(image, BaseException):
            log.error("generator failed: %s", _error_line(image))
            return self._json(500, {"error": _error_line(image)})
        self._send(200, png_bytes(image), "image/png")

    def _images(self, body: bytes) -> None:
        srv = self.server
        try:
            first, n = parse_images_request(body, srv.model_name)
            srv.check(first, n)
        except ValueError as exc:
            return self._error(400, str(exc), True)
        self._made(self._wait(seeded(first, n), srv.generate_run, srv.generation_key(first), True))

    def _edits(self, body: bytes) -> None:
        srv = self.server
        try:
            first, n = parse_edit_request(body, self.headers.get("Content-Type", ""), srv.model_name)
            srv.limits.check(first.steps, *first.image.size, n)
        except ValueError as exc:
            return self._error(400, str(exc), True)
        self._made(self._wait(seeded(first, n), srv.edit_run, None, True))

    def _wait(self, items: list[Any], run: Callable[[list[Any]], list[Any]], key: Hashable | None, openai: bool) -> list[Any] | None:
        """Queue ``items`` and wait for their results; ``None`` after answering 503 (queue full)
        or 504 (past ``request_deadline``), or when the client has gone (nothing to answer)."""
        srv = self.server
        try:
            futures: list[Future] = srv.queue.put(items, run, key)
        except QueueFull as exc:
            self._error(503, str(exc), openai, {"Retry-After": "1"})
            return None
        deadline = self._started + srv.request_deadline
        while True:
            left = deadline - time.monotonic()
            _, pending = wait(futures, timeout=max(0.0, min(_POLL, left)))
            if not pending:
                return [f.result() for f in futures]
            if _client_gone(self.connection):
                srv.queue.cancel(futures, "client_gone")
                self.close_connection = True
                return None
            if left <= 0:
                srv.queue.cancel(futures, "deadline")
                waited = time.monotonic() - self._started
                self._error(504, f"not done after {waited:.0f} s (serve-generator --request-deadline {srv.request_deadline:g})", openai)
                return None

    def _made(self, results: list[Any] | None) -> None:
        """The Images API reply for ``results`` (images, or errors in place of images not made)."""
        if results is None:
            return None
        failures = [r for r in results if isinstance(r, BaseException)]
        if len(failures) == len(results):
            return self._error(422, _error_line(failures[0]), True)
        data = [
            {"b64_json": None, "revised_prompt": None, "error": _error_line(r)}
            if isinstance(r, BaseException)
            else {"b64_json": _png_b64(r), "revised_prompt": None}
            for r in results
        ]
        sizes = {r.size for r in results if not isinstance(r, BaseException)}
        size = size_field(*next(iter(sizes))) if len(sizes) == 1 else None
        self._json(200, {"created": int(time.time()), "data": data, "output_format": "png", "size": size})


def make_server(
    spec: str,
    host: str = "127.0.0.1",
    port: int = 8765,
    max_body_bytes: int = 64 * 1024,
    max_concurrency: int = 1,
    model_name: str | None = None,
    request_timeout: float = REQUEST_TIMEOUT,
    max_edit_bytes: int = MAX_EDIT_BYTES,
    *,
    max_queue: int = MAX_QUEUE,
    max_batch: int = MAX_BATCH,
    batch_window: float = BATCH_WINDOW,
    request_deadline: float = REQUEST_DEADLINE,
    limits: RequestLimits | None = None,
    keys: AccessKeys | None = None,
    open_access: bool = False,
) -> GeneratorServer:
    """Resolve ``spec`` and bind a server (port 0 picks a free one); call ``serve_forever``.

    ``keys`` default to ``GEMS_SERVER_KEYS``; ``open_access`` serves every client without a key."""
    limits = limits or RequestLimits()
    keys = AccessKeys.from_env() if keys is None else keys
    if open_access:
        keys = None
    elif not keys and not is_loopback(host):
        raise ValueError(
            f"--host {host} is reachable from other machines: set {SERVER_KEYS_VARIABLE} to the keys clients send "
            "(as GEMS_IMAGES_API_KEY), or pass --no-auth when something in front of the server checks who gets in"
        )
    counts = {"--max-body-bytes": max_body_bytes, "--max-edit-bytes": max_edit_bytes, "--max-concurrency": max_concurrency}
    counts |= {"--max-queue": max_queue, "--max-batch": max_batch, "--max-steps": limits.max_steps, "--max-pixels": limits.max_pixels}
    for option, value in counts.items():
        if value < 1:
            raise ValueError(f"{option} must be at least 1, got {value}")
    if not 1 <= limits.max_n <= MAX_N:
        raise ValueError(f"--max-n must be from 1 to {MAX_N} (the Images API's n), got {limits.max_n}")
    if not 0 <= port <= 65535:
        raise ValueError(f"--port {port} is not a TCP port (0 to 65535; 0 picks a free one)")
    for option, seconds in (("--request-timeout", request_timeout), ("--request-deadline", request_deadline)):
        if not seconds > 0:
            raise ValueError(f"{option} must be above 0 seconds, got {seconds:g}")
    if not batch_window >= 0:
        raise ValueError(f"--batch-window must be 0 or more seconds, got {batch_window:g}")
    return GeneratorServer(
        (host, port),
        resolve_generator(spec),
        spec,
        max_body_bytes,
        max_concurrency,
        model_name,
        request_timeout=request_timeout,
        max_edit_bytes=max_edit_bytes,
        max_queue=max_queue,
        max_batch=max_batch,
        batch_window=batch_window,
        request_deadline=request_deadline,
        limits=limits,
        keys=keys,
    )
