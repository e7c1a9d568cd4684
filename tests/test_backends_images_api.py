"""``images-api:`` against ``gems serve-generator`` and a recording server that answers
as vLLM-Omni documents its ``POST /v1/images/generations`` (fields, errors, ``n``)."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from langgraph.checkpoint.memory import InMemorySaver
from PIL import Image, ImageChops

from gems_graph.backends.doctor import check_generator
from gems_graph.backends.images_api import ImagesApiGenerator, from_spec, parse_spec
from gems_graph.context import GemsContext
from gems_graph.graph import compile_graph
from gems_graph.models import registry
from gems_graph.models.generator import GenerationError, GenerationRequest
from gems_graph.models.registry import resolve_generator
from gems_graph.testing import ColourGenerator, ScriptedChatModel, is_red, loop_handler
from tests.servers import RecordingServer, ThreadedGeneratorServer, free_port, json_reply

REPO = Path(__file__).resolve().parents[1]

#: Every request field vLLM-Omni's "Image Generation API" page documents (OpenAI standard + extensions).
VLLM_OMNI_FIELDS = {
    "prompt",
    "model",
    "n",
    "size",
    "response_format",
    "user",
    "negative_prompt",
    "num_inference_steps",
    "guidance_scale",
    "true_cfg_scale",
    "seed",
    "extra_params",
}


def _b64_png(colour, size=(16, 16)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def vllm_omni(rec):
    """A 200 in vLLM-Omni's response shape: ``n`` images, image ``i`` coloured ``(i, seed % 256, 0)``."""
    if rec.path.endswith("/models"):
        return json_reply(200, {"object": "list", "data": [{"id": "Tongyi-MAI/Z-Image-Turbo", "object": "model"}]})
    body = rec.json()
    data = [{"b64_json": _b64_png((i, body.get("seed", 0) % 256, 0)), "url": None, "revised_prompt": None} for i in range(body.get("n", 1))]
    return json_reply(200, {"created": 1701234567, "data": data})


def _same(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and ImageChops.difference(a.convert("RGB"), b.convert("RGB")).getbbox() is None


# -- against gems serve-generator -------------------------------------------------------


@pytest.fixture(scope="module")
def shapes_server():
    with ThreadedGeneratorServer("shapes") as srv:
        yield srv


def test_serve_generator_shapes_through_images_api_seeds_honoured(shapes_server):
    srv = shapes_server.server
    models = httpx.get(srv.base_url + "/models").json()
    assert [m["id"] for m in models["data"]] == ["shapes"] and models["data"][0]["family"] == "shapes"
    gen = resolve_generator(f"images-api:{srv.base_url}#shapes?batch_window=0.5")
    assert isinstance(gen, ImagesApiGenerator) and gen.family == "shapes"
    req = GenerationRequest("two red circles left of a blue square", seed=11, steps=4)
    alone = gen.generate(req)
    assert _same(alone, gen.generate(req))  # same seed, same image
    other = gen.generate(GenerationRequest(req.prompt, seed=12, steps=4))
    assert not _same(alone, other)
    # Two candidates at once go out as one request with n=2; each still gets its own seed's image.
    with ThreadPoolExecutor(2) as pool:
        batched = list(pool.map(gen.generate, [req, GenerationRequest(req.prompt, seed=12, steps=4)]))
    assert _same(batched[0], alone) and _same(batched[1], other)
    # The old /generate endpoint still serves, with the same image for the same seed.
    legacy = resolve_generator(f"http:{srv.url}").generate(req)
    assert _same(legacy, alone)
    with pytest.raises(GenerationError, match="'nope' is not served here; this server serves 'shapes'"):
        from_spec(f"{srv.base_url}#nope").generate(req)


def test_gems_run_with_images_api_against_serve_generator(shapes_server, tmp_path):
    srv = shapes_server.server
    env = {**os.environ, "GEMS_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO), "GEMS_MEMORY": "none"}
    spec = f"images-api:{srv.base_url}#shapes?batch_window=0.5"
    args = ["run", "a red circle", "--generator", spec, "--rounds", "1", "--candidates", "2", "--steps", "4", "--json"]
    cmd = [sys.executable, "-m", "gems_graph.app.cli", *args]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["status"] in ("passed", "exhausted") and summary["rounds"] == 1
    run_json = json.loads(Path(summary["run_dir"], "run.json").read_text())
    cands = run_json["rounds"][0]["candidates"]
    assert [c["error"] for c in cands] == [None, None] and [c["params"]["steps"] for c in cands] == [4, 4]
    # Each candidate is what the server makes for that seed alone.
    legacy = resolve_generator(f"http:{srv.url}")
    for c in cands:
        alone = legacy.generate(GenerationRequest(c["prompt"], seed=c["seed"], steps=4))
        assert _same(Image.open(c["image"]["path"]), alone)


class _BlockingGenerator:
    family = "test"

    def __init__(self):
        self.started, self.release = threading.Event(), threading.Event()

    def generate(self, request):
        self.started.set()
        self.release.wait(30)
        return Image.new("RGB", (8, 8), (1, 2, 3))


def test_serve_generator_limits_apply_to_the_images_route():
    blocker = _BlockingGenerator()
    registry.register_generator("blocking-images-test", lambda arg: blocker, replace=True)
    with ThreadedGeneratorServer("blocking-images-test", max_body_bytes=300, max_concurrency=1, options={"max_queue": 1}) as tgs:
        srv = tgs.server
        url = srv.base_url + "/images/generations"
        big = httpx.post(url, json={"prompt": "x" * 500})
        assert big.status_code == 413 and "limit" in big.json()["error"]["message"]
        with pytest.raises(GenerationError, match="HTTP 413"):
            ImagesApiGenerator(srv.base_url, "blocking-images-test", max_batch=1).generate(GenerationRequest("y" * 400, seed=0))
        first: list = []
        gen = ImagesApiGenerator(srv.base_url, "blocking-images-test", max_batch=1)
        t = threading.Thread(target=lambda: first.append(gen.generate(GenerationRequest("a", seed=0))))
        t.start()
        assert blocker.started.wait(10)
        queued = threading.Thread(target=lambda: first.append(gen.generate(GenerationRequest("q", seed=0))))
        queued.start()  # waits in the queue; the next one overfills it
        while srv.queue.depth < 1:
            time.sleep(0.02)
        busy = httpx.post(url, json={"prompt": "b"})
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1" and busy.json()["error"]["type"] == "server_busy"
        with pytest.raises(GenerationError, match=r"failed after 2 attempts: HTTP 503: queue full"):
            ImagesApiGenerator(srv.base_url, "blocking-images-test", max_batch=1, retries=2, backoff=0.01).generate(
                GenerationRequest("c", seed=0)
            )
        blocker.release.set()
        t.join(10)
        queued.join(10)
        assert [img.size for img in first] == [(8, 8), (8, 8)]
        bad = httpx.post(url, json={"prompt": "d", "size": "1024x"})
        assert bad.status_code == 400 and "WIDTHxHEIGHT" in bad.json()["error"]["message"]


def test_serve_generator_reports_a_failed_image_of_a_batch_and_keeps_the_rest():
    registry.register_generator("colour-fail-test", lambda arg: ColourGenerator(fail_seeds={21}), replace=True)
    with ThreadedGeneratorServer("colour-fail-test") as tgs:
        body = {"prompt": "a square", "n": 3, "seed": 20}
        data = httpx.post(tgs.server.base_url + "/images/generations", json=body).json()["data"]
        assert [d["b64_json"] is None for d in data] == [False, True, False] and "seed 21" in data[1]["error"]
        gen = ImagesApiGenerator(tgs.server.base_url, "colour-fail-test", batch_window=0.5)
        with ThreadPoolExecutor(3) as pool:
            futures = [pool.submit(gen.generate, GenerationRequest("a square", seed=s)) for s in (20, 21, 22)]
        assert futures[0].result().size == (16, 16) and futures[2].result().size == (16, 16)
        with pytest.raises(GenerationError, match="could not make image 1 of the batch: .*seed 21"):
            futures[1].result()


# -- against a recording server that answers like vLLM-Omni ----------------------------------


def test_one_request_per_round_with_exactly_the_documented_fields():
    with RecordingServer(vllm_omni) as srv:
        gen = from_spec(f"{srv.url}/v1#Tongyi-MAI/Z-Image-Turbo?batch_window=0.5")
        assert gen.family == "z-image"
        params = {"width": 512, "height": 768, "steps": 9, "guidance": 0.0, "negative_prompt": "blurry"}
        reqs = [GenerationRequest("a red bicycle", seed=s, **params) for s in (100, 101, 102)]
        with ThreadPoolExecutor(3) as pool:
            images = list(pool.map(gen.generate, reqs))
    assert len(srv.requests) == 1
    rec = srv.requests[0]
    assert rec.method == "POST" and rec.path == "/v1/images/generations" and rec.headers["content-type"] == "application/json"
    assert rec.json() == {
        "model": "Tongyi-MAI/Z-Image-Turbo",
        "prompt": "a red bicycle",
        "n": 3,
        "size": "512x768",
        "seed": 100,
        "num_inference_steps": 9,
        "guidance_scale": 0.0,
        "negative_prompt": "blurry",
        "response_format": "b64_json",
    }
    assert set(rec.json()) <= VLLM_OMNI_FIELDS
    assert [img.getpixel((0, 0)) for img in images] == [(0, 100, 0), (1, 100, 0), (2, 100, 0)]  # data[i] -> candidate i


def test_requests_that_cannot_share_one_call_are_split():
    with RecordingServer(vllm_omni) as srv:
        gen = ImagesApiGenerator(f"{srv.url}/v1", "Qwen/Qwen-Image")
        out = gen.generate_batch(
            [
                GenerationRequest("a", seed=1, guidance=4.0, extra={"max_sequence_length": 256}),
                GenerationRequest("a", seed=2, guidance=4.0, extra={"max_sequence_length": 256}),
                GenerationRequest("a", seed=7, guidance=4.0, extra={"max_sequence_length": 256}),  # not consecutive
                GenerationRequest("b", seed=3),  # another prompt
            ]
        )
        assert all(isinstance(img, Image.Image) for img in out)
        bodies = sorted((r.json() for r in srv.requests), key=lambda b: (b["prompt"], b["seed"]))
        assert [(b["prompt"], b["seed"], b["n"]) for b in bodies] == [("a", 1, 2), ("a", 7, 1), ("b", 3, 1)]
        # Qwen-Image takes its CFG as true_cfg_scale (as the diffusers preset routes it); extras ride in extra_params.
        assert bodies[0]["true_cfg_scale"] == 4.0 and "guidance_scale" not in bodies[0]
        assert bodies[0]["extra_params"] == {"max_sequence_length": 256} and "size" not in bodies[2]
        assert set(bodies[0]) <= VLLM_OMNI_FIELDS
        one = ImagesApiGenerator(f"{srv.url}/v1", "m", max_batch=1)
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(one.generate, [GenerationRequest("c", seed=0), GenerationRequest("c", seed=1)]))
        assert [r.json()["n"] for r in srv.requests[3:]] == [1, 1]  # batch=1: one request per image


@pytest.mark.parametrize(
    "status, body, message",
    [
        (400, {"detail": "Invalid size format: '1024x'. Expected format: 'WIDTHxHEIGHT'."}, r"HTTP 400: Invalid size format"),
        (422, {"detail": [{"loc": ["body", "prompt"], "msg": "field required"}]}, r"HTTP 422: body.prompt: field required"),
        (
            400,
            {"error": {"message": "Your request was rejected by the safety system.", "code": "content_policy_violation"}},
            r"refused the prompt \(content policy\): Your request was rejected",
        ),
    ],
)
def test_refusals_are_generation_errors_and_not_retried(status, body, message):
    with RecordingServer(lambda rec: json_reply(status, body)) as srv:
        with pytest.raises(GenerationError, match=message):
            ImagesApiGenerator(f"{srv.url}/v1", "m").generate(GenerationRequest("x", seed=0))
        assert len(srv.requests) == 1


def test_503_then_200_is_retried():
    replies = iter([json_reply(503, {"detail": "Diffusion engine not initialized. Start server with a diffusion model."})])
    with RecordingServer(lambda rec: next(replies, None) or vllm_omni(rec)) as srv:
        img = ImagesApiGenerator(f"{srv.url}/v1", "m", backoff=0.01).generate(GenerationRequest("x", seed=3))
        assert img.getpixel((0, 0)) == (0, 3, 0) and len(srv.requests) == 2


def test_persistent_500_and_unreachable_name_the_server():
    with RecordingServer(lambda rec: json_reply(500, {"detail": "CUDA error: out of memory"})) as srv:
        with pytest.raises(GenerationError, match=r"/v1/images/generations failed after 2 attempts: HTTP 500: CUDA error"):
            from_spec(f"{srv.url}/v1#m?retries=2").generate(GenerationRequest("x", seed=0))
        assert len(srv.requests) == 2
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(GenerationError, match=f"{url}/images/generations failed after 2 attempts: ConnectError"):
        ImagesApiGenerator(url, "m", retries=2, backoff=0.01).generate(GenerationRequest("x", seed=0))


def test_a_refusal_is_recorded_on_the_candidate_and_the_round_was_one_request(tmp_path):
    def respond(rec):
        body = rec.json()
        if body["n"] == 2:  # the round's two candidates: the second one was filtered
            data = [{"b64_json": _b64_png((220, 10, 10))}, {"b64_json": None, "error": "safety filtered"}]
            return json_reply(200, {"created": 0, "data": data})
        return json_reply(400, {"detail": f"unexpected n={body['n']}"})

    with RecordingServer(respond) as srv:
        context = GemsContext(
            generator=f"images-api:{srv.url}/v1#m?batch_window=0.5",
            chat_model=ScriptedChatModel(handler=loop_handler()),
            artifact_root=str(tmp_path / "runs"),
            candidates_per_round=2,
            max_rounds=1,
            memory="none",
        )
        app = compile_graph(checkpointer=InMemorySaver())
        config = {"configurable": {"thread_id": "t1"}}
        out = app.invoke({"prompt": "a red square"}, config, context=context)
        cands = app.get_state(config).values["rounds"][0]["candidates"]
    assert len(srv.requests) == 1 and srv.requests[0].json()["seed"] == cands[0]["seed"]
    assert cands[0]["error"] is None and is_red(Image.open(cands[0]["image"]["path"]))
    assert cands[1]["image"] is None and "safety filtered" in cands[1]["error"]
    assert out["status"] == "passed" and out["best"]["index"] == 0


def test_api_key_is_sent_and_never_shown(monkeypatch):
    monkeypatch.setenv("GEMS_IMAGES_API_KEY", "s3cret-images-key")

    def respond(rec):
        return json_reply(401, {"detail": f"bad token {rec.headers.get('authorization')}"})

    with RecordingServer(respond) as srv:
        with pytest.raises(GenerationError) as info:
            ImagesApiGenerator(f"{srv.url}/v1", "m").generate(GenerationRequest("x", seed=0))
        assert srv.requests[0].headers["authorization"] == "Bearer s3cret-images-key"
        assert "s3cret-images-key" not in str(info.value) and "***" in str(info.value)


def test_spec_parsing_and_registry():
    assert parse_spec("http://gpu:8000/v1#Qwen/Qwen-Image?batch=4&timeout=900&retries=5&family=qwen") == (
        "http://gpu:8000/v1",
        "Qwen/Qwen-Image",
        {"max_batch": 4, "timeout": 900.0, "retries": 5, "family": "qwen"},
    )
    gen = resolve_generator("images-api:http://gpu:8000/v1/#Qwen/Qwen-Image")
    assert gen.generations_url == "http://gpu:8000/v1/images/generations" and gen.family == "qwen-image"
    assert "images-api" in registry.generators.kinds()
    for bad, message in [
        ("http://gpu:8000/v1", "must be <base_url>#<model>"),
        ("gpu:8000/v1#m", "must start with http"),
        ("http://gpu/v1#m?bogus=1", "unknown images-api option 'bogus'"),
        ("http://gpu/v1#m?batch=11", "use 1 to 10"),
        ("http://gpu/v1#m?retries=many", "must be a int"),
    ]:
        with pytest.raises(ValueError, match=message):
            from_spec(bad)


def test_doctor_checks_the_model_list(shapes_server):
    srv = shapes_server.server
    rows = {r.check: r for r in check_generator(f"images-api:{srv.base_url}#shapes")}
    assert rows["kind"].status == "ok" and rows["reachable"].status == "ok"
    with RecordingServer(vllm_omni) as rec_srv:
        row = {r.check: r for r in check_generator(f"images-api:{rec_srv.url}/v1#Qwen/Qwen-Image")}["reachable"]
        assert row.status == "warn" and "Tongyi-MAI/Z-Image-Turbo" in row.detail
    down = {r.check: r for r in check_generator(f"images-api:http://127.0.0.1:{free_port()}/v1#m")}["reachable"]
    assert down.status == "fail"
    bad = {r.check: r for r in check_generator("images-api:http://gpu/v1")}["create"]
    assert bad.status == "fail" and "<base_url>#<model>" in bad.detail
