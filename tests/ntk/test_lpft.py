"""jaxml.ntk.lpft: the decomposition sums to the full classifier NTK; head-norm scaling; solvers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml.ntk import (KernelSolver, NtkImplementation, empirical_ntk, fit_predict, linear_head_apply,
                       lpft_decomposition, pretrain_component)


def _features(enc, x):
    return jnp.tanh(x @ enc["w1"]) @ enc["w2"]


def _setup():
    k = jax.random.split(jax.random.key(0), 5)
    enc = {"w1": jax.random.normal(k[0], (6, 10)) / 2, "w2": jax.random.normal(k[1], (10, 4)) / 3}
    head = {"kernel": jax.random.normal(k[2], (4, 3)), "bias": 0.1 * jnp.ones(3)}
    return enc, head, jax.random.normal(k[3], (5, 6)), jax.random.normal(k[4], (4, 6))


def test_decomposition_sums_to_full_ntk():
    enc, head, x1, x2 = _setup()
    dec = lpft_decomposition(_features, enc, head, x1, x2)
    full = empirical_ntk(linear_head_apply(_features), {"encoder": enc, "head": head}, x1, x2,
                         implementation=NtkImplementation.JACOBIAN_CONTRACTION)
    np.testing.assert_allclose(np.asarray(dec.total), np.asarray(full), rtol=1e-4, atol=1e-4)
    head_only = empirical_ntk(linear_head_apply(_features), {"encoder": enc, "head": head}, x1, x2, wrt=["head"])
    np.testing.assert_allclose(np.asarray(dec.pretrain), np.asarray(head_only), rtol=1e-4, atol=1e-4)
    assert dec.ratio == pytest.approx(dec.ft_norm / dec.pretrain_norm)


def test_ft_component_scales_with_head_norm_squared():
    enc, head, x1, _ = _setup()
    small = lpft_decomposition(_features, enc, head, x1)
    big = lpft_decomposition(_features, enc, {"kernel": 3 * head["kernel"], "bias": head["bias"]}, x1)
    np.testing.assert_allclose(np.asarray(big.ft), 9 * np.asarray(small.ft), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(big.pretrain), np.asarray(small.pretrain))
    assert big.head_norm == pytest.approx(3 * small.head_norm, rel=1e-6)


def test_pretrain_component_closed_form():
    phi = jnp.array([[1.0, 0.0], [0.5, 2.0]])
    k = pretrain_component(phi, phi, 2)
    assert k.shape == (2, 2, 2, 2)
    assert float(k[0, 1, 0, 0]) == pytest.approx(1.5) and float(k[0, 1, 0, 1]) == 0.0


@pytest.mark.parametrize("solver", list(KernelSolver))
def test_solvers_fit_a_separable_problem(solver):
    # 150 train / 50 test points, labels = sign of a linear function with margin
    x = jax.random.normal(jax.random.key(4), (200, 3))
    x = x.at[:, 0].add(jnp.sign(x[:, 0]))
    y = (x[:, 0] > 0).astype(jnp.int32)
    k = pretrain_component(x, x, 2)  # linear kernel (x . x' + 1) I_2
    logits = fit_predict(k[:150, :150], y[:150], k[150:, :150], solver=solver, reg=1e-3)
    assert logits.shape == (50, 2)
    assert float(jnp.mean(jnp.argmax(logits, -1) == y[150:])) >= 0.95
    with pytest.raises(ValueError, match="k_test must be"):
        fit_predict(k[:150, :150], y[:150], k[150:, :20], solver=solver)
