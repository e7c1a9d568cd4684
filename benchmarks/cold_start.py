"""How long the CLI takes before it does anything: ``gems --help`` and every ``gems <sub> --help``.

    .venv/bin/python benchmarks/cold_start.py [--repeats 5]

Each command runs in a fresh process (as a user types it); the median wall time of
``--repeats`` runs is printed per command. Target: <= 0.5 s each, which needs every
heavy import (langchain, torch, diffusers, chromadb) to wait until a command runs.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = [[], ["run"], ["eval"], ["doctor"], ["report"], ["serve-generator"], ["config"], ["skills"], ["memory"]]


def gems_executable() -> str:
    found = Path(sys.executable).with_name("gems")
    return str(found) if found.exists() else (shutil.which("gems") or "gems")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    gems = gems_executable()
    cwd = tempfile.mkdtemp(prefix="gems_cold_")
    print("| command | median s | max s |\n|---|---|---|")
    for sub in COMMANDS:
        times = []
        for _ in range(a.repeats):
            start = time.perf_counter()
            subprocess.run([gems, *sub, "--help"], cwd=cwd, capture_output=True, check=True)
            times.append(time.perf_counter() - start)
        print(f"| gems {' '.join(sub + ['--help'])} | {statistics.median(times):.2f} | {max(times):.2f} |")


if __name__ == "__main__":
    main()
