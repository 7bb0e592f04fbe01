"""Low-rank adaptation (LoRA) of chosen dense weights of any parameter pytree.

Hu et al. (2021, arXiv 2106.09685, Eq. 3): a frozen dense weight ``W`` (d_in, d_out) is adapted as

    W' = W + (alpha / r) A B,    A: (d_in, r),  B: (r, d_out),

with ``A`` random (PEFT's Kaiming-uniform, ``U(-1/sqrt(d_in), 1/sqrt(d_in))``) and ``B = 0``, so the
adapted model equals the base model at initialisation. Only ``A``, ``B`` (and usually the task
head) are trained. The default targets are the attention query and value projections, as in the
paper and in the LP-FT NTK study (Tomihari & Sato 2024, arXiv 2405.16747, Sec. 4.4).

Design: the LoRA factors live in their own pytree, a flat dict from the target's path name
(``"layers/0/attention/query"``) to ``{"a", "b"}``. :func:`merge_lora` returns the base tree with
every targeted ``kernel`` replaced by ``W + (alpha/r) A B``; it is both the forward path (apply the
model to ``merge_lora(base, lora, cfg)``, differentiable in ``lora``) and the final merge for
deployment. Forming ``A B`` costs ``d_in d_out r`` per target and step, negligible next to a batch
forward pass, and keeps every model in the library LoRA-capable without touching its code.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import optax

__all__ = [
    "LoraConfig",
    "lora_target_paths",
    "init_lora",
    "merge_lora",
    "lora_apply",
    "trainable_mask",
    "masked_optimizer",
    "count_params",
    "path_name",
]

Params = Any


@dataclasses.dataclass(frozen=True)
class LoraConfig:
    """LoRA hyperparameters.

    Attributes:
      rank: ``r``, the inner dimension of the update (paper default for LP-FT study: 8).
      alpha: scale numerator; the update is multiplied by ``alpha / rank``.
      targets: names of the dense sub-trees to adapt; a sub-tree ``{..., "kernel": W}`` whose key
        is in ``targets`` gets a LoRA update (BERT: ``query``, ``key``, ``value``, ``output``,
        ``intermediate``).
      kernel_name: the leaf name holding the weight matrix inside a targeted sub-tree.
    """

    rank: int = 8
    alpha: float = 8.0
    targets: tuple[str, ...] = ("query", "value")
    kernel_name: str = "kernel"

    def __post_init__(self) -> None:
        if not isinstance(self.rank, int) or self.rank < 1:
            raise ValueError(f"LoraConfig.rank must be a positive integer, got {self.rank!r}.")
        if not self.alpha > 0:
            raise ValueError(f"LoraConfig.alpha must be > 0, got {self.alpha!r}.")
        if isinstance(self.targets, str) or not self.targets:
            raise ValueError("LoraConfig.targets must be a non-empty tuple of names, "
                             f"e.g. ('query', 'value'); got {self.targets!r}.")

    @property
    def scale(self) -> float:
        return self.alpha / self.rank


def path_name(path: Sequence[Any]) -> str:
    """``'layers/0/attention/query'`` from a ``jax.tree_util`` key path."""
    parts = []
    for k in path:
        for attr in ("key", "idx", "name"):
            if hasattr(k, attr):
                parts.append(str(getattr(k, attr)))
                break
        else:
            parts.append(str(k))
    return "/".join(parts)


def lora_target_paths(params: Params, cfg: LoraConfig) -> list[str]:
    """Path names (without the kernel leaf) of the 2-D kernels that ``cfg`` adapts, in tree order."""
    found = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        names = path_name(path).split("/")
        if (len(names) >= 2 and names[-1] == cfg.kernel_name and names[-2] in cfg.targets
                and jnp.ndim(leaf) == 2):
            found.append("/".join(names[:-1]))
    return found


def init_lora(key: jax.Array, params: Params, cfg: LoraConfig) -> dict[str, dict[str, jax.Array]]:
    """Initialise the LoRA factors for every targeted kernel (``A`` Kaiming-uniform, ``B = 0``).

    Args:
      key: PRNG key.
      params: the base model's parameter pytree.
      cfg: LoRA hyperparameters.

    Returns:
      Flat dict ``{path_name: {"a": (d_in, r), "b": (r, d_out)}}``.

    Raises:
      ValueError: no kernel matches ``cfg.targets`` (the message lists the available names).
    """
    targets = lora_target_paths(params, cfg)
    if not targets:
        names = sorted({path_name(p).split("/")[-2] for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]
                        if len(p) >= 2 and path_name(p).endswith("/" + cfg.kernel_name)})
        raise ValueError(f"LoRA targets {cfg.targets} match no 2-D '{cfg.kernel_name}' leaf; "
                         f"dense sub-trees available: {names}.")
    flat = {path_name(p): leaf for p, leaf in jax.tree_util.tree_flatten_with_path(params)[0]}
    out = {}
    for name, k in zip(targets, jax.random.split(key, len(targets))):
        d_in, d_out = flat[f"{name}/{cfg.kernel_name}"].shape
        bound = 1.0 / math.sqrt(d_in)
        out[name] = {"a": jax.random.uniform(k, (d_in, cfg.rank), jnp.float32, -bound, bound),
                     "b": jnp.zeros((cfg.rank, d_out), jnp.float32)}
    return out


def merge_lora(params: Params, lora: dict[str, dict[str, jax.Array]], cfg: LoraConfig) -> Params:
    """Base pytree with each targeted kernel replaced by ``W + (alpha/r) A B`` (Hu et al. Eq. 3).

    Differentiable in both arguments; use it as the forward path during LoRA training and once
    more at the end to deploy a merged model.

    Raises:
      KeyError: ``lora`` names a path that is not a kernel of ``params``.
    """
    known = set(lora)

    def merge(path, leaf):
        names = path_name(path).split("/")
        if names[-1] != cfg.kernel_name:
            return leaf
        name = "/".join(names[:-1])
        if name not in lora:
            return leaf
        known.discard(name)
        ab = lora[name]
        return leaf + cfg.scale * (ab["a"] @ ab["b"])

    merged = jax.tree_util.tree_map_with_path(merge, params)
    if known:
        raise KeyError(f"LoRA factors for {sorted(known)} have no matching kernel in the parameters; "
                       "initialise them with init_lora on the same model.")
    return merged


def lora_apply(apply_fn: Callable[..., Any], cfg: LoraConfig) -> Callable[..., Any]:
    """Wrap ``apply_fn(params, *args)`` into ``f({"base": params, "lora": factors}, *args)``."""

    def wrapped(tree: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        return apply_fn(merge_lora(tree["base"], tree["lora"], cfg), *args, **kwargs)

    return wrapped


def trainable_mask(tree: Params, trainable: Sequence[str]) -> Params:
    """Boolean pytree: ``True`` where a leaf's path name starts with one of ``trainable``.

    Example: ``trainable_mask({"base": enc, "lora": ab, "head": w}, ["lora", "head"])``.
    Feed it to :func:`masked_optimizer` (or ``optax.masked``).
    """
    if isinstance(trainable, str):
        raise TypeError("trainable must be a sequence of path prefixes, e.g. ['lora', 'head'].")
    prefixes = tuple(trainable)

    def is_trainable(path, _):
        name = path_name(path)
        return any(name == p or name.startswith(p + "/") for p in prefixes)

    return jax.tree_util.tree_map_with_path(is_trainable, tree)


def masked_optimizer(optimizer: optax.GradientTransformation, mask: Params) -> optax.GradientTransformation:
    """Apply ``optimizer`` to the leaves where ``mask`` is True and freeze (zero updates) the rest."""
    labels = jax.tree_util.tree_map(lambda m: "train" if m else "freeze", mask)
    return optax.multi_transform({"train": optimizer, "freeze": optax.set_to_zero()}, labels)


def count_params(tree: Params, mask: Params | None = None) -> int:
    """Number of scalars in ``tree`` (only where ``mask`` is True when given)."""
    leaves = jax.tree_util.tree_leaves(tree)
    if mask is None:
        return int(sum(jnp.size(x) for x in leaves))
    return int(sum(jnp.size(x) for x, m in zip(leaves, jax.tree_util.tree_leaves(mask)) if m))
