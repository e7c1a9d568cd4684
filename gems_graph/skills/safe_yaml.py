"""YAML from files people hand us, loaded within limits.

``yaml.safe_load`` builds no objects but plain ones, yet it still follows every alias
(a "billion laughs" document of a few hundred bytes expands to gigabytes in whatever
walks it next) and recurses once per nesting level (35,000 nested ``[`` end in
``RecursionError``). The document is first read as a stream of events, which PyYAML
parses without recursion, counting nesting depth, aliases and the size the document
has once its aliases are expanded; only a document within the limits is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

#: Deepest nesting of mappings and sequences; a skill's frontmatter needs four.
MAX_DEPTH = 32
#: Most aliases (``*name``); frontmatter rarely has any.
MAX_ALIASES = 64
#: Most scalars, mappings and sequences, counting each alias as the node it stands for.
MAX_NODES = 20_000


class YamlLimitError(ValueError):
    """The document is over a limit; ``line`` (1-based, in the document) says where."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(problem)
        self.line = line
        self.problem = problem


@dataclass
class _Open:
    anchor: str | None
    size: int = 1


def check_limits(src: str, *, max_depth: int = MAX_DEPTH, max_aliases: int = MAX_ALIASES, max_nodes: int = MAX_NODES) -> None:
    """Raise ``YamlLimitError`` if ``src`` nests too deep, has too many aliases, or expands too far."""
    sizes: dict[str, int] = {}  # anchor -> how many values it stands for
    stack: list[_Open] = []
    aliases = total = 0
    for event in yaml.parse(src, Loader=yaml.SafeLoader):
        line = event.start_mark.line + 1 if event.start_mark else 0  # the parser marks every event
        size = 0
        if isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > max_aliases:
                raise YamlLimitError(line, f"has more than {max_aliases} aliases")
            size = sizes.get(event.anchor or "", 1)  # an alias always names its anchor
        elif isinstance(event, yaml.ScalarEvent):
            size = 1
            if event.anchor:
                sizes[event.anchor] = 1
        elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            if len(stack) >= max_depth:
                raise YamlLimitError(line, f"nests deeper than {max_depth} levels")
            total += 1
            stack.append(_Open(event.anchor))
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            done = stack.pop()
            if done.anchor:
                sizes[done.anchor] = done.size
            if stack:
                stack[-1].size += done.size
        if size:
            total += size
            if stack:
                stack[-1].size += size
        if total > max_nodes:
            raise YamlLimitError(line, f"expands to more than {max_nodes} values (an alias counts as what it stands for)")


def load_limited(src: str, **limits: Any) -> tuple[Any, yaml.Node | None]:
    """(the loaded value, its node tree for line numbers) of ``src``, after ``check_limits``."""
    check_limits(src, **limits)
    node = yaml.compose(src, Loader=yaml.SafeLoader)
    return yaml.safe_load(src), node
