"""The token-selection data model and toy attention model of benign overfitting in attention.

Sakamoto & Sato, "Benign Overfitting in Token Selection of Attention Mechanism", ICML 2025,
arXiv 2409.17625 (official code: keitaroskmt/benign-attention).

Data: a sample is ``X in R^{T x d}`` with rows ``x_t ~ N(0, I_d)`` plus signal: token 0 gets
``+mu_y`` (relevant), token 1 gets ``+rho mu_y`` and token 2 gets ``+rho mu_{-y}`` (weakly relevant),
with ``mu_{+1} = ||mu|| e_1`` and ``mu_{-1} = ||mu|| e_2``. Labels are ``y in {+1, -1}`` (the paper's
classes 1 and 2). Training labels are corrupted by flipping ``round(eta n / 2)`` labels per class.

Model: ``f(X) = nu^T X^T softmax(X W p)`` with ``nu = (mu_1 - mu_2) / ||mu_1 - mu_2|| / ||mu||``
fixed, ``W in R^{d x d}`` Kaiming-uniform initialised and ``p = 0`` initially; trained by full-batch
gradient descent on ``(W, p)`` with the logistic loss ``mean log(1 + exp(-y f(X)))``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "TokenSelectionData",
    "sample_tokens",
    "make_dataset",
    "nu_vector",
    "init_token_selection",
    "attention_probs",
    "apply_token_selection",
    "logistic_loss",
    "accuracy",
]


class TokenSelectionData(NamedTuple):
    """A labelled set: X (n, T, d); y (n,) observed labels in {+1, -1}; clean (n,) true labels;
    noisy (n,) bool, True where the observed label was flipped."""

    X: jax.Array
    y: jax.Array
    clean: jax.Array
    noisy: jax.Array


def sample_tokens(key: jax.Array, y: jax.Array, *, d: int, mu_norm: jax.Array | float, T: int = 8,
                  rho: float = 0.1) -> jax.Array:
    """Draw ``X`` (n, T, d) for true labels ``y`` (n,) in {+1, -1} following the data model.

    ``mu_norm`` may be a traced scalar (so sweeps can vmap over it); ``d`` and ``T`` are static.
    """
    if T < 3:
        raise ValueError(f"T must be >= 3 (relevant + two weakly relevant tokens), got {T}")
    if d < 2:
        raise ValueError(f"d must be >= 2 (mu_1 = ||mu|| e_1, mu_2 = ||mu|| e_2), got {d}")
    n = y.shape[0]
    X = jax.random.normal(key, (n, T, d))
    pos = (y > 0).astype(X.dtype)
    e1, e2 = jax.nn.one_hot(0, d)[None, :], jax.nn.one_hot(1, d)[None, :]
    mu_y = mu_norm * (pos[:, None] * e1 + (1.0 - pos)[:, None] * e2)
    mu_not_y = mu_norm * (pos[:, None] * e2 + (1.0 - pos)[:, None] * e1)
    X = X.at[:, 0, :].add(mu_y)
    X = X.at[:, 1, :].add(rho * mu_y)
    X = X.at[:, 2, :].add(rho * mu_not_y)
    return X


def make_dataset(key: jax.Array, *, n: int, d: int, mu_norm: jax.Array | float, T: int = 8, rho: float = 0.1,
                 noise_rate: float = 0.0) -> TokenSelectionData:
    """A balanced set of ``n`` samples (n/2 per class) with ``round(noise_rate n / 2)`` flipped
    labels per class (the paper: n = 20, noise_rate = 0.2, so 2 per class)."""
    if n < 2 or n % 2:
        raise ValueError(f"n must be an even number >= 2 (balanced classes), got {n}")
    if not 0.0 <= noise_rate < 0.5:
        raise ValueError(f"noise_rate must be in [0, 0.5), got {noise_rate}")
    k_x, k_flip = jax.random.split(key)
    half = n // 2
    clean = jnp.concatenate([jnp.ones(half), -jnp.ones(half)])
    X = sample_tokens(k_x, clean, d=d, mu_norm=mu_norm, T=T, rho=rho)
    n_flip = int(round(noise_rate * half))
    noisy = jnp.zeros(n, bool)
    if n_flip:
        ka, kb = jax.random.split(k_flip)
        ia = jax.random.choice(ka, half, (n_flip,), replace=False)
        ib = half + jax.random.choice(kb, half, (n_flip,), replace=False)
        noisy = noisy.at[ia].set(True).at[ib].set(True)
    y = jnp.where(noisy, -clean, clean)
    return TokenSelectionData(X=X, y=y, clean=clean, noisy=noisy)


def nu_vector(d: int, mu_norm: jax.Array | float) -> jax.Array:
    """The fixed head ``nu = (mu_1 - mu_2) / ||mu_1 - mu_2|| / ||mu|| = (e_1 - e_2) / (sqrt(2) ||mu||)``."""
    return (jax.nn.one_hot(0, d) - jax.nn.one_hot(1, d)) / (math.sqrt(2.0) * mu_norm)


def init_token_selection(key: jax.Array, d: int) -> dict:
    """``{"W": (d, d), "p": (d,)}``: W ~ ``U(-1/sqrt(d), 1/sqrt(d))``, which is PyTorch's
    ``kaiming_uniform_(W, a=sqrt(5))`` used by the official code (gain sqrt(2 / (1 + 5)) times
    sqrt(3 / fan_in)), and p = 0."""
    bound = 1.0 / math.sqrt(d)
    return {"W": jax.random.uniform(key, (d, d), minval=-bound, maxval=bound), "p": jnp.zeros((d,))}


def attention_probs(params: dict, X: jax.Array) -> jax.Array:
    """Token-selection probabilities ``softmax(X W p)``, shape (n, T) for X (n, T, d)."""
    q = params["W"] @ params["p"]
    return jax.nn.softmax(X @ q, axis=-1)


def apply_token_selection(params: dict, X: jax.Array, nu: jax.Array) -> jax.Array:
    """``f(X) = nu^T X^T softmax(X W p)`` for X (n, T, d) -> (n,)."""
    s = attention_probs(params, X)
    return jnp.einsum("nt,ntd,d->n", s, X, nu)


def logistic_loss(margins: jax.Array) -> jax.Array:
    """Mean logistic loss ``mean log(1 + exp(-m))`` of margins ``m = y f(X)``."""
    return jnp.mean(jax.nn.softplus(-margins))


def accuracy(scores: jax.Array, y: jax.Array) -> jax.Array:
    """Fraction of ``sign(scores) == y`` (a zero score counts as wrong)."""
    return jnp.mean((scores * y) > 0)
