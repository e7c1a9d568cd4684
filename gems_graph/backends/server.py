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
* ``GET /v1/models``: ``{"object": "list", "data": [{"id": served model name, "family", ...}]}``
  (``family`` is ours, for people reading it; clients take the family from the name);
  the name is ``--served-model-name``, else the spec's model (``Tongyi-MAI/Z-Image-Turbo``
  for ``diffusers:Tongyi-MAI/Z-Image-Turbo?device=cuda``). A request naming another
  model gets 400, as vLLM-Omni answers.
* ``POST /`` or ``POST /generate``: our ``http:`` protocol (JSON, see
  ``http_generator``), a form with ``prompt``, or the official GEMS servers' call
  (``POST /generate?prompt=...``, no body) -> ``image/png``.
* ``GET /health`` -> ``{"status": "ok", "generator": spec, "family", "busy", "max_concurrency"}``

Limits, on every POST route: a body over ``max_body_bytes`` gets 413 without being
read, a ``Content-Length`` that is not a number of bytes gets 400; a connection that
sends nothing for ``request_timeout`` seconds (default 30) is closed, so stalled
clients do not hold a thread each; an image over ``MAX_IMAGE_PIXELS`` (8192 x 8192)
is refused with 400 before it is made; when ``max_concurrency`` generations are already running the request gets
503 with ``Retry-After`` (clients retry), so a queue never builds up inside the
server. On ``/generate`` a generator failure is 422 ``{"error": msg}``; a bad
request is 400.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import random
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from PIL import Image

from gems_graph.backends.images_api import MAX_N, size_field
from gems_graph.models.generator import MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE, GenerationError, GenerationRequest
from gems_graph.models.registry import resolve_generator, split_spec

log = logging.getLogger(__name__)

_INT_FIELDS = ("seed", "width", "height", "steps")
IMAGES_ROUTE = "/v1/images/generations"
MODELS_ROUTE = "/v1/models"
#: Seconds a connection may stay silent (headers or body not coming) before it is closed.
REQUEST_TIMEOUT = 30.0
_LEGACY_ROUTES = ("", "/generate")
_ERROR_TYPES = {400: "invalid_request_error", 413: "invalid_request_error", 503: "server_busy"}


def served_model_name(spec: str) -> str:
    """The model id ``/v1/models`` lists for a spec: its argument without options, else its kind."""
    kind, arg = split_spec(spec)
    return arg.partition("?")[0].strip() or kind


class ServerBusy(Exception):
    """Every generation slot is taken: the request gets 503 with ``Retry-After``."""


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
    ) -> None:
        self.request_timeout = request_timeout
        super().__init__(address, _Handler)
        self.generator = generator
        self.spec = spec
        self.model_name = model_name or served_model_name(spec)
        self.max_body_bytes = max_body_bytes
        self.max_concurrency = max_concurrency
        self.slots = threading.BoundedSemaphore(max_concurrency)
        self.busy = 0
        self.busy_lock = threading.Lock()

    @property
    def root(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        """The ``http:`` protocol's endpoint."""
        return f"{self.root}/generate"

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL for ``images-api:{base_url}#{model_name}``."""
        return f"{self.root}/v1"

    def run(self, work: Any) -> Any:
        """``work()`` in a generation slot; ``ServerBusy`` when every slot is taken."""
        if not self.slots.acquire(blocking=False):
            raise ServerBusy(f"busy: {self.max_concurrency} generations running")
        try:
            with self.busy_lock:
                self.busy += 1
            return work()
        finally:
            with self.busy_lock:
                self.busy -= 1
            self.slots.release()


def _json_object(body: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object (empty counts as ``{}``); ``ValueError`` otherwise."""
    try:
        parsed = json.loads(body.decode("utf-8") or "{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"body is not JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise ValueError("body must be a JSON object")
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
    return check_size(GenerationRequest(**kwargs))


def parse_images_request(body: bytes, model_name: str) -> tuple[GenerationRequest, int]:
    """An OpenAI Images API body (vLLM-Omni's fields) -> (the first image's request, n)."""
    data = _json_object(body)
    prompt = data.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("'prompt' must be a non-empty string")
    if data.get("model") not in (None, "", model_name):
        raise ValueError(f"model {data['model']!r} is not served here; this server serves {model_name!r}")
    n = _int(data.get("n", 1), "n")
    if not 1 <= n <= MAX_N:
        raise ValueError(f"'n' must be between 1 and {MAX_N}, got {n}")
    if data.get("response_format") not in (None, "b64_json"):
        raise ValueError(f"only response_format 'b64_json' is supported, got {data['response_format']!r}")
    kwargs: dict[str, Any] = {"prompt": prompt}
    seed = data.get("seed")
    kwargs["seed"] = random.randrange(2**31) if seed is None else _int(seed, "seed")
    size = data.get("size")
    if size not in (None, "", "auto"):
        w, sep, h = str(size).lower().partition("x")
        try:
            kwargs["width"], kwargs["height"] = int(w), int(h)
        except ValueError:
            raise ValueError(f"'size' must be WIDTHxHEIGHT, e.g. '1024x1024', got {size!r}") from None
        if not sep or kwargs["width"] < 1 or kwargs["height"] < 1:
            raise ValueError(f"'size' must be WIDTHxHEIGHT, e.g. '1024x1024', got {size!r}")
    if data.get("num_inference_steps") is not None:
        kwargs["steps"] = _int(data["num_inference_steps"], "num_inference_steps")
    for name in ("guidance_scale", "true_cfg_scale"):  # Qwen-Image clients send true CFG; both mean our ``guidance``
        if data.get(name) is not None and "guidance" not in kwargs:
            kwargs["guidance"] = _float(data[name], name)
    if isinstance(data.get("negative_prompt"), str):
        kwargs["negative_prompt"] = data["negative_prompt"]
    if data.get("extra_params") is not None:
        if not isinstance(data["extra_params"], dict):
            raise ValueError("'extra_params' must be a JSON object")
        kwargs["extra"] = data["extra_params"]
    return check_size(GenerationRequest(**kwargs)), n


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


def generate_n(generator: Any, first: GenerationRequest, n: int) -> list[Image.Image | BaseException]:
    """``n`` images seeded ``first.seed + i``: one batch where the generator declares ``generate_batch``."""
    requests = [replace(first, seed=first.seed + i) for i in range(n)]
    batch = getattr(generator, "generate_batch", None)
    if n > 1 and callable(batch):
        return list(batch(requests))
    results: list[Image.Image | BaseException] = []
    for r in requests:
        try:
            results.append(generator.generate(r))
        except Exception as exc:  # noqa: BLE001 - one failed image, the others still count
            results.append(exc)
    return results


def _png_b64(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _error_line(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, GenerationError) else f"{type(exc).__name__}: {exc}"


class _Handler(BaseHTTPRequestHandler):
    server: GeneratorServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        # A socket timeout for every read and write: a stalled client is dropped (the
        # stdlib handler answers a timeout by closing the connection).
        self.timeout = self.server.request_timeout
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.info("%s %s", self.address_string(), format % args)

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
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
        kind = {400: "invalid_request_error", 404: "not_found", 413: "invalid_request_error", 503: "server_busy"}.get(
            status, "generation_error"
        )
        self._json(status, {"error": {"message": message, "type": kind, "code": status}}, headers)

    @property
    def _route(self) -> str:
        return urlsplit(self.path).path.rstrip("/")

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        srv = self.server
        if self._route == "/health":
            return self._json(
                200,
                {
                    "status": "ok",
                    "generator": srv.spec,
                    "family": getattr(srv.generator, "family", "unknown"),
                    "busy": srv.busy,
                    "max_concurrency": srv.max_concurrency,
                },
            )
        if self._route == MODELS_ROUTE:
            model = {
                "id": srv.model_name,
                "object": "model",
                "created": 0,
                "owned_by": "gems",
                "family": getattr(srv.generator, "family", None),
            }
            return self._json(200, {"object": "list", "data": [model]})
        return self._json(404, {"error": f"not found; use GET /health, GET {MODELS_ROUTE}, POST /generate or POST {IMAGES_ROUTE}"})

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        route = self._route
        openai = route == IMAGES_ROUTE
        if route not in _LEGACY_ROUTES and not openai:
            return self._json(404, {"error": f"not found; POST to /generate or {IMAGES_ROUTE}"})
        body = self._read_body(openai)
        if body is None:
            return None
        if openai:
            return self._images(body)
        return self._legacy(body)

    def _read_body(self, openai: bool) -> bytes | None:
        """The request body, or ``None`` after answering 411/400/413 (the body then stays unread)."""
        srv = self.server
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
        if size > srv.max_body_bytes:
            self.close_connection = True  # the unread body must not be parsed as the next request
            self._error(413, f"body of {size} bytes is over the {srv.max_body_bytes}-byte limit", openai)
            return None
        return self.rfile.read(size)

    def _legacy(self, body: bytes) -> None:
        srv = self.server
        try:
            request = parse_request(body, self.headers.get("Content-Type", ""), urlsplit(self.path).query)
        except ValueError as exc:
            return self._json(400, {"error": str(exc)})
        try:
            image = srv.run(lambda: srv.generator.generate(request))
        except ServerBusy as exc:
            return self._error(503, str(exc), False, {"Retry-After": "1"})
        except GenerationError as exc:
            return self._json(422, {"error": str(exc)})
        except Exception as exc:  # noqa: BLE001 - report, keep serving
            log.exception("generator failed")
            return self._json(500, {"error": f"{type(exc).__name__}: {exc}"})
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        self._send(200, buf.getvalue(), "image/png")

    def _images(self, body: bytes) -> None:
        srv = self.server
        try:
            first, n = parse_images_request(body, srv.model_name)
        except ValueError as exc:
            return self._error(400, str(exc), True)
        try:
            results = srv.run(lambda: generate_n(srv.generator, first, n))
        except ServerBusy as exc:
            return self._error(503, str(exc), True, {"Retry-After": "1"})
        except GenerationError as exc:
            return self._error(422, str(exc), True)
        except Exception as exc:  # noqa: BLE001 - report, keep serving
            log.exception("generator failed")
            return self._error(500, f"{type(exc).__name__}: {exc}", True)
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
) -> GeneratorServer:
    """Resolve ``spec`` and bind a server (port 0 picks a free one); call ``serve_forever``."""
    if max_body_bytes < 1 or max_concurrency < 1:
        raise ValueError("max_body_bytes and max_concurrency must be >= 1")
    if not 0 <= port <= 65535:
        raise ValueError(f"--port {port} is not a TCP port (0 to 65535; 0 picks a free one)")
    if not request_timeout > 0:
        raise ValueError("request_timeout must be above 0 seconds")
    return GeneratorServer(
        (host, port), resolve_generator(spec), spec, max_body_bytes, max_concurrency, model_name, request_timeout=request_timeout
    )
