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

from gems_graph._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["SkillSession", "route_by_triggers"], "gems_graph.skills.binding"),
    **dict.fromkeys(["ToolLoopResult", "arun_tool_loop", "run_tool_loop"], "gems_graph.skills.loop"),
    **dict.fromkeys(
        ["Skill", "SkillError", "SkillOverrideWarning", "SkillResourceError", "SkillValidationError", "UnknownSkillError"],
        "gems_graph.skills.model",
    ),
    "parse_skill_file": "gems_graph.skills.parser",
    **dict.fromkeys(["SkillRegistry", "builtin_skills_dir", "default_registry"], "gems_graph.skills.registry"),
    **dict.fromkeys(["get_skill_tool", "register_skill_tool", "skill_tool_names"], "gems_graph.skills.tools"),
}
__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "Skill",
    "SkillError",
    "SkillOverrideWarning",
    "SkillRegistry",
    "SkillResourceError",
    "SkillSession",
    "SkillValidationError",
    "UnknownSkillError",
    "builtin_skills_dir",
    "default_registry",
    "get_skill_tool",
    "parse_skill_file",
    "register_skill_tool",
    "ToolLoopResult",
    "arun_tool_loop",
    "route_by_triggers",
    "run_tool_loop",
    "skill_tool_names",
]
