"""``gems serve-generator`` on loopback, used through the ``http:`` generator."""

from __future__ import annotations

import io
import threading
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from PIL import Image

from gems_graph.backends.http_generator import HttpGenerator, from_spec
from gems_graph.models import registry
from gems_graph.models.generator import GenerationError, GenerationRequest
from gems_graph.models.registry import resolve_generator
from tests.servers import RecordingServer, ThreadedGeneratorServer, free_port, json_reply, wait_for
from tests.tiny_pipelines import save_sd_pipeline


@pytest.fixture(scope="module")
def sd_spec(tmp_path_factory):
    folder = save_sd_pipeline(tmp_path_factory.mktemp("models") / "tiny-sd")
    return f"diffusers:{folder}?device=cpu&steps=2"


def _png(color=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(buf, format="PNG")
    return buf.getvalue()


def test_serve_diffusers_and_call_through_http_spec(sd_spec):
    with ThreadedGeneratorServer(sd_spec) as srv:
        health = httpx.get(srv.url.replace("/generate", "/health")).json()
        assert health["status"] == "ok" and health["generator"] == sd_spec and health["family"] == "diffusers"
        gen = resolve_generator(f"http:{srv.url}")
        assert gen.family == "diffusers"
        img = gen.generate(GenerationRequest("a red circle", seed=3, steps=2))
        assert img.size == (32, 32)
        # A form with the prompt, and the official GEMS client's call (prompt in the query, no body): PNG back.
        for call in ({"data": {"prompt": "a red circle"}}, {"params": {"prompt": "a red circle"}}):
            resp = httpx.post(srv.url, timeout=60, **call)
            assert resp.status_code == 200 and resp.headers["content-type"] == "image/png"
            assert Image.open(io.BytesIO(resp.content)).size == (32, 32)
        # Bad requests are 400 with a reason, not retried.
        with pytest.raises(GenerationError, match="HTTP 400"):
            HttpGenerator(srv.url).generate(GenerationRequest("   ", seed=0))


def test_missing_model_on_server_is_422_and_readable(tmp_path):
    with ThreadedGeneratorServer(f"diffusers:{tmp_path / 'nope'}") as srv:
        with pytest.raises(GenerationError, match="does not exist"):
            from_spec(srv.url).generate(GenerationRequest("x", seed=0))


def test_body_size_cap_is_413(sd_spec):
    with ThreadedGeneratorServer(sd_spec, max_body_bytes=200) as srv:
        resp = httpx.post(srv.url, json={"prompt": "x" * 500})
        assert resp.status_code == 413 and "limit" in resp.json()["error"]


class _BlockingGenerator:
    family = "test"

    def __init__(self):
        self.started = threading.Event()
        self.release = threading.Event()

    def generate(self, request):
        self.started.set()
        self.release.wait(30)
        return Image.new("RGB", (8, 8), (1, 2, 3))


def test_requests_wait_in_the_queue_and_only_a_full_queue_is_503():
    blocker = _BlockingGenerator()
    registry.register_generator("blocking-test", lambda arg: blocker, replace=True)
    with ThreadedGeneratorServer("blocking-test", max_concurrency=1, options={"max_queue": 1}) as srv:
        done: list = []

        def call(prompt):
            done.append(HttpGenerator(srv.url).generate(GenerationRequest(prompt, seed=0)))

        threads = [threading.Thread(target=call, args=(p,)) for p in "ab"]
        threads[0].start()
        assert blocker.started.wait(10)
        threads[1].start()  # waits behind the running one instead of failing
        wait_for(lambda: srv.server.queue.depth == 1)
        health = httpx.get(srv.url.replace("/generate", "/health")).json()
        assert health["busy"] == 1 and health["queued"] == 1
        busy = httpx.post(srv.url, json={"prompt": "c"})
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1" and "--max-queue 1" in busy.json()["error"]
        # A client that keeps getting 503 gives up with the URL in the message.
        with pytest.raises(GenerationError, match=srv.url):
            HttpGenerator(srv.url, retries=2, backoff=0.01).generate(GenerationRequest("c", seed=0))
        blocker.release.set()
        for t in threads:
            t.join(10)
        assert [img.size for img in done] == [(8, 8), (8, 8)]


def test_client_retries_5xx_then_succeeds():
    replies = iter([json_reply(503, {"error": "warming up"}), json_reply(500, {"error": "boom"})])

    def respond(rec):
        return next(replies, (200, "image/png", _png()))

    with RecordingServer(respond) as srv:
        gen = HttpGenerator(srv.url + "/generate", backoff=0.01)
        assert gen.generate(GenerationRequest("p", seed=5, width=64, guidance=2.0)).size == (16, 16)
        assert len(srv.requests) == 3
        body = srv.requests[-1].json()
        assert body == {"prompt": "p", "seed": 5, "width": 64, "height": None, "steps": None, "guidance": 2.0, "negative_prompt": None}


def test_client_gives_up_on_persistent_500_naming_the_url():
    with RecordingServer(lambda rec: json_reply(500, {"error": "CUDA error"})) as srv:
        with pytest.raises(GenerationError, match=r"failed after 2 attempts: HTTP 500: CUDA error") as info:
            from_spec(srv.url + "/gen#retries=2").generate(GenerationRequest("p", seed=0))
        assert srv.url in str(info.value)


def test_unreachable_server_names_the_url():
    url = f"http://127.0.0.1:{free_port()}/generate"
    with pytest.raises(GenerationError, match=url):
        HttpGenerator(url, retries=2, backoff=0.01, timeout=5).generate(GenerationRequest("p", seed=0))


def official_gems_server(rec):
    """Answers as the official GEMS servers do (lcqysl/GEMS ``agent/server/z_image.py``:
    FastAPI ``@app.post("/generate") async def generate_image(prompt: str)``, called by
    ``requests.post(url, params={"prompt": prompt})``). ``prompt`` is a query parameter:
    FastAPI ignores any body, so a request without ``?prompt=`` gets its 422."""
    parts = urlsplit(rec.path)
    if rec.method != "POST" or parts.path != "/generate":
        return json_reply(404, {"detail": "Not Found"})
    query = parse_qs(parts.query, keep_blank_values=True)
    if "prompt" not in query:
        return json_reply(422, {"detail": [{"type": "missing", "loc": ["query", "prompt"], "msg": "Field required", "input": None}]})
    if not query["prompt"][0]:
        return json_reply(400, {"detail": "Prompt is empty"})
    return 200, "image/png", _png()


def test_official_gems_server_gets_the_prompt_in_the_query_and_is_remembered():
    with RecordingServer(official_gems_server) as srv:
        gen = HttpGenerator(srv.url + "/generate")
        assert gen.generate(GenerationRequest("a cat & a dog", seed=0)).size == (16, 16)
        assert gen.prompt_in_query is True
        json_try, query_try = srv.requests
        assert json_try.json()["prompt"] == "a cat & a dog"
        assert parse_qs(urlsplit(query_try.path).query) == {"prompt": ["a cat & a dog"]} and query_try.body == b""
        gen.generate(GenerationRequest("a cat", seed=1))
        assert len(srv.requests) == 3 and parse_qs(urlsplit(srv.requests[2].path).query) == {"prompt": ["a cat"]}
        # Chosen up front with #query: one request per image.
        assert from_spec(srv.url + "/generate#query").generate(GenerationRequest("a bird", seed=0)).size == (16, 16)
        assert len(srv.requests) == 4
        with pytest.warns(DeprecationWarning, match="#query"):
            assert from_spec(srv.url + "/generate#form").prompt_in_query is True


def test_official_gems_server_refusal_is_not_retried_as_query_twice():
    with RecordingServer(official_gems_server) as srv:
        with pytest.raises(GenerationError, match=r"HTTP 400: Prompt is empty"):
            from_spec(srv.url + "/generate#query").generate(GenerationRequest("", seed=0))
        assert len(srv.requests) == 1
