"""The thread budget of the embedded models: its rule, its settings, and the share each call gets."""

from __future__ import annotations

import threading

import pytest
import torch
from PIL import Image

from gems_graph.models import cpu_threads
from gems_graph.models.cpu_threads import CpuThreadsError, model_threads, thread_budget


@pytest.fixture
def no_thread_settings(monkeypatch):
    for name in ("GEMS_CPU_THREADS", "GEMS_WORKER_PROCESSES", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(cpu_threads, "usable_cores", lambda: 8)
    return monkeypatch


def test_the_budget_is_the_cores_shared_by_the_worker_processes(no_thread_settings):
    assert thread_budget() == 8
    no_thread_settings.setenv("GEMS_WORKER_PROCESSES", "3")
    assert thread_budget() == 2
    no_thread_settings.setenv("GEMS_WORKER_PROCESSES", "16")
    assert thread_budget() == 1


def test_settings_override_the_budget(no_thread_settings):
    no_thread_settings.setenv("OMP_NUM_THREADS", "3")
    assert thread_budget() == 3
    no_thread_settings.setenv("GEMS_CPU_THREADS", "5")  # ours wins over OpenMP's
    assert thread_budget() == 5


@pytest.mark.parametrize("name", ["GEMS_CPU_THREADS", "GEMS_WORKER_PROCESSES"])
@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_setting_is_named(no_thread_settings, name, value):
    no_thread_settings.setenv(name, value)
    with pytest.raises(CpuThreadsError, match=f"{name}='{value}' is not a positive whole number"):
        thread_budget()


def test_calls_in_flight_at_once_share_the_budget(no_thread_settings):
    no_thread_settings.setenv("GEMS_CPU_THREADS", "4")
    both_in = threading.Barrier(2, timeout=10)
    seen = {}

    def call(name: str) -> None:
        with model_threads() as given:
            both_in.wait()
            seen[name] = (given, torch.get_num_threads())
            both_in.wait()

    workers = [threading.Thread(target=call, args=(n,)) for n in ("a", "b")]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    # The first call in was given the whole budget; once the second started, both ran on half.
    assert sorted(seen.values()) == [(2, 2), (4, 2)]
    with model_threads() as alone:
        assert alone == 4 and torch.get_num_threads() == 4


def test_pinned_threads_hold_however_calls_interleave(no_thread_settings):
    """An eval's results must not depend on its calls' interleaving: pinned, every call gets the pin."""
    no_thread_settings.setenv("GEMS_CPU_THREADS", "4")
    before = torch.get_num_threads()
    with cpu_threads.pinned_threads(1):
        with model_threads() as first, model_threads() as second:
            assert (first, second, torch.get_num_threads()) == (1, 1, 1)
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with model_threads() as free:
        assert free == 4


def test_the_shapes_critic_runs_within_the_budget(no_thread_settings):
    from gems_graph.shapes.critic_model import CriticJudge

    no_thread_settings.setenv("GEMS_CPU_THREADS", "1")
    torch.set_num_threads(2)
    critic = CriticJudge()
    p = critic.p_yes(Image.new("RGB", (64, 64), "white"), ["Is there a red circle?"])
    assert 0.0 <= p[0] <= 1.0
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("GEMS_CPU_THREADS", "two", "GEMS_CPU_THREADS='two' is not a positive whole number of threads"),
        ("GEMS_EMBEDDING_RUNTIME", "gpu", "GEMS_EMBEDDING_RUNTIME='gpu' is not one of auto, onnx, torch"),
    ],
)
def test_the_cli_refuses_a_bad_runtime_setting_in_one_line(tmp_path, name, value, message):
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "GEMS_HOME": str(tmp_path / "home"), "PYTHONPATH": str(repo), name: value}
    out = subprocess.run([sys.executable, "-m", "gems_graph", "run", "a red circle"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out
    assert message in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "home").exists()
