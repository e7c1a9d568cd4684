"""``gems serve-generator`` as an inference server: its queue, batches across clients, limits
and ``/metrics``, on loopback with real HTTP clients and ``gems run`` processes."""

from __future__ import annotations

import base64
import io
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from PIL import Image

from gems_graph.backends.server import RequestLimits
from gems_graph.models import registry
from tests.servers import ThreadedGeneratorServer, wait_for

REPO = Path(__file__).resolve().parents[1]


class _Gate:
    """A generator whose first image waits for ``release``; records every prompt it makes."""

    family = "test"

    def __init__(self):
        self.started, self.release = threading.Event(), threading.Event()
        self.prompts: list[str] = []

    def generate(self, request):
        self.prompts.append(request.prompt)
        self.started.set()
        self.release.wait(30)
        return Image.new("RGB", (8, 8), (1, 2, 3))


def _metrics(server) -> dict[str, float]:
    text = httpx.get(server.root + "/metrics").text
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line and not line.startswith("#")}


def _gated(name: str, **options):
    gate = _Gate()
    registry.register_generator(name, lambda arg: gate, replace=True)
    return gate, ThreadedGeneratorServer(name, max_concurrency=1, options=options)


@pytest.fixture(scope="module")
def shapes_server():
    with ThreadedGeneratorServer("shapes", options={"batch_window": 0.5}) as srv:
        yield srv.server


def test_requests_of_different_clients_share_one_pipeline_batch(shapes_server):
    url = shapes_server.base_url + "/images/generations"
    prompts = ["a red circle", "two blue squares", "a green triangle", "a yellow circle above a red square"]

    def call(prompt):
        with httpx.Client(timeout=60) as client:  # one client each, as separate agents
            return client.post(url, json={"prompt": prompt, "seed": 3, "num_inference_steps": 2})

    with ThreadPoolExecutor(len(prompts)) as pool:
        replies = list(pool.map(call, prompts))
    assert [r.status_code for r in replies] == [200] * 4
    for r in replies:
        image = Image.open(io.BytesIO(base64.b64decode(r.json()["data"][0]["b64_json"])))
        assert image.size == (32, 32)
    m = _metrics(shapes_server)
    assert m["gems_images_total"] >= 4 and m["gems_batch_size_count"] < 4  # fewer pipeline calls than requests
    assert m["gems_queue_depth"] == 0 and m["gems_images_running"] == 0 and m["gems_images_per_second"] > 0


def test_a_size_the_model_cannot_make_is_400_and_its_own_size_is_honoured(shapes_server):
    url = shapes_server.base_url + "/images/generations"
    for size in ("256x256", "999x3"):
        reply = httpx.post(url, json={"prompt": "a red circle", "size": size, "num_inference_steps": 2}, timeout=60)
        assert reply.status_code == 400 and "makes 32x32 images only" in reply.json()["error"]["message"]
    legacy = httpx.post(shapes_server.url, json={"prompt": "a red circle", "width": 64, "height": 64, "steps": 2}, timeout=60)
    assert legacy.status_code == 400 and "32x32" in legacy.json()["error"]
    ok = httpx.post(url, json={"prompt": "a red circle", "size": "32x32", "num_inference_steps": 2}, timeout=60)
    assert ok.status_code == 200 and ok.json()["size"] == "32x32"


def test_steps_pixels_and_n_over_the_caps_are_400_naming_the_option():
    registry.register_generator("caps-test", lambda arg: _Gate(), replace=True)
    limits = RequestLimits(max_steps=50, max_pixels=64 * 64, max_n=2)
    with ThreadedGeneratorServer("caps-test", options={"limits": limits}) as tgs:
        url = tgs.server.base_url + "/images/generations"
        cases = [
            ({"num_inference_steps": 1e8}, "--max-steps"),
            ({"num_inference_steps": 0}, "--max-steps"),
            ({"size": "128x128"}, "--max-pixels"),
            ({"n": 3}, "--max-n"),
        ]
        for fields, option in cases:
            reply = httpx.post(url, json={"prompt": "x", **fields}, timeout=10)
            message = reply.json()["error"]["message"]
            assert reply.status_code == 400 and option in message and "\n" not in message
        legacy = httpx.post(tgs.url, json={"prompt": "x", "steps": 100000000}, timeout=10)
        assert legacy.status_code == 400 and "--max-steps" in legacy.json()["error"]


def test_a_waiting_request_whose_client_has_gone_is_dropped():
    gate, server = _gated("gone-test")
    with server as tgs:
        first = threading.Thread(target=lambda: httpx.post(tgs.url, json={"prompt": "first"}, timeout=30))
        first.start()
        assert gate.started.wait(10)
        body = json.dumps({"prompt": "abandoned"}).encode()
        with socket.create_connection(tgs.server.server_address[:2]) as sock:
            sock.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
            sock.sendall(f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            wait_for(lambda: tgs.server.queue.depth == 1)
        wait_for(lambda: _metrics(tgs.server)['gems_dropped_total{reason="client_gone"}'] == 1)
        assert tgs.server.queue.depth == 0
        gate.release.set()
        first.join(10)
        assert httpx.post(tgs.url, json={"prompt": "after"}, timeout=30).status_code == 200
    assert gate.prompts == ["first", "after"]  # the abandoned one never reached the model


def test_a_request_past_its_deadline_is_504_and_never_runs():
    gate, server = _gated("deadline-test", request_deadline=0.5)
    with server as tgs:
        first = threading.Thread(target=lambda: httpx.post(tgs.url, json={"prompt": "first"}, timeout=30))
        first.start()
        assert gate.started.wait(10)
        started = time.monotonic()
        late = httpx.post(tgs.server.base_url + "/images/generations", json={"prompt": "late"}, timeout=30)
        assert late.status_code == 504 and "--request-deadline 0.5" in late.json()["error"]["message"]
        assert time.monotonic() - started < 3
        gate.release.set()
        first.join(10)
        assert _metrics(tgs.server)['gems_dropped_total{reason="deadline"}'] == 1
    assert gate.prompts == ["first"]


def test_a_client_trickling_a_byte_at_a_time_is_cut_off_at_the_request_timeout():
    with ThreadedGeneratorServer("shapes", request_timeout=1.0) as tgs:
        request = b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n" + b"{" * 20
        started = time.monotonic()
        with socket.create_connection(tgs.server.server_address[:2], timeout=10) as sock:
            for byte in request:  # a byte every 0.25 s: each read is quick, the whole request is not
                try:
                    sock.sendall(bytes([byte]))
                    if select.select([sock], [], [], 0.25)[0] and not sock.recv(100):
                        break  # the server closed the connection
                except OSError:
                    break
        closed = time.monotonic() - started
    assert closed < 4  # the whole request would take 20 s at this pace


def test_metrics_are_prometheus_text(shapes_server):
    reply = httpx.get(shapes_server.root + "/metrics")
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = reply.text
    for name, kind in (("gems_queue_depth", "gauge"), ("gems_images_total", "counter"), ("gems_batch_size", "histogram")):
        assert f"# TYPE {name} {kind}" in text
    assert 'gems_batch_size_bucket{le="+Inf"}' in text and "gems_images_per_second" in text


def test_three_gems_runs_against_one_server_at_its_defaults_all_pass(tmp_path):
    with ThreadedGeneratorServer("shapes") as tgs:
        spec = f"images-api:{tgs.server.base_url}#shapes"
        env = {**os.environ, "PYTHONPATH": str(REPO), "GEMS_MEMORY": "none", "OMP_NUM_THREADS": "1"}
        args = ["run", "a red circle left of a blue square", "-g", spec, "--rounds", "1", "--candidates", "2", "--steps", "4", "--json"]
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "gems_graph.app.cli", *args],
                env={**env, "GEMS_HOME": str(tmp_path / f"home{i}")},
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(3)
        ]
        outs = [p.communicate(timeout=600) for p in procs]
    for proc, (out, err) in zip(procs, outs):
        assert proc.returncode == 0, err
        run = json.loads(Path(json.loads(out)["run_dir"], "run.json").read_text())
        assert [c["error"] for c in run["rounds"][0]["candidates"]] == [None, None]


# -- the clients' side: a reply body is read only up to a cap ---------------------------------


def _chunked_server(chunks: int, chunk: bytes) -> tuple[socket.socket, threading.Thread]:
    """A one-shot server answering with a chunked body of ``chunks`` x ``chunk`` (no Content-Length)."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
            try:
                for _ in range(chunks):
                    conn.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                conn.sendall(b"0\r\n\r\n")
            except OSError:
                pass  # the client stopped reading, as it should

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


def test_an_image_server_reply_over_the_cap_is_a_candidate_error_not_read_whole():
    from gems_graph.backends.images_api import ImagesApiGenerator
    from gems_graph.models.generator import GenerationError, GenerationRequest
    from tests.servers import RecordingServer, json_reply

    request = GenerationRequest("a red circle", seed=0)
    with RecordingServer(lambda rec: json_reply(200, {"data": [{"b64_json": "A" * 5000}]})) as srv:
        gen = ImagesApiGenerator(f"{srv.url}/v1", "m", max_batch=1, max_response_bytes=1000)
        with pytest.raises(GenerationError, match="over the 1000-byte limit; it was not read"):
            gen.generate(request)
    listener, thread = _chunked_server(chunks=10_000, chunk=b"A" * 1024)  # 10 MB, no length given
    with listener:
        gen = ImagesApiGenerator(f"http://127.0.0.1:{listener.getsockname()[1]}/v1", "m", max_batch=1, retries=1, max_response_bytes=65536)
        with pytest.raises(GenerationError, match="sent a body over 65536 bytes"):
            gen.generate(request)
    thread.join(10)


@pytest.mark.parametrize(
    "flag, value, message",
    [("--max-batch", "0", "--max-batch must be at least 1"), ("--request-deadline", "0", "--request-deadline must be above 0")],
)
def test_a_bad_queue_setting_is_one_line_and_exit_2(tmp_path, flag, value, message):
    cmd = [sys.executable, "-m", "gems_graph.app.cli", "serve-generator", "shapes", "--port", "0", flag, value]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert res.returncode == 2 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr


# -- who may call the server: GEMS_SERVER_KEYS ------------------------------------------------

ALICE_KEY = "alice-key-0123456789abcdef"


def test_with_server_keys_a_missing_or_wrong_key_is_401_and_the_right_one_generates():
    from gems_graph.access_keys import AccessKeys
    from gems_graph.backends.images_api import ImagesApiGenerator
    from gems_graph.models.generator import GenerationError, GenerationRequest

    keys = AccessKeys.parse(f"alice:{ALICE_KEY}")
    with ThreadedGeneratorServer("shapes", options={"keys": keys}) as tgs:
        root = tgs.server.root
        assert httpx.get(root + "/health").status_code == 200  # liveness probes need no key
        for headers in ({}, {"Authorization": "Bearer not-the-key-at-all-0000"}, {"Authorization": f"Basic {ALICE_KEY}"}):
            for reply in (httpx.get(root + "/v1/models", headers=headers), httpx.get(root + "/metrics", headers=headers)):
                assert reply.status_code == 401 and reply.headers["www-authenticate"] == "Bearer", reply.text
            posted = httpx.post(root + "/v1/images/generations", json={"prompt": "a red circle"}, headers=headers)
            assert posted.status_code == 401 and posted.json()["error"]["type"] == "authentication_error"
        assert httpx.get(root + "/metrics", headers={"X-Api-Key": ALICE_KEY}).status_code == 200
        gen = ImagesApiGenerator(tgs.server.base_url, "shapes", max_batch=1, api_key=ALICE_KEY)
        assert gen.generate(GenerationRequest("a red circle", seed=0, steps=2)).size == (32, 32)
        stranger = ImagesApiGenerator(tgs.server.base_url, "shapes", max_batch=1, api_key="not-the-key-at-all-0000", retries=1)
        with pytest.raises(GenerationError, match="401"):
            stranger.generate(GenerationRequest("a red circle", seed=0, steps=2))


def test_without_keys_only_loopback_clients_are_let_in():
    from gems_graph.access_keys import LOCAL_OWNER, AccessKeys, admit, key_owner

    assert admit(AccessKeys(), {}, "127.0.0.1") == admit(AccessKeys(), {}, "::1") == LOCAL_OWNER
    for peer in ("10.1.2.3", "192.168.0.7", "2001:db8::1", None):
        with pytest.raises(PermissionError, match="has no GEMS_SERVER_KEYS set and accepts loopback clients only"):
            admit(AccessKeys(), {}, peer)
    keys = AccessKeys.parse(f"alice:{ALICE_KEY}, {ALICE_KEY[::-1]}")
    assert admit(keys, {"authorization": f"bearer {ALICE_KEY}"}, "10.1.2.3") == "alice"
    assert admit(keys, {"X-API-KEY": ALICE_KEY[::-1]}, "10.1.2.3") == key_owner(ALICE_KEY[::-1])
    assert ALICE_KEY[::-1][:6] not in key_owner(ALICE_KEY[::-1])
    with pytest.raises(PermissionError, match="an API key is required"):
        admit(keys, {}, "127.0.0.1")  # with keys set, loopback needs one too


@pytest.mark.parametrize(
    "args, keys, message",
    [
        (["--host", "0.0.0.0"], None, "--host 0.0.0.0 is reachable from other machines: set GEMS_SERVER_KEYS"),
        ([], "alice:short", "GEMS_SERVER_KEYS entry 1 is not 'owner:key' or 'key' with a key of at least 16 characters"),
    ],
)
def test_serving_other_machines_without_a_key_or_with_a_bad_one_is_one_line_and_exit_2(tmp_path, args, keys, message):
    env = {k: v for k, v in os.environ.items() if k != "GEMS_SERVER_KEYS"} | {"PYTHONPATH": str(REPO)}
    if keys:
        env["GEMS_SERVER_KEYS"] = keys
    cmd = [sys.executable, "-m", "gems_graph.app.cli", "serve-generator", "shapes", "--port", "0", *args]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert res.returncode == 2 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "short" not in res.stderr
