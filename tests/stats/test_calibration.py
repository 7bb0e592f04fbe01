"""jaxml.stats.calibration: hand-computed ECE/MCE/Brier/NLL and temperature recovery."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml.stats import calibration as cal


def test_metrics_by_hand():
    # confidences 0.9, 0.9, 0.6, 0.6 (2 classes); the first three are correct
    p = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    logits = jnp.log(jnp.asarray(p))
    labels = jnp.array([0, 0, 0, 1 - 1])  # last: predicted 1, label 0 -> wrong
    # bins (15): 0.9 -> bin 13 (acc 1, conf .9); 0.6 -> bin 8 (acc .5, conf .6)
    assert float(cal.ece(logits, labels)) == pytest.approx(0.5 * 0.1 + 0.5 * 0.1, abs=1e-6)
    assert float(cal.mce(logits, labels)) == pytest.approx(0.1, abs=1e-6)
    brier = np.mean([2 * 0.1**2, 2 * 0.1**2, 2 * 0.4**2, 2 * 0.6**2])
    assert float(cal.brier(logits, labels)) == pytest.approx(brier, abs=1e-6)
    assert float(cal.nll(logits, labels)) == pytest.approx(-np.mean(np.log([0.9, 0.9, 0.6, 0.4])), abs=1e-6)
    m = cal.calibration_metrics(logits, labels)
    assert m["accuracy"] == pytest.approx(0.75) and m["confidence"] == pytest.approx(0.75, abs=1e-6)


def test_temperature_scaling_recovers_known_temperature():
    # 20,000 examples: labels drawn from softmax(z); observed logits are z * 3 (over-confident).
    n, c, t_true = 20_000, 4, 3.0
    kz, ky = jax.random.split(jax.random.key(0))
    z = 1.5 * jax.random.normal(kz, (n, c))
    y = jax.random.categorical(ky, z)
    t = float(cal.fit_temperature(t_true * z, y))
    assert t == pytest.approx(t_true, rel=0.05)
    before, after = cal.ece(t_true * z, y), cal.ece(t_true * z / t, y)
    assert float(after) < 0.02 < float(before)


def test_errors():
    with pytest.raises(ValueError, match="logits must be"):
        cal.ece(jnp.zeros(3), jnp.zeros(3, jnp.int32))
    with pytest.raises(ValueError, match="labels must be"):
        cal.nll(jnp.zeros((3, 2)), jnp.zeros(2, jnp.int32))
    with pytest.raises(ValueError, match="t_min < t_max"):
        cal.fit_temperature(jnp.zeros((3, 2)), jnp.zeros(3, jnp.int32), t_min=2.0, t_max=1.0)
