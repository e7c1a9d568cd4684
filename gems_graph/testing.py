"""Stand-ins for tests and benchmarks: a scripted chat model and a pixel-level test generator,
and latency models of a GPU image server and a VLM endpoint (``BatchingGpuModel``,
``LatencyChatModel``) for throughput measurements.

They live in the package (as langchain-core's fake chat models do) so that the test
suite, the benchmarks and users' own tests share one definition.

``ScriptedChatModel`` subclasses langchain-core's fake so that ``bind_tools`` and
``with_structured_output`` work: a handler sees the messages and the names of the
bound tools and returns a pydantic object (sent back as a tool call), a string, or
an ``AIMessage``.
"""

from __future__ import annotations

import asyncio
import base64
import io
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, cast

from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from PIL import Image
from pydantic import BaseModel

from gems_graph import prompt_labels as labels
from gems_graph.models.generator import GenerationRequest
from gems_graph.prompt_labels import find_field

Handler = Callable[[list[BaseMessage], list[str]], Any]


class ScriptedChatModel(FakeMessagesListChatModel):
    """A chat model whose replies come from ``handler(messages, tool_names)``."""

    responses: list[BaseMessage] = []
    handler: Any = None
    calls: list[tuple[list[str], str]] = []
    #: Reported as every reply's ``usage_metadata`` (input and output tokens) unless the
    #: handler's reply has its own; None reports none, as some servers do.
    usage: tuple[int, int] | None = None

    def bind_tools(self, tools: Any, *, tool_choice: Any = None, **kwargs: Any) -> Any:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], tool_choice=tool_choice, **kwargs)

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        return self._reply(messages, kwargs)

    def _reply(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> ChatResult:
        names = [t["function"]["name"] for t in kwargs.get("tools") or []]
        out = self.handler(messages, names)
        self.calls.append((names, last_text(messages)))
        if isinstance(out, BaseModel) and not isinstance(out, BaseMessage):
            out = AIMessage(content="", tool_calls=[{"name": type(out).__name__, "args": out.model_dump(), "id": uuid.uuid4().hex[:8]}])
        elif isinstance(out, str):
            out = AIMessage(content=out)
        if self.usage is not None and isinstance(out, AIMessage) and out.usage_metadata is None:
            out = out.model_copy(
                update={"usage_metadata": {"input_tokens": self.usage[0], "output_tokens": self.usage[1], "total_tokens": sum(self.usage)}}
            )
        return ChatResult(generations=[ChatGeneration(message=out)])

    @property
    def _llm_type(self) -> str:
        return "scripted"


def last_text(messages: list[BaseMessage]) -> str:
    if not messages:
        return ""
    msg = messages[-1]
    if isinstance(msg.content, str):
        return msg.content
    return "\n".join(b.get("text", "") for b in msg.content if isinstance(b, dict) and b.get("type") == "text")


def attached_images(messages: list[BaseMessage]) -> list[Image.Image]:
    """Decode the data-URL images of the last human message (as a real VLM would see them)."""
    msg = next(m for m in reversed(messages) if isinstance(m, HumanMessage))
    images = []
    for block in msg.content if isinstance(msg.content, list) else []:
        if isinstance(block, dict) and block.get("type") == "image_url":
            data = block["image_url"]["url"].split(",", 1)[1]
            images.append(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))
    return images


class ColourGenerator:
    """Paints a solid image: red when the prompt says ``FIXED`` or the seed is lucky, else blue.

    Deterministic per (prompt, seed), so resumed runs can be compared file by file.
    ``fail_seeds`` raise; ``calls`` records every request.
    """

    family = "test-colour"

    def __init__(
        self,
        lucky_seeds: Iterable[int] = (),
        fail_seeds: Iterable[int] = (),
        fail_all: bool = False,
        delay: float = 0.0,
        log_path: str | None = None,
    ) -> None:
        self.lucky_seeds, self.fail_seeds, self.fail_all = set(lucky_seeds), set(fail_seeds), fail_all
        self.delay, self.log_path = delay, log_path
        self.calls: list[GenerationRequest] = []
        self._lock = threading.Lock()

    def generate(self, request: GenerationRequest) -> Image.Image:
        with self._lock:
            self.calls.append(request)
            if self.log_path:
                with open(self.log_path, "a") as fh:
                    fh.write(f"{request.seed}\t{request.prompt}\n")
        if self.delay:
            time.sleep(self.delay)
        if self.fail_all or request.seed in self.fail_seeds:
            raise RuntimeError(f"simulated generator failure for seed {request.seed}")
        red = "FIXED" in request.prompt or request.seed in self.lucky_seeds
        shade = (request.seed * 7) % 40  # seeds differ in pixels, like real samples
        colour = (200 + shade, 10, 10) if red else (10, 10, 200 + shade)
        return Image.new("RGB", (16, 16), colour)


class LatencyChatModel(ScriptedChatModel):
    """A scripted chat model that takes ``latency`` seconds per call, like a VLM endpoint.

    ``ainvoke`` waits with ``asyncio.sleep`` (no thread held), ``invoke`` with
    ``time.sleep``; ``call_times`` records when each call finished.
    """

    latency: float = 0.0
    call_times: list[float] = []

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        time.sleep(self.latency)
        return self._timed(self._reply(messages, kwargs))

    async def _agenerate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any) -> ChatResult:
        await asyncio.sleep(self.latency)
        return self._timed(self._reply(messages, kwargs))

    def _timed(self, result: ChatResult) -> ChatResult:
        self.call_times.append(time.perf_counter())
        return result


class BatchingGpuModel:
    """A generator that behaves like a GPU server: ``batch_latency`` seconds per batch of up to
    ``max_batch_size`` images, coalescing concurrent requests (``BatchCoalescer``).

    Images come from ``painter`` (a ``ColourGenerator`` by default), so the loop has
    something real to verify; ``image_times`` records when each image was made.
    ``window`` is how long the first request of a batch waits for company (0: none).
    """

    family = "test-gpu"

    def __init__(self, batch_latency: float, max_batch_size: int, painter: Any = None, window: float = 0.0) -> None:
        from gems_graph.backends.batching import BatchCoalescer

        self.batch_latency = batch_latency
        self.painter = painter or ColourGenerator()
        self.image_times: list[float] = []
        self._batcher = BatchCoalescer(self._run_batch, window=window, max_batch=max_batch_size)
        self.max_batch_size = max_batch_size

    @property
    def batches(self) -> list[int]:
        return self._batcher.batches

    def _run_batch(self, requests: Any) -> list[Image.Image]:
        time.sleep(self.batch_latency)
        images = [self.painter.generate(r) for r in requests]
        now = time.perf_counter()
        self.image_times += [now] * len(images)
        return images

    def generate(self, request: GenerationRequest) -> Image.Image:
        return self._batcher.submit(request)

    async def agenerate(self, request: GenerationRequest) -> Image.Image:
        return await self._batcher.asubmit(request)


def is_red(image: Image.Image) -> bool:
    r, g, b = cast(tuple[int, int, int], image.getpixel((8, 8)))  # an RGB image's pixel: three ints
    return r > b


def loop_handler(
    fix_at_round: int | None = None, checks: tuple[str, ...] = ("Is there a square?", "Is the square red?"), thought: str | None = None
) -> Handler:
    """A scripted LLM for the colour world.

    Decomposes into ``checks`` (and plans with them, asked for both); answers "Is ... red?" by looking at the attached
    image's pixels and any other question with yes (one ``id: answer`` line each when
    asked every check of an image at once); the refiner adds ``FIXED`` to the
    prompt once it writes the prompt for round ``fix_at_round``. Asked to verify and refine in one
    call (``DraftedRound``), it does both.
    """
    from gems_graph.nodes.critic import Decomposition
    from gems_graph.nodes.planner import PlannedPrompt, PlannedPromptAndChecks
    from gems_graph.nodes.refiner import REFINER_SCHEMAS, DraftedRound, Experience, RefinedPrompt

    def handle(messages: list[BaseMessage], tools: list[str]) -> Any:
        text = last_text(messages)

        # Verification: a plain yes/no question with the image attached, or every check of it at once.
        def answer(question: str) -> str:
            if "red" in question.lower():
                return "yes" if is_red(attached_images(messages)[0]) else "no"
            return "yes"

        if "PlannedPrompt" in tools:
            request = find_field(text, labels.USER_REQUEST) or ""
            return PlannedPrompt(reasoning=thought or "", prompt=request)
        if "PlannedPromptAndChecks" in tools:
            request = find_field(text, labels.USER_REQUEST) or ""
            return PlannedPromptAndChecks(reasoning=thought or "", prompt=request, checks=list(checks))
        if "Decomposition" in tools:
            return Decomposition(checks=list(checks))
        if "Experience" in tools:
            return Experience(experience="The square came out blue; say red explicitly.")
        schemas: list[type[RefinedPrompt]] = [*REFINER_SCHEMAS.values(), DraftedRound]
        refiner_schemas = {c.__name__: c for c in schemas}
        if schema := next((refiner_schemas[n] for n in tools if n in refiner_schemas), None):
            next_round = max(i for i, _ in labels.round_prompts(text)) + 1
            base = find_field(text, labels.ORIGINAL_REQUEST) or ""
            fixed = fix_at_round is not None and next_round >= fix_at_round
            reply = RefinedPrompt(reasoning="restate the colour", prompt=base + (" FIXED" if fixed else ""), new_seed=True)
            # Fields a schema does not have are ignored.
            answers = "\n".join(f"{qid}: {answer(q)}" for qid, q in labels.read_questions(text))
            return schema.model_validate(
                {**reply.model_dump(), "answers": answers, "experience": "The square came out blue; say red explicitly."}
            )

        questions = labels.read_questions(text)
        if questions:
            return "\n".join(f"{qid}: {answer(q)}" for qid, q in questions)
        return answer(find_field(text, labels.QUESTION) or text)

    return handle
