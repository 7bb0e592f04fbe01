import logging
import math
import os

import pytest

import jaxml.experiment.results as results
from jaxml.experiment import RunContext, TaskPool, context, log


def _collect(records: list):
    class H(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    return H()


@pytest.mark.parametrize("mode", ["serial", "thread"])
def test_in_process_modes_return_values_raise_errors_and_keep_the_context(mode, tmp_path):
    ctx = RunContext(out_dir=tmp_path, mode="smoke", resume=True)
    with results._use_context(ctx), TaskPool(2, mode=mode) as pool:
        assert pool.mode == mode
        futures = [pool.submit(pow, i, 2) for i in range(5)]
        assert [f.result() for f in futures] == [0, 1, 4, 9, 16]
        assert pool.submit(context).result() == ctx
        with pytest.raises(ValueError, match="math domain error"):
            pool.submit(math.sqrt, -1.0).result()


def test_one_worker_runs_serially_in_the_calling_thread():
    pool = TaskPool(1)
    assert pool.mode == "serial"
    assert pool.submit(os.getpid).result() == os.getpid()
    pool.close()


def test_process_mode_runs_tasks_in_workers_with_context_logs_and_errors(tmp_path):
    """Workers are other processes that see the run context, send their log lines to the
    parent's ``jaxml`` logger, raise the task's exception in ``result()``, use JAX, and may run on
    every CPU of the parent after their one-thread XLA pool is made."""
    records: list = []
    logger = logging.getLogger("jaxml")
    handler = _collect(records)
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    ctx = RunContext(out_dir=tmp_path, mode="quick", resume=False)
    try:
        with results._use_context(ctx), TaskPool(2, mode="process") as pool:
            pids = {pool.submit(os.getpid).result() for _ in range(4)}
            assert os.getpid() not in pids and 1 <= len(pids) <= 2
            assert pool.submit(context).result() == ctx
            pool.submit(log, "from a worker: %d", 42).result()
            with pytest.raises(ValueError, match="math domain error"):
                pool.submit(math.sqrt, -1.0).result()
            import jax

            assert pool.submit(jax.device_count).result() == jax.device_count()
            if hasattr(os, "sched_getaffinity"):
                assert pool.submit(os.sched_getaffinity, 0).result() == os.sched_getaffinity(0)
            with pytest.raises(TypeError, match="module-level function"):
                pool.submit(lambda: 1)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert "from a worker: 42" in records


def test_bad_arguments_name_the_problem():
    with pytest.raises(ValueError, match="workers >= 1"):
        TaskPool(0)
    with pytest.raises(ValueError, match="unknown TaskPool mode"):
        TaskPool(2, mode="fork")
