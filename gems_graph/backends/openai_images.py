"""``openai-images:<model>`` (e.g. ``gpt-image-1``): the OpenAI Images API as a Generator.

Uses the openai SDK (already a dependency of langchain-openai), asks for base64
output, and turns content-policy refusals and other API errors into
``GenerationError`` so the graph records them on the candidate (the refusal rule
and the image decoding are ``http_client``'s, shared with ``images-api:``, which
is the backend for self-hosted servers that speak this API: vLLM-Omni, SGLang). The key comes
from ``OPENAI_API_KEY`` or ``GEMS_OPENAI_API_KEY``; ``OPENAI_BASE_URL`` points it
at a compatible server. The API has no seed: candidates differ by sampling only.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from gems_graph.backends.api_keys import openai_api_key
from gems_graph.backends.http_client import decode_b64_image, is_refusal
from gems_graph.models.generator import GenerationError, GenerationRequest
from gems_graph.models.health import FAIL, OK, Health, imports_check

#: Sizes the Images API accepts; a request is mapped to the nearest aspect ratio.
_SIZES = {"gpt-image": ["1024x1024", "1536x1024", "1024x1536"], "dall-e-3": ["1024x1024", "1792x1024", "1024x1792"]}


def api_key() -> str | None:
    return openai_api_key(official=True)


def _size_for(model: str, width: int | None, height: int | None) -> str | None:
    if not width or not height:
        return None
    sizes = _SIZES["dall-e-3"] if model.startswith("dall-e-3") else _SIZES["gpt-image"]
    ratio = width / height
    return min(sizes, key=lambda s: abs(int(s.split("x")[0]) / int(s.split("x")[1]) - ratio))


class OpenAIImagesGenerator:
    """Images API client; the SDK retries transient errors (``max_retries``)."""

    family = "openai-images"

    def __init__(self, model: str, *, client: Any = None, max_retries: int = 3, timeout: float = 300.0) -> None:
        if not model:
            raise ValueError("openai-images needs a model name, e.g. openai-images:gpt-image-1")
        self.model = model
        self._client = client
        self._max_retries = max_retries
        self._timeout = timeout

    def health_checks(self) -> list[Health]:
        key = api_key()
        return [
            imports_check(["openai"]),
            Health("api key", OK if key else FAIL, "set" if key else "set OPENAI_API_KEY or GEMS_OPENAI_API_KEY"),
        ]

    def __repr__(self) -> str:
        return f"OpenAIImagesGenerator({self.model!r})"

    @property
    def client(self) -> Any:
        if self._client is None:
            from openai import OpenAI

            self._client = OpenAI(api_key=api_key() or "EMPTY", max_retries=self._max_retries, timeout=self._timeout)
        return self._client

    def generate(self, request: GenerationRequest) -> Image.Image:
        import openai

        kwargs: dict[str, Any] = {"model": self.model, "prompt": request.prompt, "n": 1}
        size = _size_for(self.model, request.width, request.height)
        if size:
            kwargs["size"] = size
        if not self.model.startswith("gpt-image"):
            kwargs["response_format"] = "b64_json"  # gpt-image models always return base64
        kwargs.update(request.extra)
        try:
            result = self.client.images.generate(**kwargs)
        except openai.BadRequestError as exc:
            if is_refusal(str(getattr(exc, "code", None) or ""), str(exc)):
                raise GenerationError(f"{self.model} refused the prompt (content policy): {_message(exc)}") from exc
            raise GenerationError(f"{self.model} rejected the request: {_message(exc)}") from exc
        except openai.APIConnectionError as exc:
            raise GenerationError(f"cannot reach the OpenAI Images API at {self.client.base_url}: {exc}") from exc
        except openai.APIError as exc:
            raise GenerationError(f"{self.model} image generation failed: {_message(exc)}") from exc
        data = (result.data or [None])[0]
        return decode_b64_image(getattr(data, "b64_json", None), self.model)


def _message(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        msg = (
            body.get("message") or (body.get("error") or {}).get("message") if isinstance(body.get("error"), dict) else body.get("message")
        )
        if msg:
            return str(msg)[:300]
    return str(exc)[:300]


def from_spec(arg: str) -> OpenAIImagesGenerator:
    """Registry factory for ``openai-images:<model>``."""
    return OpenAIImagesGenerator(arg.strip())
