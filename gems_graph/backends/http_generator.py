"""``http:<url>``: a generator behind a small HTTP protocol (one GPU box, many agents).

Protocol (what ``gems serve-generator`` speaks):

* ``POST <url>`` with a JSON body
  ``{"prompt": str, "seed": int, "width": int?, "height": int?, "steps": int?,
  "guidance": float?, "negative_prompt": str?}`` (absent/null = server default);
  ``200`` with the image as ``image/png`` bytes. Also accepted in a reply: JSON with
  ``"image"`` (base64 PNG) or OpenAI-style ``data[0].b64_json``.
* ``422`` with ``{"error": msg}``: the generator could not make this image (not retried).
* ``413`` body too large, ``503`` busy (retried), ``GET <root>/health`` -> JSON status.

The official GEMS research servers take a form POST with ``prompt`` only and send a
PNG back; select that with the fragment ``#form`` (``http:http://gpu:5000/generate#form``).
A JSON request that such a server rejects with 400/415/422 before any image is made
is also retried once as a form, and the endpoint is remembered as form-only.

Other fragment options: ``timeout=<seconds>`` (default 600: a cold model can take
minutes) and ``retries=<n>`` (default 3). Connection errors, timeouts, 429 and 5xx
are retried with exponential backoff, then raised as ``GenerationError`` naming the URL.
"""

from __future__ import annotations

import base64
import binascii
import io
import threading
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import httpx
from PIL import Image, UnidentifiedImageError

from gems_graph.models.generator import GenerationError, GenerationRequest

_FALLBACK_TO_FORM = (400, 415, 422)


class HttpGenerator:
    """Client for the HTTP generator protocol above; thread-safe (httpx.Client is)."""

    def __init__(self, url: str, *, form: bool = False, timeout: float = 600.0, retries: int = 3, backoff: float = 0.5) -> None:
        if not url.lower().startswith(("http://", "https://")):
            raise ValueError(f"http generator needs an http(s) URL, got {url!r}")
        self.url = url
        self.form = form
        self.retries = max(1, int(retries))
        self.backoff = backoff
        self._client = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)))
        self._family: str | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"HttpGenerator({self.url!r}, form={self.form})"

    @property
    def health_url(self) -> str:
        parts = urlsplit(self.url)
        return urlunsplit((parts.scheme, parts.netloc, "/health", "", ""))

    def health(self, timeout: float = 5.0) -> dict[str, Any]:
        """The server's ``GET /health`` JSON; raises ``GenerationError`` when unreachable."""
        try:
            resp = self._client.get(self.health_url, timeout=timeout)
            resp.raise_for_status()
            return resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise GenerationError(f"generator server {self.health_url} is not healthy: {exc}") from exc

    @property
    def family(self) -> str:  # type: ignore[override]
        """The served model's family from ``/health`` (``http`` when the server does not say)."""
        if self._family is None:
            try:
                self._family = str(self.health(timeout=3.0).get("family") or "http")
            except GenerationError:
                return "http"  # not cached: the server may come up later
        return self._family

    def generate(self, request: GenerationRequest) -> Image.Image:
        last = ""
        for attempt in range(1, self.retries + 1):
            try:
                resp = self._post(request)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                status = resp.status_code
                if status == 200:
                    return _read_image(resp, self.url)
                if status == 429 or status >= 500:
                    last = f"HTTP {status}: {_error_text(resp)}"
                else:
                    raise GenerationError(f"generator server {self.url} refused the request: HTTP {status}: {_error_text(resp)}")
            if attempt < self.retries:
                time.sleep(min(10.0, self.backoff * 2 ** (attempt - 1)))
        raise GenerationError(f"generator server {self.url} failed after {self.retries} attempts: {last}")

    def _post(self, request: GenerationRequest) -> httpx.Response:
        if self.form:
            return self._client.post(self.url, data={"prompt": request.prompt})
        body = {
            "prompt": request.prompt,
            "seed": request.seed,
            "width": request.width,
            "height": request.height,
            "steps": request.steps,
            "guidance": request.guidance,
            "negative_prompt": request.negative_prompt,
        }
        if request.extra:
            body["extra"] = request.extra
        resp = self._client.post(self.url, json=body)
        if resp.status_code in _FALLBACK_TO_FORM and not _is_protocol_error(resp):
            form_resp = self._client.post(self.url, data={"prompt": request.prompt})
            if form_resp.status_code == 200:
                with self._lock:
                    self.form = True  # remember: this endpoint speaks the form protocol
            return form_resp
        return resp

    def close(self) -> None:
        self._client.close()


def _is_protocol_error(resp: httpx.Response) -> bool:
    """A 4xx that came from our own server (JSON ``error``) is final, not a form hint."""
    try:
        return isinstance(resp.json(), dict) and "error" in resp.json()
    except ValueError:
        return False


def _error_text(resp: httpx.Response) -> str:
    try:
        data = resp.json()
        if isinstance(data, dict) and data.get("error"):
            return str(data["error"])[:300]
    except ValueError:
        pass
    return (resp.text or resp.reason_phrase or "")[:300].strip()


def _read_image(resp: httpx.Response, url: str) -> Image.Image:
    data = resp.content
    if "json" in resp.headers.get("content-type", ""):
        try:
            payload = resp.json()
            b64 = payload.get("image") or (payload.get("data") or [{}])[0].get("b64_json")
            data = base64.b64decode(b64)
        except (ValueError, TypeError, AttributeError, IndexError, binascii.Error) as exc:
            raise GenerationError(f"generator server {url} sent JSON without an image: {exc}") from exc
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise GenerationError(f"generator server {url} sent something that is not an image ({len(data)} bytes)") from exc
    return img.convert("RGB")


def parse_spec(arg: str) -> tuple[str, dict[str, Any]]:
    """``"http://host/gen#form&timeout=60"`` -> (url, HttpGenerator keyword arguments)."""
    url, _, frag = arg.strip().partition("#")
    kwargs: dict[str, Any] = {}
    for key, value in parse_qsl(frag, keep_blank_values=True):
        if key == "form":
            kwargs["form"] = value.lower() not in ("0", "false", "no")
        elif key == "timeout":
            kwargs["timeout"] = float(value)
        elif key == "retries":
            kwargs["retries"] = int(value)
        else:
            raise ValueError(f"unknown http generator option {key!r}; known: form, timeout, retries")
    return url, kwargs


def from_spec(arg: str) -> HttpGenerator:
    """Registry factory: the argument is the full URL (``http:`` prefix already removed)."""
    url, kwargs = parse_spec(arg)
    return HttpGenerator(url, **kwargs)
