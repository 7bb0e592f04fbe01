"""Empirical neural tangent kernel of any ``apply_fn(params, x) -> (batch, C)``.

The empirical NTK (Jacot et al. 2018, arXiv 1806.07572) of a network ``f(theta, x) in R^C`` is

    Theta(x, x')_{ab} = sum_p  d f_a(x) / d theta_p  *  d f_b(x') / d theta_p,

returned as an (n1, n2, C, C) array, or (n1, n2) with the trace over logits ``sum_a Theta_aa``.
Three implementations compute the same number with different costs (Novak et al., "Fast Finite
Width Neural Tangent Kernel", ICML 2022, arXiv 2206.08720, Table 1); ``P`` parameters, ``C``
outputs, ``n`` examples per side, ``F`` the flops of one forward pass:

* ``JACOBIAN_CONTRACTION``: per-example Jacobians (``n C`` backward passes, memory ``n C P``) then
  ``n1 n2 C^2 P`` flops of contraction. Simple and fast for small ``P``.
* ``NTK_VECTOR_PRODUCTS``: for each of the ``n2 C`` output directions a vjp gives a parameter-space
  vector whose jvp over ``x1`` is one column of the kernel (``n2 C`` times ``n1 F`` flops, memory
  ``n2 C P`` when vectorised). Wins when ``P`` is large relative to a forward pass.
* ``STRUCTURED``: exploits that dense weights enter as ``x W`` and embedding tables as ``E[i]``
  (see :mod:`jaxml.ntk.structured`), so their contributions come from layer inputs and output
  cotangents without any Jacobian; other parameters fall back to the Jacobian contraction.
  Usually the fastest by orders of magnitude for MLPs and linear heads; exact for every model.

All three agree to float tolerance (tested). ``batch_size`` splits both example sets into chunks
(memory becomes ``batch_size``-bound); ``wrt`` restricts the derivative to parameter sub-trees,
which is how :func:`empirical_ntk_blocks` accumulates a large model's kernel block by block.
"""

from __future__ import annotations

import enum
import functools
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp

from jaxml.nn.lora import path_name
from jaxml.ntk import structured as _structured

__all__ = [
    "NtkImplementation",
    "empirical_ntk",
    "empirical_ntk_blocks",
    "select_leaves",
    "transformer_blocks",
]

Params = Any
ApplyFn = Callable[[Params, Any], jax.Array]


class NtkImplementation(enum.Enum):
    """How the empirical NTK is computed (costs in the module docstring)."""

    JACOBIAN_CONTRACTION = "jacobian_contraction"
    NTK_VECTOR_PRODUCTS = "ntk_vector_products"
    STRUCTURED = "structured"


def select_leaves(params: Params, wrt: Sequence[str] | None) -> list[int]:
    """Indices (in ``tree_leaves`` order) of the leaves whose path name starts with a ``wrt`` prefix.

    Raises:
      ValueError: a prefix matches no leaf (the message lists the top-level names).
    """
    paths = [path_name(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    if wrt is None:
        return list(range(len(paths)))
    if isinstance(wrt, str):
        raise TypeError(f"wrt must be a sequence of path prefixes, e.g. ['encoder/layers/0'], got {wrt!r}.")
    chosen = []
    for prefix in wrt:
        hits = [i for i, p in enumerate(paths) if p == prefix or p.startswith(prefix.rstrip("/") + "/")]
        if not hits:
            tops = sorted({p.split("/")[0] for p in paths})
            raise ValueError(f"wrt prefix {prefix!r} matches no parameter; top-level names: {tops}.")
        chosen.extend(hits)
    return sorted(set(chosen))


def _example_fn(apply_fn: ApplyFn, treedef: Any, leaves: Sequence[jax.Array], idx: Sequence[int],
                x_treedef: Any) -> Callable[[list[jax.Array], list[jax.Array]], jax.Array]:
    """Per-example ``(selected leaves, x leaves without batch axis) -> (C,)``."""

    def fn(sel: list[jax.Array], x_leaves: list[jax.Array]) -> jax.Array:
        full = list(leaves)
        for i, leaf in zip(idx, sel):
            full[i] = leaf
        x = jax.tree_util.tree_unflatten(x_treedef, [xl[None] for xl in x_leaves])
        out = apply_fn(jax.tree_util.tree_unflatten(treedef, full), x)
        return jnp.reshape(out[0], (-1,))

    return fn


def _batched_fn(apply_fn: ApplyFn, treedef: Any, leaves: Sequence[jax.Array], idx: Sequence[int],
                x_treedef: Any) -> Callable[[list[jax.Array], list[jax.Array]], jax.Array]:
    def fn(sel: list[jax.Array], x_leaves: list[jax.Array]) -> jax.Array:
        full = list(leaves)
        for i, leaf in zip(idx, sel):
            full[i] = leaf
        out = apply_fn(jax.tree_util.tree_unflatten(treedef, full),
                       jax.tree_util.tree_unflatten(x_treedef, x_leaves))
        return jnp.reshape(out, (out.shape[0], -1))

    return fn


def _contract(j1: Sequence[jax.Array], j2: Sequence[jax.Array], trace_logits: bool) -> jax.Array:
    sub = "iap,jap->ij" if trace_logits else "iap,jbp->ijab"
    total = None
    for a, b in zip(j1, j2):
        term = jnp.einsum(sub, a.reshape(a.shape[0], a.shape[1], -1), b.reshape(b.shape[0], b.shape[1], -1))
        total = term if total is None else total + term
    return total


def _kernel_pair(impl: NtkImplementation, apply_fn: ApplyFn, treedef: Any, x_treedef: Any,
                 idx: tuple[int, ...], trace_logits: bool, same: bool,
                 leaves: list[jax.Array], x1: list[jax.Array], x2: list[jax.Array]) -> jax.Array:
    sel = [leaves[i] for i in idx]
    ex_fn = _example_fn(apply_fn, treedef, leaves, idx, x_treedef)
    if impl == NtkImplementation.JACOBIAN_CONTRACTION:
        jac = jax.vmap(jax.jacrev(ex_fn), in_axes=(None, 0))
        j1 = jac(sel, x1)
        j2 = j1 if same else jac(sel, x2)
        return _contract(j1, j2, trace_logits)
    if impl == NtkImplementation.NTK_VECTOR_PRODUCTS:
        batched = _batched_fn(apply_fn, treedef, leaves, idx, x_treedef)

        def column(x_single: list[jax.Array]) -> jax.Array:
            out, vjp = jax.vjp(lambda s: ex_fn(s, x_single), sel)
            eye = jnp.eye(out.shape[0], dtype=out.dtype)

            def one(e: jax.Array) -> jax.Array:
                (tangent,) = vjp(e)
                return jax.jvp(lambda s: batched(s, x1), (sel,), (tangent,))[1]  # (n1, C)

            return jax.vmap(one)(eye)  # (C_b, n1, C_a)

        cols = jax.vmap(column)(x2)  # (n2, C_b, n1, C_a)
        ntk = jnp.transpose(cols, (2, 0, 3, 1))
        return jnp.einsum("ijaa->ij", ntk) if trace_logits else ntk
    # STRUCTURED
    x_ex = [xl[0] for xl in x1]
    plan = _structured.plan_structured(ex_fn, sel, x_ex)
    f1 = _structured.structured_factors(plan, sel, x1)
    f2 = f1 if same else _structured.structured_factors(plan, sel, x2)
    return _structured.structured_kernel(plan, f1, f2, trace_logits=trace_logits)


@functools.lru_cache(maxsize=64)
def _jitted(impl: NtkImplementation, apply_fn: ApplyFn, treedef: Any, x_treedef: Any, idx: tuple[int, ...],
            trace_logits: bool, same: bool) -> Callable[..., jax.Array]:
    return jax.jit(functools.partial(_kernel_pair, impl, apply_fn, treedef, x_treedef, idx, trace_logits, same))


def _chunks(x_leaves: list[jax.Array], size: int) -> list[list[jax.Array]]:
    n = x_leaves[0].shape[0]
    return [[xl[s:s + size] for xl in x_leaves] for s in range(0, n, size)]


def empirical_ntk(
    apply_fn: ApplyFn,
    params: Params,
    x1: Any,
    x2: Any | None = None,
    *,
    implementation: NtkImplementation = NtkImplementation.STRUCTURED,
    trace_logits: bool = False,
    batch_size: int | None = None,
    wrt: Sequence[str] | None = None,
) -> jax.Array:
    """Empirical NTK ``Theta(x1, x2)`` of ``apply_fn`` at ``params`` (Jacot et al. 2018, Eq. 2).

    Args:
      apply_fn: ``apply_fn(params, x) -> (batch, C)`` (a (batch,) output counts as ``C = 1``).
        It must treat examples independently (no batch statistics). Hashable callables reuse
        their compiled kernel across calls.
      params: parameter pytree.
      x1: batch pytree with a leading example axis ``n1``.
      x2: second batch (default ``x1``; the symmetric case then computes each factor once).
      implementation: :class:`NtkImplementation`.
      trace_logits: return ``sum_a Theta_aa`` (n1, n2) instead of (n1, n2, C, C).
      batch_size: split both batches into chunks of this many examples (bounds memory).
      wrt: parameter path prefixes to differentiate (others held fixed), e.g.
        ``["encoder/layers/0/attention"]``; default all parameters.

    Returns:
      (n1, n2, C, C), or (n1, n2) with ``trace_logits``.
    """
    if not isinstance(implementation, NtkImplementation):
        raise TypeError(f"implementation must be an NtkImplementation, got {implementation!r}.")
    leaves, treedef = jax.tree_util.tree_flatten(params)
    idx = tuple(select_leaves(params, wrt))
    x1_leaves, x_treedef = jax.tree_util.tree_flatten(x1)
    same = x2 is None
    x2_leaves = x1_leaves if same else jax.tree_util.tree_flatten(x2)[0]
    if not same and jax.tree_util.tree_structure(x2) != x_treedef:
        raise ValueError("x1 and x2 must have the same pytree structure.")
    n1, n2 = x1_leaves[0].shape[0], x2_leaves[0].shape[0]
    for xl in x1_leaves + x2_leaves:
        if jnp.ndim(xl) < 1:
            raise ValueError("every leaf of x1/x2 needs a leading example axis.")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size}.")
    leaves = [jnp.asarray(leaf) for leaf in leaves]
    if batch_size is None or (batch_size >= n1 and batch_size >= n2):
        fn = _jitted(implementation, apply_fn, treedef, x_treedef, idx, trace_logits, same)
        return fn(leaves, list(x1_leaves), list(x2_leaves))
    pair = _jitted(implementation, apply_fn, treedef, x_treedef, idx, trace_logits, False)
    diag = _jitted(implementation, apply_fn, treedef, x_treedef, idx, trace_logits, True)
    c1, c2 = _chunks(list(x1_leaves), batch_size), _chunks(list(x2_leaves), batch_size)
    rows = []
    blocks: dict[tuple[int, int], jax.Array] = {}
    for i, a in enumerate(c1):
        row = []
        for j, b in enumerate(c2):
            if same and j < i:  # symmetric: Theta(x_j, x_i) = Theta(x_i, x_j)^T (swap a, b too)
                blk = blocks[(j, i)]
                blk = jnp.swapaxes(blk, 0, 1) if trace_logits else jnp.transpose(blk, (1, 0, 3, 2))
            elif same and i == j:
                blk = diag(leaves, a, a)
            else:
                blk = pair(leaves, a, b)
            blocks[(i, j)] = blk
            row.append(blk)
        rows.append(jnp.concatenate(row, axis=1))
    return jnp.concatenate(rows, axis=0)


def transformer_blocks(params: Params, root: str = "") -> dict[str, list[str]]:
    """Parameter groups of a BERT-style tree: ``embeddings``, ``layer{i}/attention``,
    ``layer{i}/mlp`` and ``other`` (everything else under ``root``, e.g. a pooler or head).

    Args:
      params: the full parameter pytree.
      root: path prefix of the encoder inside ``params`` (e.g. ``"encoder"``), or ``""``.

    Returns:
      Ordered ``{block name: [path prefixes]}`` covering every leaf under ``root`` exactly once.
    """
    base = root.rstrip("/") + "/" if root else ""
    names = [path_name(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    names = [n for n in names if n.startswith(base)]
    if not names:
        raise ValueError(f"no parameter under root {root!r}.")
    blocks: dict[str, list[str]] = {}
    covered = set()
    emb = [n for n in names if n.startswith(base + "embeddings/")]
    if emb:
        blocks["embeddings"] = [base + "embeddings"]
        covered.update(emb)
    i = 0
    while any(n.startswith(f"{base}layers/{i}/") for n in names):
        for part in sorted({n[len(f"{base}layers/{i}/"):].split("/")[0] for n in names
                            if n.startswith(f"{base}layers/{i}/")}):
            prefix = f"{base}layers/{i}/{part}"
            blocks[f"layer{i}/{part}"] = [prefix]
            covered.update(n for n in names if n.startswith(prefix + "/"))
        i += 1
    rest = [n for n in names if n not in covered]
    if rest:
        blocks["other"] = rest
    return blocks


def empirical_ntk_blocks(
    apply_fn: ApplyFn,
    params: Params,
    x1: Any,
    x2: Any | None = None,
    *,
    blocks: Mapping[str, Sequence[str]],
    implementation: NtkImplementation = NtkImplementation.STRUCTURED,
    trace_logits: bool = False,
    batch_size: int | None = None,
) -> dict[str, jax.Array]:
    """NTK accumulated block by block: ``Theta = sum_B Theta_B`` over disjoint parameter groups.

    Each block's kernel differentiates only that block's parameters, so peak memory is set by the
    largest block (times ``batch_size``) rather than by the whole model, as in the official LP-FT
    NTK code (Tomihari & Sato 2024, arXiv 2405.16747, App. on NTK computation).

    Args:
      apply_fn, params, x1, x2, implementation, trace_logits, batch_size: as :func:`empirical_ntk`.
      blocks: ``{name: [path prefixes]}``, e.g. from :func:`transformer_blocks`; the groups must be
        disjoint (checked).

    Returns:
      ``{name: kernel}`` plus ``"total"``, the sum over blocks.
    """
    seen: dict[int, str] = {}
    out: dict[str, jax.Array] = {}
    for name, prefixes in blocks.items():
        if name == "total":
            raise ValueError("'total' is reserved for the sum over blocks; rename that block.")
        for i in select_leaves(params, prefixes):
            if i in seen:
                raise ValueError(f"blocks {seen[i]!r} and {name!r} share a parameter; make them disjoint.")
            seen[i] = name
        out[name] = empirical_ntk(apply_fn, params, x1, x2, implementation=implementation,
                                  trace_logits=trace_logits, batch_size=batch_size, wrt=list(prefixes))
    out["total"] = sum(out.values())
    return out
