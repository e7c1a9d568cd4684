"""Soft-TIFA, GenEval2's metric, through any OpenAI-compatible VLM with ``top_logprobs``.

Follows the official script: each [question, answer] pair is asked as
``"<question> Answer in one word."`` with the image; the atom's score is the
probability of the expected answer's first token, summed over its spellings
("Yes"/"yes"/" yes"/" Yes"; for "How many" questions the number word, capitalised or
not, and its digit, each with and without a leading space). AM = arithmetic mean over a prompt's atoms,
GM = geometric mean (0 if any atom is 0); the benchmark reports 100 x the mean over
prompts. The official script reads the full softmax of a local model; an API gives
only the top-k tokens, so ask for enough (20, OpenAI's maximum) that the answer's
spellings are among them: a spelling outside the top-k counts as 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage

from gems_graph.models.llm import image_data_url, text_block

YES_SPELLINGS = ("Yes", "yes", " yes", " Yes")
NO_SPELLINGS = ("No", "no", " no", " No")
NUMBER_WORDS = {
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}
_DIGIT_WORDS = {d: w for w, d in NUMBER_WORDS.items()}
QUESTION_SUFFIX = " Answer in one word."
DEFAULT_TOP_LOGPROBS = 20
#: Images are sent as they are (the official script sends the file); only giants are shrunk.
MAX_IMAGE_SIDE = 4096


class SoftTifaError(RuntimeError):
    """The VLM's reply cannot be scored (no ``top_logprobs``)."""


def answer_spellings(question: str, answer: str) -> tuple[str, ...]:
    """The token spellings whose probabilities add up to the atom's score."""
    a = answer.strip()
    if question.strip().lower().startswith("how many"):
        word = a.lower() if a.lower() in NUMBER_WORDS else _DIGIT_WORDS.get(a)
        digit = NUMBER_WORDS.get(a.lower(), a if a.isdigit() else None)
        forms = [f for f in (word, word.capitalize() if word else None, digit) if f]
        return tuple(dict.fromkeys(s for f in forms for s in (f, " " + f)))
    if a.lower() == "yes":
        return YES_SPELLINGS
    if a.lower() == "no":
        return NO_SPELLINGS
    return tuple(dict.fromkeys((a, " " + a)))


def answer_probability(top_logprobs: Iterable[dict[str, Any]], spellings: Sequence[str]) -> float:
    """Sum of exp(logprob) over the first token's top-k entries that are one of ``spellings``."""
    wanted, seen, total = set(spellings), set(), 0.0
    for entry in top_logprobs:
        token = entry.get("token")
        if token in wanted and token not in seen:
            seen.add(token)
            total += math.exp(float(entry["logprob"]))
    return min(total, 1.0)


def first_token_top_logprobs(message: AIMessage) -> list[dict[str, Any]]:
    """``response_metadata.logprobs.content[0].top_logprobs`` of a chat reply, or raise."""
    logprobs = (message.response_metadata or {}).get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    tops = content[0].get("top_logprobs") if content else None
    if not tops:
        raise SoftTifaError(
            "the VLM returned no top_logprobs; Soft-TIFA needs a server that supports "
            "logprobs=true and top_logprobs (vLLM, SGLang, llama.cpp, OpenAI)"
        )
    return list(tops)


def am_gm(scores: Sequence[float]) -> tuple[float, float]:
    """(arithmetic mean, geometric mean) of a prompt's atom scores; (0, 0) for none."""
    if not scores:
        return 0.0, 0.0
    am = sum(scores) / len(scores)
    gm = 0.0 if min(scores) <= 0 else math.exp(sum(math.log(s) for s in scores) / len(scores))
    return am, gm


def request_options(model: Any, top_logprobs: int) -> dict[str, Any]:
    """One greedy token with its top-k logprobs.

    langchain-openai sends ``max_tokens`` as ``max_completion_tokens``, which some
    OpenAI-compatible servers (llama-cpp-python) ignore and then write a whole
    reply; for endpoints other than OpenAI's own, ``max_tokens`` is sent as well.
    """
    options: dict[str, Any] = {"logprobs": True, "top_logprobs": top_logprobs, "max_tokens": 1, "temperature": 0}
    base = getattr(model, "openai_api_base", None)
    if base and "api.openai.com" not in str(base):
        options["extra_body"] = {"max_tokens": 1}
    return options


class SoftTifaJudge:
    """Asks a VLM each atom of a prompt about one image and scores it."""

    def __init__(self, model: Any, top_logprobs: int = DEFAULT_TOP_LOGPROBS) -> None:
        self.model = model
        self.top_logprobs = top_logprobs
        self._bound = model.bind(**request_options(model, top_logprobs))

    def ask(self, question: str, image_path: str) -> AIMessage:
        url = image_data_url({"path": image_path, "sha256": "", "width": 0, "height": 0}, max_side=MAX_IMAGE_SIDE)
        content: list[str | dict[str, Any]] = [{"type": "image_url", "image_url": {"url": url}}, text_block(question + QUESTION_SUFFIX)]
        return self._bound.invoke([HumanMessage(content=content)])

    def score(self, vqa: Sequence[tuple[str, str]], image_path: str) -> dict[str, Any]:
        atoms: list[dict[str, Any]] = []
        for question, answer in vqa:
            reply = self.ask(question, image_path)
            p = answer_probability(first_token_top_logprobs(reply), answer_spellings(question, answer))
            atoms.append({"question": question, "answer": answer, "reply": str(reply.content).strip()[:40], "p": p})
        am, gm = am_gm([a["p"] for a in atoms])
        return {"am": am, "gm": gm, "atoms": atoms}
