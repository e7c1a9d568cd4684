"""What the CLI prints, one rule for every subcommand: whole lines, one-line errors, one exit-code rule.

Rich wraps at the terminal's width, and at 80 columns when the output is a file or a
pipe, which breaks a path across two lines for a script that reads it. Every console
the CLI prints through is made here with ``soft_wrap`` on (a line is never broken),
no highlighting, and colour only on a terminal (Rich honours ``NO_COLOR`` and
``FORCE_COLOR`` itself).

Exit codes: 0 done, 1 a failure on the way (a run that failed says how to resume it),
2 bad input (a bad flag or value, a name or id that does not exist, a file that does
not parse), 3 a run paused for a human review, 130 interrupted.
"""

from __future__ import annotations

import sys
import traceback
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from gems_graph.errors import one_line

#: The exit code of a run that paused for a human review (``--human-feedback``).
PAUSED_EXIT_CODE = 3


def console(*, stderr: bool = False) -> Console:
    """A console for stdout (results) or stderr (progress, errors) that never wraps a line."""
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


_err = console(stderr=True)

#: Set by the CLI's entry point when ``--debug`` was given: errors then show their traceback.
show_tracebacks = False


def warnings_as_lines() -> None:
    """Show Python warnings as ``warning: message`` lines, without the source line that raised them."""
    import warnings

    def show(message: Warning | str, category: type[Warning], *_args: object, **_kwargs: object) -> None:
        _err.print(f"[yellow]warning:[/yellow] {escape(one_line(str(message), 2000))}", markup=True)

    warnings.showwarning = show


def fail(message: object, code: int = 2, *, prefixed: bool = True) -> NoReturn:
    """Print ``message`` as the one error line (secrets removed) and exit with ``code``.

    ``prefixed=False`` prints a ``file:line: problem`` line as it is, the form editors read.
    Called while handling an exception under ``--debug``, its traceback comes first.
    """
    if show_tracebacks and sys.exc_info()[0] is not None:
        traceback.print_exc()
    line = escape(one_line(message if isinstance(message, BaseException) else str(message), 2000))
    _err.print(f"[red]error:[/red] {line}" if prefixed else line, markup=True)
    raise typer.Exit(code)
