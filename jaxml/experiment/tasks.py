"""Run an experiment's independent tasks (training runs, checks) side by side on the host's cores.

``TaskPool(workers)`` is a small ``concurrent.futures``-style pool for the parts of an experiment
that do not depend on each other, for example the five positional encodings of the Dyck study
and the construction checks beside them::

    with TaskPool(cfg.workers) as pool:
        futures = {name: pool.submit(train_variant, cfg, name, key) for name in names}
        results = {name: f.result() for name, f in futures.items()}

Each task returns what it would return when called directly; the run context
(:func:`jaxml.experiment.context`: output folder, resume flag) and :func:`jaxml.experiment.log`
lines reach the tasks and the run's ``log.txt`` as usual.

**Why processes on CPU.** XLA:CPU runs every program on one intra-op thread pool sized to the
cores the process may use. Two programs run from two Python threads therefore share (and
oversubscribe) that pool: on 2 cores, two small-transformer train programs from two threads
took 21-22 ms per step each in effect (43-45 ms of CPU per step), while two processes whose
pools have one thread each took 19 ms (38 ms of CPU per step): no thread of one program waits
for, or spins beside, a thread of the other. So on the CPU backend ``mode="auto"`` starts
``workers`` fresh processes (``spawn``), each with a single-threaded XLA pool (it is created
while the process may use one core; afterwards the process may run on every core again).
Elsewhere (GPU, TPU: one device shared by the tasks) ``auto`` uses threads; XLA releases the
GIL while it compiles and runs, so threads still overlap. ``workers=1`` runs the tasks one after
the other in the calling thread, the reference for bit-reproducible runs.

Tasks in processes must be picklable module-level functions with picklable arguments and
results (functions of ``experiments/<slug>.py`` qualify: the worker loads the experiment the way
the runner does). A task's exception is raised again by ``Future.result()``. As with any
``spawn`` pool, a script that creates a process-mode pool at import time must do so under
``if __name__ == "__main__":`` (the workers import the main script; ``jaxml run`` and
``run_script`` already follow this).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextvars
import logging
import logging.handlers
import multiprocessing
import os
import pickle
from collections.abc import Callable
from typing import Any

from jaxml.experiment.registry import register_experiments_package
from jaxml.experiment.results import RunContext, _CONTEXT, context

__all__ = ["TaskPool", "single_thread_xla"]

_MODES = ("auto", "process", "thread", "serial")


def single_thread_xla() -> bool:
    """Create the JAX CPU backend with a one-thread intra-op pool (call before any JAX computation).

    XLA:CPU sizes its pool from the CPUs the process may run on when the client is created, so
    this narrows the process's CPU affinity to one CPU, creates the backend, and restores the
    affinity of every thread of the process. Returns False (nothing changed) where CPU
    affinity is not available or the backend already exists.
    """
    if not hasattr(os, "sched_setaffinity"):
        return False
    from jax._src import xla_bridge

    if getattr(xla_bridge, "backends_are_initialized", lambda: False)():
        return False
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(allowed)})
    try:
        import jax

        jax.devices()
    finally:
        for tid in os.listdir("/proc/self/task") if os.path.isdir("/proc/self/task") else ["0"]:
            try:
                os.sched_setaffinity(int(tid), allowed)
            except OSError:  # a thread that has just exited
                pass
    return True


def _worker_init(ctx: RunContext, queue: Any) -> None:
    # No jaxml.tune_malloc() here: with one XLA thread beside the Python thread, its single
    # malloc arena (M_ARENA_MAX = 1) made the Dyck train step ~10% slower (46 vs 41 ms per step)
    # through allocator lock contention; glibc's defaults measured the same as 8 arenas.
    logger = logging.getLogger("jaxml")
    logger.handlers[:] = [logging.handlers.QueueHandler(queue)]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    _CONTEXT.set(ctx)
    register_experiments_package()  # experiment functions unpickle as jaxml_experiments.<slug>.<name>
    single_thread_xla()


def _run_pickled(payload: bytes) -> Any:
    fn, args, kwargs = pickle.loads(payload)
    return fn(*args, **kwargs)


class _Forward(logging.Handler):
    """Hands records from the workers' queue to the parent's ``jaxml`` logger handlers."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger(record.name).handle(record)


class TaskPool:
    """Run independent tasks on ``workers`` workers (module docstring: why processes on CPU).

    Args:
      workers: how many tasks run at once (>= 1); 1 runs them in order in the calling thread.
      mode: "auto" (processes on the CPU backend, threads otherwise), "process", "thread" or
        "serial".
    """

    def __init__(self, workers: int, *, mode: str = "auto"):
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"TaskPool needs workers >= 1, got {workers!r}")
        if mode not in _MODES:
            raise ValueError(f"unknown TaskPool mode {mode!r}; use one of {', '.join(_MODES)}")
        if workers == 1:
            mode = "serial"
        elif mode == "auto":
            import jax

            mode = "process" if jax.default_backend() == "cpu" else "thread"
        self.workers, self.mode = workers, mode
        self._pool: cf.Executor | None = None
        self._listener: logging.handlers.QueueListener | None = None
        if mode == "thread":
            self._pool = cf.ThreadPoolExecutor(max_workers=workers)
        elif mode == "process":
            mp = multiprocessing.get_context("spawn")
            queue = mp.Queue()
            self._listener = logging.handlers.QueueListener(queue, _Forward())
            self._listener.start()
            self._pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp, initializer=_worker_init,
                                                initargs=(context(), queue))

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        """Schedule ``fn(*args, **kwargs)``; returns a Future whose ``result()`` is its value."""
        if self.mode == "serial":
            fut: cf.Future = cf.Future()
            try:
                fut.set_result(fn(*args, **kwargs))
            except BaseException as e:  # noqa: BLE001 - re-raised by result()
                fut.set_exception(e)
            return fut
        assert self._pool is not None
        if self.mode == "thread":
            return self._pool.submit(contextvars.copy_context().run, fn, *args, **kwargs)
        try:
            payload = pickle.dumps((fn, args, kwargs))
        except (pickle.PicklingError, AttributeError, TypeError) as e:
            raise TypeError(
                f"TaskPool(mode='process') needs a module-level function with picklable arguments; "
                f"{getattr(fn, '__qualname__', fn)!r} cannot be sent to a worker process ({e}). Define it at "
                "module level or use mode='thread'") from e
        return self._pool.submit(_run_pickled, payload)  # pickled here, so that errors name the task

    def close(self) -> None:
        """Wait for the running tasks and stop the workers."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=False)
            self._pool = None
        if self._listener is not None:
            self._listener.stop()
            self._listener = None

    def __enter__(self) -> TaskPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

