"""An mkdocs hook: the reference pages' generated parts, rendered from the code at build time.

A page asks for one with a marker line; nothing of what it renders is kept in ``docs/``:

* ``<!-- generated: cli -->``: the help of ``gems`` and of every subcommand, as
  ``gems ... --help`` prints it on a terminal
  80 columns or wider (click's own formatter);
* ``<!-- generated: gems.toml -->``: ``gems_graph.config.reference()``, the commented
  ``gems.toml`` with every ``GemsContext`` key and its default (``gems config --reference``).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: What click formats help to on any terminal 80 columns or wider (its cap, 80, less 2).
WIDTH = 78


def _import_path() -> None:
    # This checkout's package, not another one installed in the environment.
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def _commands(command, path: list[str]):
    """(``gems sub ...``, command) for the command and every subcommand under it, depth first."""
    yield " ".join(path), command
    if hasattr(command, "list_commands"):  # a group (typer ships its own click, so no isinstance)
        ctx = command.context_class(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not getattr(sub, "hidden", False):
                yield from _commands(sub, [*path, name])


def help_texts() -> dict[str, str]:
    """``{"gems memory search": its --help text, ...}`` for every command, in the CLI's order."""
    _import_path()
    import typer.main

    from gems_graph.app.cli import app, name_metavars

    root = typer.main.get_command(app)
    name_metavars(root)  # as the console script does before it parses
    texts = {}
    for name, command in _commands(root, ["gems"]):
        # The usage line names the whole command (``gems memory search``), as the shell prints it.
        ctx = command.context_class(command, info_name=name, terminal_width=WIDTH)
        texts[name] = command.get_help(ctx)
    return texts


def cli_help() -> str:
    """Markdown: one section per command with its ``--help`` text."""
    out = []
    for name, text in help_texts().items():
        level = "##" if name == "gems" else "###"
        out += [f"{level} `{name}`", "", "```text", text.rstrip(), "```", ""]
    return "\n".join(out)


def gems_toml_reference() -> str:
    _import_path()
    from gems_graph.config import reference

    return "```toml\n" + reference().rstrip() + "\n```\n"


GENERATORS = {"<!-- generated: cli -->": cli_help, "<!-- generated: gems.toml -->": gems_toml_reference}


def on_page_markdown(markdown: str, page, config, files) -> str:
    for marker, render in GENERATORS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, render())
    return markdown
