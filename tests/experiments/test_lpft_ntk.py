"""Smoke run of experiments/lpft_ntk.py (tiny random BERT, hash tokenizer, real SST-2/Yelp rows)."""

import math
import sys
from pathlib import Path

import pytest

from jaxml.data import data_required, data_root

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "experiments"))
import lpft_ntk  # noqa: E402


def _module():
    return lpft_ntk


def test_smoke_run():
    for rel in ("sst2/train.tsv", "sst2/dev.tsv", "sst2/test.tsv", "yelp-sentences/yelp_labelled.txt"):
        if not (data_root() / rel).is_file():
            if data_required():
                pytest.fail(f"missing {data_root() / rel} with JAXML_REQUIRE_DATA=1")
            pytest.skip(f"{rel} not under JAXML_DATA")
    mod = _module()
    cfg = mod.get_config("smoke")
    res = mod.main(cfg)
    m = res.metrics
    for method in mod.METHODS:
        for key in ("id_acc", "ood_acc", "ece", "ece_ts", "feature_change"):
            assert math.isfinite(m[f"{method}_{key}"]), (method, key)
        assert 0.0 <= m[f"{method}_id_acc"] <= 1.0 and 0.0 <= m[f"{method}_ood_acc"] <= 1.0
    assert m["lp_feature_change"] == 0.0 and m["ft_feature_change"] > 0.0
    # LP starts from a zero head and cross-entropy keeps increasing its norm
    assert m["lp_head_norm_final"] > m["lp_head_norm_tenth"] > 0.0
    # the FT-effective NTK component scales with ||V||^2: the LP head (larger norm) amplifies it
    assert m["ntk_lp_ft_head_norm"] > m["ntk_ft_head_norm"]
    assert m["ntk_lp_ft_ft_norm"] > m["ntk_ft_ft_norm"]
    assert m["ntk_lp_ft_pretrain_norm"] == pytest.approx(m["ntk_ft_pretrain_norm"], rel=1e-5)  # same features
    names = {c.name for c in res.claims}
    assert {"lpft_ood_ge_ft", "lpft_changes_features_less", "head_norm_grows_during_lp", "ts_lowers_lpft_ece",
            "lplora_ood_ge_lora", "lplora_changes_features_less"} <= names
    for c in res.claims:
        assert c.holds == (c.measured >= c.threshold if c.op == ">=" else c.measured > c.threshold)
    assert set(res.figures) == {"accuracy", "head_norm", "feature_change", "ece"}
    assert "lp_ft" in res.tables["methods (mean over seeds)"]


def test_config_validation():
    mod = _module()
    with pytest.raises(ValueError, match="ntk_examples"):
        mod.Config(n_train=16, ntk_examples=32)
    with pytest.raises(ValueError, match="pooling"):
        mod.Config(pooling="max")
