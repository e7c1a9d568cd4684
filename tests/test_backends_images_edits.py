"""``POST /v1/images/edits``: the ``images-api:`` client's ``edit`` and ``gems serve-generator``'s route.

Real loopback servers: ``gems serve-generator`` in a thread (the shipped shapes generator,
or a registered one), and a recording server that answers as vLLM-Omni documents its
edits endpoint, for the wire format, retries and refusals.
"""

from __future__ import annotations

import base64
import email.policy
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
from email.parser import BytesParser
from pathlib import Path

import httpx
import pytest
from PIL import Image

from gems_graph.backends.doctor import check_generator
from gems_graph.backends.images_api import ImagesApiGenerator, edit_mask, from_spec, mask_from_alpha, parse_spec
from gems_graph.models import registry
from gems_graph.models.generator import EditRequest, GenerationError, region_mask, supports_editing
from gems_graph.models.registry import resolve_generator
from gems_graph.shapes.render import draw
from gems_graph.testing import ColourGenerator
from tests.servers import RecordingServer, ThreadedGeneratorServer, json_reply
from tests.test_editing import _SHAPES, REQUEST, STEPS, WRONG_COLOUR, DrawsWrongThenInpaints

REPO = Path(__file__).resolve().parents[1]
#: The fields vLLM-Omni's edits endpoint takes (docs/serving/image_edit_api.md, api_server.py's edit_images),
#: plus OpenAI's ``mask`` and our ``extra_params``.
VLLM_OMNI_EDIT_FIELDS = {
    "image",
    "prompt",
    "model",
    "n",
    "size",
    "response_format",
    "seed",
    "num_inference_steps",
    "guidance_scale",
    "true_cfg_scale",
    "negative_prompt",
    "strength",
    "mask_image",
    "mask",
    "extra_params",
}
REGION = [0.6, 0.3, 1.0, 0.7]  # around the (wrong, green) triangle of WRONG_COLOUR


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _b64(image: Image.Image) -> str:
    return base64.b64encode(_png(image)).decode()


def _form_parts(rec) -> dict[str, tuple[str | None, bytes]]:
    """A recorded multipart body, read by the stdlib's email parser: {name: (filename, bytes)}."""
    msg = BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + rec.headers["content-type"].encode() + b"\r\n\r\n" + rec.body
    )
    assert msg.is_multipart()
    return {p.get_param("name", header="content-disposition"): (p.get_filename(), p.get_payload(decode=True)) for p in msg.iter_parts()}


def _edit(seed=3, mask=True, **kw) -> EditRequest:
    return EditRequest(
        image=draw(WRONG_COLOUR), prompt=REQUEST, seed=seed, mask=region_mask(32, 32, REGION) if mask else None, steps=STEPS, **kw
    )


def _ok_edit_reply(rec):
    return json_reply(200, {"created": 0, "data": [{"b64_json": _b64(Image.new("RGB", (32, 32), (9, 9, 9)))}]})


@pytest.fixture(scope="module")
def shapes_server():
    """The shipped shapes generator behind serve-generator: the instance test_editing loaded (one load)."""
    registry.register_generator("shapes-served-test", lambda arg: _SHAPES, replace=True)
    with ThreadedGeneratorServer("shapes-served-test") as srv:
        yield srv.server


# -- the round trip ----------------------------------------------------------------------


def test_an_edit_through_serve_generator_is_the_direct_edit(shapes_server):
    srv = shapes_server
    entry = httpx.get(srv.base_url + "/models").json()["data"][0]
    assert entry["id"] == "shapes-served-test" and entry["family"] == "shapes" and entry["edits"] is True
    gen = resolve_generator(f"images-api:{srv.base_url}#shapes-served-test?edits=1")
    assert supports_editing(gen)
    source, mask = draw(WRONG_COLOUR), region_mask(32, 32, REGION)
    out = gen.edit(_edit(seed=3))
    assert out.size == source.size and out.mode == "RGB"
    # The server made exactly what the shapes generator makes for that request: same seed, same image.
    assert out.tobytes() == _SHAPES.edit(_edit(seed=3)).tobytes() == gen.edit(_edit(seed=3)).tobytes()
    assert out.tobytes() != gen.edit(_edit(seed=4)).tobytes()
    a, b = source.load(), out.load()
    inside = [(x, y) for x in range(32) for y in range(32) if mask.getpixel((x, y))]
    outside = [(x, y) for x in range(32) for y in range(32) if not mask.getpixel((x, y))]
    assert max(max(abs(p - q) for p, q in zip(a[xy], b[xy])) for xy in outside) <= 1  # kept (inpainting's tolerance)
    assert any(a[xy] != b[xy] for xy in inside)  # repainted
    # Without a mask it is img2img: strength 0 gives the source back.
    assert gen.edit(_edit(mask=False, strength=0.0)).tobytes() == source.tobytes()


def test_the_mask_png_reads_the_same_in_both_conventions():
    mask = region_mask(32, 32, REGION)
    png = edit_mask(mask)
    assert png.mode == "RGBA"
    assert png.getpixel((25, 16)) == (255, 255, 255, 0) and png.getpixel((2, 2)) == (0, 0, 0, 255)
    assert mask_from_alpha(png).tobytes() == mask.tobytes()  # OpenAI's reading: transparent = edit
    assert png.convert("L").tobytes() == mask.tobytes()  # vLLM-Omni's / diffusers': white = repaint
    with pytest.raises(ValueError, match="no alpha channel"):
        mask_from_alpha(mask)


def test_a_json_edit_and_a_curl_style_form_are_served(shapes_server):
    url = shapes_server.base_url + "/images/edits"
    source = draw(WRONG_COLOUR)
    body = {"prompt": REQUEST, "image": "data:image/png;base64," + _b64(source), "seed": 3, "num_inference_steps": STEPS}
    body["mask_image"] = _b64(region_mask(32, 32, REGION))
    reply = httpx.post(url, json=body)
    assert reply.status_code == 200, reply.text
    made = Image.open(io.BytesIO(base64.b64decode(reply.json()["data"][0]["b64_json"])))
    assert made.convert("RGB").tobytes() == _SHAPES.edit(_edit(seed=3)).tobytes() and reply.json()["size"] == "32x32"
    # A body written the way curl -F writes it (its boundary style, quoted names, n=2).
    boundary = "------------------------d74496d66958873e"
    lines = [
        f"--{boundary}",
        'Content-Disposition: form-data; name="prompt"',
        "",
        REQUEST,
        f"--{boundary}",
        'Content-Disposition: form-data; name="n"',
        "",
        "2",
        f"--{boundary}",
        'Content-Disposition: form-data; name="image"; filename="my scene.png"',
        "Content-Type: image/png",
        "",
    ]
    raw = "\r\n".join(lines).encode() + b"\r\n" + _png(source) + f"\r\n--{boundary}--\r\n".encode()
    reply = httpx.post(url, content=raw, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert reply.status_code == 200, reply.text
    assert len(reply.json()["data"]) == 2 and all(d["b64_json"] for d in reply.json()["data"])


# -- what the client sends, retries, refusals (a server answering as vLLM-Omni) --------------


def test_the_client_sends_the_documented_multipart_form():
    with RecordingServer(_ok_edit_reply) as srv:
        gen = from_spec(f"{srv.url}/v1#Qwen/Qwen-Image-Edit?edits=1")
        out = gen.edit(_edit(seed=7, guidance=4.0, negative_prompt="blurry", strength=0.8, extra={"max_sequence_length": 256}))
    assert out.getpixel((0, 0)) == (9, 9, 9)
    rec = srv.requests[0]
    assert rec.method == "POST" and rec.path == "/v1/images/edits" and rec.headers["content-type"].startswith("multipart/form-data")
    parts = _form_parts(rec)
    assert set(parts) <= VLLM_OMNI_EDIT_FIELDS
    text = {name: data.decode() for name, (filename, data) in parts.items() if filename is None}
    assert text == {
        "model": "Qwen/Qwen-Image-Edit",
        "prompt": REQUEST,
        "n": "1",
        "size": "32x32",
        "response_format": "b64_json",
        "seed": "7",
        "strength": "0.8",
        "num_inference_steps": str(STEPS),
        "true_cfg_scale": "4.0",  # the Qwen-Image family takes true CFG, as for generation
        "negative_prompt": "blurry",
        "extra_params": '{"max_sequence_length": 256}',
    }
    image = Image.open(io.BytesIO(parts["image"][1]))
    assert image.format == "PNG" and image.convert("RGB").tobytes() == draw(WRONG_COLOUR).tobytes()
    assert parts["mask"][1] == parts["mask_image"][1]  # one PNG, both names
    mask = Image.open(io.BytesIO(parts["mask"][1]))
    assert mask.format == "PNG" and mask.mode == "RGBA" and mask.getpixel((25, 16))[3] == 0 and mask.getpixel((2, 2))[3] == 255
    without = ImagesApiGenerator(f"{srv.url}/v1", "m", edits=True).edit_form(_edit(mask=False))[1]
    assert [name for name, _ in without] == ["image"]


def test_edits_are_retried_on_5xx_and_a_4xx_is_the_servers_message():
    replies = iter([json_reply(503, {"detail": "Diffusion engine not initialized."}), json_reply(502, {"detail": "bad gateway"})])
    with RecordingServer(lambda rec: next(replies, None) or _ok_edit_reply(rec)) as srv:
        gen = ImagesApiGenerator(f"{srv.url}/v1", "m", edits=True, backoff=0.01)
        assert gen.edit(_edit()).getpixel((0, 0)) == (9, 9, 9) and len(srv.requests) == 3
        assert _form_parts(srv.requests[2]) == _form_parts(srv.requests[0])  # the same form, sent again
    with RecordingServer(lambda rec: json_reply(500, {"detail": "CUDA error: out of memory"})) as srv:
        with pytest.raises(GenerationError, match=r"/v1/images/edits failed after 2 attempts: HTTP 500: CUDA error"):
            from_spec(f"{srv.url}/v1#m?edits=1&retries=2").edit(_edit())
        assert len(srv.requests) == 2
    with RecordingServer(lambda rec: json_reply(422, {"detail": "Field 'image' or 'url' is required"})) as srv:
        gen = from_spec(f"{srv.url}/v1#m?edits=1")
        with pytest.raises(GenerationError, match=r"images/edits refused the request: HTTP 422: Field 'image' or 'url' is required"):
            gen.edit(_edit())
        assert len(srv.requests) == 1 and supports_editing(gen)  # a bad request is not "cannot edit"


def test_a_server_without_the_edits_route_turns_edits_off():
    with RecordingServer(lambda rec: json_reply(404, {"detail": "Not Found"})) as srv:
        spec = f"images-api:{srv.url}/v1#m?edits=1"
        gen = resolve_generator(spec)
        with pytest.raises(GenerationError, match=rf"the server at {srv.url}/v1 does not serve /images/edits \(HTTP 404: Not Found\)"):
            gen.edit(_edit())
        assert not supports_editing(resolve_generator(spec))  # what the refiner asks, from now on
        with pytest.raises(GenerationError, match="does not serve /images/edits"):
            gen.edit(_edit())
        assert len(srv.requests) == 1  # not asked again
    undeclared = from_spec("http://127.0.0.1:9/v1#m")
    assert not supports_editing(undeclared)
    with pytest.raises(GenerationError, match=r"was not declared to edit; add \?edits=1"):
        undeclared.edit(_edit())
    assert parse_spec("http://gpu/v1#m?edits=1")[2] == {"edits": True} and parse_spec("http://gpu/v1#m?edits=0")[2] == {"edits": False}
    with pytest.raises(ValueError, match=r"edits='maybe' must be 1 or 0"):
        from_spec("http://gpu/v1#m?edits=maybe")


def test_serve_generator_answers_404_for_a_generator_that_cannot_edit():
    registry.register_generator("colour-no-edit-test", lambda arg: ColourGenerator(), replace=True)
    with ThreadedGeneratorServer("colour-no-edit-test") as tgs:
        srv = tgs.server
        assert httpx.get(srv.base_url + "/models").json()["data"][0]["edits"] is False
        raw = httpx.post(
            srv.base_url + "/images/edits", files={"image": ("a.png", _png(draw(WRONG_COLOUR)), "image/png")}, data={"prompt": "x"}
        )
        assert raw.status_code == 404 and "'colour-no-edit-test' cannot edit images" in raw.json()["error"]["message"]
        gen = resolve_generator(f"images-api:{srv.base_url}#colour-no-edit-test?edits=1")
        with pytest.raises(GenerationError, match=r"does not serve /images/edits \(HTTP 404: model 'colour-no-edit-test' cannot edit"):
            gen.edit(_edit())
        assert not supports_editing(gen)
        # Generation on the same server is untouched.
        assert httpx.post(srv.base_url + "/images/generations", json={"prompt": "a red square"}).status_code == 200


# -- bad input to serve-generator's edits route ---------------------------------------------


def _post_edit(url, files=None, data=None, **kw):
    return httpx.post(url + "/images/edits", files=files, data={"prompt": REQUEST, **(data or {})}, **kw)


def test_bad_edit_requests_get_a_400_that_says_what_is_wrong(shapes_server):
    url = shapes_server.base_url
    image = ("scene.png", _png(draw(WRONG_COLOUR)), "image/png")
    small_mask = ("m.png", _png(Image.new("L", (16, 16), 255)), "image/png")
    cases = [
        ({"mask_image": small_mask}, {}, "'image' is required"),
        (
            {"image": ("notes.txt", b"not a picture", "text/plain")},
            {},
            r"'image' must be an image file .*something that is not an image \(13 bytes\)",
        ),
        ({"image": image, "mask_image": small_mask}, {}, "the mask is 16x16 but the image is 32x32"),
        ({"image": image, "mask": ("m.png", _png(Image.new("L", (32, 32), 255)), "image/png")}, {}, "'mask' has no alpha channel"),
        ({"image": image}, {"size": "64x64"}, "'size' 64x64 is not the image's 32x32"),
        ({"image": image}, {"strength": "1.5"}, "'strength' must be from 0 to 1"),
        ({"image": image}, {"n": "11"}, "'n' must be between 1 and 10"),
        ({"image": image}, {"model": "other"}, "'other' is not served here"),
        ({"image": image}, {"extra_params": "[1]"}, "'extra_params' must be a JSON object"),
    ]
    for files, data, message in cases:
        reply = _post_edit(url, files=files, data=data)
        assert reply.status_code == 400, (message, reply.text)
        err = reply.json()["error"]
        assert err["type"] == "invalid_request_error" and re.search(message, err["message"]), (message, err["message"])
    two = httpx.post(url + "/images/edits", files=[("image", image), ("image", image)], data={"prompt": "x"})
    assert two.status_code == 400 and "one 'image'" in two.json()["error"]["message"]
    ct = "multipart/form-data; boundary=abc"
    for body, content_type, message in [
        (b'--abc\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nx', ct, "ends without its closing boundary"),
        (b"prompt=x", "multipart/form-data", "without a boundary"),
        (b"prompt=x", "application/x-www-form-urlencoded", "send the edit as multipart/form-data"),
        (b'{"prompt": "x", "image": "%%%"}', "application/json", "'image' is not valid base64"),
    ]:
        reply = httpx.post(url + "/images/edits", content=body, headers={"Content-Type": content_type})
        assert reply.status_code == 400 and message in reply.json()["error"]["message"], reply.text


class _BlockingEditor:
    family = "test"

    def __init__(self):
        self.started, self.release = threading.Event(), threading.Event()

    def generate(self, request):
        return Image.new("RGB", (8, 8))

    def edit(self, request):
        self.started.set()
        self.release.wait(30)
        return request.image


def test_the_edits_route_keeps_the_servers_limits():
    blocker = _BlockingEditor()
    registry.register_generator("blocking-editor-test", lambda arg: blocker, replace=True)
    with ThreadedGeneratorServer("blocking-editor-test", max_concurrency=1, options={"max_queue": 1}) as tgs:
        image = {"image": ("a.png", _png(draw(WRONG_COLOUR)), "image/png")}
        waiting = [threading.Thread(target=_post_edit, args=(tgs.server.base_url,), kwargs={"files": image}) for _ in range(2)]
        waiting[0].start()
        assert blocker.started.wait(10)
        waiting[1].start()  # queued behind the running edit
        for _ in range(100):
            if tgs.server.queue.depth == 1:
                break
            time.sleep(0.05)
        busy = _post_edit(tgs.server.base_url, files=image)
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1" and busy.json()["error"]["type"] == "server_busy"
        blocker.release.set()
        for t in waiting:
            t.join(10)
    with ThreadedGeneratorServer("shapes", max_edit_bytes=2000) as tgs:
        big = Image.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3))  # noise: its PNG is over 2000 bytes
        reply = _post_edit(tgs.server.base_url, files={"image": ("big.png", _png(big), "image/png")})
        assert reply.status_code == 413 and "--max-edit-bytes" in reply.json()["error"]["message"]
        huge = Image.new("L", (9000, 9000))  # compresses to a few KB; refused from its header
        with ThreadedGeneratorServer("shapes", max_edit_bytes=10**6) as roomy:
            reply = _post_edit(roomy.server.base_url, files={"image": ("huge.png", _png(huge), "image/png")})
        assert reply.status_code == 400 and "a 9000x9000 image, over the limit" in reply.json()["error"]["message"]


# -- gems run --edits against a served editor ------------------------------------------------


def test_gems_run_edits_through_images_api(tmp_path):
    """The served generator draws one object wrong, so the shapes refiner's edit move is certain."""
    served = DrawsWrongThenInpaints()
    registry.register_generator("drawn-wrong-test", lambda arg: served, replace=True)
    with ThreadedGeneratorServer("drawn-wrong-test") as tgs:
        spec = f"images-api:{tgs.server.base_url}#drawn-wrong-test?edits=1"
        env = {**os.environ, "GEMS_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO), "GEMS_MEMORY": "none"}
        args = ["run", REQUEST, "-g", spec, "--edits", "--rounds", "2", "--steps", str(STEPS), "--max-skills", "0", "--json"]
        res = subprocess.run(
            [sys.executable, "-m", "gems_graph.app.cli", *args], capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path
        )
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    run_json = json.loads(Path(summary["run_dir"], "run.json").read_text())
    first, edited = run_json["rounds"][0]["candidates"][0], run_json["rounds"][1]["candidates"][0]
    assert "edit" not in first and edited["error"] is None and edited["image"]["path"]
    assert edited["edit"]["parent"] == {"round": 1, "index": 0} and edited["edit"]["region"]
    mask = Image.open(edited["edit"]["mask"]["path"])
    assert len(served.generated) == 1 and len(served.edits) == 1  # round 2 was an edit, over HTTP
    received = served.edits[0]
    assert received.mask is not None and received.mask.tobytes() == mask.convert("L").tobytes()  # the mask arrived as recorded
    assert received.image.tobytes() == Image.open(first["image"]["path"]).convert("RGB").tobytes() and received.seed == edited["seed"]
    assert edited["score"] is not None  # the critic judged the edit like any candidate


def test_doctor_compares_the_edits_declaration_with_the_model_list(shapes_server):
    def edits_row(spec):
        return {r.check: r for r in check_generator(spec)}.get("edits")

    base = shapes_server.base_url
    assert edits_row(f"images-api:{base}#shapes-served-test?edits=1").status == "ok"
    undeclared = edits_row(f"images-api:{base}#shapes-served-test")
    assert undeclared.status == "ok" and "add ?edits=1" in undeclared.detail
    registry.register_generator("colour-doctor-test", lambda arg: ColourGenerator(), replace=True)
    with ThreadedGeneratorServer("colour-doctor-test") as tgs:
        row = edits_row(f"images-api:{tgs.server.base_url}#colour-doctor-test?edits=1")
        assert row.status == "fail" and "cannot edit" in row.detail
        assert edits_row(f"images-api:{tgs.server.base_url}#colour-doctor-test") is None
    models = json_reply(200, {"object": "list", "data": [{"id": "Qwen/Qwen-Image-Edit", "object": "model"}]})
    with RecordingServer(lambda rec: models) as srv:  # vLLM-Omni's list says nothing about edits
        assert edits_row(f"images-api:{srv.url}/v1#Qwen/Qwen-Image-Edit?edits=1").status == "skip"
        assert edits_row(f"images-api:{srv.url}/v1#Qwen/Qwen-Image-Edit") is None
