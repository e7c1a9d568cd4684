"""Agent skills: SKILL.md folders shown to the planner as a catalog, loaded on demand.

Public API:

* ``SkillRegistry`` / ``default_registry(extra_dirs)`` - skills by name;
* ``SkillSession`` - the tools bound to the planner (``load_skill``,
  ``read_skill_resource`` and the tools of loaded skills) and what loading added
  (checks, hints); ``run_tool_loop`` drives a tool-calling chat model with it;
* ``route_by_triggers`` - pick skills by their declared triggers (offline models);
* ``register_skill_tool`` - add a Python tool that skills may name;
* ``parse_skill_file`` and the ``Skill*Error`` classes.
"""

from gems_graph.skills.binding import SkillSession, route_by_triggers
from gems_graph.skills.loop import ToolLoopResult, arun_tool_loop, run_tool_loop
from gems_graph.skills.model import (
    Skill,
    SkillError,
    SkillOverrideWarning,
    SkillResourceError,
    SkillValidationError,
    UnknownSkillError,
)
from gems_graph.skills.parser import parse_skill_file
from gems_graph.skills.registry import SkillRegistry, builtin_skills_dir, default_registry
from gems_graph.skills.tools import get_skill_tool, register_skill_tool, skill_tool_names

__all__ = [
    "Skill", "SkillError", "SkillOverrideWarning", "SkillRegistry", "SkillResourceError",
    "SkillSession", "SkillValidationError", "UnknownSkillError", "builtin_skills_dir",
    "default_registry", "get_skill_tool", "parse_skill_file", "register_skill_tool",
    "ToolLoopResult", "arun_tool_loop", "route_by_triggers", "run_tool_loop", "skill_tool_names",
]
