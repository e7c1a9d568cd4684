"""The runtime context (``context_schema``): how a run is configured.

A dataclass of plain, serialisable fields with defaults and descriptions, so Studio
shows it as a settings form and the CLI, notebooks and the eval harness configure
runs the same way. Backends are named by spec strings (see ``gems_graph.models.registry``);
Python callers may put a model object in ``generator``/``chat_model`` instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from gems_graph.records import TieBreak

#: Default call limits (see ``gems_graph.models.retry``): a hung chat endpoint surfaces in 1.5
#: minutes, a hung image server in 4 (a cold image model may take a minute or two for its first image).
DEFAULT_CHAT_TIMEOUT = 30.0
DEFAULT_CHAT_DEADLINE = 90.0
DEFAULT_GENERATION_TIMEOUT = 120.0
DEFAULT_GENERATION_DEADLINE = 240.0

#: Bounds of the image settings: a seed must fit a 64-bit checkpoint field and a torch
#: generator with room for the per-round offsets; sizes, steps and guidance beyond these
#: are mistakes (a guidance of inf gives black images), not requests.
MAX_SEED = 2**63 - 1
MAX_SIDE = 8192
MAX_STEPS = 1000
MAX_GUIDANCE = 50.0

#: Longest prompting guide a setting may give (a model card's "how to prompt" section is shorter).
MAX_PROMPTING_GUIDE_CHARS = 4000
#: Caps on what a model sends: every check is verified on every candidate of every round, and
#: a prompt is shown, diffed, stored and sent to the generator, so neither may be unbounded.
DEFAULT_MAX_CHECKS = 40
DEFAULT_MAX_MODEL_PROMPT_CHARS = 8000
#: The ``prompting_guide`` value (like a blank one) that shows the planner and refiner no guide.
NO_PROMPTING_GUIDE = "none"

StopRule = Literal["all_pass", "threshold"]
#: How the critic asks its checks: one call per check of each image (the paper), every check of
#: one image in one call (one image upload instead of one per check), or every check of a round's images in one.
Verification = Literal["per_check", "per_image", "per_round"]
#: How the refiner makes its two answers (the round's experience, the next prompt): two calls (the paper) or one.
RefinerCalls = Literal["separate", "combined", "with_critic"]
#: How the planner picks skills: the model reads the catalog and loads them (the paper), or
#: their declared triggers pick them before the one planning call.
SkillRouting = Literal["model", "triggers"]
#: Who turns the prompt into checks: the critic, in a call of its own (the paper), or the planner, in its answer.
Decomposition = Literal["critic", "planner"]
#: What an edit candidate is verified on: every check (the paper's way), or only those the edit can change.
EditVerification = Literal["all", "changed"]


def _f(default: Any, description: str) -> Any:
    return field(default=default, metadata={"description": description})


@dataclass(kw_only=True)
class GemsContext:
    """Settings of one GEMS run. Every field has a default."""

    generator: str = _f("shapes", "Generator spec, e.g. 'shapes', 'diffusers:Tongyi-MAI/Z-Image-Turbo', 'http://host:port'.")
    chat_model: str = _f(
        "shapes",
        "Chat-model spec for planner and refiner, e.g. 'shapes', 'openai:gpt-4o-mini', 'openai-compatible:http://127.0.0.1:8000/v1#Qwen3-VL-8B-Instruct'.",
    )
    critic_model: str | None = _f(None, "Chat-model spec for the critic (decompose and verify); defaults to chat_model.")
    max_rounds: int = _f(5, "Most rounds of generate-verify-refine (the paper uses 5).")
    candidates_per_round: int = _f(1, "Images generated in parallel each round; the critic keeps the best.")
    stop_rule: StopRule = _f(
        "all_pass", "Stop early when every check passes ('all_pass') or when the best score reaches score_threshold ('threshold')."
    )
    score_threshold: float = _f(1.0, "Score (fraction of checks passed) that ends the run under stop_rule='threshold'.")
    width: int | None = _f(None, "Image width override; None uses the generator's default.")
    height: int | None = _f(None, "Image height override; None uses the generator's default.")
    steps: int | None = _f(None, "Denoising steps override; None uses the generator's default.")
    guidance: float | None = _f(None, "Guidance scale override; None uses the generator's default.")
    seed: int = _f(0, "Base seed; candidate k of seed epoch e uses seed + 1000*e + k.")
    artifact_root: str | None = _f(None, "Folder under which each run gets its own folder; default $GEMS_HOME/runs.")
    refiner_images: int = _f(3, "How many past images (most recent rounds) the refiner sees; -1 shows every past round's (the paper).")
    refiner_edits: bool = _f(
        False,
        "Let the refiner edit the best image so far (repaint one region) instead of regenerating, when the editor can edit.",
    )
    editor: str | None = _f(
        None,
        "Generator spec of the model that edits, when it is not the generator (e.g. 'diffusers:Qwen/Qwen-Image-Edit' "
        "beside 'diffusers:Qwen/Qwen-Image'); defaults to the generator.",
    )
    prompting_guide: str | None = _f(
        None,
        "How to prompt the image model, shown to the planner and the refiner: None uses the guide the generator "
        f"declares (its model card's advice), '{NO_PROMPTING_GUIDE}' or a blank text shows no guide, any other text replaces it.",
    )
    max_prompt_chars: int = _f(4000, "Longest prompt accepted, in characters.")
    max_model_prompt_chars: int = _f(
        DEFAULT_MAX_MODEL_PROMPT_CHARS,
        "Longest image prompt kept from the planner or refiner model, in characters; a longer one keeps its start and a note says so.",
    )
    max_checks: int = _f(DEFAULT_MAX_CHECKS, "Most checks kept from the critic's decomposition of a prompt; more are dropped with a note.")
    skills_dirs: list[str] = field(
        default_factory=list,
        metadata={"description": "Folders of user skills (each holds <name>/SKILL.md); they override built-ins of the same name."},
    )
    max_skills: int = _f(2, "Most skills the planner may load for one prompt (0 turns skills off).")
    skill_routing: SkillRouting = _f(
        "model",
        "How the planner picks skills: 'model', the chat model reads the catalog and loads them with a tool call "
        "(the paper; a call to choose, then one to plan), or 'triggers', the skills whose declared triggers occur in "
        "the prompt are loaded before one planning call that carries their instructions and no catalog.",
    )
    builtin_skills: bool = _f(True, "Offer the built-in skills; false offers only learned and user skills (an ablation).")
    memory: str = _f(
        "chroma",
        "Experience store: 'chroma' (embedded, under $GEMS_HOME/memory), 'chroma:PATH', 'chroma://host:port', "
        "'store' (LangGraph's runtime.store) or 'none'.",
    )
    recall_k: int = _f(3, "Lessons recalled from past runs at planning (0 recalls nothing).")
    recall_all_families: bool = _f(False, "Recall lessons of every generator family, not only this generator's.")
    verdict_probabilities: bool = _f(
        True,
        "Ask the critic model for log-probabilities and keep P(yes) on each verdict where it gives them; "
        "false keeps plain yes/no verdicts (the paper).",
    )
    tie_break: TieBreak = _f(
        "probability",
        "Among candidates that pass as many checks: 'probability' keeps the higher mean P(yes), then the earliest; "
        "'earliest' keeps the earliest image (the paper).",
    )
    human_feedback: bool = _f(False, "Pause after the critic for a person to accept an image or give feedback.")
    studio_thumbnails: int = _f(
        96,
        "Longest side in pixels of the round thumbnails kept in the state's messages, which LangGraph Studio "
        "shows (a few KB of checkpoint a round); 0 keeps none.",
    )
    verification: Verification = _f(
        "per_check",
        "How the critic asks: 'per_check', one call per check with the image attached (the paper), or 'per_image', "
        "every check of an image in one call answered one line per check (checks left unanswered are asked alone), or "
        "'per_round', every check of every image of a round in one call (at most 8 images a call).",
    )
    refiner_calls: RefinerCalls = _f(
        "separate",
        "How the refiner answers: 'separate', one call to compress the last round into an experience and one to write "
        "the next prompt (the paper), or 'combined', both in one structured call (the round's facts and images sent once), "
        "or 'with_critic', both written by the critic in its verification call, which then carries the refiner's request "
        "(no refiner call; the refiner asks itself when a person's feedback or an edit offer comes after the critic).",
    )
    decomposition: Decomposition = _f(
        "critic",
        "Who turns the prompt into yes/no checks: 'critic', the critic model in a call of its own before the first "
        "verification (the paper), or 'planner', the chat model in the planning call's answer (one call fewer; "
        "the critic decomposes when the planner gives none).",
    )
    edit_verification: EditVerification = _f(
        "all",
        "What an edit candidate is asked: 'all' its checks, or 'changed': checks the refiner names as only about "
        "objects wholly outside the edited region keep the parent's verdicts (where the parent answered them).",
    )
    verify_concurrency: int = _f(4, "Verification calls to the critic model in flight at once.")
    generation_retries: int = _f(3, "Attempts per candidate on transient generator errors (connection, 429, 5xx, timeout).")
    chat_timeout: float = _f(DEFAULT_CHAT_TIMEOUT, "Seconds one chat-model request may wait for an answer.")
    chat_deadline: float = _f(DEFAULT_CHAT_DEADLINE, "Seconds one chat-model call may take in all, retries included.")
    generation_timeout: float = _f(DEFAULT_GENERATION_TIMEOUT, "Seconds one image-server request may wait for its image.")
    generation_deadline: float = _f(DEFAULT_GENERATION_DEADLINE, "Seconds one image may take in all, retries included.")

    def __post_init__(self) -> None:
        validate_context(self)

    @property
    def critic_spec(self) -> Any:
        return self.critic_model if self.critic_model is not None else self.chat_model


class ConfigError(ValueError):
    """A setting is invalid; the message names the setting and the problem."""


def validate_context(ctx: GemsContext) -> None:
    def need(cond: bool, name: str, what: str) -> None:
        if not cond:
            raise ConfigError(f"{name}={getattr(ctx, name)!r}: {what}")

    need(isinstance(ctx.max_rounds, int) and 1 <= ctx.max_rounds <= 100, "max_rounds", "must be an integer from 1 to 100")
    need(
        isinstance(ctx.studio_thumbnails, int) and not isinstance(ctx.studio_thumbnails, bool) and 0 <= ctx.studio_thumbnails <= 1024,
        "studio_thumbnails",
        "must be an integer from 0 (none) to 1024",
    )
    need(
        isinstance(ctx.candidates_per_round, int) and 1 <= ctx.candidates_per_round <= 64,
        "candidates_per_round",
        "must be an integer from 1 to 64",
    )
    need(ctx.stop_rule in ("all_pass", "threshold"), "stop_rule", "must be 'all_pass' or 'threshold'")
    need(_is_number(ctx.score_threshold) and 0.0 <= ctx.score_threshold <= 1.0, "score_threshold", "must be between 0 and 1")
    for name in ("width", "height"):
        v = getattr(ctx, name)
        need(v is None or (_is_int(v) and 8 <= v <= MAX_SIDE), name, f"must be an integer from 8 to {MAX_SIDE}, or None")
    steps_ok = ctx.steps is None or (_is_int(ctx.steps) and 1 <= ctx.steps <= MAX_STEPS)
    need(steps_ok, "steps", f"must be an integer from 1 to {MAX_STEPS}, or None")
    need(
        ctx.guidance is None or (_is_number(ctx.guidance) and 0 <= ctx.guidance <= MAX_GUIDANCE),
        "guidance",
        f"must be a number from 0 to {MAX_GUIDANCE:g}, or None",
    )
    need(_is_int(ctx.seed) and 0 <= ctx.seed <= MAX_SEED, "seed", "must be an integer from 0 to 2**63-1")
    need(isinstance(ctx.refiner_images, int) and ctx.refiner_images >= -1, "refiner_images", "must be >= 0, or -1 for every past round")
    need(ctx.tie_break in ("probability", "earliest"), "tie_break", "must be 'probability' or 'earliest'")
    need(isinstance(ctx.verdict_probabilities, bool), "verdict_probabilities", "must be true or false")
    need(isinstance(ctx.builtin_skills, bool), "builtin_skills", "must be true or false")
    need(
        ctx.prompting_guide is None or (isinstance(ctx.prompting_guide, str) and len(ctx.prompting_guide) <= MAX_PROMPTING_GUIDE_CHARS),
        "prompting_guide",
        f"must be a text of at most {MAX_PROMPTING_GUIDE_CHARS} characters, or None",
    )
    need(isinstance(ctx.max_prompt_chars, int) and ctx.max_prompt_chars > 0, "max_prompt_chars", "must be a positive integer")
    need(
        _is_int(ctx.max_model_prompt_chars) and 100 <= ctx.max_model_prompt_chars <= 1_000_000,
        "max_model_prompt_chars",
        "must be an integer from 100 to 1000000",
    )
    need(_is_int(ctx.max_checks) and 1 <= ctx.max_checks <= 1000, "max_checks", "must be an integer from 1 to 1000")
    need(isinstance(ctx.max_skills, int) and 0 <= ctx.max_skills <= 8, "max_skills", "must be an integer from 0 to 8")
    need(isinstance(ctx.recall_k, int) and 0 <= ctx.recall_k <= 20, "recall_k", "must be an integer from 0 to 20")
    need(ctx.verification in ("per_check", "per_image", "per_round"), "verification", "must be 'per_check', 'per_image' or 'per_round'")
    need(ctx.skill_routing in ("model", "triggers"), "skill_routing", "must be 'model' or 'triggers'")
    need(ctx.refiner_calls in ("separate", "combined", "with_critic"), "refiner_calls", "must be 'separate', 'combined' or 'with_critic'")
    need(ctx.decomposition in ("critic", "planner"), "decomposition", "must be 'critic' or 'planner'")
    need(ctx.edit_verification in ("all", "changed"), "edit_verification", "must be 'all' or 'changed'")
    need(isinstance(ctx.verify_concurrency, int) and ctx.verify_concurrency >= 1, "verify_concurrency", "must be >= 1")
    need(isinstance(ctx.generation_retries, int) and ctx.generation_retries >= 1, "generation_retries", "must be >= 1")
    for name in ("chat_timeout", "chat_deadline", "generation_timeout", "generation_deadline"):
        v = getattr(ctx, name)
        need(
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 86400,
            name,
            "must be a number of seconds above 0 (at most 86400)",
        )


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    """A finite int or float (nan and inf are not settings anyone means)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def context_field_names() -> list[str]:
    return [f.name for f in fields(GemsContext)]
