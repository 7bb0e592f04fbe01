"""Smoke run of the physics_variety experiment: structure, d_V values, finite metrics, claims."""

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "experiments"))
import physics_variety  # noqa: E402


def _load():
    return physics_variety


def test_smoke_run():
    mod = _load()
    cfg = mod.get_config("smoke")
    res = mod.main(cfg)
    m = res.metrics
    # the dimension estimates are exact even at smoke scale
    for d in cfg.osc_dims:
        assert m[f"oscillator.d_V.{d}"] == 2 and m[f"oscillator.weak.d_V.{d}"] == 2
        assert m[f"oscillator.d_V_exact.{d}"] == 2
    for dx in cfg.diff_space:
        d = 2 * dx * cfg.diff_time + 1
        assert m[f"diffusion.d_V.{d}"] == 5 and m[f"diffusion.weak.d_V.{d}"] == 5
    assert m[f"bernoulli.linear.h{cfg.bern_inv_h[0]}.d_V"] == 1
    assert m[f"bernoulli.nonlinear.h{cfg.bern_inv_h[0]}.d_V"] == 1
    assert m["bernoulli.nonlinear.h10.d_V_linear_part"] <= m["bernoulli.nonlinear.h10.d_V"]
    assert all(math.isfinite(v) for v in m.values())
    # PILR uses the physics: below ridge on the Bernoulli data (d_V = 1 vs d = 11)
    assert m["bernoulli.linear.h10.pilr.mse"] < m["bernoulli.linear.h10.ridge.mse"]
    # the training-mean reference: the constant predictor cannot beat the noise floor, the
    # physics-informed fit does, and the ceiling is its MSE over ridge's at the smallest d
    for name, ns, d0 in (("oscillator", cfg.osc_n, cfg.osc_dims[0]),
                         ("diffusion", cfg.diff_n, 2 * cfg.diff_space[0] * cfg.diff_time + 1)):
        mean_mse = m[f"{name}.mean_predictor.mse.n{ns[0]}"]
        assert mean_mse > cfg.sigma ** 2
        assert m[f"{name}.pilr_strong.mse.d{d0}.n{ns[0]}"] < mean_mse
        assert m[f"{name}.ridge_growth_ceiling_smallest_n"] == pytest.approx(
            mean_mse / m[f"{name}.ridge.mse.d{d0}.n{ns[0]}"])
    names = {c.name for c in res.claims}
    assert {"oscillator_dV_is_2", "diffusion_dV_is_5", "oscillator_pilr_flat", "oscillator_ridge_grows",
            "diffusion_pilr_flat", "diffusion_ridge_grows", "bernoulli_pilr_small", "bernoulli_pilr_10x",
            "sweep_rises_with_dV", "bernoulli_dV_is_1"} <= names
    for c in res.claims:
        assert c.holds == (math.isfinite(c.measured) and {"<": c.measured < c.threshold, "<=": c.measured <= c.threshold,
                                                          ">": c.measured > c.threshold, ">=": c.measured >= c.threshold}[c.op])
    assert set(res.figures) == {"figure1_mse_vs_d", "table1_bernoulli_and_sweep"}
    assert "Table 1" in " ".join(res.tables)
    assert any("training-mean predictor" in t for t in res.tables)


def test_config_validation():
    mod = _load()
    with pytest.raises(ValueError, match="osc_dims"):
        mod.Config(osc_dims=(4, 9))
    with pytest.raises(ValueError, match="num_ics"):
        mod.Config(num_ics=0)
    with pytest.raises(ValueError, match="sweep_dropped"):
        mod.Config(sweep_inv_h=10, sweep_dropped=(0, 10))
