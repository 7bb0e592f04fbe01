"""Feature extractors for neural-collapse training with a fixed simplex-ETF head.

The paper (arXiv 2409.17582, sec. 6.1) trains a ResNet-34 whose features ``h`` feed a *fixed*
simplex-ETF classifier ``W`` (:func:`jaxml.longtail.simplex_etf`): ``logits = h @ W``. Here a
model is ``BackboneConfig`` + ``init_backbone(key, cfg) -> params`` + ``apply_backbone(params, x,
cfg) -> h``; the ETF lives outside ``params`` (it is not trained and gets no weight decay).

Backbones (:class:`Backbone`):
  MLP: flatten, ``depth`` ReLU layers of ``width`` (``jaxml.nn.mlp``), linear projection to
    ``feature_dim``. The tabular recipe of the paper (Helena, width 512) and the cheapest for
    8x8 digits.
  CNN: two 3x3 conv blocks (``width``, ``2*width`` channels, ReLU, 2x2 average pool), then an MLP
    head. A small image model for digits.
  RESNET: CIFAR-style ResNet with basic blocks (``depth`` blocks per stage over four stages of
    ``width * (1, 2, 4, 8)`` channels; ResNet-34 is ``blocks=(3, 4, 6, 3), width=64``) and global
    average pooling. Departure: GroupNorm instead of BatchNorm, so the model stays a pure function
    of its parameters with no running statistics (the training loop carries parameters only).

Every backbone ends in a linear projection (no ReLU) to ``feature_dim`` so the features can point
anywhere, as the ETF vectors have negative coordinates.
"""

from __future__ import annotations

import dataclasses
import enum
import math

import jax
import jax.numpy as jnp

from jaxml.nn import dense, dense_init, mlp, mlp_init

__all__ = ["Backbone", "BackboneConfig", "init_backbone", "apply_backbone"]

Params = dict


class Backbone(str, enum.Enum):
    """Feature-extractor family (see the module docstring for the trade-offs)."""

    MLP = "mlp"
    CNN = "cnn"
    RESNET = "resnet"


@dataclasses.dataclass(frozen=True)
class BackboneConfig:
    """Shape of a feature extractor.

    Attributes:
      kind: the :class:`Backbone`.
      input_shape: ``(H, W, C)`` of one image (or ``(D,)`` for tabular input with MLP).
      feature_dim: output feature width ``d`` (>= K - 1 for a simplex ETF over K classes).
      width: hidden width (MLP units; CNN / ResNet base channels).
      depth: MLP hidden layers; ignored by CNN; ResNet uses ``blocks``.
      blocks: ResNet basic blocks per stage.
      groups: GroupNorm groups for ResNet (clipped to the channel count).
    """

    kind: Backbone = Backbone.MLP
    input_shape: tuple[int, ...] = (8, 8, 1)
    feature_dim: int = 16
    width: int = 128
    depth: int = 2
    blocks: tuple[int, ...] = (3, 4, 6, 3)
    groups: int = 8

    def __post_init__(self):
        object.__setattr__(self, "kind", Backbone(self.kind))
        if self.feature_dim < 1 or self.width < 1 or self.depth < 0:
            raise ValueError(
                f"BackboneConfig: feature_dim and width must be >= 1 and depth >= 0, got "
                f"feature_dim={self.feature_dim}, width={self.width}, depth={self.depth}"
            )
        if self.kind in (Backbone.CNN, Backbone.RESNET) and len(self.input_shape) != 3:
            raise ValueError(
                f"BackboneConfig: {self.kind.value} needs input_shape (H, W, C), got {self.input_shape}"
            )
        if self.kind is Backbone.RESNET and (not self.blocks or min(self.blocks) < 1):
            raise ValueError(f"BackboneConfig: blocks must be positive per stage, got {self.blocks}")


def _conv_init(key: jax.Array, k: int, c_in: int, c_out: int) -> jax.Array:
    # He-normal for ReLU nets: std sqrt(2 / fan_in).
    return jax.random.normal(key, (k, k, c_in, c_out)) * math.sqrt(2.0 / (k * k * c_in))


def _conv(w: jax.Array, x: jax.Array, stride: int = 1) -> jax.Array:
    return jax.lax.conv_general_dilated(
        x, w, (stride, stride), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


def _group_norm(p: Params, x: jax.Array, groups: int, eps: float = 1e-5) -> jax.Array:
    n, h, w, c = x.shape
    g = math.gcd(min(groups, c), c)
    xg = x.reshape(n, h, w, g, c // g)
    mu = jnp.mean(xg, axis=(1, 2, 4), keepdims=True)
    var = jnp.var(xg, axis=(1, 2, 4), keepdims=True)
    xn = ((xg - mu) * jax.lax.rsqrt(var + eps)).reshape(n, h, w, c)
    return xn * p["scale"][None, None, None, :] + p["bias"][None, None, None, :]


def _gn_init(c: int) -> Params:
    return {"scale": jnp.ones((c,)), "bias": jnp.zeros((c,))}


def _flat_dim(shape: tuple[int, ...]) -> int:
    return int(math.prod(shape))


def init_backbone(key: jax.Array, cfg: BackboneConfig) -> Params:
    """Initialise backbone parameters (plain nested dict)."""
    if cfg.kind is Backbone.MLP:
        sizes = [_flat_dim(cfg.input_shape)] + [cfg.width] * cfg.depth + [cfg.feature_dim]
        return {"mlp": mlp_init(key, sizes)}
    if cfg.kind is Backbone.CNN:
        k1, k2, k3 = jax.random.split(key, 3)
        h, w, c = cfg.input_shape
        flat = (h // 4) * (w // 4) * 2 * cfg.width
        return {
            "conv1": {"w": _conv_init(k1, 3, c, cfg.width), "b": jnp.zeros((cfg.width,))},
            "conv2": {"w": _conv_init(k2, 3, cfg.width, 2 * cfg.width), "b": jnp.zeros((2 * cfg.width,))},
            "head": mlp_init(k3, [flat, 4 * cfg.width, cfg.feature_dim]),
        }
    # RESNET
    keys = iter(jax.random.split(key, 2 + 3 * sum(cfg.blocks)))
    c_in = cfg.input_shape[2]
    params: Params = {"stem": {"w": _conv_init(next(keys), 3, c_in, cfg.width), "gn": _gn_init(cfg.width)}}
    stages = []
    c = cfg.width
    for s, n_blocks in enumerate(cfg.blocks):
        c_out = cfg.width * 2**s
        blocks = []
        for b in range(n_blocks):
            stride = 2 if (s > 0 and b == 0) else 1
            blk = {
                "conv1": _conv_init(next(keys), 3, c, c_out),
                "gn1": _gn_init(c_out),
                "conv2": _conv_init(next(keys), 3, c_out, c_out),
                "gn2": _gn_init(c_out),
            }
            k_short = next(keys)
            if stride != 1 or c != c_out:
                blk["short"] = _conv_init(k_short, 1, c, c_out)
                blk["gn_short"] = _gn_init(c_out)
            blocks.append(blk)
            c = c_out
        stages.append(blocks)
    params["stages"] = stages
    params["proj"] = dense_init(next(keys), c, cfg.feature_dim)
    return params


def _resnet_strides(cfg: BackboneConfig):
    for s, n_blocks in enumerate(cfg.blocks):
        for b in range(n_blocks):
            yield s, b, (2 if (s > 0 and b == 0) else 1)


def apply_backbone(params: Params, x: jax.Array, cfg: BackboneConfig) -> jax.Array:
    """Features ``h`` of a batch.

    Args:
      params: from :func:`init_backbone`.
      x: ``(N, *input_shape)`` float inputs.
      cfg: the config used at init.

    Returns:
      ``(N, feature_dim)`` features.
    """
    if x.shape[1:] != tuple(cfg.input_shape):
        raise ValueError(f"apply_backbone: inputs have shape {x.shape[1:]}, config expects {cfg.input_shape}")
    n = x.shape[0]
    if cfg.kind is Backbone.MLP:
        return _batched_mlp(params["mlp"], x.reshape(n, -1))
    if cfg.kind is Backbone.CNN:
        h = jax.nn.relu(_conv(params["conv1"]["w"], x) + params["conv1"]["b"][None, None, None, :])
        h = _avg_pool2(h)
        h = jax.nn.relu(_conv(params["conv2"]["w"], h) + params["conv2"]["b"][None, None, None, :])
        h = _avg_pool2(h)
        return _batched_mlp(params["head"], h.reshape(n, -1))
    h = jax.nn.relu(_group_norm(params["stem"]["gn"], _conv(params["stem"]["w"], x), cfg.groups))
    for (s, b, stride) in _resnet_strides(cfg):
        blk = params["stages"][s][b]
        y = jax.nn.relu(_group_norm(blk["gn1"], _conv(blk["conv1"], h, stride), cfg.groups))
        y = _group_norm(blk["gn2"], _conv(blk["conv2"], y), cfg.groups)
        short = h if "short" not in blk else _group_norm(blk["gn_short"], _conv(blk["short"], h, stride), cfg.groups)
        h = jax.nn.relu(y + short)
    return jax.vmap(dense, in_axes=(None, 0))(params["proj"], jnp.mean(h, axis=(1, 2)))


def _batched_mlp(params: Params, x: jax.Array) -> jax.Array:
    # jaxml.nn.mlp adds its bias by rank promotion; map it over examples so the code stays valid
    # under jax_numpy_rank_promotion="raise".
    return jax.vmap(mlp, in_axes=(None, 0))(params, x)


def _avg_pool2(x: jax.Array) -> jax.Array:
    n, h, w, c = x.shape
    return x[:, : h // 2 * 2, : w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))
