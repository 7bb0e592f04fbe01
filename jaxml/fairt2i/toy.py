"""A toy text-to-image world with a known, controllable bias, for a closed-loop FairT2I check.

Real Stable Diffusion and a real LLM are out of reach offline, and the images of a randomly
initialised pipeline mean nothing. This module builds the measurable stand-in: synthetic
16x16 images of "people" whose occupation fixes the figure's shape (a plus for "doctor", a
disc for "nurse", ...) and whose colour stands for a sensitive group (blue / orange). The
training set is deliberately biased (e.g. 90% of doctor images blue, 10% of nurse images
blue); a share of captions names the colour explicitly ("a photo of a blue nurse"), and a share
is dropped (empty caption) for classifier-free guidance (Ho & Salimans, arXiv 2207.12598).

The denoiser is a pixel-space residual MLP with FiLM conditioning (Perez et al., arXiv
1709.07871) on a timestep embedding and a frozen MiniLM caption embedding (the text side is
frozen on purpose: a jointly trained tiny text encoder collapsed in a feasibility probe). It is
trained in JAX with ``jaxml.train.train`` on the DDPM epsilon objective
``E ||eps - eps_theta(sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, t, c)||^2`` (Ho et al., arXiv
2006.11239, Eq. 14) under the cosine schedule (Nichol & Dhariwal, arXiv 2102.09672, Eq. 17),
and then served to diffusers' DDIM scheduler through ``jaxml.fairt2i.bridge.ToyPixelPipeline``,
so it runs through the same ``FairPipeline`` as a real Stable Diffusion folder.

``classify_colour`` is the evaluator: it reads the figure's colour from the pixels and
abstains ("unclassified") when the figure is too small or its colour is near neither prototype.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "ToyWorldConfig",
    "DenoiserConfig",
    "COLOUR_RGB",
    "BACKGROUND_RGB",
    "captions",
    "caption_with_attribute",
    "render",
    "sample_batch",
    "cosine_alphas_cumprod",
    "fit_text_whitening",
    "whiten_text",
    "init_denoiser",
    "predict_x0",
    "apply_denoiser",
    "diffusion_loss",
    "classify_colour",
    "UNCLASSIFIED",
]

COLOUR_RGB: dict[str, tuple[float, float, float]] = {
    "blue": (0.15, 0.35, 0.90),
    "orange": (0.95, 0.55, 0.10),
    "green": (0.15, 0.70, 0.25),
    "purple": (0.55, 0.20, 0.70),
}
BACKGROUND_RGB = (0.88, 0.88, 0.88)
_SHAPES = ("plus", "disc", "square", "triangle")
UNCLASSIFIED = -1


@dataclass(frozen=True)
class ToyWorldConfig:
    """The synthetic, biased training distribution.

    Attributes:
      occupations: person words; occupation i is drawn with shape i (plus, disc, square, ...).
      colours: the sensitive attribute's values (keys of ``COLOUR_RGB``).
      bias: per occupation, the probability of each colour (rows sum to 1).
      explicit_rate: probability that a caption names the image's colour.
      drop_rate: probability that a caption is dropped (empty string) for CFG training.
      image_size: side of the square image.
      template: caption template with one ``{}`` for the (possibly attributed) person word.
      jitter: maximum shift of the figure from the centre, in pixels.
      pixel_noise: standard deviation of i.i.d. pixel noise (in [0, 1] units).
    """

    occupations: tuple[str, ...] = ("doctor", "nurse")
    colours: tuple[str, ...] = ("blue", "orange")
    bias: tuple[tuple[float, ...], ...] = ((0.9, 0.1), (0.1, 0.9))
    explicit_rate: float = 0.5
    drop_rate: float = 0.1
    image_size: int = 16
    template: str = "a photo of a {}"
    jitter: int = 2
    pixel_noise: float = 0.0

    def __post_init__(self) -> None:
        if not 1 <= len(self.occupations) <= len(_SHAPES):
            raise ValueError(f"occupations: 1 to {len(_SHAPES)} person words, got "
                             f"{self.occupations!r}.")
        unknown = [c for c in self.colours if c not in COLOUR_RGB]
        if unknown or len(self.colours) < 2:
            raise ValueError(f"colours must be >= 2 of {sorted(COLOUR_RGB)}; got {self.colours!r}.")
        if len(self.bias) != len(self.occupations) or any(
                len(r) != len(self.colours) or min(r) < 0 or abs(sum(r) - 1) > 1e-6
                for r in self.bias):
            raise ValueError(f"bias must hold one probability row per occupation over the "
                             f"{len(self.colours)} colours, each summing to 1; got {self.bias!r}.")
        for name in ("explicit_rate", "drop_rate"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise ValueError(f"{name} must lie in [0, 1); got {v}.")
        if not 8 <= self.image_size <= 64:
            raise ValueError(f"image_size must lie in [8, 64]; got {self.image_size}.")
        if self.template.count("{}") != 1:
            raise ValueError(f"template needs exactly one '{{}}'; got {self.template!r}.")
        if not 0 <= self.jitter <= self.image_size // 4:
            raise ValueError(f"jitter must lie in [0, image_size/4]; got {self.jitter}.")


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def caption_with_attribute(template: str, person: str, attribute: str | None) -> str:
    """``template`` filled with ``"<attribute> <person>"`` (or the bare person), article fixed."""
    phrase = person if attribute is None else f"{attribute} {person}"
    text = template.format(phrase)
    for art in ("a", "an"):
        text = text.replace(f" {art} {phrase}", f" {_article(phrase)} {phrase}", 1)
        if text.startswith(f"{art} {phrase}"):
            text = f"{_article(phrase)} {phrase}" + text[len(art) + 1 + len(phrase):]
    return text


def captions(cfg: ToyWorldConfig) -> list[str]:
    """All captions of the world: index 0 is the empty (dropped) caption, then per occupation
    the plain caption followed by one caption per colour."""
    out = [""]
    for occ in cfg.occupations:
        out.append(caption_with_attribute(cfg.template, occ, None))
        out += [caption_with_attribute(cfg.template, occ, c) for c in cfg.colours]
    return out


def _shape_mask(shape: str, size: int, cy: jax.Array, cx: jax.Array) -> jax.Array:
    yy, xx = jnp.meshgrid(jnp.arange(size, dtype=jnp.float32), jnp.arange(size, dtype=jnp.float32),
                          indexing="ij")
    dy, dx = yy - cy, xx - cx
    r = size * 0.28
    if shape == "plus":
        arm = size * 0.09
        m = ((jnp.abs(dy) <= arm) & (jnp.abs(dx) <= r)) | ((jnp.abs(dx) <= arm) & (jnp.abs(dy) <= r))
    elif shape == "disc":
        m = dy * dy + dx * dx <= r * r
    elif shape == "square":
        m = (jnp.abs(dy) <= r * 0.85) & (jnp.abs(dx) <= r * 0.85)
    else:  # triangle
        m = (dy <= r) & (dy >= -r) & (jnp.abs(dx) <= (dy + r) * 0.5)
    return m.astype(jnp.float32)


def render(key: jax.Array, cfg: ToyWorldConfig, occupation: jax.Array, colour: jax.Array
           ) -> jax.Array:
    """Render one image in ``[-1, 1]``, shape (size, size, 3).

    Args:
      key: PRNG key (position jitter, colour shade, pixel noise).
      cfg: the world.
      occupation: int index into ``cfg.occupations`` (selects the shape).
      colour: int index into ``cfg.colours``.
    """
    k_pos, k_shade, k_pix = jax.random.split(key, 3)
    s = cfg.image_size
    centre = (s - 1) / 2.0
    off = jax.random.randint(k_pos, (2,), -cfg.jitter, cfg.jitter + 1).astype(jnp.float32)
    masks = jnp.stack([_shape_mask(_SHAPES[i], s, centre + off[0], centre + off[1])
                       for i in range(len(cfg.occupations))])
    mask = masks[occupation][:, :, None]
    rgb = jnp.asarray([COLOUR_RGB[c] for c in cfg.colours], jnp.float32)[colour]
    rgb = jnp.clip(rgb + 0.04 * jax.random.normal(k_shade, (3,)), 0.0, 1.0)
    bg = jnp.asarray(BACKGROUND_RGB, jnp.float32)
    img = mask * rgb[None, None, :] + (1.0 - mask) * bg[None, None, :]
    img = img + cfg.pixel_noise * jax.random.normal(k_pix, img.shape)
    return jnp.clip(img, 0.0, 1.0) * 2.0 - 1.0


def sample_batch(key: jax.Array, cfg: ToyWorldConfig, batch_size: int
                 ) -> dict[str, jax.Array]:
    """Draw a training batch: images, caption indices (into ``captions(cfg)``) and labels.

    Returns:
      ``{"x0": (B, s, s, 3), "caption": (B,) int, "occupation": (B,), "colour": (B,)}``.
    """
    k_occ, k_col, k_exp, k_drop, k_img = jax.random.split(key, 5)
    n_occ, n_col = len(cfg.occupations), len(cfg.colours)
    occ = jax.random.randint(k_occ, (batch_size,), 0, n_occ)
    logits = jnp.log(jnp.asarray(cfg.bias, jnp.float32) + 1e-30)[occ]
    col = jax.random.categorical(k_col, logits)
    explicit = jax.random.bernoulli(k_exp, cfg.explicit_rate, (batch_size,))
    drop = jax.random.bernoulli(k_drop, cfg.drop_rate, (batch_size,))
    base = 1 + occ * (1 + n_col)
    cap = jnp.where(drop, 0, jnp.where(explicit, base + 1 + col, base))
    x0 = jax.vmap(lambda k, o, c: render(k, cfg, o, c))(
        jax.random.split(k_img, batch_size), occ, col)
    return {"x0": x0, "caption": cap, "occupation": occ, "colour": col}


@functools.lru_cache(maxsize=8)
def _cosine_table(num_steps: int, max_beta: float) -> np.ndarray:
    f = lambda u: math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2
    betas = [min(1 - f((i + 1) / num_steps) / f(i / num_steps), max_beta) for i in range(num_steps)]
    return np.cumprod(1.0 - np.asarray(betas, np.float64)).astype(np.float32)


def cosine_alphas_cumprod(num_steps: int = 1000, max_beta: float = 0.999) -> jax.Array:
    """``abar_t`` of the cosine schedule as diffusers' ``squaredcos_cap_v2`` computes it.

    ``beta_t = min(1 - f((t+1)/T) / f(t/T), max_beta)`` with ``f(u) = cos^2((u + 0.008) / 1.008 *
    pi / 2)`` (Nichol & Dhariwal 2021, Eq. 17), ``abar_t = prod_{s<=t} (1 - beta_s)``.
    """
    return jnp.asarray(_cosine_table(int(num_steps), float(max_beta)))


@dataclass(frozen=True)
class DenoiserConfig:
    """Residual-MLP epsilon predictor with FiLM conditioning.

    Attributes:
      image_size: side of the (square, RGB) image.
      text_dim: caption-embedding width (384 for MiniLM).
      width: hidden width.
      n_blocks: residual blocks.
      cond_dim: width of the (time, text) conditioning vector.
      time_dim: sinusoidal timestep-embedding width.
      expansion: hidden-width multiplier inside a residual block.
      num_train_timesteps: T of the cosine schedule (for the skip term).
    """

    image_size: int = 16
    text_dim: int = 384
    width: int = 256
    n_blocks: int = 3
    cond_dim: int = 256
    time_dim: int = 64
    expansion: int = 2
    num_train_timesteps: int = 1000

    def __post_init__(self) -> None:
        for name in ("image_size", "text_dim", "width", "n_blocks", "cond_dim", "time_dim",
                     "expansion", "num_train_timesteps"):
            if getattr(self, name) < 1:
                raise ValueError(f"DenoiserConfig.{name} must be >= 1; got {getattr(self, name)}.")
        if self.time_dim % 2:
            raise ValueError(f"time_dim must be even; got {self.time_dim}.")


def fit_text_whitening(table: jax.Array, rel_tol: float = 1e-4) -> dict[str, jax.Array]:
    """ZCA whitening of frozen caption embeddings: ``e -> (e - mu) W``.

    ``W = V diag(sqrt(n) / s) V^T`` over the singular directions of the centred caption table
    with ``s > rel_tol * s_max``, so the training captions become unit-variance codes that
    differ along every direction in which the captions differ. Sentence embeddings of captions
    differing by one word are close (MiniLM cosine ~0.8 for "a photo of a nurse" vs "a photo
    of a blue nurse"); whitening makes that word as visible to the denoiser as the occupation.
    This is a fixed (not trained) adapter of the frozen text side.

    Args:
      table: (n, d) caption embeddings.
      rel_tol: relative singular-value cut-off.

    Returns:
      ``{"mean": (d,), "proj": (d, d)}``.
    """
    mu = jnp.mean(table, axis=0)
    _, s, vt = jnp.linalg.svd(table - mu[None, :], full_matrices=False)
    keep = (s > rel_tol * s[0]).astype(table.dtype)
    scale = keep * jnp.sqrt(table.shape[0]) / jnp.maximum(s, 1e-12)
    return {"mean": mu, "proj": (vt.T * scale[None, :]) @ vt}


def whiten_text(adapter: dict[str, jax.Array], e: jax.Array) -> jax.Array:
    """Apply ``fit_text_whitening``'s adapter to (B, d) embeddings."""
    return (e - adapter["mean"][None, :]) @ adapter["proj"]


def _dense_init(key: jax.Array, n_in: int, n_out: int, scale: float = 1.0) -> dict[str, jax.Array]:
    w = jax.random.normal(key, (n_in, n_out)) * (scale / math.sqrt(n_in))
    return {"w": w, "b": jnp.zeros((n_out,))}


def _dense(p: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    return x @ p["w"] + p["b"][None, :]


def init_denoiser(key: jax.Array, cfg: DenoiserConfig) -> dict[str, Any]:
    """Initial parameters (a plain nested dict). The output layer starts at zero."""
    d_img = cfg.image_size * cfg.image_size * 3
    keys = jax.random.split(key, 5 + 2 * cfg.n_blocks)
    params: dict[str, Any] = {
        "t1": _dense_init(keys[0], cfg.time_dim, cfg.cond_dim),
        "e1": _dense_init(keys[1], cfg.text_dim, cfg.cond_dim),
        "c2": _dense_init(keys[2], cfg.cond_dim, cfg.cond_dim),
        "inp": _dense_init(keys[3], d_img, cfg.width),
        "cin": _dense_init(keys[4], cfg.cond_dim, cfg.width),
        "out": {"w": jnp.zeros((cfg.width, d_img)), "b": jnp.zeros((d_img,))},
        "blocks": [],
    }
    for i in range(cfg.n_blocks):
        params["blocks"].append({
            "film": {"w": jnp.zeros((cfg.cond_dim, 2 * cfg.width)), "b": jnp.zeros((2 * cfg.width,))},
            "fc1": _dense_init(keys[5 + 2 * i], cfg.width, cfg.expansion * cfg.width),
            "fc2": _dense_init(keys[6 + 2 * i], cfg.expansion * cfg.width, cfg.width, scale=0.5),
        })
    return params


def _timestep_embedding(t: jax.Array, dim: int) -> jax.Array:
    half = dim // 2
    freqs = jnp.exp(-math.log(10000.0) * jnp.arange(half, dtype=jnp.float32) / half)
    ang = t.astype(jnp.float32)[:, None] * freqs[None, :]
    return jnp.concatenate([jnp.sin(ang), jnp.cos(ang)], axis=-1)


def _layer_norm(x: jax.Array) -> jax.Array:
    mu = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.var(x, axis=-1, keepdims=True)
    return (x - mu) * jax.lax.rsqrt(var + 1e-5)


def predict_x0(params: dict[str, Any], x_t: jax.Array, t: jax.Array, text: jax.Array,
               cfg: DenoiserConfig) -> jax.Array:
    """Predict the clean image ``x0_theta(x_t, t, c)``.

    Parameterised directly as ``x0 = f_theta(x_t, t, c)`` (no skip from ``x_t``): the output
    then lies near the low-dimensional span of clean images, and the network never has to
    cancel the noise in all pixel dimensions through its narrower hidden layer. Predicting
    ``x0`` rather than ``eps`` trains much faster on this few-mode toy distribution.

    Args:
      params: from ``init_denoiser``.
      x_t: (B, s, s, 3) noisy images.
      t: (B,) integer timesteps in ``[0, T)``.
      text: (B, text_dim) caption embeddings.
      cfg: the denoiser config.

    Returns:
      (B, s, s, 3) predicted clean image.
    """
    b = x_t.shape[0]
    temb = _timestep_embedding(t, cfg.time_dim)
    c = jax.nn.silu(_dense(params["t1"], temb) + _dense(params["e1"], text))
    c = jax.nn.silu(_dense(params["c2"], c))
    h = _dense(params["inp"], x_t.reshape(b, -1)) + _dense(params["cin"], c)
    for blk in params["blocks"]:
        scale, shift = jnp.split(_dense(blk["film"], c), 2, axis=-1)
        z = _layer_norm(h) * (1.0 + scale) + shift
        h = h + _dense(blk["fc2"], jax.nn.silu(_dense(blk["fc1"], z)))
    return _dense(params["out"], _layer_norm(h)).reshape(x_t.shape)


def apply_denoiser(params: dict[str, Any], x_t: jax.Array, t: jax.Array, text: jax.Array,
                   cfg: DenoiserConfig) -> jax.Array:
    """Predict the noise ``eps_theta = (x_t - sqrt(abar_t) x0_theta) / sqrt(1 - abar_t)``.

    This is the epsilon-prediction interface diffusers schedulers expect
    (``prediction_type="epsilon"``); DDIM turns it back into exactly ``x0_theta``.

    Args:
      params: from ``init_denoiser``.
      x_t: (B, s, s, 3) noisy images.
      t: (B,) integer timesteps in ``[0, T)``.
      text: (B, text_dim) caption embeddings.
      cfg: the denoiser config.

    Returns:
      (B, s, s, 3) predicted noise.
    """
    ab = cosine_alphas_cumprod(cfg.num_train_timesteps)[t][:, None, None, None]
    x0 = predict_x0(params, x_t, t, text, cfg)
    return (x_t - jnp.sqrt(ab) * x0) / jnp.sqrt(jnp.maximum(1.0 - ab, 1e-8))


def diffusion_loss(params: dict[str, Any], batch: dict[str, jax.Array], key: jax.Array, *,
                   cfg: DenoiserConfig, caption_table: jax.Array, alphas_cumprod: jax.Array
                   ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Denoising loss ``E_t,eps ||x0 - x0_theta(sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, t, c)||^2``.

    The x0-prediction form of the DDPM objective (Ho et al. 2020, Sec. 3.2; equivalent to the
    epsilon loss up to the per-timestep weight ``abar_t / (1 - abar_t)``), timesteps uniform.

    Args:
      params: denoiser parameters.
      batch: from ``sample_batch`` (``x0`` and ``caption`` are used).
      key: PRNG key for timesteps and noise.
      cfg: the denoiser config.
      caption_table: (n_captions, text_dim) frozen caption embeddings.
      alphas_cumprod: (T,) ``abar_t``.

    Returns:
      ``(mean squared error, {})``.
    """
    x0 = batch["x0"]
    k_t, k_eps = jax.random.split(key)
    t = jax.random.randint(k_t, (x0.shape[0],), 0, alphas_cumprod.shape[0])
    eps = jax.random.normal(k_eps, x0.shape)
    ab = alphas_cumprod[t][:, None, None, None]
    x_t = jnp.sqrt(ab) * x0 + jnp.sqrt(1.0 - ab) * eps
    pred = predict_x0(params, x_t, t, caption_table[batch["caption"]], cfg)
    return jnp.mean((pred - x0) ** 2), {}


def classify_colour(images: jax.Array, colours: tuple[str, ...], *, min_pixels: int | None = None,
                    max_dist: float = 0.3, bg_dist: float = 0.25) -> jax.Array:
    """Read the figure's colour from images in ``[0, 1]``.

    A pixel is foreground when its RGB distance to the background exceeds ``bg_dist``. The
    image's colour is the prototype nearest to the mean foreground colour, provided there are at
    least ``min_pixels`` foreground pixels and the distance is below ``max_dist``; otherwise
    ``UNCLASSIFIED`` (-1).

    Args:
      images: (B, H, W, 3) in ``[0, 1]``.
      colours: the candidate colour names (keys of ``COLOUR_RGB``).
      min_pixels: minimum foreground size (default 8% of the image area).
      max_dist: maximum RGB distance from the mean foreground colour to its prototype.
      bg_dist: foreground threshold.

    Returns:
      (B,) int32 colour indices or -1.
    """
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be (B, H, W, 3) in [0, 1]; got shape {images.shape}.")
    if min_pixels is None:
        min_pixels = max(1, int(0.08 * images.shape[1] * images.shape[2]))
    protos = jnp.asarray([COLOUR_RGB[c] for c in colours], jnp.float32)
    bg = jnp.asarray(BACKGROUND_RGB, jnp.float32)
    dist_bg = jnp.linalg.norm(images - bg[None, None, None, :], axis=-1)
    fg = (dist_bg > bg_dist).astype(jnp.float32)
    n_fg = jnp.sum(fg, axis=(1, 2))
    mean = jnp.sum(images * fg[..., None], axis=(1, 2)) / jnp.maximum(n_fg, 1.0)[:, None]
    d = jnp.linalg.norm(mean[:, None, :] - protos[None, :, :], axis=-1)
    best = jnp.argmin(d, axis=-1)
    ok = (n_fg >= min_pixels) & (jnp.min(d, axis=-1) < max_dist)
    return jnp.where(ok, best, UNCLASSIFIED).astype(jnp.int32)
