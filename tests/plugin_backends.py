"""A plugin module the CLI tests load through ``$GEMS_PLUGINS``.

Registers ``colour:`` generators and ``scripted:`` chat models so that ``gems run``
can be driven end to end in a subprocess. Arguments are ``key=value`` pairs joined
by commas, e.g. ``colour:delay=0.3,log=/tmp/calls.tsv`` and ``scripted:fix=3``.
"""

from __future__ import annotations

from gems_graph.models.registry import register_chat_model, register_generator
from gems_graph.testing import ColourGenerator, ScriptedChatModel, loop_handler


def _args(arg: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in arg.split(",") if "=" in part)


def _colour(arg: str) -> ColourGenerator:
    a = _args(arg)
    return ColourGenerator(
        delay=float(a.get("delay", 0)),
        log_path=a.get("log"),
        fail_all=a.get("fail") == "all",
        lucky_seeds={int(s) for s in a.get("lucky", "").split("+") if s},
    )


def _scripted(arg: str) -> ScriptedChatModel:
    fix = _args(arg).get("fix")
    return ScriptedChatModel(handler=loop_handler(fix_at_round=int(fix) if fix else None))


register_generator("colour", _colour, replace=True)
register_chat_model("scripted", _scripted, replace=True)
