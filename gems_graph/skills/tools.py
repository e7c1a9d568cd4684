"""Python tools that skills may name, registered by name in this package.

A skill folder never runs code: its frontmatter lists tool *names*
(``metadata.tools``) and ``SkillSession`` binds the matching registered tools to
the planner once the skill is loaded. Other packages add tools with
``@register_skill_tool("name")`` before building a registry.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

from langchain_core.tools import BaseTool, StructuredTool

from gems_graph.skills.layout import layout_objects as _layout_objects

_TOOL_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what OpenAI-style APIs accept
_TOOLS: dict[str, BaseTool] = {}
_LOCK = threading.Lock()


def register_skill_tool(
    name: str | None = None, *, description: str | None = None, replace: bool = False
) -> Callable[[Callable], BaseTool]:
    """Decorator: make ``fn`` a LangChain tool called ``name`` that skills can list.

    The argument schema comes from the function's type hints; the description from
    ``description`` or the docstring. Returns the ``BaseTool``.
    """

    def wrap(fn: Callable) -> BaseTool:
        tool_name = name or fn.__name__
        if not _TOOL_NAME_RE.match(tool_name):
            raise ValueError(f"invalid tool name {tool_name!r}: use 1-64 letters, digits, '_' or '-'")
        tool = StructuredTool.from_function(fn, name=tool_name, description=description or (fn.__doc__ or tool_name).strip())
        with _LOCK:
            if tool_name in _TOOLS and not replace:
                raise ValueError(f"skill tool {tool_name!r} is already registered (pass replace=True)")
            _TOOLS[tool_name] = tool
        return tool

    return wrap


def unregister_skill_tool(name: str) -> None:
    with _LOCK:
        _TOOLS.pop(name, None)


def skill_tool_names() -> list[str]:
    return sorted(_TOOLS)


def get_skill_tool(name: str) -> BaseTool:
    try:
        return _TOOLS[name]
    except KeyError:
        raise KeyError(f"no skill tool {name!r} (registered: {', '.join(sorted(_TOOLS)) or 'none'})") from None


layout_objects = register_skill_tool(
    "layout_objects",
    description=(
        "Turn the objects of a scene and the spatial relations between them into explicit "
        "positions (e.g. 'left third, lower half') with a ready-to-use prompt sentence. "
        "relations: [{subject, relation, object}], relation one of: left of, right of, above, "
        "below, on top of, under, in front of, behind, next to."
    ),
)(_layout_objects)
