"""Structured derivatives: NTK contributions of dense and embedding weights without Jacobians.

For a weight ``W`` that enters the network only through products ``y_s = x_s W`` (``s`` runs over
the positions that share the weight: tokens, pixels, or nothing for an MLP), the per-example
Jacobian of output ``a`` factorises as ``dF_a/dW = sum_s x_s^T delta_{a,s}`` with
``delta_{a,s} = dF_a/dy_s``. Its NTK contribution is therefore

    Theta_W(x, x')_{ab} = sum_{s,t} <x_s, x'_t> <delta_{a,s}, delta'_{b,t}>            (1)

which needs only the layer inputs and the output cotangents: ``O(S S' (K + C^2 M))`` per pair of
examples instead of ``O(C^2 K M)`` for the Jacobian contraction. An embedding table ``E`` read by
``y_s = E[i_s]`` is the special case ``x_s = onehot(i_s)``, so ``<x_s, x'_t> = [i_s = i'_t]``.
This is the idea of neural-tangents' STRUCTURED_DERIVATIVES (Novak et al., ICML 2022,
arXiv 2206.08720, Sec. 3.3) restricted to the two rules that matter for MLPs and Transformers.

How it works here: the per-example function is traced to a jaxpr; every ``dot_general`` whose one
operand is a parameter (and that has no batch dimensions), and every row-gather from a 2-D
parameter, gets a zero "tap" added to its output and records its other operand. Reverse-mode
derivatives with respect to the taps give ``delta``. Parameters used in any other way (biases,
LayerNorm scales, weights inside ``scan``/``custom_jvp`` bodies (except :func:`jaxml.nn.linear`'s
CPU product, whose custom derivative only rearranges ``dx W + x dW``), a weight multiplied by another
weight as in LoRA's ``A B``) fall back to the exact Jacobian contraction, so the result is exact
for every model; the structure only changes the cost. For each structured weight the cheaper of
(1) and "form the gradient ``sum_s x_s^T delta_s`` then contract" is chosen from a flop estimate
(long sequences favour the latter).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
from jax.extend import core as jcore

from jaxml.nn import layers

__all__ = ["StructuredPlan", "plan_structured", "structured_factors", "structured_kernel"]

_CALL_PRIMITIVES = frozenset({"pjit", "jit", "closed_call", "core_call", "remat", "checkpoint", "remat2"})


@dataclasses.dataclass(frozen=True)
class _Use:
    """One structured use of a parameter leaf (a tapped equation)."""

    leaf: int
    kind: str  # "dot" or "gather"
    signature: tuple  # uses of one leaf must agree on it
    param_is_lhs: bool = False
    x_perm: tuple[int, ...] = ()
    out_perm: tuple[int, ...] = ()
    s_size: int = 1
    k_size: int = 1
    m_size: int = 1
    rows: int = 0


@dataclasses.dataclass(frozen=True)
class StructuredPlan:
    """Which parameter leaves get structured treatment and where their taps sit.

    Attributes:
      jaxpr: the per-example closed jaxpr ``(leaves..., x_leaves...) -> (C,)``.
      n_leaves: number of parameter leaves.
      uses: candidate-equation index -> :class:`_Use` for tapped equations.
      structured: leaf index -> tuple of candidate indices (its tapped uses).
      fallback: leaf indices handled by the Jacobian contraction.
      tap_shapes: candidate index -> output shape of the tapped equation.
    """

    jaxpr: Any
    n_leaves: int
    uses: dict[int, _Use]
    structured: dict[int, tuple[int, ...]]
    fallback: tuple[int, ...]
    tap_shapes: dict[int, tuple[int, ...]]


def _is_var(v: Any) -> bool:
    return not isinstance(v, jcore.Literal)


def _is_transparent_custom_jvp(eqn: Any) -> bool:
    """Whether ``eqn`` calls :func:`jaxml.nn.layers._cpu_matmul`, whose custom derivative only
    rearranges the products of ``d(x W) = dx W + x dW`` for XLA:CPU, so that its primal body (a
    plain ``dot_general`` with the weight unreshaped) can be analysed and differentiated instead."""
    if eqn.primitive.name != "custom_jvp_call":
        return False
    info = getattr(eqn.params["call_jaxpr"].jaxpr, "debug_info", None)
    src = getattr(info, "func_src_info", None) or ""
    name, _, where = src.partition(" at ")
    return name == layers._cpu_matmul.__name__ and where.rpartition(":")[0] == layers.__file__


def _inner_jaxpr(eqn: Any) -> tuple[Any, list[Any]] | None:
    if eqn.primitive.name not in _CALL_PRIMITIVES and not _is_transparent_custom_jvp(eqn):
        return None
    inner = eqn.params.get("jaxpr", eqn.params.get("call_jaxpr"))
    if inner is None:
        return None
    if isinstance(inner, jcore.ClosedJaxpr):
        return inner.jaxpr, list(inner.consts)
    return inner, []


def _analyse_dot(eqn: Any, p_pos: int, leaf: int) -> _Use | None:
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    if lb or rb:
        return None
    p_aval, x_aval = eqn.invars[p_pos].aval, eqn.invars[1 - p_pos].aval
    cp, cx = (lc, rc) if p_pos == 0 else (rc, lc)
    pairs = sorted(zip(cp, cx))
    cp_sorted = tuple(p for p, _ in pairs)
    cx_sorted = tuple(x for _, x in pairs)
    x_free = tuple(d for d in range(x_aval.ndim) if d not in cx)
    p_free = tuple(d for d in range(p_aval.ndim) if d not in cp)
    out_ndim = len(x_free) + len(p_free)
    if p_pos == 0:  # output = [p_free..., x_free...]: move x_free first
        out_perm = tuple(range(len(p_free), out_ndim)) + tuple(range(len(p_free)))
    else:
        out_perm = tuple(range(out_ndim))
    return _Use(
        leaf=leaf, kind="dot", signature=("dot", cp_sorted, tuple(p_aval.shape)),
        param_is_lhs=p_pos == 0, x_perm=x_free + cx_sorted, out_perm=out_perm,
        s_size=math.prod(x_aval.shape[d] for d in x_free),
        k_size=math.prod(p_aval.shape[d] for d in cp_sorted),
        m_size=math.prod(p_aval.shape[d] for d in p_free))


def _analyse_gather(eqn: Any, leaf: int) -> _Use | None:
    operand, indices = eqn.invars[0].aval, eqn.invars[1].aval
    dn = eqn.params["dimension_numbers"]
    out_ndim = eqn.outvars[0].aval.ndim
    ok = (operand.ndim == 2 and tuple(dn.collapsed_slice_dims) == (0,)
          and tuple(dn.start_index_map) == (0,) and tuple(dn.offset_dims) == (out_ndim - 1,)
          and not tuple(getattr(dn, "operand_batching_dims", ()))
          and tuple(eqn.params["slice_sizes"]) == (1, operand.shape[1])
          and indices.ndim >= 1 and indices.shape[-1] == 1)
    if not ok:
        return None
    return _Use(leaf=leaf, kind="gather", signature=("gather", tuple(operand.shape)),
                out_perm=tuple(range(out_ndim)),
                s_size=math.prod(indices.shape[:-1]), k_size=1, m_size=operand.shape[1],
                rows=operand.shape[0])


def plan_structured(fn: Callable[..., jax.Array], leaves: Sequence[jax.Array], x_example: Any) -> StructuredPlan:
    """Trace ``fn(leaves, x) -> (C,)`` for one example and decide each leaf's treatment."""
    closed = jax.make_jaxpr(fn)(list(leaves), x_example)
    n = len(leaves)
    uses: dict[int, _Use] = {}
    per_leaf: dict[int, list[int]] = {}
    fallback: set[int] = set()
    tap_shapes: dict[int, tuple[int, ...]] = {}
    counter = [0]

    def walk(jaxpr: Any, env: dict[Any, int]) -> None:
        for outvar in jaxpr.outvars:
            if _is_var(outvar) and outvar in env:
                fallback.add(env[outvar])
        for eqn in jaxpr.eqns:
            p_in = [(i, env[v]) for i, v in enumerate(eqn.invars) if _is_var(v) and v in env]
            if not p_in:
                continue
            inner = _inner_jaxpr(eqn)
            if inner is not None:
                ijaxpr, _ = inner
                walk(ijaxpr, {iv: env[ov] for iv, ov in zip(ijaxpr.invars, eqn.invars)
                              if _is_var(ov) and ov in env})
                continue
            k = counter[0]
            counter[0] += 1
            use = None
            if len(p_in) == 1:
                pos, leaf = p_in[0]
                if eqn.primitive.name == "dot_general":
                    use = _analyse_dot(eqn, pos, leaf)
                elif eqn.primitive.name == "gather" and pos == 0:
                    use = _analyse_gather(eqn, leaf)
            if use is None:
                fallback.update(leaf for _, leaf in p_in)
            else:
                uses[k] = use
                per_leaf.setdefault(use.leaf, []).append(k)
                tap_shapes[k] = tuple(eqn.outvars[0].aval.shape)

    walk(closed.jaxpr, {v: i for i, v in enumerate(closed.jaxpr.invars[:n])})
    structured = {}
    for leaf, ks in per_leaf.items():
        if leaf in fallback or len({uses[k].signature for k in ks}) != 1:
            fallback.add(leaf)
        else:
            structured[leaf] = tuple(ks)
    kept = {k for ks in structured.values() for k in ks}
    return StructuredPlan(
        jaxpr=closed, n_leaves=n, uses={k: u for k, u in uses.items() if k in kept},
        structured=structured, fallback=tuple(sorted(fallback)),
        tap_shapes={k: s for k, s in tap_shapes.items() if k in kept})


def _bind(eqn: Any, invals: list[Any]) -> list[Any]:
    bind_params = eqn.primitive.get_bind_params(eqn.params)
    if isinstance(bind_params, tuple):  # JAX < 0.7 returned (subfuns, params)
        subfuns, bind_params = bind_params
    else:
        subfuns = []
    with eqn.ctx.manager:
        out = eqn.primitive.bind(*subfuns, *invals, **bind_params)
    return list(out) if eqn.primitive.multiple_results else [out]


def _interpret(plan: StructuredPlan, args: Sequence[Any], taps: dict[int, jax.Array]) -> tuple[jax.Array, dict[int, jax.Array]]:
    """Evaluate the plan's jaxpr adding ``taps`` to tapped outputs; return (output, records)."""
    records: dict[int, jax.Array] = {}
    counter = [0]

    def run(jaxpr: Any, consts: Sequence[Any], inputs: Sequence[Any], penv: dict[Any, int]) -> list[Any]:
        env: dict[Any, Any] = {}

        def read(v: Any) -> Any:
            return v.val if isinstance(v, jcore.Literal) else env[v]

        for v, c in zip(jaxpr.constvars, consts):
            env[v] = c
        for v, a in zip(jaxpr.invars, inputs):
            env[v] = a
        for eqn in jaxpr.eqns:
            invals = [read(v) for v in eqn.invars]
            has_param = any(_is_var(v) and v in penv for v in eqn.invars)
            inner = _inner_jaxpr(eqn) if has_param else None
            if inner is not None:
                ijaxpr, iconsts = inner
                ipenv = {iv: penv[ov] for iv, ov in zip(ijaxpr.invars, eqn.invars)
                         if _is_var(ov) and ov in penv}
                outs = run(ijaxpr, iconsts, invals, ipenv)
            else:
                outs = _bind(eqn, invals)
                if has_param:
                    k = counter[0]
                    counter[0] += 1
                    use = plan.uses.get(k)
                    if use is not None:
                        outs = [outs[0] + taps[k]]
                        # the non-parameter operand: gather indices, or the dot's other input
                        records[k] = invals[1] if (use.kind == "gather" or use.param_is_lhs) else invals[0]
            for v, o in zip(eqn.outvars, outs):
                if not isinstance(v, jcore.DropVar):
                    env[v] = o
        return [read(v) for v in jaxpr.outvars]

    closed = plan.jaxpr
    jaxpr = closed.jaxpr
    penv = {v: i for i, v in enumerate(jaxpr.invars[:plan.n_leaves])}
    (out,) = run(jaxpr, closed.consts, args, penv)
    return out, records


def structured_factors(plan: StructuredPlan, leaves: Sequence[jax.Array], x_leaves: Sequence[jax.Array]) -> dict[str, Any]:
    """Per-example factors for one batch: layer inputs, tap cotangents and fallback Jacobians.

    Args:
      plan: from :func:`plan_structured`.
      leaves: parameter leaves.
      x_leaves: flattened batch leaves, each with a leading example axis ``n``.

    Returns:
      dict with ``x`` (candidate -> (n, S, K) inputs or (n, S) gather indices), ``delta``
      (candidate -> (n, C, S, M)) and ``jac`` (fallback leaf -> (n, C, P)).
    """
    fb_idx = plan.fallback

    def per_example(xs: Sequence[jax.Array]) -> tuple[Any, Any, Any]:
        def out_fn(fb: list[jax.Array], taps: dict[int, jax.Array]) -> tuple[jax.Array, Any]:
            args = list(leaves)
            for i, leaf in zip(fb_idx, fb):
                args[i] = leaf
            out, rec = _interpret(plan, args + list(xs), taps)
            return jnp.reshape(out, (-1,)), rec

        taps = {k: jnp.zeros(s, jnp.result_type(float)) for k, s in plan.tap_shapes.items()}
        fb = [leaves[i] for i in fb_idx]
        (j_fb, j_taps), rec = jax.jacrev(out_fn, argnums=(0, 1), has_aux=True)(fb, taps)
        return j_fb, j_taps, rec

    j_fb, j_taps, rec = jax.vmap(per_example)(list(x_leaves))
    n = x_leaves[0].shape[0]
    xs, deltas = {}, {}
    for k, use in plan.uses.items():
        d = j_taps[k]  # (n, C, *out)
        c = d.shape[1]
        d = jnp.transpose(d, (0, 1) + tuple(2 + p for p in use.out_perm))
        deltas[k] = d.reshape(n, c, use.s_size, use.m_size)
        r = rec[k]
        if use.kind == "gather":
            xs[k] = r.reshape(n, use.s_size)
        else:
            xs[k] = jnp.transpose(r, (0,) + tuple(1 + p for p in use.x_perm)).reshape(n, use.s_size, use.k_size)
    jac = {i: j.reshape(n, j.shape[1], -1) for i, j in zip(fb_idx, j_fb)}
    return {"x": xs, "delta": deltas, "jac": jac, "n": n}


def structured_kernel(plan: StructuredPlan, f1: dict[str, Any], f2: dict[str, Any], *, trace_logits: bool = False,
                      leaves: Sequence[int] | None = None) -> jax.Array:
    """Sum of per-leaf NTK contributions from two factor sets (Eq. (1) or gradient contraction).

    Args:
      plan: the structured plan.
      f1, f2: :func:`structured_factors` outputs for the two batches.
      trace_logits: return ``sum_a Theta_aa`` of shape (n1, n2) instead of (n1, n2, C, C).
      leaves: restrict the sum to these leaf indices (default: all).

    Returns:
      (n1, n2, C, C) or (n1, n2).
    """
    out_sub = "ij" if trace_logits else "ijab"
    b = "a" if trace_logits else "b"
    total = None
    wanted = set(range(plan.n_leaves)) if leaves is None else set(leaves)

    def add(term: jax.Array) -> None:
        nonlocal total
        total = term if total is None else total + term

    for leaf, ks in plan.structured.items():
        if leaf not in wanted:
            continue
        use = plan.uses[ks[0]]
        d1 = jnp.concatenate([f1["delta"][k] for k in ks], axis=2)
        d2 = jnp.concatenate([f2["delta"][k] for k in ks], axis=2)
        n1, c, s1, m = d1.shape
        n2, s2 = d2.shape[0], d2.shape[2]
        if use.kind == "gather":
            i1 = jnp.concatenate([f1["x"][k] for k in ks], axis=1)
            i2 = jnp.concatenate([f2["x"][k] for k in ks], axis=1)
            valid1 = (i1 >= 0) & (i1 < use.rows)
            same = (i1[:, None, :, None] == i2[None, :, None, :]) & valid1[:, None, :, None]
            add(jnp.einsum(f"ijst,iasm,j{b}tm->{out_sub}", same.astype(d1.dtype), d1, d2))
            continue
        x1 = jnp.concatenate([f1["x"][k] for k in ks], axis=1)
        x2 = jnp.concatenate([f2["x"][k] for k in ks], axis=1)
        k_size = x1.shape[2]
        cc = c if trace_logits else c * c
        cost_pairs = n1 * n2 * s1 * s2 * (k_size + cc * m)
        cost_grad = (n1 * s1 + n2 * s2) * c * k_size * m + n1 * n2 * cc * k_size * m
        if cost_pairs <= cost_grad:
            gram_x = jnp.einsum("isk,jtk->ijst", x1, x2)
            add(jnp.einsum(f"ijst,iasm,j{b}tm->{out_sub}", gram_x, d1, d2))
        else:
            g1 = jnp.einsum("isk,iasm->iakm", x1, d1)
            g2 = jnp.einsum("jtk,jbtm->jbkm", x2, d2)
            add(jnp.einsum(f"iakm,j{b}km->{out_sub}", g1, g2))
    for leaf in plan.fallback:
        if leaf not in wanted or leaf not in f1["jac"]:
            continue
        add(jnp.einsum(f"iap,j{b}p->{out_sub}", f1["jac"][leaf], f2["jac"][leaf]))
    if total is None:  # no selected leaf influences the output: the kernel is exactly zero
        c = int(math.prod(plan.jaxpr.out_avals[0].shape))
        shape = (f1["n"], f2["n"]) + (() if trace_logits else (c, c))
        return jnp.zeros(shape, jnp.result_type(float))
    return total
