"""One way for a benchmark to write its result file under ``benchmarks/results/``.

Every file carries its figures and where they came from: the command that made
them, the commit it ran at, the machine and how busy it was (its load average when
the file was written: timings from a shared machine are slower than its CPUs), so a
table rendered from it (``benchmarks/tables.py``) can say so. Benchmarks run as scripts, so this module is
imported as ``record`` (the script's folder is on ``sys.path``).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def command() -> str:
    """The command line as a person would retype it, with OMP_NUM_THREADS when set."""
    script = Path(sys.argv[0])
    parts = [f"benchmarks/{script.name}", *sys.argv[1:]]
    threads = os.environ.get("OMP_NUM_THREADS")
    return (f"OMP_NUM_THREADS={threads} " if threads else "") + " ".join(parts)


def commit() -> str:
    """The short commit the benchmark ran at ("unknown" outside a git checkout)."""
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=RESULTS.parent)
    return out.stdout.strip() or "unknown"


def machine() -> str:
    """Architecture, CPU count and Python version: enough to tell two machines' figures apart."""
    return f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def load_average() -> dict[str, float]:
    """The machine's load average over the last 1, 5 and 15 minutes (runnable processes, not CPUs)."""
    one, five, fifteen = os.getloadavg()
    return {"1min": round(one, 2), "5min": round(five, 2), "15min": round(fifteen, 2)}


def write_result(result: dict, path: Path) -> Path:
    """Write ``result`` with its provenance (command, commit, machine, load average) as JSON to ``path``."""
    result = {**result, "command": command(), "commit": commit(), "machine": machine(), "load_average": load_average()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path
