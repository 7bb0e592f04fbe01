"""FairPipeline overhead per image over the plain diffusers pipeline, both FairT2I modes.

Workloads on the randomly initialised tiny Stable Diffusion pipeline (``tiny_pipeline``, 32x32,
a real UNet + VAE + CLIP text encoder): the peer is the unmodified ``StableDiffusionPipeline``
call; jaxml's figure is ``FairPipeline`` in PER_IMAGE mode (detection, joint attribute draw with
a JAX key, bias-aware prompts, the same pipeline call, DLPack hand-off) and in GUIDANCE mode
(K attribute prompts mixed at every step in one batched UNet call, mixing in JAX). Times are
seconds per image (median of repeats); ratio = peer / jaxml (< 1: FairT2I costs more).
GUIDANCE evaluates K + 1 prompts per step instead of 2, so its expected ratio is ~2 / (K + 1)
in UNet-bound settings.
"""

from __future__ import annotations

import time

import jax
import numpy as np


def _median_time(fn, reps: int) -> float:
    fn()  # warm-up (tokenizer caches, jit of the JAX mixer)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def run(device: str) -> list[dict]:
    """Rows: per-image overhead of PER_IMAGE (K=2 colours and the 3 default axes) and GUIDANCE."""
    import torch

    from jaxml.fairt2i import lexicon as lx
    from jaxml.fairt2i.bridge import FairPipeline, Mode, tiny_pipeline

    pipe = tiny_pipeline(seed=0)
    if device == "gpu" and torch.cuda.is_available():
        pipe = pipe.to("cuda")
    n, steps, reps = 8, 10, 3
    prompt = "a photo of a doctor"

    def plain():
        g = torch.Generator().manual_seed(0)
        pipe(prompt=[prompt] * n, num_inference_steps=steps, guidance_scale=7.5, generator=g,
             output_type="pt")

    t_plain = _median_time(plain, reps) / n
    rows = []
    colour = lx.Axis("colour", ("blue", "orange"), order=0)
    for label, axes, mode in (("per_image, 1 axis (K=2)", (colour,), Mode.PER_IMAGE),
                              ("per_image, 3 default axes", lx.DEFAULT_AXES, Mode.PER_IMAGE),
                              ("guidance, K=2", (colour,), Mode.GUIDANCE),
                              ("guidance, K=4 (Monte Carlo of 54 cells)", lx.DEFAULT_AXES,
                               Mode.GUIDANCE)):
        fair = FairPipeline(pipe, axes=axes, max_components=4, batch_size=64)
        t = _median_time(lambda: fair(jax.random.key(0), prompt, n, mode=mode,
                                      num_inference_steps=steps, guidance_scale=7.5), reps) / n
        rows.append({"workload": f"FairPipeline {label}, {n} images x {steps} steps, 32x32",
                     "metric": "seconds per image", "jaxml": t, "peer": t_plain,
                     "peer_name": "StableDiffusionPipeline (plain)", "ratio": t_plain / t})
    return rows
