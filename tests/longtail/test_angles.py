"""Implied boundary angles: closed forms and their defining boundary equations."""

import functools
import math

import jax.numpy as jnp
import numpy as np
import pytest

from jaxml.longtail import ala_boundary_angle, fit_gamma, mla_boundary_angle, nc_boundary_angle


@pytest.mark.parametrize("k", [3, 10, 100])
def test_balanced_counts_give_half_rho(k):
    rho = math.acos(-1 / (k - 1))
    assert float(mla_boundary_angle(1.0, 1.3, k)) == pytest.approx(rho / 2, rel=1e-5)
    assert float(ala_boundary_angle(1.0, 1.3, k, 2.0)) == pytest.approx(rho / 2, rel=1e-5)
    assert float(nc_boundary_angle(1.0, 0.5, k)) == pytest.approx(rho / 2, rel=1e-5)


def test_mla_angle_solves_the_mla_boundary():
    k, g = 10, 0.8
    rho = math.acos(-1 / (k - 1))
    n_k, n_o = 7.0, 90.0
    theta = float(mla_boundary_angle(n_o / n_k, g, k))
    # on the boundary: f_k n_k^-g == f_o n_o^-g with f = cos of the angle to each class vector
    lhs = math.cos(theta) * n_k**-g
    rhs = math.cos(rho - theta) * n_o**-g
    assert lhs == pytest.approx(rhs, rel=1e-5)
    assert 0 < theta < rho


def test_ala_angle_solves_the_ala_boundary_and_depends_on_norm():
    k, g, m = 10, 0.3, 3.0
    rho = math.acos(-1 / (k - 1))
    n_k, n_o = 50.0, 5.0
    theta = float(ala_boundary_angle(n_o / n_k, g, k, m))
    lhs = m * math.cos(theta) - g * math.log(n_k)
    rhs = m * math.cos(rho - theta) - g * math.log(n_o)
    assert lhs == pytest.approx(rhs, abs=1e-5)
    assert float(ala_boundary_angle(n_o / n_k, g, k, 2 * m)) != pytest.approx(theta)
    # MLA is scale-free: no norm argument at all, and the head class gets the smaller angle
    assert theta < rho / 2


def test_nc_angle_closed_form():
    k = 100
    rho = math.acos(-1 / 99)
    # r = 4, gamma = 0.5 -> r^g = 2 -> theta = rho * 2/3
    assert float(nc_boundary_angle(4.0, 0.5, k)) == pytest.approx(2 * rho / 3, rel=1e-6)
    # a norm ratio of 2 (this class twice the norm) halves the effective weight: rho * 2/(2+2)
    assert float(nc_boundary_angle(4.0, 0.5, k, 2.0)) == pytest.approx(rho / 2, rel=1e-6)


def test_fit_gamma_recovers_a_known_gamma():
    ratios = jnp.logspace(-2, 2, 41)
    target = mla_boundary_angle(ratios, 0.9, 100)
    g, err = fit_gamma(functools.partial(mla_boundary_angle, num_classes=100), target, ratios, jnp.linspace(0, 2, 41))
    assert float(g) == pytest.approx(0.9, abs=1e-6)
    assert float(err) < 1e-6
    # MLA tracks the NC-optimal curve much better than a line would: small error at the best fit
    nc = nc_boundary_angle(ratios, 0.5, 100)
    g2, err2 = fit_gamma(functools.partial(mla_boundary_angle, num_classes=100), nc, ratios, jnp.linspace(0, 2, 201))
    assert np.degrees(float(err2)) < 3.0
