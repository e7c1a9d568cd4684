"""``gems eval --executor ray``: every (prompt, sample, method) as a Ray task on a cluster.

The driver stays the only writer of ``results.jsonl``: a task returns its record
and the driver appends it, so resuming works as it does locally (a killed driver
loses only the tasks in flight; the same command finishes what is missing). Ray
re-runs a task whose worker process died (``max_retries``); one that still fails is
logged as an error record, which the next run retries.

Workers are pooled Ray processes, and the backend registry caches per process, so
a worker loads its generator once and keeps it for the tasks that follow. They
read and write the eval folder (images, the memory store) by its absolute path:
on a cluster of several machines it must be on storage they all mount. The
driver's ``GEMS_*`` variables (``GEMS_HOME``, ``GEMS_PLUGINS``, ...) are passed to
the workers so that specs resolve there as they do here.

Authentication: Ray 2.52+ turns token authentication on for a cluster that ``ray start``
starts where a token exists (``~/.ray/auth_token``, ``RAY_AUTH_TOKEN_PATH``,
``RAY_AUTH_TOKEN``), but a driver given an address does not, and then fails after 20 s of
``InvalidAuthToken`` warnings. ``ray_session`` applies ``ray start``'s own rule to the
driver: with ``RAY_AUTH_MODE`` unset and a token here, it connects with the token (a
cluster without authentication ignores it). A cluster that refuses is one line naming
what to set. ``ray_session`` connects before the eval writes anything, so an address that
cannot be reached leaves no output folder.

Results match the local executor's byte for byte: a task pins torch to the eval's thread
count (``tasks.EVAL_TORCH_THREADS``) as the local executor does.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gems_graph.eval.methods import MethodSettings
from gems_graph.eval.scoring import make_scorer
from gems_graph.eval.suites import EvalItem
from gems_graph.eval.tasks import (
    EVAL_TORCH_THREADS,
    EvalConfig,
    EvalConfigError,
    RecordSink,
    failed_task,
    no_image_scores,
    run_task,
    task_record,
)
from gems_graph.models.cpu_threads import pinned_threads

#: Times Ray re-runs a task whose worker died (system failures only; task errors are records).
MAX_RETRIES = 3


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise EvalConfigError("--executor ray needs Ray, which is not installed: pip install 'gems-graph[ray]'") from None
    return ray


def worker_env() -> dict[str, str]:
    """The driver's GEMS_* settings, for the workers' runtime environment."""
    return {k: v for k, v in os.environ.items() if k.startswith("GEMS_")}


def _ray_task(shared: tuple[EvalConfig, MethodSettings, bool, str], item: EvalItem, sample: int, method: str) -> dict[str, Any]:
    """Runs on a Ray worker: the same ``run_task`` the local executor calls."""
    cfg, settings, scored, out = shared
    with pinned_threads(EVAL_TORCH_THREADS):
        return run_task(method, item, sample, cfg, settings, _scorer(cfg), scored, Path(out))


_SCORERS: dict[tuple[str, str], Any] = {}


def _scorer(cfg: EvalConfig) -> Any:
    """One scorer per worker process and suite (a Soft-TIFA judge is a client worth keeping)."""
    key = (cfg.suite, repr(cfg.judge))
    if key not in _SCORERS:
        _SCORERS[key] = make_scorer(cfg.suite, cfg.judge)
    return _SCORERS[key]


def check_reachable(address: str | None, timeout: float = 5.0) -> None:
    """Fail in seconds on a HOST:PORT nobody listens at (Ray itself retries for minutes)."""
    if not address or address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise EvalConfigError(f"Ray address {address!r} is not HOST:PORT, ray://HOST:PORT or auto")
    import socket

    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise EvalConfigError(f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one with `ray start --head`") from None


def follow_cluster_auth() -> bool:
    """Use token authentication when ``ray start`` would (a token here, ``RAY_AUTH_MODE`` unset); whether it is on."""
    try:
        from ray._private.authentication.authentication_token_setup import maybe_enable_token_auth_if_token_available
    except ImportError:  # a Ray without token authentication
        return False
    return maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def _refusal_hint(token_auth: bool) -> str:
    if token_auth:
        return "if the cluster uses token authentication, this machine's token is not the cluster's: copy the head's ~/.ray/auth_token"
    return "if the cluster uses token authentication, put its token in ~/.ray/auth_token (or RAY_AUTH_TOKEN) and set RAY_AUTH_MODE=token"


@contextmanager
def ray_session(cfg: EvalConfig) -> Iterator[None]:
    """Connected to the eval's cluster (or a new local one) while inside; a caller's own ``ray.init`` is used as it is."""
    ray = import_ray()
    if ray.is_initialized():
        yield
        return
    address = cfg.address or os.environ.get("RAY_ADDRESS")
    check_reachable(address)
    token_auth = follow_cluster_auth() if address not in (None, "local") else False
    try:
        ray.init(address=cfg.address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    except ray.exceptions.AuthenticationError:
        raise EvalConfigError(
            f"the Ray cluster at {address} needs its token: put it in ~/.ray/auth_token or RAY_AUTH_TOKEN"
            " (`ray get-auth-token` on the head)"
        ) from None
    except (ConnectionError, ValueError, RuntimeError) as exc:
        hint = f" ({_refusal_hint(token_auth)})" if address else ""
        raise EvalConfigError(f"could not connect to Ray at {address or 'a new local cluster'}: {exc}{hint}") from None
    try:
        yield
    finally:
        ray.shutdown()


class RayTaskPool:
    """``submit(item, sample, method) -> Future`` of the task's record, backed by Ray tasks
    on the cluster ``ray_session`` connected to."""

    def __init__(self, cfg: EvalConfig, settings: MethodSettings, scored: bool, out: Path, log: RecordSink) -> None:
        self.cfg, self.settings, self.scored, self.out, self.log = cfg, settings, scored, out, log
        self._ray = import_ray()
        self._refs: dict[Future, Any] = {}

    def __enter__(self) -> RayTaskPool:
        self._prepare()
        return self

    def _prepare(self) -> None:
        ray = self._ray
        self._remote = ray.remote(_ray_task).options(
            num_cpus=self.cfg.task_cpus,
            num_gpus=self.cfg.task_gpus,
            max_retries=MAX_RETRIES,
            runtime_env={"env_vars": worker_env()},
        )
        try:
            self._shared = ray.put((self.cfg, self.settings, self.scored, str(self.out)))
        except Exception as exc:  # noqa: BLE001 - e.g. a model object holding a lock
            raise EvalConfigError(
                f"the eval settings cannot be sent to Ray workers ({type(exc).__name__}: {exc}); pass generator and models as spec strings"
            ) from None

    def __exit__(self, *exc: Any) -> None:
        self._refs.clear()

    def in_flight(self, concurrency: int | None) -> int:
        """``concurrency`` if given, else as many tasks as the cluster has slots for."""
        if concurrency:
            return concurrency
        res = self._ray.cluster_resources()
        slots = [res.get("CPU", 1) / self.cfg.task_cpus if self.cfg.task_cpus else float("inf")]
        if self.cfg.task_gpus:
            slots.append(res.get("GPU", 0) / self.cfg.task_gpus)
        n = min(slots)
        return max(1, int(n) if n != float("inf") else 1)

    def submit(self, item: EvalItem, sample: int, method: str) -> Future:
        ref = self._remote.remote(self._shared, item, sample, method)
        done: Future = Future()
        self._refs[done] = ref

        def finish(fut: Future) -> None:
            self._refs.pop(done, None)
            try:
                rec = fut.result()
            except BaseException as exc:  # noqa: BLE001 - a worker lost for good: logged, retried next run
                if fut.cancelled() or isinstance(exc, self._ray.exceptions.TaskCancelledError):
                    done.cancel()  # the eval is being interrupted: nothing to record
                    return
                rec = failed_task(task_record(method, item, sample, self.cfg), exc, no_image_scores(self.cfg, item, self.scored))
            try:
                self.log.append(rec)
            except BaseException as exc:  # noqa: BLE001 - the driver must hear of a log it cannot write
                done.set_exception(exc)
                return
            done.set_result(rec)

        ref.future().add_done_callback(finish)
        return done

    def cancel(self, fut: Future) -> None:
        ref = self._refs.pop(fut, None)
        if ref is not None:
            self._ray.cancel(ref, force=True)
