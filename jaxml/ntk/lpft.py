"""The LP-FT decomposition of a linear-head classifier's NTK (Tomihari & Sato 2024, arXiv 2405.16747).

For ``f(x) = V^T phi(x; theta) + b`` with head ``V`` (D, C) (``kernel`` here; the paper writes the
(C, D) matrix), bias ``b`` and encoder parameters ``theta``, the NTK over all parameters splits
exactly into two parts (paper, Sec. 4.1, Eq. 5 and Prop. 1):

    Theta(x, x') = (phi(x) . phi(x') + 1) I_C          pre-train-effective: gradient w.r.t. (V, b)
                 + V^T J(x) J(x')^T V                   FT-effective: gradient w.r.t. theta

with ``J = d phi / d theta``. The FT-effective part scales with ``||V||^2``, so a large head norm
after linear probing (LP) amplifies feature learning in the NTK regime, while the change of the
features along FT is driven by ``J^T V (softmax(f) - y)``: an accurate LP head (small residual)
keeps the pre-trained features nearly intact (Sec. 4.2). The FT-effective part is computed as the
NTK of ``x -> V^T phi(x; theta)`` with respect to ``theta``, block by block if requested
(:func:`jaxml.ntk.empirical_ntk_blocks`), which is how the official code fits a 125M-parameter
RoBERTa on 250 examples.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from jaxml.ntk.empirical import NtkImplementation, empirical_ntk, empirical_ntk_blocks

__all__ = [
    "LpftNtk",
    "pretrain_component",
    "ft_component",
    "lpft_decomposition",
    "linear_head_apply",
    "kernel_norm",
]

FeatureFn = Callable[[Any, Any], jax.Array]


class LpftNtk(NamedTuple):
    """The two NTK components and their sizes.

    Attributes:
      pretrain: (n1, n2, C, C) pre-train-effective component ``(phi . phi' + 1) I_C``.
      ft: (n1, n2, C, C) FT-effective component ``V^T J J'^T V``.
      total: their sum, the NTK of the whole classifier.
      pretrain_norm: Frobenius norm of ``pretrain`` (as an ``n1 C x n2 C`` matrix).
      ft_norm: Frobenius norm of ``ft``.
      ratio: ``ft_norm / pretrain_norm``.
      head_norm: Frobenius norm of ``V``.
      ft_blocks: per-block FT-effective kernels when blocks were given, else empty.
    """

    pretrain: jax.Array
    ft: jax.Array
    total: jax.Array
    pretrain_norm: float
    ft_norm: float
    ratio: float
    head_norm: float
    ft_blocks: dict[str, jax.Array]


def kernel_norm(k: jax.Array) -> float:
    """Frobenius norm of a kernel array of any shape."""
    return float(jnp.sqrt(jnp.sum(jnp.square(k))))


def pretrain_component(phi1: jax.Array, phi2: jax.Array, num_classes: int) -> jax.Array:
    """``(phi1 phi2^T + 1) (x) I_C`` of shape (n1, n2, C, C): the head's NTK (paper Eq. 5, first term).

    Args:
      phi1: (n1, D) features.
      phi2: (n2, D) features.
      num_classes: ``C``.
    """
    if phi1.ndim != 2 or phi2.ndim != 2 or phi1.shape[1] != phi2.shape[1]:
        raise ValueError(f"phi1, phi2 must be (n, D) with the same D, got {phi1.shape}, {phi2.shape}.")
    gram = phi1 @ phi2.T + 1.0
    eye = jnp.eye(num_classes, dtype=gram.dtype)
    return gram[:, :, None, None] * eye[None, None, :, :]


@functools.lru_cache(maxsize=32)
def linear_head_apply(feature_fn: FeatureFn) -> Callable[[dict[str, Any], Any], jax.Array]:
    """``apply(params, x) = phi(params['encoder'], x) @ params['head']['kernel'] + params['head']['bias']``.

    Cached per ``feature_fn`` so repeated NTK calls reuse compiled kernels.
    """

    def apply(params: dict[str, Any], x: Any) -> jax.Array:
        phi = feature_fn(params["encoder"], x)
        logits = phi @ params["head"]["kernel"]
        return logits + params["head"]["bias"][None, :]

    return apply


def _check_head(head: Mapping[str, jax.Array]) -> tuple[int, int]:
    if "kernel" not in head or "bias" not in head:
        raise ValueError("head must be a dict with 'kernel' (D, C) and 'bias' (C,).")
    if head["kernel"].ndim != 2 or head["bias"].shape != (head["kernel"].shape[1],):
        raise ValueError(f"head kernel must be (D, C) and bias (C,), got {head['kernel'].shape}, "
                         f"{head['bias'].shape}.")
    return head["kernel"].shape


def ft_component(
    feature_fn: FeatureFn,
    encoder_params: Any,
    head: Mapping[str, jax.Array],
    x1: Any,
    x2: Any | None = None,
    *,
    blocks: Mapping[str, Sequence[str]] | None = None,
    implementation: NtkImplementation = NtkImplementation.STRUCTURED,
    batch_size: int | None = None,
) -> dict[str, jax.Array]:
    """FT-effective component ``V^T J J'^T V`` (paper Eq. 5, second term), optionally block-wise.

    Args:
      feature_fn: ``phi(encoder_params, x) -> (batch, D)``.
      encoder_params: encoder pytree.
      head: ``{"kernel": (D, C), "bias": (C,)}``.
      x1, x2: batches (leading example axis).
      blocks: ``{name: [prefixes relative to the encoder tree]}`` (e.g.
        ``jaxml.ntk.transformer_blocks(encoder_params)``); default one block with everything.
      implementation, batch_size: as :func:`jaxml.ntk.empirical_ntk`.

    Returns:
      ``{block: (n1, n2, C, C)}`` plus ``"total"``.
    """
    _check_head(head)
    apply = linear_head_apply(feature_fn)
    params = {"encoder": encoder_params, "head": dict(head)}
    if blocks is None:
        blocks = {"encoder": [""]}
    prefixed = {name: [("encoder/" + p).rstrip("/") for p in prefixes] for name, prefixes in blocks.items()}
    return empirical_ntk_blocks(apply, params, x1, x2, blocks=prefixed, implementation=implementation,
                                batch_size=batch_size)


def lpft_decomposition(
    feature_fn: FeatureFn,
    encoder_params: Any,
    head: Mapping[str, jax.Array],
    x1: Any,
    x2: Any | None = None,
    *,
    blocks: Mapping[str, Sequence[str]] | None = None,
    implementation: NtkImplementation = NtkImplementation.STRUCTURED,
    batch_size: int | None = None,
) -> LpftNtk:
    """Both NTK components of a linear-head classifier and their norms (paper Sec. 4.1).

    Args:
      feature_fn: ``phi(encoder_params, x) -> (batch, D)`` (penultimate features).
      encoder_params: encoder pytree.
      head: ``{"kernel": (D, C), "bias": (C,)}``; at the start of FT this is the LP head for LP-FT
        and the random head for FT.
      x1, x2: batches; ``x2=None`` for the symmetric train kernel.
      blocks, implementation, batch_size: see :func:`ft_component`.

    Returns:
      :class:`LpftNtk`.
    """
    _, c = _check_head(head)
    phi1 = feature_fn(encoder_params, x1)
    phi2 = phi1 if x2 is None else feature_fn(encoder_params, x2)
    pre = pretrain_component(phi1, phi2, c)
    ft_blocks = ft_component(feature_fn, encoder_params, head, x1, x2, blocks=blocks,
                             implementation=implementation, batch_size=batch_size)
    ft = ft_blocks.pop("total")
    pre_norm, ft_norm = kernel_norm(pre), kernel_norm(ft)
    return LpftNtk(pretrain=pre, ft=ft, total=pre + ft, pretrain_norm=pre_norm, ft_norm=ft_norm,
                   ratio=ft_norm / max(pre_norm, 1e-30), head_norm=kernel_norm(head["kernel"]),
                   ft_blocks=ft_blocks if blocks is not None else {})
