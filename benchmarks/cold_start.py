"""How long the CLI takes before it does anything: ``gems --help`` and every ``gems <sub> --help``.

    .venv/bin/python benchmarks/cold_start.py [--repeats 5] [--out FILE]

Each command runs in a fresh process (as a user types it); the median and the
slowest wall time of ``--repeats`` runs, and the median CPU time the process used
(what a busy machine does not inflate), are printed per command and written to
``--out`` (``benchmarks/results/cold_start.json``). Target: <= 0.5 s each, which
needs every heavy import (langchain, torch, diffusers, chromadb) to wait until a
command runs.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from record import write_result

OUT = Path(__file__).parent / "results" / "cold_start.json"
TARGET_S = 0.5
COMMANDS = [[], ["run"], ["eval"], ["doctor"], ["report"], ["serve-generator"], ["config"], ["skills"], ["memory"]]


def gems_executable() -> str:
    found = Path(sys.executable).with_name("gems")
    return str(found) if found.exists() else (shutil.which("gems") or "gems")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args()
    gems = gems_executable()
    cwd = tempfile.mkdtemp(prefix="gems_cold_")
    print("| command | median s | max s | CPU s |\n|---|---|---|---|")
    rows = []
    for sub in COMMANDS:
        times, cpu = [], []
        for _ in range(a.repeats):
            used = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run([gems, *sub, "--help"], cwd=cwd, capture_output=True, check=True)
            times.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime - used.ru_utime + after.ru_stime - used.ru_stime)
        row = {
            "command": " ".join(["gems", *sub, "--help"]),
            "median_s": round(statistics.median(times), 3),
            "max_s": round(max(times), 3),
            "cpu_s": round(statistics.median(cpu), 3),
        }
        rows.append(row)
        print(f"| {row['command']} | {row['median_s']:.2f} | {row['max_s']:.2f} | {row['cpu_s']:.2f} |")
    write_result({"repeats": a.repeats, "target_s": TARGET_S, "rows": rows}, a.out)
    print(f"written to {a.out}")


if __name__ == "__main__":
    main()
