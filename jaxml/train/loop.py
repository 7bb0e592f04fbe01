"""THE training loop of jaxml: one jitted step, scanned in chunks, with evaluation, metric history,
progress, orbax checkpoints with exact resume, and a NaN/inf guard.

Every experiment trains through :func:`train`. A step is

    (loss, aux), g = value_and_grad(loss_fn)(params, batch_t, key_t)
    updates, opt_state = optimizer.update(g, opt_state, params)
    params = optax.apply_updates(params, updates)

with ``key_t = fold_in(key, t)`` and ``batch_t = data(fold_in(key_t, 1), t)`` when ``data`` is a
function (``data`` itself when it is a fixed, full batch). Because every step's randomness is a
function of (key, t) only, a run resumed from a checkpoint at step s reproduces the
uninterrupted run bit for bit on the same device kind.

Steps run inside ``jax.lax.scan`` in chunks whose length divides the logging, evaluation and
checkpoint intervals, so Python is entered once per chunk, not once per step.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

__all__ = ["TrainState", "TrainResult", "NonFiniteLossError", "train", "train_pure", "make_step", "make_chunk"]

log = logging.getLogger("jaxml.train")

LossFn = Callable[[Any, Any, jax.Array], tuple[jax.Array, Mapping[str, jax.Array]]]


@flax.struct.dataclass
class TrainState:
    """Optimiser state of a run: the step count, the parameters and the optax state."""

    step: jax.Array
    params: Any
    opt_state: Any

    @classmethod
    def create(cls, params: Any, optimizer: optax.GradientTransformation) -> "TrainState":
        """Step 0 state for ``params`` under ``optimizer``."""
        return cls(step=jnp.zeros((), jnp.int32), params=params, opt_state=optimizer.init(params))


class TrainResult(NamedTuple):
    """What :func:`train` returns.

    Attributes:
      state: the final ``TrainState``.
      history: per-step metrics, ``{"loss": (num_steps,), <aux name>: (num_steps,), ...}``.
      evals: list of ``{"step": t, **eval_fn(params)}`` at every evaluation.
    """

    state: TrainState
    history: dict[str, np.ndarray]
    evals: list[dict[str, float]]


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; ``step`` is the first bad step (0-based)."""

    def __init__(self, step: int, value: float, checkpoint: str | None):
        self.step, self.value, self.checkpoint = step, value, checkpoint
        where = f"; the last good checkpoint is kept in {checkpoint}" if checkpoint else ""
        super().__init__(
            f"loss became {value} at step {step}{where}. Lower the learning rate, clip gradients "
            "(optax.clip_by_global_norm) or check the data for inf/NaN.")


def make_step(loss_fn: LossFn, optimizer: optax.GradientTransformation,
              data: Any) -> Callable[[TrainState, jax.Array, Any], tuple[TrainState, dict]]:
    """Build the (unjitted) single training step ``step(state, key, fixed_batch) -> (state, metrics)``.

    ``key`` is the run's base key; the step folds in ``state.step``. ``fixed_batch`` is the
    full batch when ``data`` is not callable (passed as an argument so it is not baked into the
    compiled program as a constant).
    """
    batch_fn = data if callable(data) else None
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def step(state: TrainState, key: jax.Array, fixed_batch: Any) -> tuple[TrainState, dict]:
        key_t = jax.random.fold_in(key, state.step)
        key_data, key_loss = jax.random.split(key_t)
        batch = batch_fn(key_data, state.step) if batch_fn is not None else fixed_batch
        (loss, aux), grads = grad_fn(state.params, batch, key_loss)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {"loss": loss, **{k: jnp.asarray(v) for k, v in dict(aux).items()}}
        return TrainState(step=state.step + 1, params=params, opt_state=opt_state), metrics

    return step


def make_chunk(loss_fn: LossFn, optimizer: optax.GradientTransformation,
               data: Any) -> Callable[[TrainState, jax.Array, Any, int], tuple[TrainState, dict]]:
    """The jitted program :func:`train` runs between two returns to Python.

    ``chunk(state, key, fixed_batch, n) -> (state, metrics)`` runs ``n`` steps of
    :func:`make_step` in one ``lax.scan`` (``n`` static: one compilation per distinct ``n``) and
    returns every metric stacked over the ``n`` steps. Scanning steps inside one program, instead
    of calling a jitted step once per step, saves the per-call dispatch and thread wake-ups:
    measured on 2 shared CPU cores, a small decoder's step ran about 1.2x faster this way
    (``benchmarks/transformer_train.py`` reports both). Exposed so that benchmarks and custom
    loops run exactly the program ``train`` runs.
    """
    step_fn = make_step(loss_fn, optimizer, data)

    def run_chunk(state: TrainState, key: jax.Array, fixed: Any, n: int) -> tuple[TrainState, dict]:
        return jax.lax.scan(lambda s, _: step_fn(s, key, fixed), state, None, length=n)

    return jax.jit(run_chunk, static_argnums=3)


def train_pure(loss_fn: LossFn, params: Any, optimizer: optax.GradientTransformation, *,
               data: Any, num_steps: int, key: jax.Array) -> tuple[TrainState, dict[str, jax.Array]]:
    """The same steps as :func:`train`, as one pure ``lax.scan`` that can be jitted and vmapped.

    This is what sweeps use (``jaxml.experiment.sweep`` maps it over grids x seeds): no
    checkpoints, evaluation or progress, but exactly the step of :func:`train`, so a cell of a
    sweep and a ``train`` run with the same key give the same parameters.

    Returns:
      ``(final_state, metrics)`` with every metric stacked over steps, shape (num_steps,).
    """
    step_fn = make_step(loss_fn, optimizer, data)
    fixed = None if callable(data) else data
    state = TrainState.create(params, optimizer)
    return jax.lax.scan(lambda s, _: step_fn(s, key, fixed), state, None, length=num_steps)


def _chunk_length(num_steps: int, *intervals: int) -> int:
    g = 0
    for iv in intervals:
        if iv and iv > 0:
            g = math.gcd(g, iv)
    return min(num_steps, g if g else num_steps)


class _Checkpointer:
    """Thin wrapper over an orbax CheckpointManager saving (state, history, evals)."""

    def __init__(self, directory: str | os.PathLike, max_to_keep: int = 2):
        import orbax.checkpoint as ocp

        self._ocp = ocp
        self.directory = Path(directory).absolute()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OSError(f"cannot create checkpoint directory {self.directory}: {e.strerror}; "
                          "choose a writable --out") from e
        self.manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True))

    def latest(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state: TrainState, history: dict, evals: list) -> None:
        ocp = self._ocp
        meta = {"history": {k: [float(x) for x in v] for k, v in history.items()}, "evals": evals}
        self.manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))
        self.manager.wait_until_finished()

    def restore(self, step: int, like: TrainState) -> tuple[TrainState, dict, list]:
        ocp = self._ocp
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, like)
        out = self.manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
        meta = out["meta"]
        history = {k: list(v) for k, v in meta["history"].items()}
        return out["state"], history, list(meta["evals"])

    def close(self) -> None:
        self.manager.close()


def train(loss_fn: LossFn, params: Any, optimizer: optax.GradientTransformation, *,
          data: Any, num_steps: int, key: jax.Array,
          eval_fn: Callable[[Any], Mapping[str, float]] | None = None, eval_every: int = 0,
          log_every: int = 100, checkpoint_dir: str | os.PathLike | None = None,
          checkpoint_every: int = 0, resume: bool = False, progress: bool | None = None,
          desc: str = "train") -> TrainResult:
    """Train ``params`` by minimising ``loss_fn`` with ``optimizer`` for ``num_steps`` steps.

    Args:
      loss_fn: ``loss_fn(params, batch, key) -> (loss, metrics)``, jittable; ``metrics`` is a dict of
        scalars recorded every step (may be empty).
      params: initial parameter pytree.
      optimizer: an optax ``GradientTransformation`` (use ``optax.masked`` / ``multi_transform``
        to freeze parameters).
      data: a fixed batch pytree (full-batch training) or a pure ``batch_fn(key, step) -> batch``.
      num_steps: total number of optimisation steps (>= 1).
      key: PRNG key; step t uses ``fold_in(key, t)``.
      eval_fn: optional ``eval_fn(params) -> {name: float}`` run every ``eval_every`` steps and at
        the end (runs outside jit; jit inside it if it is heavy).
      eval_every: evaluation interval in steps (0: only at the end, if ``eval_fn`` is given).
      log_every: log interval; also the default scan-chunk length.
      checkpoint_dir: where orbax checkpoints go (None: no checkpoints).
      checkpoint_every: checkpoint interval in steps (0 with a directory: only at the end).
      resume: continue from the latest checkpoint in ``checkpoint_dir`` if there is one.
      progress: show a tqdm bar; None shows it only on a terminal (quiet in CI and in logs).
      desc: label for the progress bar and log lines.

    Returns:
      ``TrainResult(state, history, evals)``.

    Raises:
      NonFiniteLossError: the loss became NaN/inf; names the first bad step, and the last good
        checkpoint is left untouched.
    """
    if not isinstance(num_steps, (int, np.integer)) or num_steps < 1:
        raise ValueError(f"train: num_steps must be a positive integer, got {num_steps!r}")
    for name, v in (("eval_every", eval_every), ("log_every", log_every), ("checkpoint_every", checkpoint_every)):
        if v < 0:
            raise ValueError(f"train: {name} must be >= 0, got {v}")
    if resume and checkpoint_dir is None:
        raise ValueError("train: resume=True needs a checkpoint_dir")
    chunk = _chunk_length(num_steps, log_every, eval_every, checkpoint_every if checkpoint_dir else 0)
    fixed_batch = None if callable(data) else data
    run_chunk_jit = make_chunk(loss_fn, optimizer, data)

    state = TrainState.create(params, optimizer)
    history: dict[str, list[float]] = {}
    evals: list[dict[str, float]] = []
    ckpt = _Checkpointer(checkpoint_dir) if checkpoint_dir is not None else None
    last_saved: str | None = None
    if ckpt is not None and resume and ckpt.latest() is not None:
        start = ckpt.latest()
        state, history, evals = ckpt.restore(start, state)
        last_saved = str(ckpt.directory / str(start))
        log.info("%s: resumed from step %d (%s)", desc, start, ckpt.directory)

    from tqdm.auto import tqdm

    bar = tqdm(total=num_steps, initial=int(state.step), desc=desc,
               disable=(None if progress is None else not progress), leave=False)
    try:
        while int(state.step) < num_steps:
            t0 = int(state.step)
            n = min(chunk - (t0 % chunk), num_steps - t0)
            new_state, metrics = run_chunk_jit(state, key, fixed_batch, n)
            metrics = jax.device_get(metrics)
            losses = np.asarray(metrics["loss"])
            bad = np.flatnonzero(~np.isfinite(losses))
            if bad.size:
                raise NonFiniteLossError(t0 + int(bad[0]), float(losses[bad[0]]), last_saved)
            state = new_state
            for k, v in metrics.items():
                history.setdefault(k, []).extend(np.asarray(v, dtype=np.float64).reshape(n, -1)[:, 0].tolist())
            t1 = int(state.step)
            bar.update(n)
            if log_every and (t1 % log_every == 0 or t1 == num_steps):
                log.info("%s step %d: %s", desc, t1,
                         ", ".join(f"{k}={float(np.asarray(v).reshape(n, -1)[-1, 0]):.5g}" for k, v in metrics.items()))
            if eval_fn is not None and ((eval_every and t1 % eval_every == 0) or t1 == num_steps):
                ev = {k: float(v) for k, v in dict(eval_fn(state.params)).items()}
                evals.append({"step": t1, **ev})
                log.info("%s eval @%d: %s", desc, t1, ", ".join(f"{k}={v:.5g}" for k, v in ev.items()))
            if ckpt is not None and ((checkpoint_every and t1 % checkpoint_every == 0) or t1 == num_steps):
                ckpt.save(t1, state, history, evals)
                last_saved = str(ckpt.directory / str(t1))
    finally:
        bar.close()
        if ckpt is not None:
            ckpt.close()
    return TrainResult(state=state, history={k: np.asarray(v) for k, v in history.items()}, evals=evals)

