"""``benchmarks/gpu_smoke.py`` on a machine without CUDA: one clear line, exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_gpu_smoke_says_it_needs_cuda_and_exits_2():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the benchmark would run for minutes")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_smoke.py")], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 2
    line = "gpu_smoke: no CUDA device (torch.cuda.is_available() is False); run it on a machine with a GPU"
    assert res.stderr.strip().splitlines() == [line]
    assert res.stdout == ""
