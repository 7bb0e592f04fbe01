import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "experiments"))
import benign_attention as ba  # noqa: E402


def test_smoke_mode_runs_and_computes_every_claim_from_measurements():
    cfg = ba.get_config("smoke")
    res = ba.main(cfg)
    names = {c.name for c in res.claims}
    assert {"balanced_generalises", "large_noise_harmful", "large_signal_no_overfit", "heatmap_three_regions",
            "construction_interpolates"} <= names
    for c in res.claims:
        assert c.holds == ({">=": c.measured >= c.threshold, ">": c.measured > c.threshold,
                            "<": c.measured < c.threshold, "<=": c.measured <= c.threshold}[c.op]
                           and np.isfinite(c.measured))
    for k in ("balanced_train_acc", "large_noise_test_acc", "heatmap_cells"):
        assert 0.0 <= res.metrics[k] <= max(1.0, res.metrics["heatmap_cells"])
    assert res.metrics["heatmap_cells"] == len(cfg.heat_d) * len(cfg.heat_mu)
    assert set(res.figures) == {"attention_trajectories", "heatmap"}
    # the large-signal regime cannot fit its flipped labels even at smoke scale
    assert res.metrics["large_signal_noisy_fit"] < 1.0
    assert res.metrics["large_signal_test_acc"] >= 0.9


def test_same_seed_same_metrics():
    cfg = ba.get_config("smoke")
    a = ba.run_regime(cfg, "large_signal", 0)
    b = ba.run_regime(cfg, "large_signal", 0)
    assert a["train_acc"] == b["train_acc"] and a["test_acc"] == b["test_acc"]
    np.testing.assert_array_equal(a["history"]["loss"], b["history"]["loss"])
