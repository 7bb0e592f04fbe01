"""The neural-collapse training recipe of arXiv 2409.17582 (sec. 6.1, stage 1) as pure pieces for
:func:`jaxml.train.train`.

Loss (one mini-batch ``B``, backbone features ``h_i``, fixed simplex-ETF head ``W``)::

    L = mean_i CE(s * h_i @ W, y_i) + lambda/2 * mean_i ||h_i||^2

plus coupled weight decay ``wd * theta`` added to the gradient (PyTorch-style SGD weight decay),
optionally with a trained per-class bias on the head (``logits = s h W + b``, ``NCRecipe.head_bias``)
and trained per-class norms of its columns (``logits = s h W diag(g)``, ``NCRecipe.head_norm``),
SGD with momentum 0.9 and a cosine learning-rate schedule. The paper: ResNet-34, ``wd = 5e-3``,
``lambda = 1e-2``, ``lr = 0.01``, batch 64, 320 epochs, random-crop + flip augmentation for CIFAR.
Mini-batches are drawn uniformly from the long-tailed training set (instance-balanced sampling,
as in plain cross-entropy training).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from jaxml.longtail.collapse import etf_logits, feature_norm_penalty
from jaxml.longtail.models import BackboneConfig, apply_backbone, init_backbone

__all__ = [
    "NCRecipe", "nc_optimizer", "nc_loss_fn", "batch_sampler", "augment_crop_flip", "input_normaliser",
    "batched_features", "init_nc_params", "split_nc_params", "nc_head",
]


@dataclasses.dataclass(frozen=True)
class NCRecipe:
    """Hyperparameters of neural-collapse training (defaults: arXiv 2409.17582 sec. 6.1).

    Attributes:
      lr: peak learning rate of the cosine schedule.
      momentum: SGD momentum.
      weight_decay: coupled L2 weight decay on every parameter.
      feature_penalty: ``lambda`` of the feature-norm penalty.
      steps: optimisation steps.
      batch_size: mini-batch size.
      logit_scale: ``s`` multiplying the ETF logits (1 in the paper).
      augment: random 4-pixel-padded crop and horizontal flip (CIFAR).
      head_bias: train a per-class bias ``b`` on the fixed ETF head, ``logits = s h W + b``. Off by
        default (the paper's head is ``h W``); the official code's ``ETFClassifier`` keeps the ETF
        directions fixed but trains such a bias, so this switch reproduces that variant. The bias
        gets the same coupled weight decay as every other parameter.
      head_norm: train a per-class norm ``g_k`` (initialised to 1) of the ETF head's columns,
        ``logits = s h W diag(g) (+ b)``: the directions stay a fixed simplex ETF, the lengths are
        learned. Off by default (the paper's head has equal unit norms); the official code's
        ``ETFClassifier`` stores the head as directions times trainable norms and trains the norms
        when its ``train_etf_norm`` option is set, so this switch reproduces that variant. The
        norms get the same coupled weight decay as every other parameter.
    """

    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-3
    feature_penalty: float = 1e-2
    steps: int = 1000
    batch_size: int = 64
    logit_scale: float = 1.0
    augment: bool = False
    head_bias: bool = False
    head_norm: bool = False

    def __post_init__(self):
        checks = {
            "lr": self.lr > 0,
            "momentum": 0 <= self.momentum < 1,
            "weight_decay": self.weight_decay >= 0,
            "feature_penalty": self.feature_penalty >= 0,
            "steps": self.steps >= 1,
            "batch_size": self.batch_size >= 1,
            "logit_scale": self.logit_scale > 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"NCRecipe: invalid {name}={getattr(self, name)!r} (lr, logit_scale > 0; "
                                 "0 <= momentum < 1; weight_decay, feature_penalty >= 0; steps, batch_size >= 1)")


def nc_optimizer(recipe: NCRecipe) -> optax.GradientTransformation:
    """SGD(momentum) with cosine decay over ``recipe.steps`` and coupled weight decay."""
    schedule = optax.cosine_decay_schedule(recipe.lr, recipe.steps)
    return optax.chain(
        optax.add_decayed_weights(recipe.weight_decay),
        optax.sgd(schedule, momentum=recipe.momentum),
    )


def _head_entries(recipe: NCRecipe) -> dict[str, float]:
    """Trained head entries of the parameter layout and their initial values (bias 0, norms 1)."""
    return {name: init for name, init, on in (("head_bias", 0.0, recipe.head_bias),
                                               ("head_norm", 1.0, recipe.head_norm)) if on}


def init_nc_params(key: jax.Array, backbone: BackboneConfig, num_classes: int, recipe: NCRecipe) -> dict:
    """Trainable parameters of neural-collapse training.

    The backbone's parameters (:func:`jaxml.longtail.init_backbone`) as they are, or, with
    ``recipe.head_bias`` and/or ``recipe.head_norm``, ``{"backbone": ..., "head_bias": zeros(K),
    "head_norm": ones(K)}`` (each head entry only when its switch is on; the ETF directions are
    never a parameter). :func:`split_nc_params` and :func:`nc_head` read the layout.
    """
    params = init_backbone(key, backbone)
    head = {name: jnp.full((num_classes,), init, jnp.float32) for name, init in _head_entries(recipe).items()}
    return {"backbone": params, **head} if head else params


def split_nc_params(params: dict, recipe: NCRecipe) -> tuple[dict, jax.Array | None]:
    """``(backbone_params, b)`` of :func:`init_nc_params`'s layout; ``b = None`` without a head bias.

    Stage 2 scores a feature ``h`` with the logits the model was trained with,
    ``etf_logits(h, W', s, b) = s h W' + b`` where ``(W', b) = nc_head(params, W, recipe)``.
    """
    head = _head_entries(recipe)
    if head:
        want = {"backbone", *head}
        if not (isinstance(params, dict) and set(params) == want):
            raise ValueError(f"split_nc_params: the recipe (head_bias={recipe.head_bias}, "
                             f"head_norm={recipe.head_norm}) expects params with keys {sorted(want)}; "
                             "build them with init_nc_params(..., recipe) for the same recipe")
        return params["backbone"], params.get("head_bias")
    return params, None


def nc_head(params: dict, etf: jax.Array, recipe: NCRecipe) -> tuple[jax.Array, jax.Array | None]:
    """The trained head ``(W diag(g), b)`` of :func:`init_nc_params`'s layout.

    ``W`` is the fixed simplex ETF ``(d, K)``; ``g`` the trained per-class norms
    (``recipe.head_norm``, else all 1, and ``W`` is returned as it is); ``b`` the trained bias
    (``recipe.head_bias``, else None). Logits: ``etf_logits(h, W diag(g), s, b)``.
    """
    _, bias = split_nc_params(params, recipe)
    weights = etf * params["head_norm"][None, :] if recipe.head_norm else etf
    return weights, bias


def nc_loss_fn(
    backbone: BackboneConfig, etf: jax.Array, recipe: NCRecipe
) -> Callable[[dict, tuple[jax.Array, jax.Array], jax.Array], tuple[jax.Array, dict[str, jax.Array]]]:
    """``loss_fn(params, (x, y), key) -> (loss, metrics)`` for :func:`jaxml.train.train`.

    ``params`` in :func:`init_nc_params`'s layout for ``recipe``. Metrics: ``ce``, ``feature_norm``
    (mean ``||h||``) and ``train_acc`` of the batch.
    """
    num_classes = etf.shape[1]

    def loss_fn(params, batch, key):
        del key
        x, y = batch
        body, _ = split_nc_params(params, recipe)
        weights, bias = nc_head(params, etf, recipe)
        h = apply_backbone(body, x, backbone)
        logits = etf_logits(h, weights, recipe.logit_scale, bias)
        ce = jnp.mean(optax.softmax_cross_entropy(logits, jax.nn.one_hot(y, num_classes)))
        loss = ce + feature_norm_penalty(h, recipe.feature_penalty)
        metrics = {
            "ce": ce,
            "feature_norm": jnp.mean(jnp.linalg.norm(h, axis=-1)),
            "train_acc": jnp.mean((jnp.argmax(logits, -1) == y).astype(jnp.float32)),
        }
        return loss, metrics

    return loss_fn


def augment_crop_flip(key: jax.Array, images: jax.Array, pad: int = 4) -> jax.Array:
    """Random ``pad``-padded crop back to the input size and random horizontal flip, per image.

    Args:
      key: PRNG key.
      images: ``(N, H, W, C)``.
    """
    n, h, w, _ = images.shape
    k_crop, k_flip = jax.random.split(key)
    padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    offsets = jax.random.randint(k_crop, (n, 2), 0, 2 * pad + 1)
    flips = jax.random.bernoulli(k_flip, 0.5, (n,))

    def one(img, off, flip):
        crop = jax.lax.dynamic_slice(img, (off[0], off[1], 0), (h, w, img.shape[-1]))
        return jnp.where(flip, crop[:, ::-1], crop)

    return jax.vmap(one)(padded, offsets, flips)


def batch_sampler(
    x: jax.Array, y: jax.Array, batch_size: int, *, augment: bool = False
) -> Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]:
    """Pure ``batch_fn(key, step) -> (x_b, y_b)``: a uniform mini-batch (with replacement).

    ``x`` may be uint8 images (scaled to [0, 1] and standardised per channel over the training
    set) or float inputs (used as they are).
    """
    x = jnp.asarray(x)
    y = jnp.asarray(y)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"batch_sampler: {x.shape[0]} inputs but {y.shape[0]} labels")
    normalise = input_normaliser(x)

    def batch_fn(key, step):
        del step
        k_idx, k_aug = jax.random.split(key)
        idx = jax.random.randint(k_idx, (batch_size,), 0, x.shape[0])
        xb = normalise(x[idx])
        if augment:
            xb = augment_crop_flip(k_aug, xb)
        return xb, y[idx]

    return batch_fn


def input_normaliser(x_train: jax.Array) -> Callable[[jax.Array], jax.Array]:
    """Identity for float inputs; for uint8 images ``(x/255 - mean_c) / std_c`` from the training set."""
    if jnp.issubdtype(x_train.dtype, jnp.floating):
        return lambda x: x
    scaled = jnp.asarray(x_train, jnp.float32) / 255.0
    axes = tuple(range(scaled.ndim - 1))
    mean = jnp.mean(scaled, axis=axes)
    std = jnp.std(scaled, axis=axes) + 1e-6
    bshape = (1,) * (scaled.ndim - 1) + (-1,)

    def normalise(x):
        return (jnp.asarray(x, jnp.float32) / 255.0 - mean.reshape(bshape)) / std.reshape(bshape)

    return normalise


def batched_features(
    params: dict, x: jax.Array, backbone: BackboneConfig, *, x_train: jax.Array | None = None, batch_size: int = 512
) -> jax.Array:
    """Backbone features of ``x`` in chunks (uint8 images normalised with ``x_train``'s statistics)."""
    normalise = input_normaliser(jnp.asarray(x if x_train is None else x_train))
    x = jnp.asarray(x)

    @jax.jit
    def run(p, xs):
        return jax.lax.map(lambda xi: apply_backbone(p, normalise(xi[None]), backbone)[0], xs, batch_size=batch_size)

    return run(params, x)
