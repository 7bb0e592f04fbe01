"""Random region-graph (RAT-SPN) structures compiled to index arrays.

A structure is the layout of Peharz et al. (2019, "Random Sum-Product Networks", arXiv 1806.01910)
as used by Trapp et al. (2019, arXiv 1905.10884) and Yokoi & Sato (2024, arXiv 2406.12353):

* a single root sum node whose children are the root products of ``R`` repetitions;
* in every repetition the variables are randomly permuted and the scope is split in two halves,
  recursively, to depth ``L``: a binary region tree with ``2**m`` regions at level ``m``;
* every internal region at level ``1 <= m < L`` holds ``S`` sum nodes, every leaf region (level
  ``L``) holds ``I`` input distributions, each a fully factorised product of univariate leaves over
  the region's variables (Bernoulli or Gaussian);
* the partition of a region ``j`` at level ``m`` into its children ``2j, 2j+1`` holds the
  cross product of their nodes: ``K_{m+1}**2`` product nodes, where ``K_m`` is the number of nodes
  per region at level ``m`` (``1`` at the root, ``S`` inside, ``I`` at the leaves).

Every sum node at level ``m`` is connected to every product node of its region, so the network is
fully described by ``(R, L, S, I)`` and a per-repetition map ``leaf_of[r, v]`` (the leaf region of
variable ``v``). Because of this regularity every layer is a dense tensor that JAX kernels consume
directly, and an induced tree (one child per visited sum node) is encoded by one integer choice per
internal region (``2**L - 1`` integers; see :mod:`jaxml.spn.bayes`).
"""

from __future__ import annotations

import dataclasses
import enum
import math

import flax.struct
import jax
import numpy as np

__all__ = [
    "LeafKind",
    "RatSpnConfig",
    "SpnStructure",
    "build_structure",
    "describe",
    "nodes_per_level",
    "choices_per_level",
]


class LeafKind(enum.Enum):
    """Univariate leaf family.

    BERNOULLI: binary data; parameter ``p`` per (repetition, variable, input); conjugate Beta prior.
    GAUSSIAN: real data; mean and standard deviation per (repetition, variable, input) (Student-t
        when the leaf pytree carries degrees of freedom); conjugate Normal-Gamma prior.
    """

    BERNOULLI = "bernoulli"
    GAUSSIAN = "gaussian"


@dataclasses.dataclass(frozen=True)
class RatSpnConfig:
    """Sizes of a random region-graph SPN.

    Attributes:
        num_vars: number of variables ``D``.
        depth: depth ``L`` of the binary region tree (number of splits); needs ``2**L <= D``.
        num_sums: sum nodes per internal region ``S`` (the paper's ``C_s``; the sum fan-out is
            ``S**2`` inside the network).
        num_inputs: input distributions per leaf region ``I``.
        num_repetitions: independent random partitions ``R`` joined at the root.
        leaf: the leaf family.
    """

    num_vars: int
    depth: int = 2
    num_sums: int = 4
    num_inputs: int = 4
    num_repetitions: int = 1
    leaf: LeafKind = LeafKind.BERNOULLI

    def __post_init__(self) -> None:
        for name in ("num_vars", "depth", "num_sums", "num_inputs", "num_repetitions"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"RatSpnConfig.{name} must be a positive integer, got {value!r}")
        if 2**self.depth > self.num_vars:
            raise ValueError(
                f"RatSpnConfig.depth={self.depth} splits the scope into {2**self.depth} leaf "
                f"regions but there are only num_vars={self.num_vars} variables; use depth <= "
                f"{int(math.floor(math.log2(self.num_vars)))}"
            )
        if not isinstance(self.leaf, LeafKind):
            raise ValueError(f"RatSpnConfig.leaf must be a LeafKind, got {self.leaf!r}")


def nodes_per_level(cfg: RatSpnConfig) -> tuple[int, ...]:
    """Nodes per region ``K_m`` for levels ``m = 0..L``: ``(1, S, ..., S, I)``."""
    return (1,) + (cfg.num_sums,) * (cfg.depth - 1) + (cfg.num_inputs,)


def choices_per_level(cfg: RatSpnConfig) -> tuple[int, ...]:
    """Children of one sum node at levels ``m = 0..L-1``.

    The root chooses a repetition and a product: ``R * K_1**2``; a sum at level ``m >= 1`` chooses
    one of the ``K_{m+1}**2`` products of its region's partition.
    """
    k = nodes_per_level(cfg)
    return tuple((cfg.num_repetitions if m == 0 else 1) * k[m + 1] ** 2 for m in range(cfg.depth))


@flax.struct.dataclass
class SpnStructure:
    """A compiled structure: a pytree whose only array is the variable-to-leaf-region map.

    Attributes:
        leaf_of: int32 ``(R, D)``, the leaf region (``0..2**L-1``) of each variable per repetition.
        cfg: the sizes (static: part of the tree definition, so jit specialises on it).
    """

    leaf_of: jax.Array
    cfg: RatSpnConfig = flax.struct.field(pytree_node=False)


def build_structure(key: jax.Array, cfg: RatSpnConfig) -> SpnStructure:
    """Draws the random region graph: a variable permutation per repetition, halved recursively.

    A region with scope positions ``[lo, hi)`` of the permuted order splits at
    ``lo + (hi - lo) // 2``, so leaf regions hold ``floor(D / 2**L)`` or ``ceil(D / 2**L)``
    variables.

    Args:
        key: PRNG key for the permutations.
        cfg: structure sizes.

    Returns:
        The compiled :class:`SpnStructure`.
    """
    perms = np.asarray(
        jax.vmap(lambda k: jax.random.permutation(k, cfg.num_vars))(
            jax.random.split(key, cfg.num_repetitions)
        )
    )
    leaf_pos = _leaf_of_position(cfg.num_vars, cfg.depth)
    leaf_of = np.zeros((cfg.num_repetitions, cfg.num_vars), np.int32)
    for r in range(cfg.num_repetitions):
        leaf_of[r, perms[r]] = leaf_pos
    return SpnStructure(leaf_of=jax.numpy.asarray(leaf_of), cfg=cfg)


def _leaf_of_position(num_vars: int, depth: int) -> np.ndarray:
    """Leaf region of each position of the (permuted) variable order under balanced halving."""
    out = np.zeros(num_vars, np.int32)

    def split(lo: int, hi: int, level: int, index: int) -> None:
        if level == depth:
            out[lo:hi] = index
            return
        mid = lo + (hi - lo) // 2
        split(lo, mid, level + 1, 2 * index)
        split(mid, hi, level + 1, 2 * index + 1)

    split(0, num_vars, 0, 0)
    return out


def describe(cfg: RatSpnConfig) -> dict[str, int]:
    """Counts of a structure's nodes and edges and of its induced trees.

    Returns:
        A dict with ``sum_nodes``, ``product_nodes``, ``input_nodes`` (factorised leaf-region
        distributions), ``univariate_leaves``, ``sum_edges`` (= number of sum weights),
        ``product_edges``, ``params`` (sum weights + leaf parameters),
        ``tree_sum_nodes`` / ``tree_product_nodes`` / ``tree_input_nodes`` (the size of every
        induced tree: one sum per internal region, ``2**L - 1``; one input per leaf region,
        ``2**L``), and ``tree_sum_choices`` (sum edges scanned by a top-down proposal: the
        children of the visited sum nodes).
    """
    k = nodes_per_level(cfg)
    c = choices_per_level(cfg)
    r, big_l = cfg.num_repetitions, cfg.depth
    sum_nodes = 1 + sum(r * 2**m * k[m] for m in range(1, big_l))
    sum_edges = c[0] + sum(r * 2**m * k[m] * c[m] for m in range(1, big_l))
    product_nodes = c[0] + sum(r * 2**m * k[m + 1] ** 2 for m in range(1, big_l))
    input_nodes = r * 2**big_l * k[big_l]
    leaves = r * cfg.num_vars * cfg.num_inputs
    leaf_params = leaves * (1 if cfg.leaf is LeafKind.BERNOULLI else 2)
    return {
        "sum_nodes": sum_nodes,
        "product_nodes": product_nodes,
        "input_nodes": input_nodes,
        "univariate_leaves": leaves,
        "sum_edges": sum_edges,
        "product_edges": 2 * product_nodes,
        "params": sum_edges + leaf_params,
        "tree_sum_nodes": 2**big_l - 1,
        "tree_product_nodes": 2**big_l - 1,
        "tree_input_nodes": 2**big_l,
        "tree_sum_choices": c[0] + sum(2**m * c[m] for m in range(1, big_l)),
    }
