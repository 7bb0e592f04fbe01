"""The benign-overfitting solution of token selection (Sakamoto & Sato, arXiv 2409.17625, the
existence theorem of Section 4).

With ``W = I_d`` the model is ``f(X) = nu^T X^T softmax(X p)``. The construction sets

    p = lambda * ( (mu_1 + mu_2) / ||mu||^2  +  sum_{j noisy} beta_j xi_j / ||xi_j||^2 )

where ``xi_j`` is, for each noisy training sample j, the non-relevant token whose projection on
``nu`` has the sign of the observed (flipped) label, and ``beta_j > 1`` is a margin. On clean data
token 0 scores about ``lambda`` and the other tokens about ``lambda * O(1/sqrt(d))`` (near-orthogonal
noise), so attention selects the relevant token; on noisy sample j the chosen token scores about
``lambda * beta_j`` and wins, so the noisy label is fitted through a noise token. As
``lambda -> infinity`` softmax becomes hard selection. The departure from the paper: the
paper's beta_j solve a linear system for exact margins; here beta_j is one constant, which
is enough to interpolate and is what the numerical check measures.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["benign_solution"]


def benign_solution(X: jax.Array, y: jax.Array, noisy: jax.Array, nu: jax.Array, mu_norm: float, *,
                    beta: float = 2.0, scale: float = 50.0) -> dict:
    """Parameters ``{"W": I_d, "p": ...}`` that fit every training label (noisy ones through a
    noise token) and select the relevant token on clean data.

    Args:
      X: training tokens (n, T, d).
      y: observed labels (n,) in {+1, -1}.
      noisy: (n,) bool, which labels were flipped.
      nu: the fixed head (d,).
      mu_norm: ``||mu||``.
      beta: score of the chosen noise token relative to the relevant one (> 1).
      scale: lambda, the overall scale of p (softmax sharpness).

    Returns:
      ``{"W": (d, d) identity, "p": (d,)}``.
    """
    n, T, d = X.shape
    signal = (jax.nn.one_hot(0, d) + jax.nn.one_hot(1, d)) / mu_norm  # (mu_1 + mu_2) / ||mu||^2
    proj = jnp.einsum("ntd,d->nt", X, nu) * y[:, None]  # agreement of each token with the observed label
    proj = proj.at[:, 0].set(-jnp.inf)  # never the relevant token
    t_star = jnp.argmax(proj, axis=1)
    xi = X[jnp.arange(n), t_star]  # (n, d)
    xi = xi / jnp.sum(xi * xi, axis=1, keepdims=True)
    p = signal + beta * jnp.sum(jnp.where(noisy[:, None], xi, 0.0), axis=0)
    return {"W": jnp.eye(d), "p": scale * p}
