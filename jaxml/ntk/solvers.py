"""Kernel "solvers": predictors fitted on a (possibly partial) NTK, scored on held-out data.

Tomihari & Sato (2024, arXiv 2405.16747, Sec. 5 and the official code) fit simple kernel machines on
each NTK component (pre-train-effective, FT-effective, their sum) to ask how much of the task each
component alone can express. With an (n, n, C, C) training kernel ``K`` flattened to an
``nC x nC`` matrix and the test kernel ``K_*`` (m, n, C, C), both solvers predict ``f_* = K_* alpha``:

* least squares (kernel ridge regression on one-hot targets ``Y``):
  ``alpha = (K + lam I)^{-1} vec(Y)``;
* logistic regression (kernel logistic regression): ``alpha`` minimises
  ``mean_i CE(softmax((K alpha)_i), y_i) + (lam / 2) alpha^T K alpha`` (convex; solved with L-BFGS).

Kernels are first divided by their mean diagonal so that one ``reg`` suits components whose scales
differ by orders of magnitude (the FT-effective part scales with the head norm squared);
``lam = reg`` after this normalisation.
"""

from __future__ import annotations

import enum
import functools

import jax
import jax.numpy as jnp
import optax

__all__ = ["KernelSolver", "fit_predict", "kernel_accuracy"]


class KernelSolver(enum.Enum):
    """Kernel machine used to score an NTK component (see module docstring)."""

    LEAST_SQUARES = "least_squares"
    LOGISTIC_REGRESSION = "logistic_regression"


def _check(k_train: jax.Array, y_train: jax.Array, k_test: jax.Array) -> tuple[int, int, int]:
    if k_train.ndim != 4 or k_train.shape[0] != k_train.shape[1] or k_train.shape[2] != k_train.shape[3]:
        raise ValueError(f"k_train must be (n, n, C, C), got {k_train.shape}.")
    n, _, c, _ = k_train.shape
    if k_test.ndim != 4 or k_test.shape[1:] != (n, c, c):
        raise ValueError(f"k_test must be (m, {n}, {c}, {c}) to match k_train, got {k_test.shape}.")
    if y_train.shape != (n,):
        raise ValueError(f"y_train must be ({n},) integer labels, got {y_train.shape}.")
    return n, c, k_test.shape[0]


@functools.partial(jax.jit, static_argnames=("solver", "steps"))
def fit_predict(
    k_train: jax.Array,
    y_train: jax.Array,
    k_test: jax.Array,
    *,
    solver: KernelSolver = KernelSolver.LEAST_SQUARES,
    reg: float = 1e-3,
    steps: int = 300,
) -> jax.Array:
    """Fit a kernel machine on ``(k_train, y_train)`` and return test logits (m, C).

    Args:
      k_train: (n, n, C, C) training kernel.
      y_train: (n,) integer labels in [0, C).
      k_test: (m, n, C, C) kernel between test and training examples.
      solver: :class:`KernelSolver`.
      reg: ridge strength relative to the kernel's mean diagonal (must be > 0).
      steps: L-BFGS iterations for logistic regression.

    Returns:
      (m, C) predicted logits (scores for least squares).
    """
    if isinstance(reg, (int, float)) and not reg > 0:
        raise ValueError(f"reg must be > 0, got {reg}.")
    n, c, m = _check(k_train, y_train, k_test)
    k = jnp.transpose(k_train, (0, 2, 1, 3)).reshape(n * c, n * c)
    ks = jnp.transpose(k_test, (0, 2, 1, 3)).reshape(m * c, n * c)
    scale = jnp.maximum(jnp.mean(jnp.diag(k)), jnp.finfo(k.dtype).tiny)
    k, ks = k / scale, ks / scale
    k = 0.5 * (k + k.T)
    y = jax.nn.one_hot(y_train, c, dtype=k.dtype)
    if solver == KernelSolver.LEAST_SQUARES:
        alpha = jnp.linalg.solve(k + reg * jnp.eye(n * c, dtype=k.dtype), y.reshape(-1))
        return (ks @ alpha).reshape(m, c)

    def loss(alpha: jax.Array) -> jax.Array:
        f = (k @ alpha).reshape(n, c)
        ce = -jnp.mean(jnp.sum(y * jax.nn.log_softmax(f, axis=-1), axis=-1))
        return ce + 0.5 * reg * alpha @ (k @ alpha)

    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(loss)

    def step(carry, _):
        alpha, state = carry
        value, grad = value_and_grad(alpha, state=state)
        updates, state = opt.update(grad, state, alpha, value=value, grad=grad, value_fn=loss)
        return (optax.apply_updates(alpha, updates), state), None

    alpha0 = jnp.zeros((n * c,), k.dtype)
    (alpha, _), _ = jax.lax.scan(step, (alpha0, opt.init(alpha0)), None, length=steps)
    return (ks @ alpha).reshape(m, c)


def kernel_accuracy(k_train: jax.Array, y_train: jax.Array, k_test: jax.Array, y_test: jax.Array, *,
                    solver: KernelSolver = KernelSolver.LEAST_SQUARES, reg: float = 1e-3) -> float:
    """Test accuracy of :func:`fit_predict`."""
    logits = fit_predict(k_train, y_train, k_test, solver=solver, reg=reg)
    return float(jnp.mean(jnp.argmax(logits, axis=-1) == y_test))
