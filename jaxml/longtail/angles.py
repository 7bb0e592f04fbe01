"""Decision-boundary angles implied by the post-hoc adjusters (arXiv 2409.17582, sec. 5).

Geometry: under neural collapse the classifier vectors ``w_k`` form a simplex ETF; two of them
span a plane in which they make the angle ``rho = arccos(-1/(K-1))``. A pairwise rule of the form
``A f_k = B f_{k'}`` (``f_k = w_k . h``) is a boundary through the origin; its angle ``theta``
measured from ``w_k`` towards ``w_{k'}`` solves ``A cos(theta) = B cos(rho - theta)``.

With ``r = n_{k'} / n_k`` (count of the *other* class over this class's count):

* NC-aware optimum (1vs1): ``theta*_{k,k'} = rho a_{k'} / (a_k + a_{k'})``, ``a = n**gamma ||m||``,
  i.e. ``rho r**g / (r**g + nu)`` with ``nu = ||m_k|| / ||m_{k'}||``;
* MLA (``A = n_k**-g, B = n_{k'}**-g``): ``theta^x = arctan((r**g - cos rho) / sin rho)``.
  The notes transcribe this as ``arctan((r**g + sin(pi/2 - rho)) / cos(pi/2 - rho))``; since
  ``sin(pi/2 - rho) = cos(rho)``, that form gives ``rho/2`` only when ``rho = pi/2`` and, e.g.,
  30 instead of 60 degrees for ``K = 3`` with balanced counts. We use the form derived above (equal
  to the notes' with ``rho - pi/2`` in place of ``pi/2 - rho``), which gives ``rho/2`` at ``r = 1``;
* ALA (``f_k - f_{k'} = g log(n_k / n_{k'})`` at feature norm ``m_bar``):
  ``theta^+ = rho/2 - arcsin(g log(n_k/n_{k'}) / (2 m_bar sin(rho/2)))``. The arcsin argument is
  clipped to ``[-1, 1]`` (beyond it one class wins the whole circle of radius ``m_bar``). ALA depends
  on the logit scale ``m_bar`` (feature norm times classifier norm); MLA does not.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxml.longtail.adjust import etf_angle

__all__ = [
    "nc_boundary_angle",
    "mla_boundary_angle",
    "ala_boundary_angle",
    "fit_gamma",
]


def nc_boundary_angle(
    count_ratio: jax.Array, gamma: float | jax.Array, num_classes: int, norm_ratio: float | jax.Array = 1.0
) -> jax.Array:
    """NC-aware optimal angle ``theta*_{k,k'} = rho r**g / (r**g + nu)`` (arXiv 2409.17582, sec. 4).

    Args:
      count_ratio: ``r = n_{k'} / n_k`` (any shape, positive).
      gamma: ``gamma_1v1``.
      num_classes: ``K`` (sets ``rho``).
      norm_ratio: ``nu = ||m_k|| / ||m_{k'}||`` (1 under equal class-mean norms).

    Returns:
      Angles (radians) from class ``k``'s mean, same shape as ``count_ratio``.
    """
    rho = etf_angle(num_classes)
    r = jnp.asarray(count_ratio, jnp.float32)
    return rho * jax.nn.sigmoid(gamma * jnp.log(r) - jnp.log(norm_ratio))


def mla_boundary_angle(count_ratio: jax.Array, gamma: float | jax.Array, num_classes: int) -> jax.Array:
    """Angle implied by MLA: ``theta^x = arctan((r**g - cos rho) / sin rho)`` (arXiv 2409.17582, sec. 5).

    See the module docstring for the sign convention relative to the paper notes.

    Args:
      count_ratio: ``r = n_{k'} / n_k``.
      gamma: ``gamma_x``.
      num_classes: ``K``.

    Returns:
      Angles in ``(0, rho)`` (radians), same shape as ``count_ratio``.
    """
    rho = etf_angle(num_classes)
    r = jnp.asarray(count_ratio, jnp.float32)
    # arctan2 keeps the branch in (0, pi) when the numerator is positive and sin(rho) > 0.
    return jnp.arctan2(r**gamma - jnp.cos(rho), jnp.sin(rho))


def ala_boundary_angle(
    count_ratio: jax.Array, gamma: float | jax.Array, num_classes: int, mean_norm: float | jax.Array
) -> jax.Array:
    """Angle implied by ALA: ``theta^+ = rho/2 - arcsin(g log(n_k/n_{k'}) / (2 m_bar sin(rho/2)))``.

    (arXiv 2409.17582, sec. 5.) The arcsin argument is clipped to ``[-1, 1]``.

    Args:
      count_ratio: ``r = n_{k'} / n_k`` (so ``log(n_k / n_{k'}) = -log r``).
      gamma: ``gamma_+``.
      num_classes: ``K``.
      mean_norm: ``m_bar``, the sample-weighted mean feature norm (times the classifier norm).

    Returns:
      Angles (radians), same shape as ``count_ratio``.
    """
    rho = etf_angle(num_classes)
    r = jnp.asarray(count_ratio, jnp.float32)
    arg = gamma * (-jnp.log(r)) / (2.0 * mean_norm * jnp.sin(rho / 2.0))
    return rho / 2.0 - jnp.arcsin(jnp.clip(arg, -1.0, 1.0))


def fit_gamma(
    angle_fn: Callable[[jax.Array, jax.Array], jax.Array], target: jax.Array, count_ratio: jax.Array, gammas: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Grid least-squares fit of a method's gamma to target boundary angles.

    ``gamma* = argmin_g mean_r (angle_fn(r, g) - target(r))**2`` over the grid ``gammas``.

    Args:
      angle_fn: ``(count_ratio, gamma) -> angles``, e.g. ``partial(mla_boundary_angle, num_classes=K)``.
      target: angles to match, same shape as ``count_ratio``.
      count_ratio: the ratios ``r`` at which to compare.
      gammas: ``(G,)`` candidate values.

    Returns:
      ``(best_gamma, rms_error)`` with the root-mean-square angle error at the best gamma.
    """
    gammas = jnp.asarray(gammas, jnp.float32)
    # eager vmap: its primitives compile once per shape and are reused across calls
    errs = jax.vmap(lambda g: jnp.sqrt(jnp.mean((angle_fn(count_ratio, g) - target) ** 2)))(gammas)
    best = jnp.argmin(errs)
    return gammas[best], errs[best]
