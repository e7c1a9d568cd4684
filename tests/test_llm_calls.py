"""How nodes talk to chat models: the raw reply kept beside the parsed answer, images encoded once."""

from __future__ import annotations

import hashlib

from langchain_core.messages import AIMessage, HumanMessage
from PIL import Image

from gems_graph.models.llm import image_data_url, invoke_structured
from gems_graph.nodes.planner import PlannedPrompt
from gems_graph.persistence.artifacts import save_png
from gems_graph.testing import ScriptedChatModel


def test_structured_reply_keeps_the_raw_message_and_its_reasoning():
    def reply(messages, tools):
        assert tools == ["PlannedPrompt"]  # the schema was bound as the one tool
        return AIMessage(
            content="",
            additional_kwargs={"reasoning_content": "think: red first"},
            tool_calls=[{"name": "PlannedPrompt", "args": {"prompt": "a red cube"}, "id": "t1"}],
        )

    out = invoke_structured(ScriptedChatModel(handler=reply), PlannedPrompt, [HumanMessage("go")])
    assert out.value == PlannedPrompt(prompt="a red cube")
    assert out.raw is not None and out.raw.tool_calls[0]["id"] == "t1"
    assert out.thought == "think: red first"


def test_a_reply_with_wrong_arguments_is_repaired_with_the_validation_error_shown():
    replies = iter(
        [
            AIMessage(content="", tool_calls=[{"name": "PlannedPrompt", "args": {"promptt": "x"}, "id": "a"}]),
            AIMessage(content="", tool_calls=[{"name": "PlannedPrompt", "args": {"prompt": "ok"}, "id": "b"}]),
        ]
    )
    model = ScriptedChatModel(handler=lambda m, t: next(replies))
    out = invoke_structured(model, PlannedPrompt, [HumanMessage("go")])
    assert out.value.prompt == "ok"
    assert "could not be read: prompt: Field required" in model.calls[-1][1]


def test_image_encoding_follows_the_file_not_just_its_path(tmp_path):
    path = tmp_path / "a.png"
    first = save_png(Image.new("RGB", (8, 8), (255, 0, 0)), path)
    url1 = image_data_url(first)
    assert image_data_url(first) == url1
    second = save_png(Image.new("RGB", (8, 8), (0, 0, 255)), path)  # same path, new pixels
    assert second["sha256"] != first["sha256"]
    assert image_data_url(second) != url1
    assert second["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_saved_rgb_png_is_sent_as_its_file_and_others_as_rgb_png(tmp_path):
    """The run's own images go as their bytes (no decode and re-encode); anything else is converted to 8-bit RGB."""
    import base64
    import io

    rgb = save_png(Image.new("RGB", (20, 10), (0, 200, 0)), tmp_path / "rgb.png")
    assert base64.b64decode(image_data_url(rgb).split(",", 1)[1]) == (tmp_path / "rgb.png").read_bytes()
    for name, image in (("rgba.png", Image.new("RGBA", (20, 10), (0, 200, 0, 128))), ("grey.png", Image.new("L", (20, 10), 90))):
        ref = save_png(image, tmp_path / name)
        with Image.open(io.BytesIO(base64.b64decode(image_data_url(ref).split(",", 1)[1]))) as sent:
            assert sent.mode == "RGB" and sent.size == (20, 10)
    Image.new("RGB", (20, 10), (0, 0, 200)).save(tmp_path / "photo.jpg")
    jpeg = {"path": str(tmp_path / "photo.jpg"), "sha256": "j", "width": 20, "height": 10}
    assert image_data_url(jpeg).startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(image_data_url(jpeg).split(",", 1)[1]))) as sent:
        assert sent.format == "PNG" and sent.size == (20, 10)


def test_large_images_are_shrunk_before_sending(tmp_path):
    import base64
    import io

    ref = save_png(Image.new("RGB", (300, 120), (0, 200, 0)), tmp_path / "big.png")
    url = image_data_url(ref, max_side=100)
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as img:
        assert img.size == (100, 40)
