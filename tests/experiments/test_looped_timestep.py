import dataclasses
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxml.tasks.dp import DPTask, sample_batch, vocab_size

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "experiments"))
import looped_timestep as lt  # noqa: E402


def _check(res):
    for c in res.claims:
        ops = {">=": c.measured >= c.threshold, ">": c.measured > c.threshold, "<=": c.measured <= c.threshold}
        assert c.holds == ops[c.op]


def test_smoke_mode_structure_and_constant_parameter_count():
    res = lt.main(lt.get_config("smoke"))
    _check(res)
    names = {c.name for c in res.claims}
    assert {"all_above_majority", "looped_params_constant_in_r", "looped_uses_its_loops"} <= names
    assert next(c for c in res.claims if c.name == "looped_params_constant_in_r").holds
    assert set(res.figures) == {"training_curves", "accuracy_vs_r"}
    assert 0.0 < res.metrics["edit_majority"] < 1.0
    assert 0.0 <= res.metrics["edit_looped_timestep_r2_acc"] <= 1.0


def test_full_mode_runs_end_to_end_at_reduced_size():
    cfg = dataclasses.replace(lt.get_config("full"), n=2, d_model=8, n_heads=2, loops=(1, 2, 3), baseline_layers=2,
                              eval_loops=(1, 3), batch=8, steps=10, seeds=1, n_test=20, tasks=("edit",))
    res = lt.main(cfg)
    _check(res)
    assert {"edit_timestep_nondecreasing_in_r", "edit_timestep_beats_plain_at_max_r"} <= {c.name for c in res.claims}


def test_task_batch_selects_each_task_by_a_traced_index_and_the_vocabulary_is_shared():
    cfg = dataclasses.replace(lt.get_config("smoke"), tasks=("edit", "lcs"))
    key = jax.random.key(3)
    pick = jax.jit(lambda k, i: lt.task_batch(k, i, cfg, 8))
    for i, name in enumerate(cfg.tasks):
        got = pick(key, jnp.asarray(i))
        ref = sample_batch(key, DPTask(name), batch=8, n=cfg.n, alphabet=cfg.alphabet)
        for g, r in zip(got, ref):
            np.testing.assert_array_equal(g, r)
    assert lt.shared_vocab(cfg) == vocab_size(DPTask.EDIT, cfg.n, cfg.alphabet) > vocab_size(DPTask.LCS, cfg.n, cfg.alphabet)
