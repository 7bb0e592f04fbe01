import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "experiments"))
import dyck_nope as dn  # noqa: E402

from jaxml.experiment import ConfigError  # noqa: E402


def test_smoke_mode_runs_and_computes_every_claim_from_measurements():
    cfg = dn.get_config("smoke")
    res = dn.main(cfg)
    names = {c.name for c in res.claims}
    assert {"construction_exact", "construction_generates", "nope_ge_best_pe_2L"} <= names
    for c in res.claims:
        assert c.holds == ({">=": c.measured >= c.threshold, ">": c.measured > c.threshold,
                            "<=": c.measured <= c.threshold}[c.op] and np.isfinite(c.measured))
    # the construction is exact even at smoke scale
    assert res.metrics["construction_errors"] == 0
    assert res.metrics["construction_strings"] == 2 * cfg.construct_n * len(cfg.construct_k)
    assert res.metrics["construction_max_len"] >= 118
    assert res.metrics["construction_generated_valid_frac"] == 1.0
    for name in cfg.variants:
        for m in cfg.test_mults:
            for metric in ("pos_acc", "str_acc", "rec_acc"):
                v = res.metrics[f"dyck_{name}_{metric}_{m}L"]
                assert 0.0 <= res.metrics[f"dyck_{name}_{metric}_{m}L_min"] <= v <= 1.0
    # 40 steps already beat chance per position (labels are 5 independent bits)
    assert res.metrics["dyck_nope_pos_acc_1L"] > 0.3
    assert np.isclose(res.metrics["gap_nope_minus_best_pe_2L"],
                      res.metrics["dyck_nope_pos_acc_2L"] - res.metrics["dyck_rope_pos_acc_2L"])
    assert set(res.figures) == {"accuracy_vs_length", "construction"}


def test_scores_recognition_with_and_without_bos():
    """Hand-made predictions: string 0 = "()" valid, string 1 = ")(" a near miss."""
    k = 1
    sym = np.array([[0, 1], [1, 0]])
    lens = np.array([2, 2])
    # with BOS: rows = prefix lengths 0..2, columns [open, close, END]
    truth = np.array([[[1, 0, 1], [1, 1, 0], [1, 0, 1]], [[1, 0, 1], [0, 0, 0], [0, 0, 0]]], bool)
    mask = np.ones((2, 3), bool)
    perfect = truth[None]
    pos, st, rec = dn._scores(perfect, truth, mask, sym, lens, k, True, 1)
    assert pos.tolist() == [1.0] and st.tolist() == [1.0] and rec.tolist() == [1.0]
    wrong = perfect.copy()
    wrong[0, 1, 0, 1] = wrong[0, 1, 1, 0] = wrong[0, 1, 2, 2] = True  # accepts ")(" end to end
    _, _, rec = dn._scores(wrong, truth, mask, sym, lens, k, True, 1)
    assert rec.tolist() == [0.5]
    # without BOS row 0 (empty prefix) is absent; the first symbol must open
    pos, st, rec = dn._scores(perfect[:, :, 1:], truth[:, 1:], mask[:, 1:], sym, lens, k, False, 1)
    assert pos.tolist() == [1.0] and rec.tolist() == [1.0]


def test_config_errors_name_the_field():
    with pytest.raises((ConfigError, ValueError), match="train_len"):
        dn.Config(train_len=7)
    with pytest.raises((ConfigError, ValueError), match="variants"):
        dn.Config(variants=("rope", "learned"))
