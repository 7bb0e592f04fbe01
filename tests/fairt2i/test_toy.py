"""Toy world: rendering, evaluator, caption layout, schedule, whitening, loss decreases."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxml.fairt2i import toy
from jaxml.train import train

WORLD = toy.ToyWorldConfig(image_size=8, jitter=1)


def test_captions_layout_and_articles():
    caps = toy.captions(WORLD)
    assert caps == ["", "a photo of a doctor", "a photo of a blue doctor",
                    "a photo of an orange doctor", "a photo of a nurse",
                    "a photo of a blue nurse", "a photo of an orange nurse"]


def test_batch_follows_the_bias_and_captions_are_truthful():
    # 4,000 draws: P(blue | doctor) = 0.9 within 4 binomial SEs (SE ~ 0.0067)
    b = toy.sample_batch(jax.random.key(0), WORLD, 4000)
    occ, col, cap = map(np.asarray, (b["occupation"], b["colour"], b["caption"]))
    p_blue_doc = np.mean(col[occ == 0] == 0)
    assert abs(p_blue_doc - 0.9) < 0.03
    caps = toy.captions(WORLD)
    for i in np.flatnonzero(cap > 0)[:500]:
        text = caps[cap[i]]
        assert WORLD.occupations[occ[i]] in text
        for ci, c in enumerate(WORLD.colours):
            if c in text:
                assert col[i] == ci
    assert 0.05 < np.mean(cap == 0) < 0.15


def test_classifier_reads_rendered_colours_and_abstains_on_grey():
    b = toy.sample_batch(jax.random.key(1), WORLD, 100)
    lab = toy.classify_colour((b["x0"] + 1) / 2, WORLD.colours)
    assert float(jnp.mean(lab == b["colour"])) == 1.0
    grey = jnp.full((3, 8, 8, 3), 0.88)
    purple = jnp.broadcast_to(jnp.array([0.55, 0.45, 0.5]), (3, 8, 8, 3))
    assert np.all(np.asarray(toy.classify_colour(grey, WORLD.colours)) == toy.UNCLASSIFIED)
    assert np.all(np.asarray(toy.classify_colour(purple, WORLD.colours)) == toy.UNCLASSIFIED)


def test_cosine_schedule_matches_diffusers():
    diffusers = pytest.importorskip("diffusers")
    sch = diffusers.DDIMScheduler(beta_schedule="squaredcos_cap_v2", num_train_timesteps=1000)
    np.testing.assert_allclose(np.asarray(toy.cosine_alphas_cumprod(1000)),
                               sch.alphas_cumprod.numpy(), rtol=1e-5, atol=1e-7)


def test_whitening_makes_captions_equidistant():
    raw = jax.random.normal(jax.random.key(2), (5, 16)) * jnp.array([10.0] + [0.1] * 15)[None, :]
    ad = toy.fit_text_whitening(raw)
    w = toy.whiten_text(ad, raw)
    gram = np.asarray(w @ w.T)
    np.testing.assert_allclose(np.diag(gram), 4.0, rtol=1e-3)
    np.testing.assert_allclose(gram[~np.eye(5, dtype=bool)], -1.0, atol=1e-3)


def test_denoiser_shapes_eps_x0_consistency_and_training_decreases_loss():
    dc = toy.DenoiserConfig(image_size=8, text_dim=7, width=16, n_blocks=1, cond_dim=16)
    table = jnp.eye(7)
    params = toy.init_denoiser(jax.random.key(0), dc)
    x = jax.random.normal(jax.random.key(1), (4, 8, 8, 3))
    t = jnp.array([1, 100, 500, 999])
    eps = toy.apply_denoiser(params, x, t, table[:4], dc)
    x0 = toy.predict_x0(params, x, t, table[:4], dc)
    ab = toy.cosine_alphas_cumprod()[t][:, None, None, None]
    np.testing.assert_allclose(np.asarray(jnp.sqrt(ab) * x0 + jnp.sqrt(1 - ab) * eps),
                               np.asarray(x), rtol=1e-4, atol=1e-4)
    ab_all = toy.cosine_alphas_cumprod()
    loss = lambda p, b, k: toy.diffusion_loss(p, b, k, cfg=dc, caption_table=table,
                                              alphas_cumprod=ab_all)
    res = train(loss, params, optax.adam(3e-3), data=lambda k, s: toy.sample_batch(k, WORLD, 16),
                num_steps=40, key=jax.random.key(3), log_every=40, progress=False)
    h = res.history["loss"]
    assert np.mean(h[-10:]) < 0.6 * np.mean(h[:5])


def test_config_validation_messages():
    with pytest.raises(ValueError, match="bias"):
        toy.ToyWorldConfig(bias=((0.5, 0.4), (0.1, 0.9)))
    with pytest.raises(ValueError, match="colours"):
        toy.ToyWorldConfig(colours=("blue", "teal"))
    with pytest.raises(ValueError, match="explicit_rate"):
        toy.ToyWorldConfig(explicit_rate=1.0)
