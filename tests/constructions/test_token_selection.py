import jax
import numpy as np
import pytest

from jaxml.constructions.token_selection import benign_solution
from jaxml.tasks.token_selection import accuracy, apply_token_selection, make_dataset, nu_vector


def test_construction_interpolates_noisy_labels_and_classifies_clean_test_data():
    d, mu = 2000, 20.0
    tr = make_dataset(jax.random.key(0), n=20, d=d, mu_norm=mu, noise_rate=0.2)
    te = make_dataset(jax.random.key(1), n=500, d=d, mu_norm=mu)
    assert int(tr.noisy.sum()) == 4
    nu = nu_vector(d, mu)
    params = benign_solution(tr.X, tr.y, tr.noisy, nu, mu)
    f_tr = apply_token_selection(params, tr.X, nu)
    assert float(accuracy(f_tr, tr.y)) == 1.0  # noisy labels included
    assert float(accuracy(f_tr, tr.clean)) == pytest.approx(0.8)  # so it disagrees with the truth on the 4 flipped samples
    assert float(accuracy(apply_token_selection(params, te.X, nu), te.clean)) >= 0.95


def test_data_model_signal_geometry():
    ds = make_dataset(jax.random.key(3), n=400, d=50, mu_norm=30.0, rho=0.1)
    X, y = np.asarray(ds.X), np.asarray(ds.clean)
    pos = y > 0
    np.testing.assert_allclose(X[pos, 0, 0].mean(), 30.0, atol=0.5)   # relevant token carries mu_y
    np.testing.assert_allclose(X[~pos, 0, 1].mean(), 30.0, atol=0.5)
    np.testing.assert_allclose(X[pos, 2, 1].mean(), 3.0, atol=0.5)    # weakly relevant carries rho mu_{-y}
    np.testing.assert_allclose(X[:, 3:, 2:].std(), 1.0, atol=0.05)    # the rest is N(0, I)
    nu = np.asarray(nu_vector(50, 30.0))
    np.testing.assert_allclose(nu @ np.eye(50)[0] * 30.0, 1 / np.sqrt(2), rtol=1e-6)
