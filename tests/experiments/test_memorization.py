"""Smoke run of experiments/memorization.py: structure, exact construction, claims from measurements."""

import dataclasses
import sys
from pathlib import Path

import numpy as np

from jaxml.data import data_required, data_root

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "experiments"))
import memorization as mem  # noqa: E402

OPS = {">=": np.greater_equal, ">": np.greater, "<": np.less, "<=": np.less_equal}


def test_smoke_mode_runs_and_claims_are_computed():
    have_text = (data_root() / "tinyshakespeare" / "input.txt").exists() or data_required()
    # two data draws per sweep point: the fits pool them
    cfg = dataclasses.replace(mem.get_config("smoke"), text=have_text, replicates=2)
    res = mem.main(cfg)
    names = {c.name for c in res.claims}
    assert {"construction_exact", "construction_sqrt_n", "trained_next_token_sublinear",
            "trained_next_below_seq2seq", "trained_next_token_weak_n"} <= names
    assert ("trained_text_sublinear" in names) == have_text
    for c in res.claims:   # every verdict is the measurement compared with the threshold
        assert c.holds == bool(np.isfinite(c.measured) and OPS[c.op](c.measured, c.threshold))
    # the construction is exact at every size, and its count follows the closed form (slope ~ 0.5)
    claims = {c.name: c for c in res.claims}
    assert claims["construction_exact"].measured == 1.0 and claims["construction_exact"].holds
    assert claims["construction_sqrt_n"].holds
    assert set(res.figures) == {"min_size_vs_N", "min_size_vs_seq_len"}
    assert {"fits", "construction", "trained"} <= set(res.tables)
    n_sets = cfg.replicates * (2 * (len(cfg.train_n) + len(cfg.n_values)) + (len(cfg.train_n) if have_text else 0))
    assert res.tables["trained"].count("\n") - 1 == n_sets
    rows = res.tables["trained"].splitlines()[2:]
    assert sum("| random | next_token | N=4 |" in r for r in rows) == cfg.replicates
    assert 0 <= res.metrics["trained_unresolved_searches"] <= n_sets


def test_fit_slope_recovers_power_law():
    x = np.array([8, 16, 32, 64, 128])
    f = mem.fit_slope(x, 3.0 * x ** 0.5)
    assert abs(f["slope"] - 0.5) < 1e-9 and f["lo"] <= 0.5 + 1e-9 and f["hi"] >= 0.5 - 1e-9
    g = mem.fit_slope(x, x * np.array([1.0, 1.1, 0.9, 1.05, 1.0]))
    assert g["lo"] < g["slope"] < g["hi"] and g["lo"] < 1.0 < g["hi"]
    assert np.isnan(mem.fit_slope([1, 2], [1, 2])["slope"])


def test_replicates_are_independent_draws_of_the_same_point():
    cfg = dataclasses.replace(mem.get_config("smoke"), text=False, replicates=3)
    sets, tags = mem._datasets(cfg, mem.jax.random.PRNGKey(0), None)
    assert len(sets) == 3 * 2 * (len(cfg.train_n) + len(cfg.n_values))
    first = [i for i, t in enumerate(tags) if t == tags[0]]
    assert first == [0, 1, 2]   # the draws of one point are adjacent and share its tag
    a, b = sets[0], sets[1]
    assert a.tokens.shape == b.tokens.shape and not np.array_equal(np.asarray(a.tokens), np.asarray(b.tokens))
    # one draw reproduces the data of the single-draw configuration
    one, _ = mem._datasets(dataclasses.replace(cfg, replicates=1), mem.jax.random.PRNGKey(0), None)
    assert np.array_equal(np.asarray(one[0].tokens), np.asarray(sets[0].tokens))


def test_memorisation_map_reports_every_cell():
    """The opt-in map (--set map_steps=S) trains every width on every map data set; its metrics and
    table are read off the CapacityMap, one row per data set and one cell per width."""
    cfg = dataclasses.replace(mem.get_config("smoke"), map_steps=30, map_n=(4, 8), map_seq2seq_n=(4,),
                              map_widths=(1, 2, 4), seeds=1)
    cmap, tags, sets = mem._memorisation_map(cfg, mem.jax.random.PRNGKey(0))
    assert [(st.value, n) for st, n in tags] == [("next_token", 4), ("next_token", 8), ("seq2seq", 4)]
    assert cmap.accuracy.shape == (3, 3, 1) and sets[2].num_labels == 4 * cfg.seq_len
    metrics = {}
    table, fig = mem._map_outputs(cmap, tags, sets, metrics)
    rows = table.splitlines()[2:]
    assert len(rows) == 3 and all(r.count("|") == 3 + 3 + 3 for r in rows)
    for j, (st, n) in enumerate(tags):
        got = metrics[f"map_{st.value}_N{n}_min_width"]
        assert (np.isnan(got) and cmap.min_size[j] is None) or got == cmap.min_size[j]
        assert rows[j].count("**M**") == int(cmap.memorised[j].sum())
    assert metrics["map_violations"] == sum(len(v) for v in cmap.violations)
    assert fig is not None
