"""Bridge between diffusers pipelines (PyTorch) and JAX: ``FairPipeline``, ``tiny_pipeline``.

diffusers removed its Flax pipelines and transformers v5 removed Flax models, so FairT2I
(arXiv 2502.03826) runs on the PyTorch pipeline and exchanges arrays with JAX by DLPack
(``jax.dlpack.from_dlpack`` / ``torch.from_dlpack``; zero-copy on CPU). ``FairPipeline`` wraps
any text-to-image pipeline of the Stable Diffusion family (anything with ``unet``,
``scheduler``, ``encode_prompt`` and optionally ``vae``, e.g. ``StableDiffusionPipeline`` or
``ToyPixelPipeline``) in two modes:

* ``Mode.PER_IMAGE``: per image, draw a joint attribute assignment ``a ~ q`` with a JAX key and
  call the wrapped pipeline unchanged on the bias-aware prompt ``c + a``;
* ``Mode.GUIDANCE``: latent-variable guidance. At every denoising step ONE batched UNet call
  evaluates ``[uncond; c + a_1; ...; c + a_K]`` for every image, and the noise prediction is
  ``eps_u + w (sum_k q_k eps_k - eps_u)``, mixed in JAX (``rebalance.mix_noise``).

Attributes the prompt states are never rebalanced (``detect.enforce_stated``).

``tiny_pipeline()`` builds a randomly initialised ``StableDiffusionPipeline`` from configs,
with a CLIP tokenizer whose vocabulary and merges are written here: no model hub, offline. Its
images mean nothing; it checks plumbing. ``ToyPixelPipeline`` serves the JAX toy denoiser of
``jaxml.fairt2i.toy`` through diffusers' scheduler, so the closed-loop experiment runs through
the same code path as a real Stable Diffusion folder.
"""

from __future__ import annotations

import enum
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxml.fairt2i import lexicon as lx
from jaxml.fairt2i.detect import CachedDetector, Detector, EmbeddedDetector, enforce_stated
from jaxml.fairt2i.rebalance import (TargetDistribution, augment_prompt, guidance_components,
                                     mix_noise, sample_assignments)
from jaxml.fairt2i.report import BiasReport

if TYPE_CHECKING:  # torch and diffusers are imported lazily (optional extras)
    import torch
    from diffusers import StableDiffusionPipeline

__all__ = [
    "Mode",
    "to_jax",
    "to_torch",
    "FairOutput",
    "FairPipeline",
    "tiny_pipeline",
    "JaxDenoiserUNet",
    "ToyPixelPipeline",
    "load_pipeline",
]


def _torch():
    try:
        import torch
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("the diffusers bridge needs the 't2i' extra: `pip install -e .[t2i]` "
                          "(torch==2.13.0, diffusers 0.42, transformers 5).") from err
    return torch


def to_jax(t: torch.Tensor) -> jax.Array:
    """A torch tensor as a JAX array through DLPack (zero-copy for contiguous tensors on a device
    JAX also uses: CPU, or a CUDA GPU when JAX has one). A CUDA tensor goes through host memory
    when JAX runs on the CPU only, which cannot import device memory."""
    t = t.detach().contiguous()
    if t.device.type != "cpu" and jax.default_backend() == "cpu":
        t = t.cpu()
    return jax.dlpack.from_dlpack(t)


def to_torch(x: jax.Array, device: torch.device | str | None = None) -> torch.Tensor:
    """A JAX array as a torch tensor through DLPack, moved to ``device`` when given (for example a
    CUDA pipeline's device while JAX computes on the CPU)."""
    torch = _torch()
    t = torch.from_dlpack(x)
    return t if device is None else t.to(device)


class Mode(enum.Enum):
    """How FairPipeline rebalances.

    PLAIN: the wrapped pipeline on the prompt as given (the baseline).
    PER_IMAGE: one joint attribute draw per image, bias-aware prompt, wrapped pipeline
      unchanged. Exact in distribution when the model follows explicit attributes.
    GUIDANCE: q-weighted mixture of noise predictions at every step, one batched UNet call per
      step; costs K+1 UNet evaluations per image and step instead of 2.
    """

    PLAIN = "plain"
    PER_IMAGE = "per_image"
    GUIDANCE = "guidance"


@dataclass
class FairOutput:
    """Images and provenance of one FairPipeline call.

    Attributes:
      images: (N, H, W, 3) float32 JAX array in ``[0, 1]``.
      prompts: per image, the prompt actually used (PER_IMAGE) or the original (others).
      assignments: per image, the attribute assignment (PER_IMAGE) or ``{}``.
      report: the bias report of the prompt.
      components: GUIDANCE only: the mixed prompts and their weights.
      seconds: wall time of the call.
      unet_calls: UNet forward calls made by the guidance loop (0 for the other modes).
    """

    images: jax.Array
    prompts: list[str]
    assignments: list[dict[str, str]]
    report: BiasReport
    components: tuple[list[str], np.ndarray] | None = None
    seconds: float = 0.0
    unet_calls: int = 0


def _seed_from_key(key: jax.Array) -> int:
    return int(jax.random.randint(key, (), 0, 2**31 - 1))


@jax.jit
def _mix_jit(eps_u, eps_c, w, g):
    return mix_noise(eps_u, eps_c, w, g)


class FairPipeline:
    """FairT2I around a diffusers text-to-image pipeline.

    Args:
      pipe: a Stable-Diffusion-family pipeline (``StableDiffusionPipeline``,
        ``ToyPixelPipeline``, ...): called unchanged in PLAIN and PER_IMAGE modes; its
        ``encode_prompt``, ``unet``, ``scheduler`` and optional ``vae`` drive GUIDANCE mode.
      detector: a bias detector (default: cached ``EmbeddedDetector``).
      target: the target distribution (default uniform).
      axes: sensitive axes (their ``order`` fixes where attribute words go); the detector's
        report is restricted to these axes.
      max_components: most prompts mixed per step in GUIDANCE mode.
      batch_size: images per wrapped-pipeline call.
    """

    def __init__(self, pipe: Any, *, detector: Detector | None = None,
                 target: TargetDistribution | None = None,
                 axes: Sequence[lx.Axis] = lx.DEFAULT_AXES, max_components: int = 16,
                 batch_size: int = 64) -> None:
        for attr in ("unet", "scheduler", "encode_prompt"):
            if not hasattr(pipe, attr):
                raise TypeError(f"FairPipeline needs a Stable-Diffusion-family pipeline with "
                                f"'{attr}'; {type(pipe).__name__} has none.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}.")
        self.pipe = pipe
        self.axes = tuple(axes)
        self.detector = detector if detector is not None else CachedDetector(
            EmbeddedDetector(self.axes))
        self.target = target if target is not None else TargetDistribution.uniform()
        self.max_components = max_components
        self.batch_size = batch_size

    # ----------------------------------------------------------------- detection / planning
    def report(self, prompt: str) -> BiasReport:
        """The bias report of ``prompt``, restricted to this pipeline's axes, stated kept."""
        return enforce_stated(self.detector.detect(prompt), self.axes)

    def plan(self, key: jax.Array, prompt: str, n: int) -> tuple[list[str], list[dict[str, str]],
                                                                  BiasReport]:
        """PER_IMAGE plan: ``n`` bias-aware prompts from joint draws ``a ~ q``."""
        rep = self.report(prompt)
        joint = self.target.for_report(rep, self.axes)
        assigns = sample_assignments(key, joint, n)
        return [augment_prompt(prompt, rep, a) for a in assigns], assigns, rep

    # ----------------------------------------------------------------------------- calls
    def __call__(self, key: jax.Array, prompt: str, num_images: int, *, mode: Mode = Mode.PER_IMAGE,
                 num_inference_steps: int = 20, guidance_scale: float = 7.5) -> FairOutput:
        """Generate ``num_images`` images for ``prompt``.

        Args:
          key: PRNG key; it fixes the attribute draws and the initial noise (a given key gives
            the same initial noise in every mode, so modes are paired comparisons).
          prompt: the text prompt.
          num_images: number of images.
          mode: ``Mode.PLAIN``, ``Mode.PER_IMAGE`` or ``Mode.GUIDANCE``.
          num_inference_steps: scheduler steps.
          guidance_scale: classifier-free guidance scale w.

        Returns:
          a ``FairOutput``.
        """
        if num_images < 1:
            raise ValueError(f"num_images must be >= 1; got {num_images}.")
        mode = Mode(mode)
        k_attr, k_noise, k_mc = jax.random.split(key, 3)
        seed = _seed_from_key(k_noise)
        t0 = time.perf_counter()
        if mode is Mode.GUIDANCE:
            rep = self.report(prompt)
            joint = self.target.for_report(rep, self.axes)
            prompts_k, weights = guidance_components(prompt, rep, joint,
                                                     max_components=self.max_components, key=k_mc)
            images, calls = self._guidance(prompts_k, weights, num_images, seed,
                                           num_inference_steps, guidance_scale)
            return FairOutput(images, [prompt] * num_images, [{}] * num_images, rep,
                              (prompts_k, weights), time.perf_counter() - t0, calls)
        if mode is Mode.PER_IMAGE:
            prompts, assigns, rep = self.plan(k_attr, prompt, num_images)
        else:
            rep = self.report(prompt)
            prompts, assigns = [prompt] * num_images, [{}] * num_images
        images = self._run_pipe(prompts, seed, num_inference_steps, guidance_scale)
        return FairOutput(images, prompts, assigns, rep, None, time.perf_counter() - t0, 0)

    def _generator(self, seed: int, offset: int):
        torch = _torch()
        return torch.Generator().manual_seed(seed + offset)

    def _run_pipe(self, prompts: list[str], seed: int, steps: int, scale: float) -> jax.Array:
        """The wrapped pipeline, unchanged, in batches; images to JAX by DLPack."""
        outs = []
        for i in range(0, len(prompts), self.batch_size):
            chunk = prompts[i:i + self.batch_size]
            latents = self._initial_latents(len(chunk), seed, i)
            res = self.pipe(prompt=chunk, num_inference_steps=steps, guidance_scale=scale,
                            latents=latents, output_type="pt")
            imgs = res.images if hasattr(res, "images") else res[0]
            outs.append(jnp.transpose(to_jax(imgs.float()), (0, 2, 3, 1)))
        return jnp.concatenate(outs, axis=0)

    def _latent_shape(self) -> tuple[int, int, int]:
        cfg = self.pipe.unet.config
        return int(cfg.in_channels), int(cfg.sample_size), int(cfg.sample_size)

    def _initial_latents(self, n: int, seed: int, offset: int):
        """Initial noise, identical across modes for the same (seed, image index)."""
        torch = _torch()
        c, h, w = self._latent_shape()
        gen = torch.Generator().manual_seed(seed)
        full = torch.randn((offset + n, c, h, w), generator=gen)
        return full[offset:]

    def _guidance(self, prompts_k: list[str], weights: np.ndarray, n: int, seed: int, steps: int,
                  scale: float) -> tuple[jax.Array, int]:
        torch = _torch()
        pipe = self.pipe
        k = len(prompts_k)
        device = getattr(pipe, "device", torch.device("cpu"))
        with torch.no_grad():
            cond, uncond = pipe.encode_prompt(prompts_k, device, 1, True, None)
        calls = 0
        outs = []
        per_batch = max(1, self.batch_size // (k + 1))
        w_all = jnp.asarray(weights, jnp.float32)
        for i in range(0, n, per_batch):
            b = min(per_batch, n - i)
            # the noise is drawn on the CPU (the same images on every device), then moved to the UNet
            dtype = getattr(pipe.unet, "dtype", None)  # the JAX toy UNet has none: keep float32
            latents = (self._initial_latents(b, seed, i).to(device=device, dtype=dtype)
                       * pipe.scheduler.init_noise_sigma)
            emb = torch.cat([uncond[:1].expand(b, *uncond.shape[1:]),
                             cond.unsqueeze(0).expand(b, *cond.shape).reshape(b * k,
                                                                              *cond.shape[1:])])
            wb = jnp.broadcast_to(w_all[None, :], (b, k))
            pipe.scheduler.set_timesteps(steps, device=device)
            for t in pipe.scheduler.timesteps:
                x_in = torch.cat([latents, latents.repeat_interleave(k, dim=0)])
                x_in = pipe.scheduler.scale_model_input(x_in, t)
                with torch.no_grad():
                    eps = pipe.unet(x_in, t, encoder_hidden_states=emb).sample
                calls += 1
                e = to_jax(eps.float())
                eps_u = e[:b]
                eps_c = e[b:].reshape((b, k) + e.shape[1:])
                mixed = _mix_jit(eps_u, eps_c, wb, jnp.float32(scale))
                latents = pipe.scheduler.step(to_torch(mixed, latents.device).to(latents.dtype), t,
                                              latents).prev_sample
            outs.append(self._decode(latents))
        return jnp.concatenate(outs, axis=0), calls

    def _decode(self, latents) -> jax.Array:
        torch = _torch()
        vae = getattr(self.pipe, "vae", None)
        with torch.no_grad():
            if vae is not None:
                img = vae.decode(latents / vae.config.scaling_factor, return_dict=False)[0]
            else:
                img = latents
        img = (img.float() / 2 + 0.5).clamp(0, 1)
        return jnp.transpose(to_jax(img), (0, 2, 3, 1))


# ------------------------------------------------------------------------------ tiny pipeline
_TINY_WORDS = ("a", "an", "the", "of", "photo", "portrait", "picture", "doctor", "nurse",
               "person", "young", "elderly", "middle", "aged", "male", "female", "non", "binary",
               "white", "black", "east", "south", "asian", "hispanic", "middle", "eastern",
               "blue", "orange", "man", "woman")


def _write_clip_tokenizer(folder: str, max_length: int) -> None:
    """A CLIP BPE tokenizer vocabulary written from scratch: characters, a few words, specials."""
    chars = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789-',.!?")
    vocab: dict[str, int] = {}
    for c in chars:
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    merges = []
    for w in dict.fromkeys(_TINY_WORDS):
        # merge left to right: ((w0 w1) w2) ... with the end-of-word marker on the last char
        pieces = list(w[:-1]) + [w[-1] + "</w>"]
        cur = pieces[0]
        for p in pieces[1:]:
            pair = f"{cur} {p}"
            if pair not in merges:
                merges.append(pair)
            cur = cur + p
            vocab.setdefault(cur, len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    with open(os.path.join(folder, "vocab.json"), "w") as fh:
        json.dump(vocab, fh)
    with open(os.path.join(folder, "merges.txt"), "w") as fh:
        fh.write("#version: 0.2\n" + "\n".join(merges) + "\n")


def tiny_pipeline(seed: int = 0, *, image_size: int = 32, max_length: int = 16) -> StableDiffusionPipeline:
    """A randomly initialised ``StableDiffusionPipeline`` built from configs, offline.

    UNet2DConditionModel (block_out_channels (32, 64), layers_per_block 1, cross-attention 32),
    AutoencoderKL (32, 64; 4 latent channels), CLIPTextModel (hidden 32, 2 layers), DDIM
    scheduler (steps_offset 1), and a CLIP tokenizer whose vocabulary and merges are written by
    this function. No safety checker. Images are ``image_size`` square and meaningless.

    Args:
      seed: torch seed for the random weights.
      image_size: output side (latents are ``image_size // 2``).
      max_length: tokenizer ``model_max_length`` (and text positions).

    Returns:
      a ``diffusers.StableDiffusionPipeline`` on the CPU.
    """
    torch = _torch()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    if image_size % 8:
        raise ValueError(f"image_size must be a multiple of 8; got {image_size}.")
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=image_size // 2,
        in_channels=4, out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
        norm_num_groups=32, attention_head_dim=8)
    vae = AutoencoderKL(
        block_out_channels=(32, 64), in_channels=3, out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), latent_channels=4,
        sample_size=image_size, norm_num_groups=32)
    scheduler = DDIMScheduler.from_config({
        "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
        "clip_sample": False, "set_alpha_to_one": False, "steps_offset": 1,
        "num_train_timesteps": 1000, "prediction_type": "epsilon"})
    with tempfile.TemporaryDirectory() as tmp:
        _write_clip_tokenizer(tmp, max_length)
        tokenizer = CLIPTokenizer(os.path.join(tmp, "vocab.json"), os.path.join(tmp, "merges.txt"),
                                  model_max_length=max_length)
    text_cfg = CLIPTextConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, hidden_size=32, intermediate_size=37,
        layer_norm_eps=1e-5, num_attention_heads=4, num_hidden_layers=2,
        vocab_size=len(tokenizer), max_position_embeddings=max_length)
    text_encoder = CLIPTextModel(text_cfg)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                   unet=unet, scheduler=scheduler, safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_pipeline(path: str | os.PathLike) -> StableDiffusionPipeline:
    """A Stable Diffusion pipeline from a local folder (``StableDiffusionPipeline.from_pretrained``).

    Raises:
      FileNotFoundError: the folder does not exist.
    """
    if not os.path.isdir(path):
        raise FileNotFoundError(f"no pipeline folder at {path}; pass a local Stable Diffusion "
                                "folder (diffusers format) with --set model=PATH.")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(str(path), safety_checker=None,
                                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# -------------------------------------------------------------------------- toy pixel pipeline
def _module_base():
    torch = _torch()
    return torch.nn.Module


class JaxDenoiserUNet(_module_base()):
    """A torch ``nn.Module`` facade over the JAX toy denoiser, with the UNet call signature.

    ``forward(sample, timestep, encoder_hidden_states)`` receives NCHW torch tensors, hands
    them to the jitted JAX denoiser through DLPack and returns an object with ``.sample``.
    ``encoder_hidden_states`` is (N, 1, D): the frozen caption embedding, whitened by
    ``text_adapter`` (``toy.fit_text_whitening``) when one is given.
    """

    def __init__(self, params: Any, cfg, text_adapter: dict | None = None) -> None:
        super().__init__()
        from jaxml.fairt2i.toy import apply_denoiser, whiten_text

        self.params = params
        self.cfg_jax = cfg
        self.text_adapter = text_adapter
        self.config = SimpleNamespace(in_channels=3, out_channels=3, sample_size=cfg.image_size)

        def run(p, x, t, e, adapter):
            if adapter is not None:
                e = whiten_text(adapter, e)
            return apply_denoiser(p, x, t, e, cfg)

        self._apply = jax.jit(run)
        self.calls = 0

    def forward(self, sample, timestep, encoder_hidden_states, return_dict: bool = True, **_):
        torch = _torch()
        n = sample.shape[0]
        x = jnp.transpose(to_jax(sample.float()), (0, 2, 3, 1))
        t = jnp.broadcast_to(jnp.asarray(int(timestep), jnp.int32), (n,))
        e = to_jax(encoder_hidden_states.float())[:, 0, :]
        eps = jnp.transpose(self._apply(self.params, x, t, e, self.text_adapter), (0, 3, 1, 2))
        self.calls += 1
        out = torch.from_dlpack(eps)
        return SimpleNamespace(sample=out) if return_dict else (out,)


class ToyPixelPipeline:
    """A pixel-space text-to-image pipeline: JAX toy denoiser + diffusers DDIM + MiniLM text.

    It has the Stable Diffusion pipeline surface FairPipeline uses (``__call__`` with
    ``prompt``, ``num_inference_steps``, ``guidance_scale``, ``latents``, ``output_type``;
    ``encode_prompt``; ``unet``; ``scheduler``; no ``vae``). Classifier-free guidance uses the
    empty caption, as the toy model was trained with dropped captions.

    Args:
      params: trained toy denoiser parameters.
      cfg: its ``DenoiserConfig``.
      encoder: a ``MiniLMEncoder`` (the frozen text side).
      text_adapter: the fixed whitening of caption embeddings used in training.
    """

    vae = None

    def __init__(self, params: Any, cfg, encoder, text_adapter: dict | None = None) -> None:
        torch = _torch()
        from diffusers import DDIMScheduler

        self.unet = JaxDenoiserUNet(params, cfg, text_adapter)
        self.scheduler = DDIMScheduler.from_config({
            "num_train_timesteps": cfg.num_train_timesteps, "beta_schedule": "squaredcos_cap_v2",
            "clip_sample": True, "clip_sample_range": 1.0, "set_alpha_to_one": True,
            "steps_offset": 1, "prediction_type": "epsilon", "timestep_spacing": "leading"})
        self.encoder = encoder
        self.device = torch.device("cpu")

    def encode_prompt(self, prompt, device=None, num_images_per_prompt: int = 1,
                      do_classifier_free_guidance: bool = True, negative_prompt=None, **_):
        """``(prompt_embeds, negative_prompt_embeds)``, each (N, 1, D) torch tensors."""
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        emb = to_torch(self.encoder.encode(prompts))[:, None, :]
        emb = emb.repeat_interleave(num_images_per_prompt, dim=0)
        neg = None
        if do_classifier_free_guidance:
            neg_text = negative_prompt if negative_prompt is not None else ""
            negs = [neg_text] * len(prompts) if isinstance(neg_text, str) else list(neg_text)
            neg = to_torch(self.encoder.encode(negs))[:, None, :]
            neg = neg.repeat_interleave(num_images_per_prompt, dim=0)
        return emb, neg

    def __call__(self, prompt, num_inference_steps: int = 20, guidance_scale: float = 3.0,
                 latents=None, generator=None, output_type: str = "pt", **_):
        """Standard CFG sampling; returns an object with ``.images`` (NCHW in [0, 1] for "pt",
        NHWC numpy for "np")."""
        torch = _torch()
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        n = len(prompts)
        cond, uncond = self.encode_prompt(prompts, None, 1, True)
        c, s = 3, self.unet.config.sample_size
        if latents is None:
            latents = torch.randn((n, c, s, s), generator=generator)
        latents = latents * self.scheduler.init_noise_sigma
        emb = torch.cat([uncond, cond])
        self.scheduler.set_timesteps(num_inference_steps)
        for t in self.scheduler.timesteps:
            x_in = self.scheduler.scale_model_input(torch.cat([latents, latents]), t)
            eps = self.unet(x_in, t, encoder_hidden_states=emb).sample
            eps_u, eps_c = eps[:n], eps[n:]
            eps = eps_u + guidance_scale * (eps_c - eps_u)
            latents = self.scheduler.step(eps, t, latents).prev_sample
        images = (latents / 2 + 0.5).clamp(0, 1)
        if output_type == "np":
            images = images.permute(0, 2, 3, 1).numpy()
        return SimpleNamespace(images=images)
