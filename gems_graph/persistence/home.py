"""Where GEMS keeps its files: ``$GEMS_HOME`` (default ``~/.gems``).

Holds the SQLite checkpoint database, the default artifact root for runs, and the
embedded memory store. Moving it is one environment variable.
"""

from __future__ import annotations

import os
from pathlib import Path


def gems_home() -> Path:
    return Path(os.environ.get("GEMS_HOME") or Path.home() / ".gems").expanduser()


def default_runs_dir() -> Path:
    return gems_home() / "runs"


def default_checkpoint_db() -> Path:
    return gems_home() / "checkpoints.sqlite"
