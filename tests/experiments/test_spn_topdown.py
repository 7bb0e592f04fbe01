"""spn_topdown in smoke mode: result structure and sanity of the measured values."""

import math

import pytest

from jaxml.data import data_required, data_root
from jaxml.experiment import load_experiment


def _module():
    return load_experiment("spn_topdown")


def test_smoke_run():
    if not (data_root() / "debd" / "nltcs").is_dir():
        if data_required():
            pytest.fail(f"JAXML_REQUIRE_DATA=1 but {data_root()}/debd/nltcs is missing")
        pytest.skip("DEBD data not available (set JAXML_DATA)")
    mod = _module()
    cfg = mod.get_config("smoke")
    result = mod.main(cfg)
    m = result.metrics
    for key in ("top_down.test_ll", "bottom_up.test_ll", "independent.test_ll",
                "top_down.sec_per_sweep", "bottom_up.sec_per_sweep", "speedup"):
        assert math.isfinite(m[f"nltcs.{key}"]), key
    # log-likelihoods of 16 binary variables lie in (-16 log 2 - slack, 0)
    for key in ("top_down.test_ll", "bottom_up.test_ll", "independent.test_ll"):
        assert -16.0 < m[f"nltcs.{key}"] < 0.0
    assert m["nltcs.top_down.sweeps"] >= 1 and m["nltcs.bottom_up.sweeps"] >= 1
    assert 0.0 < m["nltcs.top_down.acceptance"] <= 1.0
    names = {c.name for c in result.claims}
    assert names == {"speedup_10x", "equal_time_ll", "top_down_beats_independent",
                     "bottom_up_beats_independent", "bottom_up_cost_linear", "top_down_cost_sublinear"}
    for c in result.claims:
        assert isinstance(c.holds, bool) and math.isfinite(c.measured)
    assert set(result.figures) == {"test_ll_vs_time", "cost_vs_size"}
    assert len(result.tables) == 3


def test_config_validation_names_the_field():
    mod = _module()
    with pytest.raises(ValueError, match="num_sums"):
        mod.Config(num_sums=0)
    with pytest.raises(ValueError, match="scaling_repetitions"):
        mod.Config(scaling_repetitions=(4,))
