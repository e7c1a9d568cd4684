"""Skills bound on demand: the planner sees a catalog, loads what it needs.

``SkillSession`` is one prompt's view of a ``SkillRegistry``. It hands the planner's
chat model the tools it may call *now*: ``load_skill(name)`` (``name`` is an enum
of the catalog, built at runtime), ``read_skill_resource(name, file)`` and the
registered tools of the skills loaded so far. ``handle(tool_call)`` executes one
call and always returns a ``ToolMessage`` (errors are text for the model, not
exceptions), so a tool-calling loop can feed the result straight back.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable
from typing import Any, Literal

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.tools import BaseTool, StructuredTool, ToolException
from pydantic import Field, create_model

from gems_graph.errors import one_line
from gems_graph.prompt_labels import skill_catalog_line
from gems_graph.skills.checks import expand_checks
from gems_graph.skills.model import Skill, SkillError
from gems_graph.skills.registry import SkillRegistry
from gems_graph.skills.tools import get_skill_tool

log = logging.getLogger(__name__)

LOAD_SKILL = "load_skill"
#: The text of the assistant turn ``preload`` writes (the ``load_skill`` calls the model did not have to make).
PRELOAD_TURN = "Loading the skills whose triggers occur in this request."
READ_RESOURCE = "read_skill_resource"
#: Hints whose values from several skills are joined rather than first-wins.
_JOINED_HINTS = {"negative_prompt": ", "}


class SkillSession:
    """Skills loaded for one prompt (at most ``max_skills``), and what they added.

    ``prompt`` fills check placeholders such as ``{quoted}`` (see ``checks.py``).
    """

    def __init__(self, registry: SkillRegistry, max_skills: int = 2, *, prompt: str = "") -> None:
        if max_skills < 0:
            raise ValueError("max_skills must be >= 0")
        self.registry = registry
        self.max_skills = max_skills
        self.prompt = prompt
        self._loaded: list[Skill] = []
        self._checks: list[dict] = []
        self._hints: dict[str, Any] = {}
        self._builtin_tools = self._make_builtin_tools()
        #: False once the skills were picked before the call (``preload``): the model is then
        #: offered no ``load_skill``, and ``read_skill_resource`` only if a loaded skill has files.
        self.loading_offered = True

    # -- what loading added -----------------------------------------------------
    @property
    def loaded(self) -> list[str]:
        return [s.name for s in self._loaded]

    @property
    def added_checks(self) -> list[dict]:
        """``Check`` dicts ``{id, question, source: "skill:<name>"}`` of the loaded skills."""
        return [dict(c) for c in self._checks]

    @property
    def hints(self) -> dict[str, Any]:
        """Generation hints of the loaded skills, merged (strings joined, numbers first-wins)."""
        return dict(self._hints)

    def record(self) -> dict[str, Any]:
        """A JSON-able summary for graph state and the run report."""
        return {"loaded": self.loaded, "checks": self.added_checks, "hints": self.hints}

    # -- prompt and tools -------------------------------------------------------
    def catalog_text(self) -> str:
        """The planner's system-prompt section: names and descriptions only."""
        cat = self.registry.catalog()
        if not cat:
            return ""
        lines = [
            f"Skills (call {LOAD_SKILL}(name) to read a skill's instructions before writing the prompt; "
            f"load only skills that clearly apply, at most {self.max_skills}):"
        ]
        lines += [skill_catalog_line(name, desc, list(self.registry.get(name).triggers)) for name, desc in cat]
        return "\n".join(lines)

    def tools(self) -> list[BaseTool]:
        """Tools to bind now: the two skill tools plus the registered tools of loaded skills."""
        out = list(self._builtin_tools)
        if not self.loading_offered:
            has_files = any(skill.references() for skill in self._loaded)
            out = [t for t in out if t.name == READ_RESOURCE and has_files]
        seen = {t.name for t in out}
        for skill in self._loaded:
            for name in skill.tools:
                if name not in seen:
                    seen.add(name)
                    out.append(get_skill_tool(name))
        return out

    def load(self, name: str) -> str:
        """Load ``name`` (idempotent) and return its instructions; raises ``SkillError``."""
        skill = self.registry.get(name)
        if skill in self._loaded:
            return self._instructions_text(skill, again=True)
        if len(self._loaded) >= self.max_skills:
            raise SkillError(
                f"refused: at most {self.max_skills} skill(s) per prompt and "
                f"{', '.join(self.loaded) or 'none'} already loaded; continue with those"
            )
        self._loaded.append(skill)
        have = {c["question"] for c in self._checks}
        self._checks += [c for c in expand_checks(skill, self.prompt) if c["question"] not in have]
        for k, v in skill.hints.items():
            if k in _JOINED_HINTS and k in self._hints:
                if str(v) not in str(self._hints[k]):
                    self._hints[k] = f"{self._hints[k]}{_JOINED_HINTS[k]}{v}"
            else:
                self._hints.setdefault(k, v)
        log.info("loaded skill %s", name)
        return self._instructions_text(skill)

    def preload(self, names: list[str]) -> list[BaseMessage]:
        """Load ``names`` as if the model had called ``load_skill`` for each: the call and its
        replies, to put in the conversation before the model's first turn."""
        calls = [{"name": LOAD_SKILL, "args": {"name": n}, "id": f"preload-{i}"} for i, n in enumerate(names)]
        replies = [self.handle(c) for c in calls]
        self.loading_offered = False
        # Some servers (llama-cpp-python) refuse an assistant turn without text, so it says what it does.
        return [AIMessage(content=PRELOAD_TURN, tool_calls=calls), *replies]

    def read_resource(self, name: str, file: str) -> str:
        if name not in self.loaded:
            self.registry.get(name)  # unknown names get the registry's message
            raise SkillError(f"load skill {name!r} with {LOAD_SKILL} before reading its files")
        return self.registry.read_resource(name, file)

    def handle(self, tool_call: dict) -> ToolMessage:
        """Run one tool call from the model; failures come back as an error ``ToolMessage``."""
        name = tool_call.get("name", "")
        args = tool_call.get("args") or {}
        call_id = tool_call.get("id") or ""

        def reply(content: str, status: str = "success") -> ToolMessage:
            return ToolMessage(content=content, tool_call_id=call_id, name=name, status=status)

        try:
            if not isinstance(args, dict):
                raise SkillError(f"arguments of {name} must be an object")
            if name == LOAD_SKILL:
                return reply(self.load(args.get("name", "")))
            if name == READ_RESOURCE:
                return reply(self.read_resource(args.get("name", ""), args.get("file", "")))
            tool = next((t for t in self.tools() if t.name == name), None)
            if tool is None:
                providers = [s.name for s in self.registry if name in s.tools]
                why = (
                    f"; load the skill that provides it first ({', '.join(providers)})"
                    if providers
                    else f"; available tools: {', '.join(t.name for t in self.tools())}"
                )
                raise SkillError(f"tool {name!r} is not available{why}")
            result = tool.invoke(args)
            return reply(result if isinstance(result, str) else str(result))
        except Exception as e:  # the model gets the message and can correct itself
            return reply(f"Error: {one_line(e)}", status="error")

    # -- internals --------------------------------------------------------------
    def _instructions_text(self, skill: Skill, again: bool = False) -> str:
        parts = [f"# Skill: {skill.name}" + (" (already loaded)" if again else ""), skill.instructions]
        checks = [c["question"] for c in self._checks if c["source"] == f"skill:{skill.name}"]
        if checks:
            parts.append("Checks this skill adds (the image will be verified on them):\n" + "\n".join(f"- {q}" for q in checks))
        if skill.tools:
            parts.append(f"Tools now available: {', '.join(skill.tools)}")
        refs = skill.references()
        if refs:
            parts.append(f"Reference files ({READ_RESOURCE}): {', '.join(refs)}")
        return "\n\n".join(parts)

    def _make_builtin_tools(self) -> list[BaseTool]:
        names = self.registry.names()
        if not names:
            return []
        # The catalog's names as a runtime Literal, for pydantic; to the type checker a value.
        SkillName: Any = Literal[tuple(names)]
        load_args = create_model("LoadSkillArgs", name=(SkillName, Field(description="Skill name from the catalog.")))
        read_args = create_model(
            "ReadSkillResourceArgs",
            name=(SkillName, Field(description="A skill you have loaded.")),
            file=(str, Field(description="Path of a file inside the skill's references/ folder.")),
        )

        def _wrap(fn):
            def run(**kw):
                try:
                    return fn(**kw)
                except SkillError as e:
                    raise ToolException(str(e)) from None

            return run

        return [
            StructuredTool.from_function(
                _wrap(self.load),
                name=LOAD_SKILL,
                args_schema=load_args,
                handle_tool_error=True,
                description="Load a skill: returns its instructions and enables the tools it provides.",
            ),
            StructuredTool.from_function(
                _wrap(self.read_resource),
                name=READ_RESOURCE,
                args_schema=read_args,
                handle_tool_error=True,
                description="Read a reference file of a loaded skill (listed when the skill is loaded).",
            ),
        ]


# -- routing by declared triggers -----------------------------------------------------
@functools.lru_cache(maxsize=512)
def _trigger_pattern(trigger: str) -> re.Pattern[str]:
    """``re:...`` is a regular expression; otherwise a word/phrase, ``*`` at the end = prefix."""
    if trigger.startswith("re:"):
        return re.compile(trigger[3:], re.I)
    words = trigger.lower().split()
    prefix = words[-1].endswith("*")
    if prefix:
        words[-1] = words[-1].rstrip("*")
    body = r"\s+".join(re.escape(w) for w in words)
    return re.compile(r"(?<![\w])" + body + (r"" if prefix else r"(?![\w])"), re.I)


def trigger_hits(prompt: str, triggers: Iterable[str]) -> list[str]:
    """The ``triggers`` (a skill's declared ones) that occur in ``prompt``."""
    return [t for t in triggers if _trigger_pattern(t).search(prompt)]


def route_by_declared_triggers(prompt: str, triggers_by_skill: dict[str, list[str]], limit: int | None = None) -> list[str]:
    """Names whose triggers occur in ``prompt``, most hits first (then by name); the first ``limit``."""
    scored = sorted((-len(hits), name) for name, triggers in triggers_by_skill.items() if (hits := trigger_hits(prompt, triggers)))
    names = [n for _, n in scored]
    return names if limit is None else names[:limit]


def route_by_triggers(prompt: str, registry: SkillRegistry | Iterable[Skill] | None = None, limit: int | None = None) -> list[str]:
    """Skills of ``registry`` (default: ``default_registry()``) whose declared triggers occur in ``prompt``.

    The offline shapes chat model routes the same way, from the triggers the planner's
    catalog lists (``route_by_declared_triggers``); real chat models pick through
    ``load_skill``. ``limit`` keeps the first ``limit`` names.
    """
    if registry is None:
        from gems_graph.skills.registry import default_registry

        registry = default_registry()
    return route_by_declared_triggers(prompt, {skill.name: list(skill.triggers) for skill in registry}, limit)
