"""``http:<url>``: a generator behind a small HTTP protocol (one GPU box, many agents).

Protocol (what ``gems serve-generator`` speaks on ``/generate``):

* ``POST <url>`` with a JSON body
  ``{"prompt": str, "seed": int, "width": int?, "height": int?, "steps": int?,
  "guidance": float?, "negative_prompt": str?}`` (absent/null = server default);
  ``200`` with the image as ``image/png`` bytes. Also accepted in a reply: JSON with
  ``"image"`` (base64 PNG) or OpenAI-style ``data[0].b64_json``.
* ``422`` with ``{"error": msg}``: the generator could not make this image (not retried).
* ``413`` body too large, ``503`` busy (retried), ``GET <root>/health`` -> JSON status.

The official GEMS research servers (``agent/server/z_image.py``: FastAPI
``@app.post("/generate") def generate_image(prompt: str)``, called as
``requests.post(url, params={"prompt": prompt})``) take the prompt as a query
parameter with an empty body, choose their own seed and send a PNG back; select
that with the fragment ``#query`` (``http:http://gpu:5000/generate#query``). A JSON
request that such a server rejects with 400/415/422 before any image is made (FastAPI
answers 422 "query.prompt: Field required") is retried once with the prompt in the
query, and the endpoint is remembered as query-only. ``#form`` is the old name of
``#query`` (it described the official protocol wrongly) and still works, with a
``DeprecationWarning``.

Other fragment options: ``timeout=<seconds>`` (one request; default: the run's
``generation_timeout``, 120 s; a spec's own value wins) and ``retries=<n>`` (default 3). Connection errors, timeouts, 429 and 5xx
are retried with exponential backoff (``http_client``, shared with ``images-api:``),
then raised as ``GenerationError`` naming the URL.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import httpx
from PIL import Image

from gems_graph.backends.http_client import ImageServerClient, decode_b64_image, decode_image, error_text, server_seconds
from gems_graph.errors import one_line
from gems_graph.models.generator import GenerationError, GenerationRequest, timed
from gems_graph.models.health import FAIL, OK, Health
from gems_graph.models.retry import CallLimits

_FALLBACK_TO_QUERY = (400, 415, 422)


class HttpGenerator:
    """Client for the HTTP generator protocol above; thread-safe (httpx.Client is)."""

    def __init__(
        self, url: str, *, prompt_in_query: bool = False, timeout: float | None = None, retries: int = 3, backoff: float = 0.5
    ) -> None:
        if not url.lower().startswith(("http://", "https://")):
            raise ValueError(f"http generator needs an http(s) URL, got {url!r}")
        self.url = url
        #: True for the official GEMS servers: ``POST url?prompt=...``, no body.
        self.prompt_in_query = prompt_in_query
        self._http = ImageServerClient(timeout=timeout, retries=retries, backoff=backoff)
        self._family: str | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"HttpGenerator({self.url!r}, prompt_in_query={self.prompt_in_query})"

    @property
    def retries(self) -> int:
        return self._http.retries

    def with_limits(self, limits: CallLimits) -> HttpGenerator:
        """Take a run's generation timeout and deadline (see ``ImageServerClient.limit``)."""
        self._http.limit(limits)
        return self

    @property
    def health_url(self) -> str:
        parts = urlsplit(self.url)
        return urlunsplit((parts.scheme, parts.netloc, "/health", "", ""))

    def health_checks(self) -> list[Health]:
        try:
            health = self.health()
        except GenerationError as exc:
            return [Health("reachable", FAIL, one_line(exc))]
        return [Health("reachable", OK, f"{health.get('generator', '?')} ({health.get('family', '?')})")]

    def health(self, timeout: float = 5.0) -> dict[str, Any]:
        """The server's ``GET /health`` JSON; raises ``GenerationError`` when unreachable."""
        try:
            resp = self._http.http.get(self.health_url, timeout=timeout)
            resp.raise_for_status()
            return resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise GenerationError(f"generator server {self.health_url} is not healthy: {exc}") from exc

    @property
    def family(self) -> str:
        """The served model's family from ``/health`` (``http`` when the server does not say)."""
        if self._family is None:
            try:
                self._family = str(self.health(timeout=3.0).get("family") or "http")
            except GenerationError:
                return "http"  # not cached: the server may come up later
        return self._family

    def generate(self, request: GenerationRequest) -> Image.Image:
        resp = self._http.call(lambda http, timeout: self._post(http, request, timeout), f"generator server {self.url}")
        if resp.status_code != 200:
            raise GenerationError(f"generator server {self.url} refused the request: HTTP {resp.status_code}: {error_text(resp)}")
        return _read_image(resp, self.url)

    def _post(self, http: httpx.Client, request: GenerationRequest, timeout: httpx.Timeout) -> httpx.Response:
        if self.prompt_in_query:
            return http.post(self.url, params={"prompt": request.prompt}, timeout=timeout)
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
        resp = http.post(self.url, json=body, timeout=timeout)
        if resp.status_code in _FALLBACK_TO_QUERY and not _is_protocol_error(resp):
            query_resp = http.post(self.url, params={"prompt": request.prompt}, timeout=timeout)
            if query_resp.status_code == 200:
                with self._lock:
                    self.prompt_in_query = True  # remember: this endpoint speaks the official GEMS protocol
            return query_resp
        return resp

    def close(self) -> None:
        self._http.close()


def _is_protocol_error(resp: httpx.Response) -> bool:
    """A 4xx that came from our own server (JSON ``error``) is final, not a hint to try the query form."""
    try:
        return isinstance(resp.json(), dict) and "error" in resp.json()
    except ValueError:
        return False


def _read_image(resp: httpx.Response, url: str) -> Image.Image:
    where = f"generator server {url}"
    if "json" not in resp.headers.get("content-type", ""):
        return decode_image(resp.content, where)
    try:
        payload = resp.json()
        first = (payload.get("data") or [{}])[0]
        b64 = payload.get("image") or first.get("b64_json")
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        raise GenerationError(f"{where} sent JSON without an image: {exc}") from exc
    seconds = server_seconds(first) if server_seconds(first) is not None else server_seconds(payload)
    return timed([decode_b64_image(b64, where)], seconds)[0]


def parse_spec(arg: str) -> tuple[str, dict[str, Any]]:
    """``"http://host/gen#query&timeout=60"`` -> (url, HttpGenerator keyword arguments)."""
    url, _, frag = arg.strip().partition("#")
    if not url.lower().startswith(("http://", "https://")) or not urlsplit(url).hostname:
        raise ValueError(f"http generator needs an http(s) URL with a host, e.g. http:http://127.0.0.1:8000/generate; got {url!r}")
    kwargs: dict[str, Any] = {}
    for key, value in parse_qsl(frag, keep_blank_values=True):
        if key in ("query", "form"):
            if key == "form":
                warnings.warn(
                    "the http generator option '#form' is now '#query' (the official GEMS servers take the prompt as a query parameter)",
                    DeprecationWarning,
                    stacklevel=2,
                )
            kwargs["prompt_in_query"] = value.lower() not in ("0", "false", "no")
        elif key in ("timeout", "retries"):
            kind = float if key == "timeout" else int
            try:
                kwargs[key] = kind(value)
            except ValueError:
                what = "number" if kind is float else "whole number"
                raise ValueError(f"http generator option {key}={value!r} must be a {what}") from None
        else:
            raise ValueError(f"unknown http generator option {key!r}; known: query, timeout, retries")
    return url, kwargs


def from_spec(arg: str) -> HttpGenerator:
    """Registry factory: the argument is the full URL (``http:`` prefix already removed)."""
    url, kwargs = parse_spec(arg)
    return HttpGenerator(url, **kwargs)
