"""The associative-memory induction head: hand-written weights and their closed-form logits.

A two-layer attention transformer with a bigram feed-forward memory, written as in Bietti et
al. (arXiv 2306.00802, Sec. 4-6) and analysed by Wang & Sato (arXiv 2412.11459, Sec. 4,
"associative memory transformer"). With token embeddings ``e_i``, positional embeddings
``p_t`` (APE only), a "previous token" subspace ``phi_i`` and unembeddings ``u_j``:

* layer 1, previous-token head: ``W_QK^1 = beta1 sum_t p_t p_{t-1}^T`` (APE) or the relative
  bias ``b(t - s) = beta1 [t - s = 1]`` (RPE); ``W_OV^1 = sum_i phi_i e_i^T`` writes the
  previous token into the ``phi`` subspace;
* layer 2, induction head: ``W_QK^2 = beta2 sum_k e_k phi_k^T`` matches the current token
  with the *previous* token of each key; ``W_OV^2 = sum_k u_k e_k^T`` copies the attended
  token to the output;
* feed-forward bigram memory: ``W_F = alpha sum_i sum_j B(i, j) u_j e_i^T`` with
  ``B(i, .)`` the one-hot of ``argmax_j pi_b(j | i)`` (Bietti's memory), ``pi_b(. | i)``, or
  ``log pi_b(. | i)`` (Wang & Sato's "stronger" weighted memory), see :class:`BigramMemory`.

Closed form (Wang & Sato, Sec. 4; exact when the four families are orthonormal). With
``a1[t, s] = softmax_{s <= t}(beta1 [s = t - 1])`` and
``m_t(s) = sum_{s' <= s} a1[s, s'] [z_{s'} = z_t]`` (how much key ``s`` "remembers" the
current token as its predecessor), the logits at position ``t`` are::

    logit_t(j) = sum_{s <= t} softmax_{s <= t}(beta2 m_t(s)) [z_s = j]  +  alpha B(z_t, j)
               = in-context term                                     +  bigram term.

For a designed prompt of length ``L`` where the query ``q`` is followed ``r`` times by ``o``
and nowhere else, as ``beta1 -> infinity``::

    in-context(o) = r e^{beta2} / (r e^{beta2} + L - r),    bigram(b) = alpha B(q, b),

so the in-context token overtakes the bigram favourite ``b`` once the first term exceeds the
bigram margin: the in-context information "hijacks" the pretrained knowledge.

The forward pass here is the paper's parameterisation (one bilinear ``W_QK`` per head); it is
the reference the closed form is checked against.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from jaxml.nn import Activation, NormKind, PosEncoding, TransformerConfig, apply_transformer

__all__ = [
    "PrevTokenHead",
    "BigramMemory",
    "EmbeddingKind",
    "InductionHeadConfig",
    "bigram_memory_table",
    "init_induction_head",
    "apply_induction_head",
    "closed_form_logits",
    "designed_prompt_in_context_logit",
    "saturation_curve",
    "to_transformer",
    "logit_decomposition",
]


class PrevTokenHead(enum.Enum):
    """How layer 1 finds the previous token.

    ABSOLUTE (APE): ``W_QK^1 = beta1 sum_{t < max_len} p_t p_{t-1}^T`` on absolute positional
        embeddings; only defined for ``t < max_len`` (the positions it was written, or trained,
        for).
    RELATIVE (RPE): a bias ``beta1`` on offset ``t - s = 1`` added to the attention scores;
        the same at every position, hence valid at any length.
    """

    ABSOLUTE = "absolute"
    RELATIVE = "relative"


class BigramMemory(enum.Enum):
    """What the feed-forward memory stores for each token ``i``: ``B(i, .)``.

    ARGMAX: one-hot of ``argmax_j pi_b(j | i)`` (Bietti et al., Sec. 6; a pure associative
        memory ``sum_i u_{argmax} e_i^T``).
    PROBABILITY: ``pi_b(j | i)``.
    LOG_PROBABILITY: ``log max(pi_b(j | i), 1e-4)``; with ``alpha = 1`` and no in-context
        evidence the softmax of the logits is the (floored) global bigram.
    """

    ARGMAX = "argmax"
    PROBABILITY = "probability"
    LOG_PROBABILITY = "log_probability"


class EmbeddingKind(enum.Enum):
    """How the embedding families ``e, p, phi, u`` are drawn.

    ORTHONORMAL: columns of one random orthogonal matrix (needs ``d_model >= 3 V`` plus
        ``max_len`` for APE); the closed form then holds exactly.
    GAUSSIAN: i.i.d. ``N(0, 1/d)`` entries as in Bietti et al.; near-orthogonal, so the closed
        form holds up to ``O(1 / sqrt(d_model))`` interference.
    """

    ORTHONORMAL = "orthonormal"
    GAUSSIAN = "gaussian"


_LOG_FLOOR = 1e-4


@dataclass(frozen=True)
class InductionHeadConfig:
    """The hand-built associative-memory transformer.

    Attributes:
        vocab_size: ``V``.
        d_model: residual width ``d``.
        max_len: longest sequence (APE: number of positional embeddings).
        prev_token_head: :class:`PrevTokenHead` (APE or RPE).
        beta1: previous-token attention strength.
        beta2: induction attention strength.
        alpha: scale of the bigram memory.
        bigram_memory: :class:`BigramMemory`.
        embedding: :class:`EmbeddingKind`.
    """

    vocab_size: int = 65
    d_model: int = 256
    max_len: int = 256
    prev_token_head: PrevTokenHead = PrevTokenHead.RELATIVE
    beta1: float = 20.0
    beta2: float = 5.0
    alpha: float = 1.0
    bigram_memory: BigramMemory = BigramMemory.ARGMAX
    embedding: EmbeddingKind = EmbeddingKind.ORTHONORMAL

    def __post_init__(self) -> None:
        for name in ("vocab_size", "d_model", "max_len"):
            val = getattr(self, name)
            if not isinstance(val, int) or val < 2:
                raise ValueError(f"{name} must be an int >= 2, got {val!r}")
        for name in ("beta1", "beta2", "alpha"):
            val = getattr(self, name)
            if not np.isfinite(val):
                raise ValueError(f"{name} must be finite, got {val!r}")
        for name, enum_cls in (("prev_token_head", PrevTokenHead),
                               ("bigram_memory", BigramMemory),
                               ("embedding", EmbeddingKind)):
            if not isinstance(getattr(self, name), enum_cls):
                raise ValueError(
                    f"{name} must be a {enum_cls.__name__} "
                    f"({[k.value for k in enum_cls]}), got {getattr(self, name)!r}"
                )
        if self.embedding is EmbeddingKind.ORTHONORMAL and self.d_model < self.required_width:
            raise ValueError(
                f"d_model={self.d_model} is too small for orthonormal embeddings: need "
                f">= {self.required_width} (3 * vocab_size"
                f"{' + max_len' if self.prev_token_head is PrevTokenHead.ABSOLUTE else ''}); "
                "raise d_model or use EmbeddingKind.GAUSSIAN"
            )

    @property
    def required_width(self) -> int:
        """Dimensions needed for mutually orthonormal ``e, phi, u`` (and ``p`` for APE)."""
        extra = self.max_len if self.prev_token_head is PrevTokenHead.ABSOLUTE else 0
        return 3 * self.vocab_size + extra


def bigram_memory_table(transition: jax.Array, kind: BigramMemory) -> jax.Array:
    """``B(i, j)`` stored by the feed-forward memory (see :class:`BigramMemory`).

    Args:
        transition: ``(V, V)`` row-stochastic ``pi_b(j | i)``.
        kind: which memory.

    Returns:
        ``(V, V)`` float32 table.
    """
    p = jnp.asarray(transition, jnp.float32)
    if kind is BigramMemory.ARGMAX:
        return jax.nn.one_hot(jnp.argmax(p, axis=1), p.shape[1], dtype=jnp.float32)
    if kind is BigramMemory.PROBABILITY:
        return p
    return jnp.log(jnp.maximum(p, _LOG_FLOOR))


def _families(key: jax.Array, cfg: InductionHeadConfig) -> dict[str, jax.Array]:
    v, d = cfg.vocab_size, cfg.d_model
    n_pos = cfg.max_len if cfg.prev_token_head is PrevTokenHead.ABSOLUTE else 0
    n = 3 * v + n_pos
    if cfg.embedding is EmbeddingKind.ORTHONORMAL:
        q, _ = jnp.linalg.qr(jax.random.normal(key, (d, d), jnp.float32))
        cols = q[:, :n].T  # (n, d) orthonormal rows
    else:
        cols = jax.random.normal(key, (n, d), jnp.float32) / jnp.sqrt(jnp.float32(d))
    fam = {"embed": cols[:v], "prev": cols[v:2 * v], "unembed": cols[2 * v:3 * v]}
    if n_pos:
        fam["pos"] = cols[3 * v:]
    return fam


def init_induction_head(key: jax.Array, cfg: InductionHeadConfig,
                        transition: jax.Array) -> dict[str, jax.Array]:
    """Write the associative-memory weights (Wang & Sato, arXiv 2412.11459, Sec. 4).

    Args:
        key: PRNG key for the embedding families.
        cfg: the construction's configuration.
        transition: ``(V, V)`` global bigram ``pi_b`` stored by the feed-forward memory.

    Returns:
        Plain dict: ``embed``, ``unembed``, ``prev`` ``(V, d)``; ``pos`` ``(max_len, d)`` (APE);
        ``w_qk1`` ``(d, d)`` (APE) or ``rel_bias1`` ``(max_len,)`` (RPE, indexed by ``t - s``);
        ``w_ov1``, ``w_qk2``, ``w_ov2``, ``w_ffn`` ``(d, d)``. Scores are ``x_t^T W_QK x_s``,
        values ``W_OV x_s``.
    """
    transition = jnp.asarray(transition, jnp.float32)
    if transition.shape != (cfg.vocab_size, cfg.vocab_size):
        raise ValueError(
            f"transition has shape {transition.shape}, expected ({cfg.vocab_size}, "
            f"{cfg.vocab_size}) for vocab_size={cfg.vocab_size}"
        )
    fam = _families(key, cfg)
    e, phi, u = fam["embed"], fam["prev"], fam["unembed"]
    params = dict(fam)
    if cfg.prev_token_head is PrevTokenHead.ABSOLUTE:
        p = fam["pos"]
        params["w_qk1"] = cfg.beta1 * (p[1:].T @ p[:-1])  # sum_t p_t p_{t-1}^T
    else:
        params["rel_bias1"] = jnp.zeros((cfg.max_len,), jnp.float32).at[1].set(cfg.beta1)
    params["w_ov1"] = phi.T @ e  # sum_i phi_i e_i^T
    params["w_qk2"] = cfg.beta2 * (e.T @ phi)  # sum_k e_k phi_k^T
    params["w_ov2"] = u.T @ e  # sum_k u_k e_k^T
    table = bigram_memory_table(transition, cfg.bigram_memory)
    params["w_ffn"] = cfg.alpha * (u.T @ table.T @ e)  # sum_ij B(i,j) u_j e_i^T
    return params


def _causal_softmax(scores: jax.Array) -> jax.Array:
    t = scores.shape[-1]
    mask = jnp.tril(jnp.ones((t, t), bool))
    return jax.nn.softmax(jnp.where(mask, scores, -jnp.inf), axis=-1)


def apply_induction_head(params: dict[str, jax.Array], tokens: jax.Array,
                         cfg: InductionHeadConfig, *,
                         return_terms: bool = False) -> jax.Array | tuple[jax.Array, dict[str, jax.Array]]:
    """Forward pass of the construction on one sequence.

    ``x = e_z (+ p)``; ``h1 = x + A1 (x W_OV1^T)``; ``h2 = h1 + A2 (h1 W_OV2^T)``;
    ``h3 = h2 + h2 W_F^T``; ``logits = h3 U^T`` with causal softmax attentions
    ``A1 = softmax(x W_QK1 x^T)`` (APE) or ``softmax(b(t - s))`` (RPE) and
    ``A2 = softmax(h1 W_QK2 h1^T)``.

    Args:
        params: from :func:`init_induction_head`.
        tokens: ``(T,)`` int tokens, ``T <= max_len``.
        cfg: configuration.
        return_terms: also return the logit decomposition.

    Returns:
        ``(T, V)`` logits, or ``(logits, terms)`` with ``terms`` a dict of ``(T, V)`` arrays:
        ``in_context`` (the induction head's output read by the unembedding), ``bigram`` (the
        feed-forward memory's), ``residual`` (embedding path and layer 1; zero when
        orthonormal) and the attention maps ``attn1``, ``attn2`` ``(T, T)``.
    """
    tokens = jnp.asarray(tokens)
    if tokens.ndim != 1:
        raise ValueError(f"tokens must be 1-D (T,), got shape {tokens.shape}; vmap for batches")
    t = tokens.shape[0]
    if t > cfg.max_len:
        raise ValueError(f"sequence length {t} exceeds max_len={cfg.max_len}")
    x = params["embed"][tokens]
    if cfg.prev_token_head is PrevTokenHead.ABSOLUTE:
        x = x + params["pos"][:t]
        s1 = x @ params["w_qk1"] @ x.T
    else:
        offs = jnp.arange(t)[:, None] - jnp.arange(t)[None, :]
        s1 = params["rel_bias1"][jnp.clip(offs, 0, cfg.max_len - 1)]
    a1 = _causal_softmax(s1)
    h1 = x + a1 @ (x @ params["w_ov1"].T)
    a2 = _causal_softmax(h1 @ params["w_qk2"] @ h1.T)
    head2 = a2 @ (h1 @ params["w_ov2"].T)
    h2 = h1 + head2
    ffn = h2 @ params["w_ffn"].T
    u = params["unembed"]
    in_context, bigram, residual = head2 @ u.T, ffn @ u.T, h1 @ u.T
    logits = residual + in_context + bigram
    if not return_terms:
        return logits
    return logits, {"in_context": in_context, "bigram": bigram, "residual": residual,
                    "attn1": a1, "attn2": a2}


def closed_form_logits(tokens: jax.Array, cfg: InductionHeadConfig,
                       transition: jax.Array) -> dict[str, jax.Array]:
    """The theory's logits, computed from the tokens alone (no embeddings).

    ``logit_t(j) = sum_{s<=t} softmax_s(beta2 m_t(s)) [z_s = j] + alpha B(z_t, j)`` with
    ``m_t(s) = sum_{s'<=s} a1[s, s'] [z_{s'} = z_t]`` and
    ``a1[s, .] = softmax_{s' <= s}(beta1 [s' = s - 1])`` (module docstring; Wang & Sato,
    arXiv 2412.11459, Sec. 4). Exact for :attr:`EmbeddingKind.ORTHONORMAL` (both APE and RPE
    give this ``a1`` for ``T <= max_len``).

    Args:
        tokens: ``(T,)`` int tokens.
        cfg: configuration (``beta1``, ``beta2``, ``alpha``, ``bigram_memory``).
        transition: ``(V, V)`` global bigram.

    Returns:
        Dict of ``(T, V)`` arrays ``logits``, ``in_context``, ``bigram``.
    """
    tokens = jnp.asarray(tokens)
    t = tokens.shape[0]
    idx = jnp.arange(t)
    a1 = _causal_softmax(cfg.beta1 * (idx[None, :] == idx[:, None] - 1).astype(jnp.float32))
    same = (tokens[:, None] == tokens[None, :]).astype(jnp.float32)  # same[t, s'] = [z_t=z_s']
    m = same @ a1.T  # m[t, s] = sum_s' a1[s, s'] [z_s' = z_t]
    a2 = _causal_softmax(cfg.beta2 * m)
    onehot = jax.nn.one_hot(tokens, cfg.vocab_size, dtype=jnp.float32)
    in_context = a2 @ onehot
    bigram = cfg.alpha * bigram_memory_table(transition, cfg.bigram_memory)[tokens]
    return {"logits": in_context + bigram, "in_context": in_context, "bigram": bigram}


def designed_prompt_in_context_logit(repetitions: jax.typing.ArrayLike, length: int | float,
                                     beta2: float | jax.Array) -> jax.Array:
    """In-context logit of the planted token at the end of a designed prompt (beta1 -> inf).

    For a prompt of length ``L`` whose query ``q`` is followed by ``o`` at ``r`` places and
    appears nowhere else except at the end, the induction head gives ``r`` keys score
    ``beta2`` and ``L - r`` keys score ``0``, so (Wang & Sato, arXiv 2412.11459, Sec. 4)::

        in-context(o) = r e^{beta2} / (r e^{beta2} + L - r).

    Args:
        repetitions: ``r`` (array-like, ``0 <= r < L``).
        length: ``L``.
        beta2: induction attention strength.

    Returns:
        The in-context logit(s), same shape as ``repetitions``.
    """
    r = jnp.asarray(repetitions, jnp.float32)
    w = r * jnp.exp(jnp.float32(beta2))
    return w / (w + jnp.float32(length) - r)


def saturation_curve(repetitions: np.ndarray, length: int, values: np.ndarray, *,
                     betas: np.ndarray | None = None) -> dict[str, float | np.ndarray]:
    """Fit ``y(r) = c0 + c1 * r e^beta / (r e^beta + L - r)`` to measured logits by least squares.

    The theory's shape (:func:`designed_prompt_in_context_logit`) with a free offset ``c0``
    (what the rest of the network adds), scale ``c1`` (the unembedding norm of a trained
    head) and effective attention strength ``beta``: ``c0, c1`` are solved in closed form for
    each ``beta`` on a grid and the best ``beta`` is kept.

    Args:
        repetitions: ``(n,)`` values of ``r``.
        length: prompt length ``L``.
        values: ``(n,)`` measured logits.
        betas: grid of ``beta`` (default ``linspace(-2, 12, 281)``).

    Returns:
        Dict with ``beta``, ``c0``, ``c1``, ``r2`` (coefficient of determination) and
        ``fitted`` ``(n,)``.
    """
    r = np.asarray(repetitions, np.float64)
    y = np.asarray(values, np.float64)
    if r.shape != y.shape or r.ndim != 1 or r.size < 3:
        raise ValueError("repetitions and values must be 1-D arrays of the same length >= 3")
    grid = np.linspace(-2.0, 12.0, 281) if betas is None else np.asarray(betas, np.float64)
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    best = None
    for beta in grid:
        w = r * np.exp(beta)
        f = w / (w + length - r)
        design = np.stack([np.ones_like(f), f], axis=1)
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        fitted = design @ coef
        ss_res = float(np.sum((y - fitted) ** 2))
        if best is None or ss_res < best[0]:
            best = (ss_res, beta, coef, fitted)
    ss_res, beta, coef, fitted = best
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0)
    return {"beta": float(beta), "c0": float(coef[0]), "c1": float(coef[1]), "r2": float(r2),
            "fitted": fitted}


def to_transformer(params: dict[str, jax.Array],
                   cfg: InductionHeadConfig) -> tuple[dict, TransformerConfig]:
    """Write the construction into the layout of :mod:`jaxml.nn.transformer`.

    Two one-head layers without normalisation, ``d_head = d_model``, an identity-activation FFN
    of width ``V`` in each layer (zero in layer 1, the bigram memory in layer 2) and an untied
    unembedding. A bilinear ``W_QK`` becomes ``wq = sqrt(d) W_QK``, ``wk = I`` (the
    transformer divides scores by ``sqrt(d_head)``), ``W_OV`` becomes ``wv = I``,
    ``wo = W_OV^T``; the FFN is ``w1 = [e_1 .. e_V]``, ``w2 = W_F E^T``-rows. RPE writes
    ``beta1`` into the relative-bias table at offset ``+1`` (the table's other entries are 0,
    offsets clipped at ``max_len - 1``). ``apply_transformer`` then computes exactly
    :func:`apply_induction_head`.

    Returns:
        ``(transformer_params, transformer_config)``.
    """
    d, v = cfg.d_model, cfg.vocab_size
    absolute = cfg.prev_token_head is PrevTokenHead.ABSOLUTE
    tcfg = TransformerConfig(
        vocab_size=v, d_model=d, n_layers=2, n_heads=1, d_head=d, d_ff=v, max_len=cfg.max_len,
        pos_encoding=PosEncoding.LEARNED if absolute else PosEncoding.RELATIVE,
        norm=NormKind.NONE, final_norm=False, tie_embeddings=False,
        activation=Activation.IDENTITY)
    eye = jnp.eye(d, dtype=jnp.float32)[:, None, :]
    root = jnp.sqrt(jnp.float32(d))

    def attn(w_qk, w_ov):
        return {"wq": root * w_qk[:, None, :], "wk": eye, "wv": eye, "wo": w_ov.T[None, :, :]}

    zero = jnp.zeros((d, d), jnp.float32)
    layer1 = {"norm1": {}, "attn": attn(params["w_qk1"] if absolute else zero, params["w_ov1"]),
              "norm2": {}, "ffn": {"w1": jnp.zeros((d, v)), "b1": jnp.zeros((v,)),
                                   "w2": jnp.zeros((v, d)), "b2": jnp.zeros((d,))}}
    if not absolute:
        table = jnp.zeros((1, 2 * cfg.max_len - 1), jnp.float32)
        layer1["attn"]["rel"] = table.at[0, cfg.max_len - 1 + 1].set(params["rel_bias1"][1])
    # w_ffn = sum_ij B(i,j) u_j e_i^T: hidden unit i reads e_i, writes w_ffn e_i.
    layer2 = {"norm1": {}, "attn": attn(params["w_qk2"], params["w_ov2"]), "norm2": {},
              "ffn": {"w1": params["embed"].T, "b1": jnp.zeros((v,)),
                      "w2": (params["w_ffn"] @ params["embed"].T).T, "b2": jnp.zeros((d,))}}
    if not absolute:
        layer2["attn"]["rel"] = jnp.zeros((1, 2 * cfg.max_len - 1), jnp.float32)
    embed = {"tokens": params["embed"]}
    if absolute:
        embed["pos"] = params["pos"]
    tparams = {"embed": embed, "layers": [layer1, layer2], "final_norm": {},
               "unembed": params["unembed"].T}
    return tparams, tcfg


def logit_decomposition(params: dict, cfg: TransformerConfig,
                        tokens: jax.Array) -> dict[str, jax.Array]:
    """Split a transformer's logits into the in-context and the pretrained-bigram term.

    With no normalisation the logits are linear in the residual stream,
    ``logits = (h^0 + sum_l attn_l + sum_l ffn_l) U``, so (Wang & Sato, arXiv 2412.11459,
    Sec. 4, for the two-layer associative-memory transformer):

    * ``in_context = attn_L U``: the last attention layer, the induction head;
    * ``bigram = (h^0 + sum_l ffn_l) U``: the token's own embedding and the feed-forward
      memories (the global knowledge);
    * ``other = sum_{l < L} attn_l U``: the earlier attention layers' direct effect (the
      previous-token head; zero for the construction).

    ``in_context + bigram + other`` equals the logits exactly.

    Args:
        params: transformer parameters (trained, or from :func:`to_transformer`).
        cfg: its configuration; must have ``norm=NormKind.NONE`` and ``final_norm=False``.
        tokens: ``(T,)`` or ``(B, T)`` int tokens.

    Returns:
        Dict of ``(..., T, V)`` arrays ``logits``, ``in_context``, ``bigram``, ``other``.

    Raises:
        ValueError: when the configuration normalises the residual stream (the split is then
            not linear).
    """
    if cfg.norm is not NormKind.NONE or cfg.final_norm:
        raise ValueError(
            "logit_decomposition needs a linear read-out: build the transformer with "
            "norm=NormKind.NONE and final_norm=False"
        )
    logits, inter = apply_transformer(params, tokens, cfg, return_intermediates=True)
    unembed = params["embed"]["tokens"].T if cfg.tie_embeddings else params["unembed"]
    in_context = inter["attn_out"][-1] @ unembed
    bigram = inter["residual"][0] @ unembed
    for f in inter["ffn_out"]:
        bigram = bigram + f @ unembed
    other = logits - in_context - bigram
    return {"logits": logits, "in_context": in_context, "bigram": bigram, "other": other}
