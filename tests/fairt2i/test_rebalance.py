"""Targets, joint sampling (chi-square against the target), prompt augmentation, guidance mixing."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml.fairt2i import lexicon as lx
from jaxml.fairt2i.detect import EmbeddedDetector
from jaxml.fairt2i.rebalance import (TargetDistribution, assignment_indices, augment_prompt,
                                     guidance_components, mix_noise, sample_assignments)
from jaxml.stats.intervals import chisquare_gof

DOCTOR = EmbeddedDetector().detect("Photo portrait of a doctor")


def test_uniform_joint_is_product_over_open_axes():
    joint = TargetDistribution.uniform().for_report(DOCTOR)
    assert joint.axes == ("age", "ethnicity", "gender")
    assert joint.probs.shape == (3, 6, 3) and joint.size == 54
    np.testing.assert_allclose(joint.probs, np.full((3, 6, 3), 1 / 54))


def test_joint_sampling_matches_target_chi_square():
    # 20,000 joint draws from a non-uniform product target: per-cell chi-square p > 0.001 and the
    # draws are reproducible for a fixed key.
    tgt = TargetDistribution.custom({"gender": {"male": 0.3, "female": 0.6, "non-binary": 0.1},
                                     "age": {"young": 1, "middle-aged": 1, "elderly": 2}})
    joint = tgt.for_report(DOCTOR)
    idx = assignment_indices(jax.random.key(0), joint, 20000)
    counts = np.bincount(np.asarray(idx), minlength=joint.size)
    res = chisquare_gof(jnp.asarray(counts), jnp.asarray(joint.probs.reshape(-1)))
    assert float(res.p_value) > 1e-3
    a = sample_assignments(jax.random.key(1), joint, 50)
    assert a == sample_assignments(jax.random.key(1), joint, 50)
    assert all(set(x) == {"age", "ethnicity", "gender"} for x in a)
    np.testing.assert_allclose(joint.marginal("age"), [0.25, 0.25, 0.5])


def test_custom_joint_table_overrides_product():
    tgt = TargetDistribution(joint=(("gender", "age"), {("male", "young"): 1, ("female", "elderly"): 3}))
    joint = tgt.for_report(DOCTOR)
    g, a = joint.axes.index("gender"), joint.axes.index("age")
    m = joint.probs.sum(axis=joint.axes.index("ethnicity"))
    vals_g, vals_a = joint.values[g], joint.values[a]
    cell = lambda gv, av: (m[vals_a.index(av), vals_g.index(gv)] if a < g
                           else m[vals_g.index(gv), vals_a.index(av)])
    assert cell("male", "young") == pytest.approx(0.25) and cell("female", "elderly") == pytest.approx(0.75)


def test_csv_target_per_term_and_errors(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("term,category,value,weight\nnurse,gender,female,87\nnurse,gender,male,13\n"
                 ",gender,female,1\n,gender,male,1\n")
    tgt = TargetDistribution.from_csv(p)
    nurse = EmbeddedDetector().detect("a nurse")
    np.testing.assert_allclose(tgt.for_report(nurse).marginal("gender"), [0.87, 0.13])
    np.testing.assert_allclose(tgt.for_report(DOCTOR).marginal("gender"), [0.5, 0.5])
    bad = tmp_path / "bad.csv"
    bad.write_text("category,value,weight\ngender,male,1\ngender,female,abc\n")
    with pytest.raises(ValueError, match=r"bad.csv:3: weight"):
        TargetDistribution.from_csv(bad)
    with pytest.raises(FileNotFoundError):
        TargetDistribution.from_csv(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="sum to 0"):
        TargetDistribution.custom({"gender": {"male": 0}})


def test_augment_prompt_inserts_before_person_and_fixes_article():
    assert augment_prompt("Photo portrait of a doctor", DOCTOR,
                          {"age": "elderly", "gender": "female"}) == \
        "Photo portrait of an elderly female doctor"
    eng = EmbeddedDetector().detect("an engineer at work")
    assert augment_prompt("an engineer at work", eng, {"age": "young"}) == "a young engineer at work"
    fem = EmbeddedDetector().detect("a female doctor")
    with pytest.raises(ValueError, match="refusing to rebalance"):
        augment_prompt("a female doctor", fem, {"gender": "male"})
    assert augment_prompt("a doctor", DOCTOR, {}) == "a doctor"


def test_guidance_components_enumerate_or_sample():
    axis = lx.Axis("colour", ("blue", "orange"), order=0)
    rep = EmbeddedDetector((axis,)).detect("a photo of a nurse")
    joint = TargetDistribution.uniform().for_report(rep, (axis,))
    prompts, w = guidance_components("a photo of a nurse", rep, joint)
    assert prompts == ["a photo of a blue nurse", "a photo of an orange nurse"]
    np.testing.assert_allclose(w, [0.5, 0.5])
    big = TargetDistribution.uniform().for_report(DOCTOR)
    with pytest.raises(ValueError, match="max_components"):
        guidance_components("Photo portrait of a doctor", DOCTOR, big, max_components=8)
    p8, w8 = guidance_components("Photo portrait of a doctor", DOCTOR, big, max_components=8,
                                 key=jax.random.key(0))
    assert len(p8) == 8 and np.isclose(w8.sum(), 1.0)


def test_mix_noise_closed_form():
    ku, kc = jax.random.split(jax.random.key(0))
    eu = jax.random.normal(ku, (2, 3, 4, 4))
    ec = jax.random.normal(kc, (2, 2, 3, 4, 4))
    w = jnp.array([[0.25, 0.75], [1.0, 0.0]])
    out = mix_noise(eu, ec, w, 3.0)
    ref0 = eu[0] + 3.0 * (0.25 * ec[0, 0] + 0.75 * ec[0, 1] - eu[0])
    np.testing.assert_allclose(out[0], ref0, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out[1], eu[1] + 3.0 * (ec[1, 0] - eu[1]), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="weights"):
        mix_noise(eu, ec, w[:, :1], 1.0)
