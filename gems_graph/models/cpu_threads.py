"""How many CPU threads an embedded model may use: the one place that sets torch's threads.

The embedded models (the shapes generator and critic, the MiniLM embedding of the
experience store, a diffusers pipeline on the CPU) run torch on the CPU. Torch's
default is a thread per core for every call, and OpenMP threads spin while they wait
for each other: with several runs, workers or processes on the same cores they fight
instead of working (on a loaded 2-core machine one shapes image took 2-4 minutes at the
default against under 10 s on one thread, the same pixels). So each model call runs
inside ``model_threads()``, which gives it its share of a budget:

    threads for a call = max(1, budget // model calls in flight in this process)
    budget             = usable cores // GEMS_WORKER_PROCESSES

``GEMS_WORKER_PROCESSES`` (default 1) is how many processes of this kind share the
machine: a launcher that starts N workers (``langhost serve --workers N``, eval
workers) sets it for them. ``GEMS_CPU_THREADS`` overrides the budget outright, and
``OMP_NUM_THREADS``, when set, is taken as the budget too (as torch itself does).

Work whose results must not depend on how calls interleave (an eval, which must give
the same bytes on every executor: a float sum splits across threads differently at
another count) runs inside ``pinned_threads(n)``: every call then gets exactly ``n``.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

#: Threads of CPU torch work per process, overriding the computed budget.
THREADS_ENV = "GEMS_CPU_THREADS"
#: Processes running embedded models on this machine at once (default 1).
PROCESSES_ENV = "GEMS_WORKER_PROCESSES"

_in_flight = 0
#: Threads every call gets while ``pinned_threads`` is in force (None: its share of the budget).
_pinned: int | None = None
_lock = threading.Lock()


class CpuThreadsError(ValueError):
    """A thread setting is not a positive whole number; the message names it."""


def _positive(name: str) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise CpuThreadsError(f"{name}={raw!r} is not a positive whole number of {'processes' if name == PROCESSES_ENV else 'threads'}")
    return value


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, so a container's or taskset's limit counts)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def thread_budget() -> int:
    """Threads this process's model calls share (see the module's docstring for the rule)."""
    explicit = _positive(THREADS_ENV) or _positive("OMP_NUM_THREADS")
    if explicit is not None:
        return explicit
    return max(1, usable_cores() // (_positive(PROCESSES_ENV) or 1))


def share(in_flight: int, budget: int | None = None) -> int:
    """One call's threads when ``in_flight`` model calls run in this process at once."""
    return max(1, (thread_budget() if budget is None else budget) // max(1, in_flight))


@contextlib.contextmanager
def model_threads() -> Iterator[int]:
    """Run a model call with its share of the budget; yields the threads it was given.

    Torch's thread count is one setting of the process, so it is set as calls start and
    end: every call in flight runs on the share of the latest count of calls."""
    global _in_flight
    import torch

    with _lock:
        _in_flight += 1
        threads = _pinned or share(_in_flight)
        torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        with _lock:
            _in_flight -= 1
            if _in_flight:
                torch.set_num_threads(_pinned or share(_in_flight))


@contextlib.contextmanager
def pinned_threads(threads: int) -> Iterator[None]:
    """Every model call inside (in this process) runs on exactly ``threads`` threads; as before afterwards."""
    global _pinned
    import torch

    with _lock:
        before, before_torch = _pinned, torch.get_num_threads()
        _pinned = threads
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        with _lock:
            _pinned = before
            torch.set_num_threads(before_torch)
