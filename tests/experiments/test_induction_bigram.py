"""Smoke run of the induction_bigram experiment (in-process) and checks of its structure."""

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxml.data import DataNotFoundError, data_required

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "experiments"))
import induction_bigram as ib  # noqa: E402


@pytest.fixture(scope="module")
def smoke_result():
    cfg = ib.get_config("smoke")
    try:
        return cfg, ib.main(cfg)
    except DataNotFoundError as err:
        if data_required():
            raise
        pytest.skip(f"tiny Shakespeare not available: {err}")


def test_smoke_mode_computes_every_claim_from_measurements(smoke_result):
    cfg, res = smoke_result
    names = [c.name for c in res.claims]
    assert names == ["both_learn_induction", "rpe_length_generalises", "ape_degrades_beyond_T",
                     "construction_matches_closed_form", "construction_hijack_point",
                     "rpe_trend_follows_theory", "rpe_bigram_term_stable",
                     "rpe_bigram_wins_without_context", "rpe_in_context_hijacks",
                     "nope3_learns_induction"]
    ops = {">=": np.greater_equal, ">": np.greater, "<=": np.less_equal, "<": np.less}
    for c in res.claims:
        assert np.isfinite(c.measured), c.name
        assert c.holds == bool(ops[c.op](c.measured, c.threshold)), c.name
    lengths = [cfg.seq_len * m for m in cfg.test_multipliers]
    for m in ib.MODELS:
        for t in lengths:
            assert 0.0 <= res.metrics[f"{m}_acc_len{t}"] <= 1.0
        assert np.isfinite(res.metrics[f"{m}_final_train_loss"])
    assert set(res.figures) == {"accuracy_vs_length", "logits_vs_repetitions", "hijack_vs_bigram_probability"}
    for m in ("rpe", "ape"):
        assert 0 <= res.metrics[f"{m}_sweep_pred_o_at_rmax"] <= 1
    assert set(res.tables) == {"induction accuracy vs test length", "designed prompts (trained models)"}


def test_smoke_construction_is_exact_at_any_scale(smoke_result):
    """The construction's claims do not depend on training: they must hold even in smoke mode."""
    cfg, res = smoke_result
    claims = {c.name: c for c in res.claims}
    assert claims["construction_matches_closed_form"].holds
    assert claims["construction_hijack_point"].holds
    # The measured mean in-context logit equals the beta1 -> infinity formula up to e^-beta1.
    assert res.metrics["construction_asymptotic_err"] < 1e-3
    assert 0 < res.metrics["construction_hijack_r_theory"] <= cfg.max_repetitions


def test_query_selection_and_prompts():
    src = ib.bigram_from_tinyshakespeare() if _has_data() else pytest.skip("no data")
    cfg = ib.get_config("smoke")
    queries = ib.pick_queries(src, 3)
    trans = np.asarray(src.transition)
    for q, b, o in queries:
        assert b == int(np.argmax(trans[q])) and len({q, b, o}) == 3
        assert trans[q, o] < trans[q, b]
    import jax

    for i, (q, b, o) in enumerate(queries):
        ok = ib.admissible_outputs(src, q, b)
        assert ok[o] and not ok[q] and not ok[b]
        # the frequent choice is the most frequent admissible token
        assert np.asarray(src.unigram)[o] == np.asarray(src.unigram)[ok].max()
    for kind in ib.PromptOutput:
        kcfg = dataclasses.replace(cfg, prompt_output=kind, prompts_per_query=6)
        outputs = ib.prompt_outputs(kcfg, src, queries, jax.random.key(1))
        assert outputs.shape == (3, 6)
        prompts = ib.make_prompts(kcfg, src, queries, outputs, jax.random.key(0))
        assert prompts.shape == (3, kcfg.max_repetitions + 1, 6, kcfg.prompt_len)
        for i, (q, b, o) in enumerate(queries):
            assert ib.admissible_outputs(src, q, b)[outputs[i]].all()
            if kind is ib.PromptOutput.FREQUENT:
                assert np.all(outputs[i] == o)
            else:  # sampled without replacement from the admissible tokens
                assert len(set(outputs[i].tolist())) == 6
            for r in range(kcfg.max_repetitions + 1):
                p = prompts[i, r]
                assert np.all(p[:, -1] == q)
                assert np.all((p == q).sum(-1) == r + 1)
                assert np.all((p == outputs[i][:, None]).sum(-1) == r)
                assert np.all((p == b).sum(-1) == 0)


def test_hijack_sweep_covers_every_admissible_output():
    """The sweep scores every admissible ``o`` of every query; its hijack fraction and logit
    gap agree with ``prompt_logits`` on the same prompts' last position."""
    import jax

    src = ib.bigram_from_tinyshakespeare() if _has_data() else pytest.skip("no data")
    cfg = ib.get_config("smoke")
    queries = ib.pick_queries(src, 2)
    tcfg = ib.model_config(cfg, "rpe", src.vocab_size)
    params = ib.init_model(jax.random.key(0), tcfg)
    sweep = ib.hijack_sweep(cfg, src, queries, {"rpe": (params, tcfg)}, jax.random.key(2))
    n_pairs = sum(int(ib.admissible_outputs(src, q, b).sum()) for q, b, _ in queries)
    assert sweep["o"].shape == sweep["rpe_gap"].shape == (n_pairs,)
    assert sweep["frequent"].sum() == len(queries)
    trans = np.asarray(src.transition)
    np.testing.assert_allclose(sweep["pi"], trans[[queries[i][0] for i in sweep["q_index"]], sweep["o"]])
    assert np.all((sweep["rpe_pred_o"] >= 0) & (sweep["rpe_pred_o"] <= 1))
    st = ib.sweep_stats(sweep, "rpe")
    assert st["pairs"] == n_pairs and -1 <= st["spearman_gap_vs_pi"] <= 1
    # Cross-check one pair against prompt_logits on a hand-built prompt of the same kind.
    i = int(np.argmax(sweep["frequent"]))
    qi = int(sweep["q_index"][i])
    q, b, o = queries[qi]
    keys = jax.random.split(jax.random.fold_in(jax.random.key(2), qi),
                            int(ib.admissible_outputs(src, q, b).sum()) * cfg.sweep_prompts)
    j = int(np.flatnonzero(np.flatnonzero(ib.admissible_outputs(src, q, b)) == o)[0])
    fill = ib._fillers(src, q, b, jax.numpy.asarray([o]), keys[j * cfg.sweep_prompts:(j + 1) * cfg.sweep_prompts][None],
                       cfg.prompt_len)[0]
    prompt = np.asarray(ib.plant_pairs(fill, q, [o] * cfg.max_repetitions))
    terms = ib.prompt_logits(params, tcfg, prompt[None, None], [(q, b, o)], np.full((1, prompt.shape[0]), o))
    np.testing.assert_allclose(sweep["rpe_gap"][i], (terms["logit_o"] - terms["logit_b"]).mean(), rtol=1e-4, atol=1e-4)


def test_last_terms_is_the_same_in_chunks():
    """Chunking the last-position decomposition (with a padded last chunk) changes nothing."""
    import jax

    cfg = ib.get_config("smoke")
    tcfg = ib.model_config(cfg, "rpe", 20)
    params = ib.init_model(jax.random.key(0), tcfg)
    prompts = np.asarray(jax.random.randint(jax.random.key(1), (2, 5, cfg.prompt_len), 0, 20))
    whole = ib._last_terms(params, tcfg, prompts)
    chunked = ib._last_terms(params, tcfg, prompts, chunk=3)
    assert whole["logits"].shape == (2, 5, 20)
    full = ib.logit_decomposition(params, tcfg, prompts.reshape(10, -1))
    for k in whole:
        np.testing.assert_allclose(chunked[k], whole[k], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(whole[k].reshape(10, -1), np.asarray(full[k][:, -1]), rtol=1e-5, atol=1e-5)


def test_config_validation():
    with pytest.raises(ValueError, match="prompt_len"):
        ib.Config(prompt_len=20, max_repetitions=10)
    with pytest.raises(ValueError, match="test_multipliers"):
        ib.Config(test_multipliers=(2, 4))


def _has_data() -> bool:
    try:
        ib.bigram_from_tinyshakespeare()
        return True
    except DataNotFoundError:
        if data_required():
            raise
        return False


def test_without_last_ffn_the_bigram_term_does_not_read_the_induction_head():
    """``last_ffn=False`` removes the last layer's FFN, so the decomposition's bigram term cannot
    depend on the induction head (layer-2 attention); with the last FFN it does."""
    import jax

    cfg = ib.get_config("smoke")
    tokens = jax.random.randint(jax.random.key(1), (2, cfg.seq_len), 0, 20)
    tcfg = ib.model_config(cfg, "rpe", 20)
    change = {}
    for last_ffn in (False, True):
        params = ib.init_model(jax.random.key(0), tcfg, last_ffn)
        assert ("ffn" in params["layers"][-1]) == last_ffn
        bumped = jax.tree_util.tree_map(lambda x: x, params)
        bumped["layers"][-1]["attn"] = jax.tree_util.tree_map(lambda w: 3.0 * w + 0.1, params["layers"][-1]["attn"])
        a = ib.logit_decomposition(params, tcfg, tokens)
        b = ib.logit_decomposition(bumped, tcfg, tokens)
        np.testing.assert_allclose(a["in_context"] + a["bigram"] + a["other"], a["logits"], atol=1e-4)
        change[last_ffn] = float(np.max(np.abs(np.asarray(a["bigram"] - b["bigram"]))))
    assert change[False] == 0.0
    assert change[True] > 1e-3
