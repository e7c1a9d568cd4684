"""OpenAI-compatible chat models and the Images API against scripted servers on loopback.

The scripted server answers like OpenAI/vLLM do (including their error bodies) so
each fallback and error path is exercised over real HTTP through the real clients.
"""

from __future__ import annotations

import base64
import io
import json

import pytest
from langchain_core.load import dumps
from langchain_core.messages import HumanMessage
from PIL import Image
from pydantic import BaseModel

from gems_graph.backends.openai_chat import (
    ChatModelNotFoundError,
    EndpointServerError,
    EndpointUnreachableError,
    GemsChatOpenAI,
    compatible_from_spec,
    openai_from_spec,
)
from gems_graph.backends.openai_images import OpenAIImagesGenerator
from gems_graph.models.generator import GenerationError, GenerationRequest
from gems_graph.models.llm import image_block, invoke_structured, reasoning_of, supports_logprobs, text_block, yes_probability
from gems_graph.models.registry import resolve_chat_model
from tests.servers import RecordingServer, chat_completion, free_port, json_reply, reset_endpoint_memory


class Checks(BaseModel):
    questions: list[str]


@pytest.fixture(autouse=True)
def _fresh_endpoint_memory(monkeypatch):
    reset_endpoint_memory(monkeypatch)
    monkeypatch.setenv("GEMS_CHAT_MAX_RETRIES", "0")


def _model(srv, name="m", retries=0) -> GemsChatOpenAI:
    return GemsChatOpenAI(model=name, api_key="EMPTY", base_url=f"{srv.url}/v1", max_retries=retries)


def _bad_request(msg: str):
    return json_reply(400, {"error": {"message": msg, "type": "invalid_request_error", "code": None}})


def test_function_calling_fallback_is_remembered_per_endpoint():
    def respond(rec):
        body = rec.json()
        if "response_format" in body:
            return _bad_request("response_format json_schema is not supported")
        assert body["tool_choice"]["function"]["name"] == "Checks"  # forced tool choice
        return json_reply(200, chat_completion(tool_call={"name": "Checks", "arguments": json.dumps({"questions": ["Is there a cat?"]})}))

    with RecordingServer(respond) as srv:
        model = resolve_chat_model(f"openai-compatible:{srv.url}/v1#m")
        reply = invoke_structured(model, Checks, [HumanMessage("a cat")])
        assert reply.value == Checks(questions=["Is there a cat?"])
        assert len(srv.requests) == 2 and model.structured_method() == "function_calling"
        invoke_structured(model, Checks, [HumanMessage("a dog")])
        assert len(srv.requests) == 3  # straight to the remembered method


def test_json_mode_then_prompt_fallback_with_schema_in_prompt():
    def respond(rec):
        body = rec.json()
        if "tools" in body or (body.get("response_format") or {}).get("type") == "json_schema":
            return json_reply(422, {"detail": "unsupported"})
        if body.get("response_format") == {"type": "json_object"}:
            return _bad_request("response_format is not supported")
        assert "JSON schema" in body["messages"][-1]["content"]
        return json_reply(200, chat_completion('Sure!\n```json\n{"questions": ["Is it red?"]}\n```'))

    with RecordingServer(respond) as srv:
        model = _model(srv)
        assert invoke_structured(model, Checks, [HumanMessage("red")]).value.questions == ["Is it red?"]
        assert model.structured_method() == "prompt"
        assert model.with_structured_output(Checks).invoke([HumanMessage("red")]) == Checks(questions=["Is it red?"])


def test_native_json_schema_used_when_it_works():
    def respond(rec):
        assert rec.json()["response_format"]["type"] == "json_schema"
        return json_reply(200, chat_completion('{"questions": ["Q?"]}', reasoning="I think so."))

    with RecordingServer(respond) as srv:
        model = _model(srv)
        reply = invoke_structured(model, Checks, [HumanMessage("x")])
        assert reply.value.questions == ["Q?"] and len(srv.requests) == 1
        assert model.structured_method() == "json_schema"
        assert reply.thought == "I think so."  # reasoning_content kept apart from the answer


def test_vision_request_carries_data_url_image_blocks(tmp_path):
    path = tmp_path / "img.png"
    Image.new("RGB", (2000, 1000), (255, 0, 0)).save(path)
    ref = {"path": str(path), "sha256": "x", "width": 2000, "height": 1000}

    with RecordingServer(lambda rec: json_reply(200, chat_completion("Yes"))) as srv:
        model = _model(srv)
        model.invoke([HumanMessage(content=[text_block("Is there a red square?"), image_block(ref, max_side=256)])])
        content = srv.requests[0].json()["messages"][0]["content"]
        assert content[0] == {"type": "text", "text": "Is there a red square?"}
        url = content[1]["image_url"]["url"]
        assert content[1]["type"] == "image_url" and url.startswith("data:image/png;base64,")
        sent = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
        assert sent.size == (256, 128)  # shrunk to the max side before sending


def test_logprobs_requested_and_parsed():
    tops = [{"token": "Yes", "logprob": -0.1, "bytes": None}, {"token": "No", "logprob": -2.5, "bytes": None}]

    with RecordingServer(
        lambda rec: json_reply(
            200, chat_completion("Yes", logprobs=[{"token": "Yes", "logprob": -0.1, "bytes": None, "top_logprobs": tops}])
        )
    ) as srv:
        model = _model(srv)
        assert supports_logprobs(model)
        msg = model.bind(logprobs=True, top_logprobs=5).invoke([HumanMessage("Is there a cat? Answer yes or no.")])
        body = srv.requests[0].json()
        assert body["logprobs"] is True and body["top_logprobs"] == 5
        p = yes_probability(msg)
        assert p is not None and 0.9 < p < 0.95


def test_logprobs_rejected_are_dropped_and_remembered():
    def respond(rec):
        if rec.json().get("logprobs"):
            return _bad_request("logprobs is not supported by this model")
        return json_reply(200, chat_completion("No"))

    with RecordingServer(respond) as srv:
        model = _model(srv)
        msg = model.bind(logprobs=True, top_logprobs=5).invoke([HumanMessage("q")])
        assert msg.content == "No" and yes_probability(msg) is None
        assert not supports_logprobs(model)
        model.bind(logprobs=True, top_logprobs=5).invoke([HumanMessage("q")])
        assert len(srv.requests) == 3  # the second call no longer asks for logprobs


def test_unreachable_endpoint_names_the_url():
    url = f"http://127.0.0.1:{free_port()}/v1"
    model = compatible_from_spec(f"{url}#m")
    with pytest.raises(EndpointUnreachableError, match=url.replace(".", r"\.")):
        model.invoke("hi")
    with pytest.raises(ConnectionError):  # transient for the retry helpers
        invoke_structured(model, Checks, [HumanMessage("x")])


def test_wrong_model_name_is_clear():
    body = {"error": {"message": "The model `nope` does not exist.", "type": "NotFoundError", "code": 404}}
    with RecordingServer(lambda rec: json_reply(404, body)) as srv:
        with pytest.raises(ChatModelNotFoundError, match=r"does not serve model 'nope'.*does not exist"):
            _model(srv, "nope").invoke("hi")


def test_server_500_is_retried_then_raised():
    with RecordingServer(lambda rec: json_reply(500, {"error": {"message": "engine crashed"}})) as srv:
        model = _model(srv, retries=1)
        with pytest.raises(EndpointServerError, match="HTTP 500 after 2 attempts: engine crashed") as info:
            model.invoke("hi")
        assert info.value.status_code == 500
        assert len(srv.requests) == 2


def test_key_never_leaks(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret-123")
    for model in (openai_from_spec("gpt-4o-mini"), compatible_from_spec("http://127.0.0.1:1/v1#m")):
        for text in (repr(model), str(model), str(model.model_dump()), model.model_dump_json(), dumps(model)):
            assert "sk-very-secret-123" not in text
        assert model.openai_api_key.get_secret_value() == "sk-very-secret-123"
    monkeypatch.delenv("OPENAI_API_KEY")
    assert compatible_from_spec("http://127.0.0.1:1/v1#m").openai_api_key.get_secret_value() == "EMPTY"
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        openai_from_spec("gpt-4o-mini")
    with pytest.raises(ValueError, match="<base_url>#<model>"):
        compatible_from_spec("http://127.0.0.1:1/v1")
    tuned = compatible_from_spec("http://127.0.0.1:1/v1#m?temperature=0&max_tokens=64&max_retries=5")
    # Retrying is ours, within the call's deadline: the SDK's client makes one attempt.
    assert (tuned.model_name, tuned.temperature, tuned.max_tokens, tuned.retries, tuned.max_retries) == ("m", 0.0, 64, 5, 0)
    with pytest.raises(ValueError, match="unknown chat-model option 'bogus'"):
        compatible_from_spec("http://127.0.0.1:1/v1#m?bogus=1")


def test_reasoning_content_is_kept():
    with RecordingServer(lambda rec: json_reply(200, chat_completion("Yes", reasoning="Counting the cats: one."))) as srv:
        msg = _model(srv).invoke("q")
        assert msg.content == "Yes" and reasoning_of(msg) == "Counting the cats: one."


def test_openai_images_b64_and_content_policy(monkeypatch):
    buf = io.BytesIO()
    Image.new("RGB", (1024, 1024), (0, 128, 0)).save(buf, format="PNG")
    b64 = base64.b64encode(buf.getvalue()).decode()

    def respond(rec):
        body = rec.json()
        if "forbidden" in body["prompt"]:
            return json_reply(
                400,
                {
                    "error": {
                        "message": "Your request was rejected by the safety system.",
                        "type": "image_generation_user_error",
                        "code": "content_policy_violation",
                    }
                },
            )
        return json_reply(200, {"created": 0, "data": [{"b64_json": b64}]})

    with RecordingServer(respond) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.url + "/v1")
        gen = OpenAIImagesGenerator("gpt-image-1", max_retries=0)
        img = gen.generate(GenerationRequest("a green field", seed=0, width=1536, height=1024))
        assert img.size == (1024, 1024)
        assert srv.requests[0].json()["size"] == "1536x1024"
        with pytest.raises(GenerationError, match="content policy"):
            gen.generate(GenerationRequest("something forbidden", seed=0))


def test_openai_images_unreachable_is_generation_error(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(GenerationError, match="cannot reach"):
        OpenAIImagesGenerator("gpt-image-1", max_retries=0).generate(GenerationRequest("x", seed=0))


async def test_async_fallback_chain():
    def respond(rec):
        body = rec.json()
        if "response_format" in body:
            return _bad_request("response_format json_schema is not supported")
        return json_reply(200, chat_completion(tool_call={"name": "Checks", "arguments": '{"questions": ["A?"]}'}))

    with RecordingServer(respond) as srv:
        model = _model(srv)
        out = await model.with_structured_output(Checks, include_raw=True).ainvoke([HumanMessage("a")])
        assert out["parsed"] == Checks(questions=["A?"]) and model.structured_method() == "function_calling"


def test_retries_live_in_one_layer_and_a_dead_endpoint_fails_the_run(tmp_path):
    """An endpoint that always answers 503 is asked max_retries + 1 times in all, and the
    run ends failed with the client's message (not a traceback), resumable."""
    from langgraph.checkpoint.memory import InMemorySaver

    from gems_graph.app.runner import run_gems
    from gems_graph.context import GemsContext

    with RecordingServer(lambda rec: json_reply(503, {"error": {"message": "overloaded"}})) as srv:
        model = _model(srv, retries=2)
        ctx = GemsContext(chat_model=model, artifact_root=str(tmp_path), memory="none", max_skills=0)
        result = run_gems("a photo of a red circle", ctx, InMemorySaver())
    assert result.status == "failed"
    assert "HTTP 503 after 3 attempts: overloaded" in result.state["error"]
    assert len(srv.requests) == 3


def test_which_key_goes_where_when_both_variables_are_set(monkeypatch):
    """A real OpenAI key is sent to a third-party server only when no GEMS key is set."""
    from gems_graph.backends.openai_chat import compatible_from_spec, openai_from_spec
    from gems_graph.backends.openai_images import api_key

    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-openai")
    monkeypatch.setenv("GEMS_OPENAI_API_KEY", "local-server-key")
    assert openai_from_spec("gpt-4o-mini").openai_api_key.get_secret_value() == "sk-real-openai"
    assert api_key() == "sk-real-openai"
    assert compatible_from_spec("http://127.0.0.1:9/v1#m").openai_api_key.get_secret_value() == "local-server-key"
    monkeypatch.delenv("GEMS_OPENAI_API_KEY")
    assert compatible_from_spec("http://127.0.0.1:9/v1#m").openai_api_key.get_secret_value() == "sk-real-openai"


def test_server_reported_usage_reaches_run_json(tmp_path):
    """Each node's calls carry the tokens the server said they cost, through langchain-openai's ``usage_metadata``."""
    from langgraph.checkpoint.memory import InMemorySaver

    from gems_graph.app.runner import run_gems
    from gems_graph.context import GemsContext
    from gems_graph.testing import ColourGenerator
    from tests.servers import FaultyChat

    chat = FaultyChat(usage={"planner": (100, 20), "decompose": (50, 10), "verify": (300, 1)})
    with RecordingServer(chat) as srv:
        ctx = GemsContext(
            generator=ColourGenerator(lucky_seeds={0}), chat_model=_model(srv), artifact_root=str(tmp_path), memory="none", max_skills=0
        )
        result = run_gems("a red square", ctx, InMemorySaver())
    assert result.status == "passed" and chat.kinds == ["planner", "decompose", "verify", "verify"]
    usage = json.loads((tmp_path / result.state["run_id"] / "run.json").read_text())["usage"]
    assert usage["nodes"]["planner"] == {
        "calls": 1,
        "unreported_calls": 0,
        "input_tokens": 100,
        "output_tokens": 20,
        "images_sent": 0,
        "images_generated": 0,
        "untimed_images": 0,
        "generation_seconds": 0.0,
    }
    assert usage["nodes"]["critic"] == {
        "calls": 3,
        "unreported_calls": 0,
        "input_tokens": 650,
        "output_tokens": 12,
        "images_sent": 2,
        "images_generated": 0,
        "untimed_images": 0,
        "generation_seconds": 0.0,
    }
    assert usage["total"]["images_generated"] == 1 and usage["total"]["input_tokens"] == 750


def test_per_image_verification_is_one_request_with_each_answers_probability(tmp_path):
    """Every check of an image in one request, the image once; P(yes) from each answer token's logprobs."""
    from gems_graph.nodes.critic import verify_image
    from gems_graph.records import Candidate, Check

    path = tmp_path / "img.png"
    Image.new("RGB", (32, 32), (255, 0, 0)).save(path)
    image = {"path": str(path), "sha256": "x", "width": 32, "height": 32}
    candidate = Candidate(round=1, index=0, prompt="p", seed=0, params={}, image=image, verdicts=[], score=None, error=None)
    checks = [Check(id="c1", question="Is there a square?", source="prompt"), Check(id="c2", question="Is it red?", source="prompt")]

    def token(text, yes=None):
        tops = [] if yes is None else [{"token": " yes", "logprob": yes, "bytes": None}, {"token": " no", "logprob": -1.0, "bytes": None}]
        return {"token": text, "logprob": 0.0, "bytes": None, "top_logprobs": tops}

    stream = [token("c1"), token(":"), token(" yes", -0.2), token("\nc2"), token(":"), token(" no", -3.0)]
    with RecordingServer(lambda rec: json_reply(200, chat_completion("c1: yes\nc2: no", logprobs=stream))) as srv:
        verdicts = verify_image(_model(srv), checks, candidate, "a red square")
    (request,) = srv.requests
    content = request.json()["messages"][1]["content"]
    assert [b["type"] for b in content] == ["text", "image_url"] and request.json()["logprobs"] is True
    assert [(v["check_id"], v["passed"]) for v in verdicts] == [("c1", True), ("c2", False)]
    assert verdicts[0]["probability"] > 0.5 > verdicts[1]["probability"]


def test_per_round_verification_is_one_request_with_the_rounds_images_in_order(tmp_path):
    """Every check of two images in one request: the images in order, each answer read by its image's id."""
    from gems_graph.nodes.critic import verify_round
    from gems_graph.records import Candidate, Check

    candidates = []
    for i, colour in enumerate([(255, 0, 0), (0, 0, 255)]):
        path = tmp_path / f"img{i}.png"
        Image.new("RGB", (32, 32), colour).save(path)
        image = {"path": str(path), "sha256": str(i), "width": 32, "height": 32}
        candidates.append(Candidate(round=1, index=i, prompt="p", seed=i, params={}, image=image, verdicts=[], score=None, error=None))
    checks = [Check(id="c1", question="Is it red?", source="prompt")]
    reply = "image1.c1: yes\nimage2.c1: no"
    with RecordingServer(lambda rec: json_reply(200, chat_completion(reply))) as srv:
        verdicts = verify_round(_model(srv), [(c, checks) for c in candidates], "a red square")
    (request,) = srv.requests
    content = request.json()["messages"][1]["content"]
    assert [b["type"] for b in content] == ["text", "image_url", "image_url"]
    assert "image2.c1: Is it red?" in content[0]["text"]
    assert [[v["passed"] for v in vs] for vs in verdicts] == [[True], [False]]
