"""Execute notebooks in place, so they are committed with real outputs (``make notebooks``).

    .venv/bin/python notebooks/execute.py notebooks/01_quickstart.ipynb notebooks/02_memory_and_skills.ipynb

Each runs in a fresh kernel with a temporary GEMS_HOME and working directory, as the
test suite runs them, so nothing of the machine it ran on is read or left behind.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def execute_in_place(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    work = Path(tempfile.mkdtemp(prefix="gems-notebook-"))
    os.environ["GEMS_HOME"] = str(work / "gems_home")
    os.environ["ANONYMIZED_TELEMETRY"] = "False"
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(work)}}).execute()
    nbformat.write(nb, path)
    print(f"executed {path}")


if __name__ == "__main__":
    for name in sys.argv[1:]:
        execute_in_place(Path(name))
