"""The diffusers bridge: tiny pipeline offline, DLPack round trips, FairPipeline modes,
exactly one batched UNet call per denoising step in guidance mode."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from jaxml.fairt2i import lexicon as lx  # noqa: E402
from jaxml.fairt2i.bridge import FairPipeline, Mode, to_jax, to_torch, tiny_pipeline  # noqa: E402

AXIS = lx.Axis("colour", ("blue", "orange"), order=0)


@pytest.fixture(scope="module")
def pipe():
    return tiny_pipeline(seed=0)


def test_dlpack_round_trip_shares_memory():
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    x = to_jax(t)
    np.testing.assert_array_equal(np.asarray(x), t.numpy())
    back = to_torch(jnp.asarray(x) * 2)
    assert torch.equal(back, t * 2)


def test_tiny_pipeline_runs_offline_and_is_seeded(pipe):
    assert pipe.safety_checker is None and pipe.tokenizer.model_max_length == 16
    ids = pipe.tokenizer("a photo of a doctor").input_ids
    assert ids[0] == pipe.tokenizer.bos_token_id and len(ids) > 3
    fair = FairPipeline(pipe, axes=(AXIS,))
    a = fair(jax.random.key(0), "a photo of a doctor", 2, mode=Mode.PLAIN, num_inference_steps=2)
    b = fair(jax.random.key(0), "a photo of a doctor", 2, mode=Mode.PLAIN, num_inference_steps=2)
    assert a.images.shape == (2, 32, 32, 3)
    assert float(a.images.min()) >= 0.0 and float(a.images.max()) <= 1.0
    np.testing.assert_allclose(np.asarray(a.images), np.asarray(b.images), atol=1e-6)


def test_per_image_mode_uses_bias_aware_prompts(pipe):
    fair = FairPipeline(pipe, axes=(AXIS,))
    out = fair(jax.random.key(1), "a photo of a doctor", 4, mode=Mode.PER_IMAGE,
               num_inference_steps=2)
    assert out.images.shape == (4, 32, 32, 3)
    assert all(p in ("a photo of a blue doctor", "a photo of an orange doctor") for p in out.prompts)
    assert [a["colour"] for a in out.assignments] == [p.split()[-2] for p in out.prompts]
    stated = fair(jax.random.key(1), "a photo of a blue doctor", 2, mode=Mode.PER_IMAGE,
                  num_inference_steps=2)
    assert stated.prompts == ["a photo of a blue doctor"] * 2 and stated.assignments == [{}, {}]


def test_guidance_makes_one_batched_unet_call_per_step(pipe):
    calls = []
    handle = pipe.unet.register_forward_hook(lambda m, args, out: calls.append(args[0].shape[0]))
    try:
        fair = FairPipeline(pipe, axes=(AXIS,))
        out = fair(jax.random.key(2), "a photo of a nurse", 3, mode=Mode.GUIDANCE,
                   num_inference_steps=3, guidance_scale=2.0)
    finally:
        handle.remove()
    prompts, w = out.components
    assert prompts == ["a photo of a blue nurse", "a photo of an orange nurse"]
    np.testing.assert_allclose(w, [0.5, 0.5])
    # 3 steps -> 3 UNet calls, each on 3 images x (1 uncond + 2 attribute prompts)
    assert out.unet_calls == 3 and calls == [9, 9, 9]
    assert out.images.shape == (3, 32, 32, 3)


def test_fair_pipeline_rejects_non_pipelines():
    with pytest.raises(TypeError, match="Stable-Diffusion-family"):
        FairPipeline(object())


def test_guidance_moves_the_noise_to_the_unets_dtype_and_device():
    # a pipeline whose UNet is not float32 on the CPU stands in for a CUDA / half-precision one:
    # the CPU float32 noise must be moved to the UNet's device and dtype (it was not, and the
    # GUIDANCE mode crashed on an H100)
    p64 = tiny_pipeline(seed=0)
    for module in (p64.unet, p64.text_encoder, p64.vae):
        module.to(torch.float64)
    assert p64.unet.dtype == torch.float64
    fair = FairPipeline(p64, axes=(AXIS,))
    out = fair(jax.random.key(0), "a photo of a doctor", 2, mode=Mode.GUIDANCE, num_inference_steps=2)
    assert out.images.shape == (2, 32, 32, 3)
    assert bool(jnp.all(jnp.isfinite(out.images)))
    t = to_torch(jnp.ones(3), "cpu")
    assert t.device.type == "cpu" and torch.equal(t, torch.ones(3))
