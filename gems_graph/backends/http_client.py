"""What every image-server backend shares: one retry policy, error text, image decoding.

``http:`` (our small protocol and the official GEMS servers) and ``images-api:``
(vLLM-Omni, SGLang Diffusion, ``gems serve-generator``) both talk to a GPU box
over HTTP. Transient failures (connection errors, timeouts, 429, 5xx) are retried
here and only here, with ``gems_graph.models.retry``'s backoff; what is left after the
last attempt, and every other refusal, becomes a ``GenerationError`` that names
the server, so the graph records it on the candidate. ``openai-images:`` goes
through the OpenAI SDK (which retries itself) and shares the refusal rule and the
image decoding.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from collections.abc import Callable
from typing import Any

import httpx
from PIL import Image, UnidentifiedImageError

from gems_graph.errors import one_line
from gems_graph.models.generator import MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE, GenerationError
from gems_graph.models.health import FAIL, OK, WARN, Health
from gems_graph.models.retry import DEFAULT_GENERATION_DEADLINE, DEFAULT_GENERATION_TIMEOUT, CallLimits, Deadline, call_with_retry

#: Longest backoff between two attempts, in seconds.
MAX_BACKOFF = 10.0
#: Largest response body read from an image server (ten 8192x8192 PNGs would not fit; ten
#: 2048x2048 ones do): past it the body is not read on, so a hostile server cannot fill memory.
MAX_RESPONSE_BYTES = 256 * 1024 * 1024


class _CappedStream(httpx.SyncByteStream):
    """A response body that raises ``GenerationError`` once it passes ``limit`` bytes."""

    def __init__(self, inner: httpx.SyncByteStream, limit: int, url: httpx.URL) -> None:
        self.inner, self.limit, self.url = inner, limit, url

    def __iter__(self):  # noqa: ANN204 - httpx's stream protocol
        seen = 0
        for chunk in self.inner:
            seen += len(chunk)
            if seen > self.limit:
                self.close()
                raise GenerationError(f"{self.url} sent a body over {self.limit} bytes; it was not read on")
            yield chunk

    def close(self) -> None:
        self.inner.close()


class _CappedTransport(httpx.HTTPTransport):
    """httpx's transport with every response body capped at ``limit`` bytes (a larger
    ``Content-Length`` is refused before any of the body is read)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        resp = super().handle_request(request)
        length = resp.headers.get("content-length", "")
        if length.isdigit() and int(length) > self.limit:
            resp.close()
            raise GenerationError(f"{request.url} sent a body of {int(length)} bytes, over the {self.limit}-byte limit; it was not read")
        resp.stream = _CappedStream(resp.stream, self.limit, request.url)  # type: ignore[arg-type]
        return resp


class ImageServerClient:
    """An ``httpx.Client`` (thread-safe) with the image servers' timeouts, retries and deadline.

    ``timeout`` bounds one request, ``deadline`` one image, retries included, and
    ``max_response_bytes`` what is read of one reply (``MAX_RESPONSE_BYTES``; defaults:
    the context's ``generation_timeout`` / ``generation_deadline``). A run's limits are
    set with ``limit``, except the ones a spec pinned (its ``timeout=`` option); a backend
    instance is shared by the runs of a process, so the latest run's limits hold.
    """

    def __init__(
        self,
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        retries: int = 3,
        backoff: float = 0.5,
        headers: dict[str, str] | None = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self.retries = max(1, int(retries))
        self.backoff = backoff
        self.pinned = {name for name, value in (("timeout", timeout), ("deadline", deadline)) if value is not None}
        self.timeout = float(timeout if timeout is not None else DEFAULT_GENERATION_TIMEOUT)
        self.deadline = float(deadline if deadline is not None else DEFAULT_GENERATION_DEADLINE)
        self.http = httpx.Client(timeout=self._timeout(self.timeout), headers=headers, transport=_CappedTransport(max_response_bytes))

    def limit(self, limits: CallLimits) -> None:
        """Take a run's ``generation_timeout`` / ``generation_deadline`` where the spec did not pin them."""
        if "timeout" not in self.pinned:
            self.timeout = float(limits.timeout)
        if "deadline" not in self.pinned:
            self.deadline = float(limits.deadline)

    @staticmethod
    def _timeout(seconds: float) -> httpx.Timeout:
        # A cold model can take minutes per image; connecting should not.
        return httpx.Timeout(seconds, connect=min(10.0, seconds))

    def call(self, send: Callable[[httpx.Client, httpx.Timeout], httpx.Response], where: str) -> httpx.Response:
        """``send(client, timeout)`` until it gets a response that is not transient; return that response.

        ``where`` names the server in the error raised when every attempt failed,
        e.g. ``"generator server http://gpu:7000/generate"``.
        """
        deadline = Deadline(self.deadline)
        attempts = 0

        def attempt() -> httpx.Response:
            nonlocal attempts
            attempts += 1
            resp = send(self.http, self._timeout(deadline.cap(self.timeout) or self.timeout))
            if resp.status_code == 429 or resp.status_code >= 500:
                raise httpx.HTTPStatusError(f"HTTP {resp.status_code}: {error_text(resp)}", request=resp.request, response=resp)
            return resp

        try:
            return call_with_retry(attempt, attempts=self.retries, base_delay=self.backoff, max_delay=MAX_BACKOFF, deadline=deadline)
        except httpx.HTTPStatusError as exc:
            last = str(exc)
        except httpx.TimeoutException:
            last = (
                f"no answer in {deadline.elapsed():.1f} s (generation_timeout {self.timeout:g} s, generation_deadline {self.deadline:g} s)"
            )
        except httpx.TransportError as exc:
            last = f"{type(exc).__name__}: {one_line(exc)}" if str(exc) else type(exc).__name__
        raise GenerationError(f"{where} failed after {attempts} attempt{'s' if attempts != 1 else ''}: {last}")

    def close(self) -> None:
        self.http.close()


def error_text(resp: httpx.Response) -> str:
    """The server's own words for a failed response, from the JSON shapes servers use.

    ``{"error": "msg"}`` (ours), ``{"error": {"message": ...}}`` (OpenAI),
    ``{"detail": "msg"}`` or ``{"detail": [{"loc": [...], "msg": ...}]}`` (FastAPI:
    vLLM-Omni, the official GEMS servers), else the body text.
    """
    try:
        data = resp.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        err, detail = data.get("error"), data.get("detail")
        if isinstance(err, dict) and err.get("message"):
            return one_line(str(err["message"]))
        if err:
            return one_line(str(err))
        if isinstance(detail, list) and detail and isinstance(detail[0], dict):
            first = detail[0]
            where = ".".join(str(p) for p in first.get("loc", []))
            return one_line(f"{where}: {first.get('msg', '')}" if where else str(first.get("msg", "")))
        if detail:
            return one_line(str(detail))
    return one_line(resp.text or resp.reason_phrase or "")


def error_code(resp: httpx.Response) -> str:
    """OpenAI-style ``error.code`` / ``error.type`` of a failed response ("" when absent)."""
    try:
        err = resp.json().get("error")
    except (ValueError, AttributeError):
        return ""
    if isinstance(err, dict):
        return str(err.get("code") or err.get("type") or "")
    return ""


def is_refusal(code: str, message: str) -> bool:
    """True when a server declined the prompt itself (content policy, safety), not the request."""
    text = f"{code} {message}".lower()
    return "content_policy" in text or "content policy" in text or "safety" in text


def open_image(data: bytes) -> Image.Image:
    """PNG/JPEG/... bytes -> the loaded image, in its own mode (an alpha channel is kept).

    The size is checked from the header, before decoding: an image over ``MAX_IMAGE_PIXELS``
    or ``MAX_IMAGE_SIDE`` is not decoded. ``ValueError`` says what the bytes are instead
    ("a 9000x9000 image, over the limit ...", "something that is not an image (12 bytes)"),
    worded to follow "sent" (clients) or "got" (``gems serve-generator``'s uploads).
    """
    try:
        with warnings.catch_warnings():  # PIL's bomb warning: the size is checked right below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
        width, height = img.size
        if width * height > MAX_IMAGE_PIXELS or max(width, height) > MAX_IMAGE_SIDE:
            raise ValueError(
                f"a {width}x{height} image, over the limit of {MAX_IMAGE_PIXELS} pixels ({MAX_IMAGE_SIDE} a side); it was not decoded"
            )
        img.load()
    except Image.DecompressionBombError as exc:
        raise ValueError(f"an image too large to decode: {one_line(exc)}") from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"something that is not an image ({len(data)} bytes)") from exc
    return img


def decode_image(data: bytes, where: str) -> Image.Image:
    """PNG/JPEG/... bytes from a server -> an RGB image; ``GenerationError`` naming ``where`` when they
    are not one, or when the image is larger than ``MAX_IMAGE_PIXELS`` (see ``open_image``)."""
    try:
        return open_image(data).convert("RGB")
    except ValueError as exc:
        raise GenerationError(f"{where} sent {exc}") from exc


def png_bytes(image: Image.Image) -> bytes:
    """``image`` as PNG bytes (what the image servers send and take)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def decode_b64_image(b64: Any, where: str) -> Image.Image:
    """A base64 image (``b64_json``) -> an RGB image."""
    if not isinstance(b64, str) or not b64:
        raise GenerationError(f"{where} sent no image data (no b64_json)")
    try:
        data = base64.b64decode(b64, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise GenerationError(f"{where} sent image data that is not base64: {exc}") from exc
    return decode_image(data, where)


def served_model_check(base_url: str, model: str, key: str | None) -> Health:
    """``GET {base_url}/models`` of an OpenAI-style server (chat or images): reachable, key accepted, model served."""
    url = base_url + "/models"
    try:
        resp = httpx.get(url, headers={"Authorization": f"Bearer {key or 'EMPTY'}"}, timeout=10)
    except httpx.HTTPError as exc:
        return Health("reachable", FAIL, f"{url}: {type(exc).__name__}: {one_line(exc)}")
    if resp.status_code == 401:
        return Health("reachable", FAIL, f"{url}: API key rejected (401)")
    if resp.status_code != 200:
        return Health("reachable", WARN, f"{url}: HTTP {resp.status_code} (model list not available)")
    try:
        ids = [m.get("id") for m in resp.json().get("data", [])]
    except (ValueError, AttributeError):
        ids = []
    if ids and model not in ids:
        return Health("reachable", WARN, f"{url} does not list {model!r}; it serves: {', '.join(map(str, ids[:8]))}")
    return Health("reachable", OK, base_url)


def server_seconds(body: Any) -> float | None:
    """The model's time an image server reports (SGLang Diffusion's ``inference_time_s``), or None."""
    value = body.get("inference_time_s") if isinstance(body, dict) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0 else None
