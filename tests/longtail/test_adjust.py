"""Adjusters against hand-computed values (arXiv 2409.17582 sec. 3-4; Menon et al. 2021 eq. 3)."""

import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml.longtail import (
    AdjustMethod,
    adjust,
    check_pairwise_angles,
    etf_angle,
    pairwise_angles,
    pairwise_kappa,
    predict,
)


def test_etf_angle_values():
    assert float(etf_angle(2)) == pytest.approx(math.pi)
    assert float(etf_angle(3)) == pytest.approx(2 * math.pi / 3)
    assert float(etf_angle(100)) == pytest.approx(math.acos(-1 / 99))
    with pytest.raises(ValueError, match="num_classes"):
        etf_angle(1)


def test_additive_and_multiplicative_by_hand():
    logits = jnp.array([[2.0, 1.0, 0.5]])
    counts = jnp.array([6.0, 3.0, 1.0])
    pi = np.array([0.6, 0.3, 0.1])
    ala = adjust(logits, counts, "additive", 0.5)
    np.testing.assert_allclose(ala[0], np.array([2.0, 1.0, 0.5]) - 0.5 * np.log(pi), rtol=1e-6)
    mla = adjust(logits, counts, AdjustMethod.MULTIPLICATIVE, 0.5)
    np.testing.assert_allclose(mla[0], np.array([2.0, 1.0, 0.5]) * pi**-0.5, rtol=1e-6)
    # by hand: ALA scores 2.2554, 1.6020, 1.6513 -> class 0; MLA 2.582, 1.826, 1.581 -> class 0
    assert int(predict(logits, counts, "additive", 0.5)[0]) == 0
    # a stronger multiplicative push flips to the tail class: 2*0.6^-2=5.56, 0.5*0.1^-2=50
    assert int(predict(logits, counts, "multiplicative", 2.0)[0]) == 2
    np.testing.assert_allclose(adjust(logits, counts, "none"), logits)


def test_pairwise_angles_and_kappa_by_hand():
    counts = jnp.array([4.0, 1.0, 1.0])
    theta = pairwise_angles(counts, 0.5)
    rho = 2 * math.pi / 3
    # a = n^0.5 = (2, 1, 1); theta[0,1] = rho * 1/3, theta[1,0] = rho * 2/3
    assert float(theta[0, 1]) == pytest.approx(rho / 3, rel=1e-6)
    assert float(theta[1, 0]) == pytest.approx(2 * rho / 3, rel=1e-6)
    assert float(theta[1, 2]) == pytest.approx(rho / 2, rel=1e-6)
    kappa = pairwise_kappa(counts, 0.5)
    expected01 = math.sin(rho / 3) + math.cos(rho) * math.sin(2 * rho / 3)
    assert float(kappa[0, 1]) == pytest.approx(expected01, rel=1e-5)


def test_pairwise_boundary_is_at_theta():
    """Feature at angle theta_{k,k'} from w_k in the (w_k, w_k') plane is exactly on the boundary."""
    k = 5
    rho = math.acos(-1 / (k - 1))
    counts = jnp.array([50.0, 20.0, 8.0, 3.0, 1.0])
    norms = jnp.array([1.0, 1.2, 0.9, 0.7, 1.1])
    theta = np.asarray(pairwise_angles(counts, 0.7, norms))
    kappa = np.asarray(pairwise_kappa(counts, 0.7, norms))
    for a, b in [(0, 4), (1, 3), (4, 2)]:
        phi = theta[a, b]
        # logits of h = (cos phi, sin phi) against w_a = e1, w_b = (cos rho, sin rho)
        fa, fb = math.cos(phi), math.cos(rho - phi)
        assert fa * kappa[a, b] == pytest.approx(fb * kappa[b, a], abs=1e-5)
        # slightly towards w_a: a wins; slightly towards w_b: b wins
        for eps, a_wins in [(-0.01, True), (0.01, False)]:
            fa, fb = math.cos(phi + eps), math.cos(rho - phi - eps)
            assert (fa * kappa[a, b] > fb * kappa[b, a]) == a_wins


def test_pairwise_reduces_to_argmax_for_balanced_counts():
    key = jax.random.PRNGKey(0)
    logits = jax.random.normal(key, (200, 7))
    counts = jnp.full((7,), 30.0)
    votes = adjust(logits, counts, "pairwise", 0.8)
    np.testing.assert_array_equal(np.asarray(predict(logits, counts, "pairwise", 0.8)), np.argmax(logits, -1))
    # votes are the rank: the top logit wins all K-1 duels
    np.testing.assert_allclose(np.max(votes, -1), 1.0)
    ranks = np.argsort(np.argsort(np.asarray(logits), -1), -1) / 6.0
    np.testing.assert_allclose(votes, ranks, atol=1e-6)


def test_pairwise_gamma_zero_is_argmax_and_votes_shape():
    logits = jax.random.normal(jax.random.PRNGKey(1), (3, 4, 6))
    counts = jnp.array([100.0, 40.0, 20.0, 9.0, 4.0, 2.0])
    votes = adjust(logits, counts, "pairwise", 0.0)
    assert votes.shape == (3, 4, 6)
    np.testing.assert_array_equal(np.asarray(predict(logits, counts, "pairwise", 0.0)), np.argmax(logits, -1))


def test_pairwise_favours_tail_on_a_tie():
    # equal logits: the tail class (wider region) wins every duel
    logits = jnp.ones((1, 4))
    counts = jnp.array([100.0, 30.0, 10.0, 3.0])
    assert int(predict(logits, counts, "pairwise", 0.5)[0]) == 3
    assert int(predict(logits, counts, "multiplicative", 0.5)[0]) == 3
    assert int(predict(logits, counts, "additive", 0.5)[0]) == 3


def test_pairwise_warns_when_angle_too_large():
    counts = np.array([1000.0, 1.0, 1.0])
    with pytest.warns(RuntimeWarning, match="pi/2"):
        largest = check_pairwise_angles(counts, 1.0)
    assert largest > math.pi / 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_pairwise_angles(np.full(10, 5.0), 1.0) == pytest.approx(math.acos(-1 / 9) / 2)


def test_adjust_is_jittable_and_validates():
    logits = jnp.zeros((2, 3))
    counts = jnp.array([3.0, 2.0, 1.0])
    f = jax.jit(lambda z, g: adjust(z, counts, "pairwise", g))
    assert f(logits, 0.5).shape == (2, 3)
    with pytest.raises(ValueError, match="unknown adjustment method"):
        adjust(logits, counts, "bogus", 1.0)
    with pytest.raises(ValueError, match="last axis"):
        adjust(jnp.zeros((2, 4)), counts, "additive", 1.0)
    with pytest.raises(ValueError, match="positive"):
        adjust(logits, jnp.array([3.0, 0.0, 1.0]), "multiplicative", 1.0)
