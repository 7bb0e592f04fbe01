"""Inference for proportions and categorical counts: Wilson intervals, bootstrap, chi-square.

* Wilson score interval for a binomial proportion (Wilson 1927; Brown, Cai & DasGupta,
  Statist. Sci. 16 (2001), Eq. (4)): centre ``(p + z^2/2n) / (1 + z^2/n)``, half-width
  ``z sqrt(p(1-p)/n + z^2/4n^2) / (1 + z^2/n)``.
* Percentile bootstrap confidence interval of any statistic (Efron & Tibshirani 1993, Ch. 13),
  resampled with a JAX key and vmapped.
* Pearson's chi-square goodness-of-fit test ``X^2 = sum (O - E)^2 / E`` with ``k - 1`` degrees
  of freedom; the p-value is the regularised upper incomplete gamma ``Q(df/2, X^2/2)``.

FairT2I (arXiv 2502.03826) compares generated attribute distributions with a target; these are
the standard tests used here for that comparison.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaincc, ndtri

__all__ = ["Interval", "ChiSquareResult", "wilson_interval", "bootstrap_ci", "chisquare_gof"]


class Interval(NamedTuple):
    """A point estimate with a two-sided confidence interval."""

    estimate: jax.Array
    low: jax.Array
    high: jax.Array


class ChiSquareResult(NamedTuple):
    """Pearson chi-square goodness-of-fit result."""

    statistic: jax.Array
    p_value: jax.Array
    dof: int


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must lie in (0, 1); got {level}. Use e.g. 0.95.")


def wilson_interval(successes: jax.Array | int, n: jax.Array | int, *, level: float = 0.95
                    ) -> Interval:
    """Wilson score interval for a binomial proportion.

    Args:
      successes: number of successes (scalar or array).
      n: number of trials (same shape), > 0.
      level: confidence level.

    Returns:
      ``Interval(estimate=successes/n, low, high)``, clipped to ``[0, 1]``.
    """
    _check_level(level)
    s = jnp.asarray(successes, dtype=jnp.float32)
    nn = jnp.asarray(n, dtype=jnp.float32)
    z = ndtri(1.0 - (1.0 - level) / 2.0)
    p = s / nn
    denom = 1.0 + z * z / nn
    centre = (p + z * z / (2.0 * nn)) / denom
    half = z * jnp.sqrt(p * (1.0 - p) / nn + z * z / (4.0 * nn * nn)) / denom
    return Interval(p, jnp.clip(centre - half, 0.0, 1.0), jnp.clip(centre + half, 0.0, 1.0))


def bootstrap_ci(key: jax.Array, data: jax.Array, statistic: Callable[[jax.Array], jax.Array], *,
                 num_resamples: int = 1000, level: float = 0.95) -> Interval:
    """Percentile bootstrap interval of ``statistic(data)`` (rows of ``data`` are resampled).

    Args:
      key: PRNG key.
      data: (n, ...) array; rows are the units resampled with replacement.
      statistic: pure function of an (n, ...) array returning a scalar; it is vmapped.
      num_resamples: number of bootstrap resamples.
      level: confidence level.

    Returns:
      ``Interval(estimate=statistic(data), low, high)``.
    """
    _check_level(level)
    if num_resamples < 2:
        raise ValueError(f"num_resamples must be >= 2; got {num_resamples}.")
    n = data.shape[0]
    idx = jax.random.randint(key, (num_resamples, n), 0, n)
    stats = jax.vmap(lambda i: statistic(data[i]))(idx)
    alpha = (1.0 - level) / 2.0
    return Interval(statistic(data), jnp.quantile(stats, alpha), jnp.quantile(stats, 1.0 - alpha))


def chisquare_gof(observed: jax.Array, expected_probs: jax.Array) -> ChiSquareResult:
    """Pearson chi-square goodness-of-fit test of counts against target probabilities.

    ``X^2 = sum_i (O_i - n p_i)^2 / (n p_i)``, ``X^2 ~ chi^2_{k-1}`` under ``H0`` for large counts
    (rule of thumb: every expected count >= 5). Matches ``scipy.stats.chisquare``.

    Args:
      observed: (k,) non-negative counts.
      expected_probs: (k,) target probabilities, all > 0, summing to 1.

    Returns:
      ``ChiSquareResult(statistic, p_value, dof=k-1)``.
    """
    o = jnp.asarray(observed, dtype=jnp.float32)
    p = jnp.asarray(expected_probs, dtype=jnp.float32)
    if o.ndim != 1 or o.shape != p.shape:
        raise ValueError(
            f"observed and expected_probs must be 1-D of equal length; got {o.shape} and {p.shape}."
        )
    if o.shape[0] < 2:
        raise ValueError("chi-square goodness of fit needs at least 2 categories.")
    if not isinstance(p, jax.core.Tracer):
        if bool(jnp.any(p <= 0)):
            raise ValueError("expected_probs must all be > 0 (a zero-probability category makes "
                             "X^2 undefined); drop that category or smooth the target.")
        if abs(float(jnp.sum(p)) - 1.0) > 1e-4:
            raise ValueError(f"expected_probs must sum to 1; they sum to {float(jnp.sum(p)):.6f}.")
    n = jnp.sum(o)
    e = n * p
    stat = jnp.sum((o - e) ** 2 / e)
    dof = o.shape[0] - 1
    return ChiSquareResult(stat, gammaincc(dof / 2.0, stat / 2.0), dof)
