"""``gems serve-generator``: serve any generator spec over the ``http:`` protocol.

One GPU box loads the model once; many agents call it. Stdlib only
(``ThreadingHTTPServer``) so serving adds no dependency. Routes:

* ``GET /health`` -> ``{"status": "ok", "generator": spec, "family", "busy", "max_concurrency"}``
* ``POST /`` or ``POST /generate``: JSON (see ``http_generator``) or a form with
  ``prompt`` (the official GEMS server's form) -> ``image/png``.

Limits: a body over ``max_body_bytes`` gets 413 without being read; when
``max_concurrency`` generations are already running the request gets 503 with
``Retry-After`` (clients retry), so a queue never builds up inside the server.
A generator failure is 422 ``{"error": msg}``; a bad request is 400.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from gems_graph.models.generator import GenerationError, GenerationRequest

log = logging.getLogger(__name__)

_INT_FIELDS = ("seed", "width", "height", "steps")


class GeneratorServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], generator: Any, spec: str, max_body_bytes: int, max_concurrency: int) -> None:
        super().__init__(address, _Handler)
        self.generator = generator
        self.spec = spec
        self.max_body_bytes = max_body_bytes
        self.max_concurrency = max_concurrency
        self.slots = threading.BoundedSemaphore(max_concurrency)
        self.busy = 0
        self.busy_lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/generate"


def parse_request(body: bytes, content_type: str) -> GenerationRequest:
    """A JSON or form body -> ``GenerationRequest``; ``ValueError`` with a reason when bad."""
    if "application/x-www-form-urlencoded" in content_type:
        data: dict[str, Any] = {k: v[0] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
    else:
        try:
            data = json.loads(body.decode("utf-8") or "{}")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"body is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError("body must be a JSON object")
    prompt = data.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("'prompt' must be a non-empty string")
    kwargs: dict[str, Any] = {"prompt": prompt, "seed": 0}
    for name in _INT_FIELDS:
        if data.get(name) not in (None, ""):
            try:
                kwargs[name] = int(data[name])
            except (TypeError, ValueError):
                raise ValueError(f"'{name}' must be an integer") from None
    if data.get("guidance") not in (None, ""):
        try:
            kwargs["guidance"] = float(data["guidance"])
        except (TypeError, ValueError):
            raise ValueError("'guidance' must be a number") from None
    if isinstance(data.get("negative_prompt"), str):
        kwargs["negative_prompt"] = data["negative_prompt"]
    if isinstance(data.get("extra"), dict):
        kwargs["extra"] = data["extra"]
    return GenerationRequest(**kwargs)


class _Handler(BaseHTTPRequestHandler):
    server: GeneratorServer
    protocol_version = "HTTP/1.1"

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

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path.split("?")[0].rstrip("/") != "/health":
            return self._json(404, {"error": "not found; use GET /health or POST /generate"})
        srv = self.server
        self._json(
            200,
            {
                "status": "ok",
                "generator": srv.spec,
                "family": getattr(srv.generator, "family", "unknown"),
                "busy": srv.busy,
                "max_concurrency": srv.max_concurrency,
            },
        )

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        srv = self.server
        if self.path.split("?")[0].rstrip("/") not in ("", "/generate"):
            return self._json(404, {"error": "not found; POST to /generate"})
        length = self.headers.get("Content-Length")
        if length is None:
            self.close_connection = True
            return self._json(411, {"error": "Content-Length is required"})
        try:
            size = int(length)
        except ValueError:
            self.close_connection = True
            return self._json(400, {"error": "bad Content-Length"})
        if size > srv.max_body_bytes:
            self.close_connection = True  # the unread body must not be parsed as the next request
            return self._json(413, {"error": f"body of {size} bytes is over the {srv.max_body_bytes}-byte limit"})
        body = self.rfile.read(size)
        try:
            request = parse_request(body, self.headers.get("Content-Type", ""))
        except ValueError as exc:
            return self._json(400, {"error": str(exc)})
        if not srv.slots.acquire(blocking=False):
            return self._json(503, {"error": f"busy: {srv.max_concurrency} generations running"}, {"Retry-After": "1"})
        try:
            with srv.busy_lock:
                srv.busy += 1
            image = srv.generator.generate(request)
        except GenerationError as exc:
            return self._json(422, {"error": str(exc)})
        except Exception as exc:  # noqa: BLE001 - report, keep serving
            log.exception("generator failed")
            return self._json(500, {"error": f"{type(exc).__name__}: {exc}"})
        finally:
            with srv.busy_lock:
                srv.busy -= 1
            srv.slots.release()
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        self._send(200, buf.getvalue(), "image/png")


def make_server(
    spec: str, host: str = "127.0.0.1", port: int = 8765, max_body_bytes: int = 64 * 1024, max_concurrency: int = 1
) -> GeneratorServer:
    """Resolve ``spec`` and bind a server (port 0 picks a free one); call ``serve_forever``."""
    from gems_graph.models.registry import resolve_generator

    if max_body_bytes < 1 or max_concurrency < 1:
        raise ValueError("max_body_bytes and max_concurrency must be >= 1")
    return GeneratorServer((host, port), resolve_generator(spec), spec, max_body_bytes, max_concurrency)


def serve_generator(
    spec: str, host: str = "127.0.0.1", port: int = 8765, max_body_bytes: int = 64 * 1024, max_concurrency: int = 1
) -> None:
    """Serve ``spec`` until interrupted (blocking)."""
    server = make_server(spec, host, port, max_body_bytes, max_concurrency)
    try:
        server.serve_forever()
    finally:
        server.server_close()
