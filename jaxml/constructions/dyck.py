"""A hand-built NoPE transformer that recognises Dyck_k and computes its legal next tokens.

Hayakawa & Sato (ACL 2025, arXiv:2410.12413) prove that a causal transformer with a starting
token (BOS), RMS normalisation and *no positional encoding* recognises and generates Dyck_k
with a constant number of layers: the causal mask plus BOS give a position signal, uniform
attention gives the depth, and attention to the latest position of equal depth matches
brackets. This module writes such weights into the ordinary :mod:`jaxml.nn` transformer
(``PosEncoding.NONE``, ``NormKind.RMS``, causal, ReLU FFN, per-layer attention kinds
``(UNIFORM, UNIFORM, SOFTMAX, UNIFORM)``) and runs it in float32.

Input: ``BOS x_1 .. x_n`` (tokens of :mod:`jaxml.tasks.dyck`). Position ``i`` (0 = BOS) has
``p_i = 1/(i+1)`` and depth ``d_i = #open - #close`` in ``x_1..x_i``. The *level* of a bracket
is ``d_i`` for an opening and ``d_i + 1`` for a closing bracket, so a matched pair shares a
level. Bracket types use +-1 codes ``c(t)`` of ``B = max(1, ceil(log2 k))`` bits.

Residual stream (one named coordinate per feature, width ``2D + 3B + 15`` for depth bound D):

1. **Embedding.** BOS flag, open flag, close flag, signed type code (``+c(t)`` opening,
   ``-c(t)`` closing), magnitude 1.
2. **Layer 1, uniform attention** (the paper's position/depth signal). Values ``M`` on BOS and
   ``+-M/sigma`` on brackets give ``P = M p_i`` and ``Q = M p_i d_i / sigma``.
3. **Layer 1 FFN: depth from the normalisation.** The residual is dominated by ``(P, Q)``
   (``M = 2^27`` dwarfs the unit embedding), so RMSNorm maps it to
   ``sqrt(d_model) (1, d/sigma) / sqrt(1 + (d/sigma)^2)`` -- a function of the depth alone:
   the norm divides out the position. A piecewise-linear ReLU map of the second coordinate
   (knots at the D + 2 possible values) decodes the integer depth ``DEP`` and the flags
   ``NEG = [d < 0]``, ``NZ = [d != 0]``, ``OVF = [d > D]``. The FFN bias also writes a constant
   ``G = 2^40``; from here on every RMSNorm divides by ``~G / sqrt(d_model)`` (relative
   variation below 1e-8), i.e. the norm becomes a fixed rescaling and later layers read
   features linearly.
4. **Layer 2 FFN: one-hot levels.** Flat-topped ReLU bumps give ``LVL = onehot(DEP + close)``
   and ``DOH = onehot(DEP)`` over 1..D. A bump is exactly 1 on ``[m - 1/4, m + 1/4]``, so
   equal levels give bitwise-equal features at every position. (Layer 2's attention is
   unused.)
5. **Layer 3, softmax attention = "latest position of equal depth".** Keys ``[LVL, BOS]``,
   queries ``T [LVL, 1]`` (head 1) and ``T [DOH, 1]`` (head 2), ``T = 40``; values
   ``[signed code, BOS flag]``. The head spreads its weight uniformly over BOS and every
   position at the query's level. Before position ``i`` those are the matched pairs of the
   earlier siblings, whose ``+c(t) - c(t)`` cancel exactly because their weights are equal,
   plus the unmatched opening bracket ``j*`` -- the most recent one at that level, i.e. the
   paper's matching target. So the output is ``o = w (c(t*) - c(x_i)) , o_B = w`` for a
   closing query (head 1, ``w`` the common weight) and ``o = w c(t_top), o_B = w`` for the
   innermost open type (head 2). Recency comes from the cancellation, not from a positional
   score, which keeps it exact in float32 at any length.
6. **Layer 3 FFN: mismatch flag** ``FLAG = K sum_b relu(|o_b| - 1.5 o_B)``: a type mismatch
   leaves ``|o_b| = 2w`` on a differing bit, a match leaves 0, an opening query ``w``.
7. **Layer 4, uniform attention:** ``AGG_i = mean_{j<=i}(NEG + OVF + FLAG)``, which is 0 iff
   the prefix never went wrong and ``>= p_i`` otherwise; ``AGGO`` averages ``OVF`` alone.
8. **Readout** (final RMSNorm, unembedding) over ``[open_t, close_t, END, OVERFLOW]``:
   ``open = p/2 - AGG``, ``close_t = c(t).o' - (B - 1/2) o'_B - K' AGG``,
   ``END = p/2 - AGG - NZ``, ``OVERFLOW = AGGO - p/2``, all scaled by ``2(N + 1)``. A token is
   legal iff its logit is positive; the string is in Dyck_k iff END at the last position is.

Width: ``d_model = 2D + 3B + 15`` with ``B = ceil(log2 k)`` -- O(log k) for the bracket types
as in the paper, plus one-hot levels for the depth bound ``D``. The paper's O(log k) width
assumes exact real arithmetic, where depth is one real number compared exactly; in float32
two depths ``d, d+1`` at length ``n`` differ by ``1/n`` in the uniform-attention signal and
cannot be compared by a dot product at ``n ~ 1000``, so depth is decoded to integers after
the normalisation (step 3) and compared as one-hot codes (width linear in ``D``). Strings
deeper than ``D`` are rejected and flagged by the OVERFLOW output; :func:`recognize` then
reruns them with a larger ``D`` (a valid string never exceeds half its length).
Lengths up to ``max_len`` (default 4096) are exact: ``M`` and ``K`` are sized for it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from jaxml.nn import (
    Activation,
    AttentionKind,
    NormKind,
    PosEncoding,
    TransformerConfig,
    apply_transformer,
    rms_norm,
)
from jaxml.tasks import dyck as dyck_tasks

__all__ = [
    "DyckLayout",
    "layout",
    "build_recognizer",
    "built_recognizer",
    "run_construction",
    "recognize",
    "legal_next_tokens",
    "type_codes",
]

_M = float(2 ** 27)  # scale of the position/depth signal of layer 1
_G = float(2 ** 40)  # constant written by layer 1's FFN; makes later norms a fixed rescaling
_T = 40.0  # layer-3 attention sharpness: off-level keys get weight e^-40 relative
_DEFAULT_DEPTH = 64
_DEFAULT_LEN = 4096


@dataclass(frozen=True)
class DyckLayout:
    """Named residual coordinates of the construction (see the module docstring)."""

    k: int
    max_depth: int
    max_len: int
    bits: int

    @property
    def bos(self) -> int:
        return 0

    @property
    def open(self) -> int:
        return 1

    @property
    def close(self) -> int:
        return 2

    @property
    def code(self) -> slice:
        return slice(3, 3 + self.bits)

    def _after_code(self, i: int) -> int:
        return 3 + self.bits + i

    @property
    def pos(self) -> int:  # P = M p_i
        return self._after_code(0)

    @property
    def depth_signal(self) -> int:  # Q = M p_i d_i / sigma
        return self._after_code(1)

    @property
    def const(self) -> int:  # G
        return self._after_code(2)

    @property
    def dep(self) -> int:  # decoded depth, clamped to [0, D + 1]
        return self._after_code(3)

    @property
    def neg(self) -> int:
        return self._after_code(4)

    @property
    def ovf(self) -> int:
        return self._after_code(5)

    @property
    def nz(self) -> int:
        return self._after_code(6)

    @property
    def lvl(self) -> slice:  # onehot(level) over 1..D
        s = self._after_code(7)
        return slice(s, s + self.max_depth)

    @property
    def doh(self) -> slice:  # onehot(depth) over 1..D
        s = self._after_code(7) + self.max_depth
        return slice(s, s + self.max_depth)

    @property
    def o1(self) -> slice:  # head-1 output (code part), then its BOS part at o1b
        s = self._after_code(7) + 2 * self.max_depth
        return slice(s, s + self.bits)

    @property
    def o1b(self) -> int:
        return self.o1.stop

    @property
    def o2(self) -> slice:
        s = self.o1b + 1
        return slice(s, s + self.bits)

    @property
    def o2b(self) -> int:
        return self.o2.stop

    @property
    def flag(self) -> int:
        return self.o2b + 1

    @property
    def agg(self) -> int:
        return self.o2b + 2

    @property
    def aggo(self) -> int:
        return self.o2b + 3

    @property
    def d_model(self) -> int:
        return self.o2b + 4

    @property
    def signal_scale(self) -> float:
        """M: the uniform-attention signal is P = M / (i + 1), Q = M d / ((i + 1) sigma)."""
        return _M

    @property
    def sigma(self) -> float:
        """Depth scale of the layer-1 signal; (D + 1) sqrt 2 spreads depths 0..D+1 best."""
        return (self.max_depth + 1) * math.sqrt(2.0)


def layout(k: int, max_depth: int = _DEFAULT_DEPTH, max_len: int = _DEFAULT_LEN, *,
           pad_k: int | None = None) -> DyckLayout:
    """The residual layout for ``k`` bracket types, depth bound ``max_depth`` and ``max_len``.

    ``pad_k`` (>= k) sizes the type codes for ``pad_k`` types (``ceil(log2 pad_k)`` bits), so
    that every ``k <= pad_k`` has the same layout width (see :func:`build_recognizer`).
    """
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    pad_k = k if pad_k is None else pad_k
    if not isinstance(pad_k, (int, np.integer)) or pad_k < k:
        raise ValueError(f"pad_k must be an integer >= k={k}, got {pad_k!r}")
    if not isinstance(max_depth, (int, np.integer)) or max_depth < 2:
        raise ValueError(f"max_depth must be an integer >= 2, got {max_depth!r}")
    if not isinstance(max_len, (int, np.integer)) or not 1 <= max_len <= 2 ** 16:
        raise ValueError(
            f"max_len must be an integer in [1, 65536] (the float32 scales M, G are sized for it), "
            f"got {max_len!r}")
    bits = max(1, math.ceil(math.log2(pad_k))) if pad_k > 1 else 1
    return DyckLayout(int(k), int(max_depth), int(max_len), bits)


def type_codes(k: int, bits: int | None = None) -> np.ndarray:
    """+-1 codes of the bracket types, shape (k, B): bit b of t mapped to {-1, +1}.

    ``bits`` defaults to ``B = ceil(log2 k)`` (at least 1); more bits give longer codes that
    are still pairwise distinct.
    """
    bits = layout(k).bits if bits is None else bits
    if bits < layout(k).bits:
        raise ValueError(f"{k} types need at least {layout(k).bits} code bits, got {bits}")
    t = np.arange(k)[:, None]
    b = np.arange(bits)[None, :]
    return np.where((t >> b) & 1, 1.0, -1.0)


def _s_of(d: np.ndarray | float, sigma: float) -> np.ndarray:
    """Normalised depth coordinate s(d) = (d/sigma) / sqrt(1 + (d/sigma)^2) in (-1, 1)."""
    z = np.asarray(d, np.float64) / sigma
    return z / np.sqrt(1.0 + z * z)


def build_recognizer(k: int, *, max_depth: int = _DEFAULT_DEPTH, max_len: int = _DEFAULT_LEN,
                     pad_k: int | None = None) -> tuple[dict, TransformerConfig]:
    """Write the construction's weights into a :mod:`jaxml.nn` transformer.

    Args:
        k: number of bracket pairs (any k >= 1; tokens as in :mod:`jaxml.tasks.dyck`).
        max_depth: depth bound D; deeper prefixes are rejected and raise the OVERFLOW output.
        max_len: longest input (excluding BOS) for which exactness is guaranteed.
        pad_k: lay the weights out as for ``pad_k >= k`` types: type codes of
            ``ceil(log2 pad_k)`` bits, vocabulary ``2 pad_k + 2`` (rows beyond k's tokens are
            zero) and ``2 pad_k + 2`` outputs (columns beyond ``2k + 2`` are zero). Every
            ``k <= pad_k`` then has the same config and parameter shapes, so one compiled
            program runs them all; the first ``2k + 2`` outputs are the construction for k.
            Default: k (the narrowest layout).

    Returns:
        ``(params, cfg)`` for :func:`jaxml.nn.apply_transformer`. Feed ``[BOS] + tokens``
        (``cfg.bos_token`` is None so the BOS output, the empty prefix, is kept). Output width
        ``2k + 2`` (``2 pad_k + 2`` with ``pad_k``): ``[open_0..k-1, close_0..k-1, END,
        OVERFLOW]``; positive = legal.
    """
    lay = layout(k, max_depth, max_len, pad_k=pad_k)
    pad_k = k if pad_k is None else pad_k
    dm, dd, bits = lay.d_model, lay.max_depth, lay.bits
    n_tok = dyck_tasks.vocab_size(pad_k)
    d_ff = 4 * dd + 8
    d_head = dd + 1
    cfg = TransformerConfig(
        vocab_size=n_tok, d_model=dm, n_layers=4, n_heads=2, d_ff=d_ff, max_len=max_len + 1,
        pos_encoding=PosEncoding.NONE,
        attention=(AttentionKind.UNIFORM, AttentionKind.UNIFORM, AttentionKind.SOFTMAX,
                   AttentionKind.UNIFORM),
        norm=NormKind.RMS, final_norm=True, causal=True, tie_embeddings=False,
        out_dim=2 * pad_k + 2, d_head=d_head, activation=Activation.RELU, bos_token=None)
    codes = type_codes(k, bits)
    f64 = np.float64

    # ---- embedding
    emb = np.zeros((n_tok, dm), f64)
    emb[dyck_tasks.BOS, lay.bos] = 1.0
    for t in range(k):
        emb[1 + t, lay.open] = 1.0
        emb[1 + t, lay.code] = codes[t]
        emb[1 + k + t, lay.close] = 1.0
        emb[1 + k + t, lay.code] = -codes[t]
    # the padding token keeps a zero row (only ever read after the end of a string)
    u_emb = np.asarray(rms_norm({"scale": jnp.ones((dm,))}, jnp.asarray(emb, jnp.float32)), f64)

    def zeros_layer() -> dict:
        return {
            "norm1": {"scale": np.ones(dm, f64)},
            "attn": {"wq": np.zeros((dm, 2, d_head), f64), "wk": np.zeros((dm, 2, d_head), f64),
                     "wv": np.zeros((dm, 2, d_head), f64), "wo": np.zeros((2, d_head, dm), f64)},
            "norm2": {"scale": np.ones(dm, f64)},
            "ffn": {"w1": np.zeros((dm, d_ff), f64), "b1": np.zeros(d_ff, f64),
                    "w2": np.zeros((d_ff, dm), f64), "b2": np.zeros(dm, f64)},
        }

    layers = [zeros_layer() for _ in range(4)]
    sigma = lay.sigma
    # ---- layer 1: uniform attention -> P = M p, Q = M p d / sigma
    a1 = layers[0]["attn"]
    a1["wv"][lay.bos, 0, 0] = _M / u_emb[dyck_tasks.BOS, lay.bos]
    a1["wv"][lay.open, 0, 1] = (_M / sigma) / u_emb[1, lay.open]
    a1["wv"][lay.close, 0, 1] = -(_M / sigma) / u_emb[1 + k, lay.close]
    a1["wo"][0, 0, lay.pos] = 1.0
    a1["wo"][0, 1, lay.depth_signal] = 1.0

    # ---- layer 1 FFN: decode the depth from the normalised direction
    f1 = layers[0]["ffn"]
    read_s = 1.0 / math.sqrt(dm)  # unit-normalised s = u_Q / sqrt(d_model)
    knots = _s_of(np.arange(0, dd + 2), sigma)  # s(0), ..., s(D + 1)
    slopes = 1.0 / np.diff(knots)  # slope on [s(m), s(m+1)], m = 0..D
    coef = np.diff(np.concatenate([[0.0], slopes, [0.0]]))  # change of slope at each knot
    for j, (kn, c) in enumerate(zip(knots, coef)):
        f1["w1"][lay.depth_signal, j] = read_s
        f1["b1"][j] = -kn
        f1["w2"][j, lay.dep] = c
    j = len(knots)
    s_m1, s_0, s_1 = _s_of(-1, sigma), _s_of(0, sigma), _s_of(1, sigma)
    mid_neg, mid_pos = (s_m1 + s_0) / 2, (s_0 + s_1) / 2
    s_top, s_over = _s_of(dd, sigma), _s_of(dd + 1, sigma)
    mid_over = (s_top + s_over) / 2
    # NEG: >= 1 for d <= -1, exactly 0 for d >= 0
    f1["w1"][lay.depth_signal, j] = -read_s / (mid_neg - s_m1)
    f1["b1"][j] = mid_neg / (mid_neg - s_m1)
    f1["w2"][j, lay.neg] = 1.0
    f1["w2"][j, lay.nz] = 1.0
    # NZ (positive side): >= 1 for d >= 1
    f1["w1"][lay.depth_signal, j + 1] = read_s / (s_1 - mid_pos)
    f1["b1"][j + 1] = -mid_pos / (s_1 - mid_pos)
    f1["w2"][j + 1, lay.nz] = 1.0
    # OVF: >= 1 for d >= D + 1
    f1["w1"][lay.depth_signal, j + 2] = read_s / (s_over - mid_over)
    f1["b1"][j + 2] = -mid_over / (s_over - mid_over)
    f1["w2"][j + 2, lay.ovf] = 1.0
    f1["b2"][lay.const] = _G

    # from layer 2 on the norm divides by ~G / sqrt(d_model): raw value = normalised * lam
    lam = _G / math.sqrt(dm)

    # ---- layer 2 FFN: flat-topped one-hot bumps of the level and of the depth
    f2 = layers[1]["ffn"]
    offs = np.arange(1, dd + 1)[:, None] + np.array([-0.75, -0.25, 0.25, 0.75])[None, :]
    bump_knots = np.unique(offs)  # 0.25, 0.75, ..., D + 0.75  (2D + 2 knots)
    index = {float(v): i for i, v in enumerate(bump_knots)}
    nk = len(bump_knots)
    for i, kn in enumerate(bump_knots):
        # level units: x = DEP + [close]; depth units: x = DEP
        f2["w1"][lay.dep, i] = lam
        f2["w1"][lay.close, i] = lam
        f2["b1"][i] = -kn
        f2["w1"][lay.dep, nk + i] = lam
        f2["b1"][nk + i] = -kn
    for m in range(1, dd + 1):
        for off, sign in ((-0.75, 2.0), (-0.25, -2.0), (0.25, -2.0), (0.75, 2.0)):
            i = index[float(m + off)]
            f2["w2"][i, lay.lvl.start + m - 1] = sign
            f2["w2"][nk + i, lay.doh.start + m - 1] = sign

    # ---- layer 3: softmax attention to BOS + the positions at the query's level
    a3 = layers[2]["attn"]
    qs = _T * math.sqrt(d_head)  # scores are divided by sqrt(d_head)
    for m in range(dd):
        a3["wq"][lay.lvl.start + m, 0, m] = qs * lam
        a3["wq"][lay.doh.start + m, 1, m] = qs * lam
        a3["wk"][lay.lvl.start + m, :, m] = lam
    a3["wq"][lay.const, :, dd] = qs * lam / _G  # constant 1 in the BOS slot
    a3["wk"][lay.bos, :, dd] = lam
    for b in range(bits):
        a3["wv"][lay.code.start + b, :, b] = lam
        a3["wo"][0, b, lay.o1.start + b] = 1.0
        a3["wo"][1, b, lay.o2.start + b] = 1.0
    a3["wv"][lay.bos, :, bits] = lam
    a3["wo"][0, bits, lay.o1b] = 1.0
    a3["wo"][1, bits, lay.o2b] = 1.0

    # ---- layer 3 FFN: mismatch flag K sum_b relu(|o_b| - 1.5 o_B)
    f3 = layers[2]["ffn"]
    k_flag = 2.0 * (max_len + 1)  # o_B >= 1/(i+1): a mismatch then gives FLAG >= 1
    for b in range(bits):
        for h, sgn in ((2 * b, 1.0), (2 * b + 1, -1.0)):
            f3["w1"][lay.o1.start + b, h] = sgn * lam
            f3["w1"][lay.o1b, h] = -1.5 * lam
            f3["w2"][h, lay.flag] = k_flag

    # ---- layer 4: uniform averages of the error flags
    a4 = layers[3]["attn"]
    for c in (lay.neg, lay.ovf, lay.flag):
        a4["wv"][c, 0, 0] = lam
    a4["wv"][lay.ovf, 0, 1] = lam
    a4["wo"][0, 0, lay.agg] = 1.0
    a4["wo"][0, 1, lay.aggo] = 1.0

    # ---- readout
    m_val = float(np.float32(np.float32(u_emb[dyck_tasks.BOS, lay.bos])
                             * np.float32(a1["wv"][lay.bos, 0, 0])))  # BOS value as computed
    scale = 2.0 * (max_len + 1)
    out = np.zeros((dm, 2 * pad_k + 2), f64)
    half_p = lam / (2.0 * m_val)  # normalised P -> p / 2
    k_close = 2.0 * (max_len + 1) * (bits + 1)
    for t in range(k):
        out[lay.pos, t] = half_p
        out[lay.agg, t] = -lam
        out[lay.o2, k + t] = lam * codes[t]
        out[lay.o2b, k + t] = -lam * (bits - 0.5)
        out[lay.agg, k + t] = -lam * k_close
    out[lay.pos, 2 * k] = half_p
    out[lay.agg, 2 * k] = -lam
    out[lay.nz, 2 * k] = -lam
    out[lay.aggo, 2 * k + 1] = lam
    out[lay.pos, 2 * k + 1] = -half_p
    out *= scale

    params = {
        "embed": {"tokens": emb},
        "layers": layers,
        "final_norm": {"scale": np.ones(dm, f64)},
        "unembed": out,
    }
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params)
    return params, cfg


# ----------------------------------------------------------------------------- running it


def _bucket(n: int) -> int:
    return max(16, 1 << (int(n) - 1).bit_length())


_APPLY_CACHE: dict = {}
_BUILD_CACHE: dict = {}


def built_recognizer(k: int, *, max_depth: int = _DEFAULT_DEPTH, max_len: int = _DEFAULT_LEN,
                     pad_k: int | None = None) -> tuple[dict, TransformerConfig]:
    """:func:`build_recognizer`, cached per arguments (building writes the weights in NumPy)."""
    key = (k, max_depth, max_len, pad_k)
    if key not in _BUILD_CACHE:
        _BUILD_CACHE[key] = build_recognizer(k, max_depth=max_depth, max_len=max_len, pad_k=pad_k)
    return _BUILD_CACHE[key]


def _apply_fn(cfg: TransformerConfig):
    """One jitted apply per config: with ``pad_k`` every k shares the config, hence the
    compiled programs (one per token shape)."""
    if cfg not in _APPLY_CACHE:
        _APPLY_CACHE[cfg] = jax.jit(lambda p, tok: apply_transformer(p, tok, cfg))
    return _APPLY_CACHE[cfg]


def run_construction(symbols: Sequence[np.ndarray], k: int, *, max_depth: int = _DEFAULT_DEPTH,
                     max_len: int | None = None, batch_tokens: int = 2 ** 15,
                     buckets: Sequence[int] | None = None, pad_k: int | None = None,
                     fixed_rows: bool = False) -> list[np.ndarray]:
    """Run the constructed transformer on strings given as symbol arrays.

    Args:
        symbols: strings as symbol arrays (see :func:`jaxml.tasks.dyck.to_symbols`).
        k: number of bracket pairs.
        max_depth: depth bound D of the construction.
        max_len: length bound (default: the smallest power of two >= the longest string, at
            least 4096).
        batch_tokens: about how many tokens go through one call (memory bound).
        buckets: padded sequence lengths (BOS included) to group strings into; each is one
            compiled shape. Default: powers of two (at least 16).
        pad_k: build the weights laid out for ``pad_k >= k`` types (see
            :func:`build_recognizer`), so that calls for different k reuse the compiled programs.
        fixed_rows: every call of a bucket gets ``batch_tokens // bucket`` rows (the last one
            padded), so each bucket is exactly one compiled shape; otherwise a call's rows are
            padded to a power of two (at least 8), which wastes less work on small inputs.

    Returns:
        One float32 logit array (n + 1, 2k + 2) per string: row i after i symbols.
    """
    longest = max((len(s) for s in symbols), default=0)
    if max_len is None:
        max_len = max(_DEFAULT_LEN, _bucket(longest + 1))
    if longest > max_len:
        raise ValueError(f"a string has length {longest} > max_len={max_len}; raise max_len")
    params, cfg = built_recognizer(k, max_depth=max_depth, max_len=max_len, pad_k=pad_k)
    fn = _apply_fn(cfg)
    pad = dyck_tasks.pad_token(k)
    if buckets is not None:
        edges = sorted(int(b) for b in buckets)
        if longest + 1 > edges[-1]:
            raise ValueError(f"a string of length {longest} (+ BOS) exceeds the largest bucket {edges[-1]}")

        def bucket(n: int) -> int:
            return next(b for b in edges if b >= n)
    else:
        bucket = _bucket
    order = np.argsort([len(s) for s in symbols], kind="stable")
    results: list[np.ndarray | None] = [None] * len(symbols)
    i = 0
    while i < len(order):
        t = bucket(len(symbols[order[i]]) + 1)
        # group strings of the same bucket
        j = i
        while j < len(order) and bucket(len(symbols[order[j]]) + 1) == t:
            j += 1
        per_call = max(1, batch_tokens // t)
        for s in range(i, j, per_call):
            idx = order[s: min(j, s + per_call)]
            if fixed_rows:
                size = per_call
            else:  # pad the batch to a power of two (at least 8): few distinct shapes to compile
                size = min(max(8, 1 << (len(idx) - 1).bit_length()), max(per_call, 1))
                size = max(size, len(idx))
            tok = np.full((size, t), pad, np.int32)
            for r, ix in enumerate(idx):
                tok[r, : len(symbols[ix]) + 1] = dyck_tasks.encode(symbols[ix], k)
            logits = np.asarray(fn(params, jnp.asarray(tok)))
            for r, ix in enumerate(idx):
                results[ix] = logits[r, : len(symbols[ix]) + 1, : 2 * k + 2]
        i = j
    return results  # type: ignore[return-value]


def _prepare(strings: Sequence[str | Sequence[int]], k: int) -> list[np.ndarray]:
    return [dyck_tasks.to_symbols(s, k) for s in strings]


def legal_next_tokens(strings: Sequence[str | Sequence[int]], k: int, *,
                      max_depth: int = _DEFAULT_DEPTH) -> list[np.ndarray]:
    """Legal next-token sets computed by the constructed transformer (the generator).

    Args:
        strings: character strings (``k <= 4``) or integer symbol sequences.
        k: number of bracket pairs.
        max_depth: depth bound of the construction (prefixes deeper than it get empty sets).

    Returns:
        Per string a bool array (n + 1, 2k + 1) laid out like
        :func:`jaxml.tasks.dyck.next_token_sets`: ``[open_*, close_*, END]`` after each prefix.
    """
    logits = run_construction(_prepare(strings, k), k, max_depth=max_depth)
    return [lg[:, : 2 * k + 1] > 0 for lg in logits]


def recognize(strings: Sequence[str | Sequence[int]], k: int, *,
              max_depth: int = _DEFAULT_DEPTH) -> list[bool]:
    """Decide membership in Dyck_k by running the constructed transformer (no stack).

    A string is accepted iff the END logit at its last position is positive. Strings whose
    prefixes exceed ``max_depth`` raise the transformer's OVERFLOW output; they are rerun with
    a doubled depth bound until no overflow is reported or the bound reaches half the string
    length plus one (beyond which no valid string goes, so the rejection is then correct).

    Args:
        strings: character strings (``k <= 4``) or integer symbol sequences.
        k: number of bracket pairs.
        max_depth: initial depth bound of the construction.

    Returns:
        One bool per string.

    Raises:
        ValueError: for a character outside the alphabet (naming it and its position), or
            ``k > 4`` with character strings.
    """
    syms = _prepare(strings, k)
    out = [False] * len(syms)
    todo = list(range(len(syms)))
    depth = max_depth
    while todo:
        logits = run_construction([syms[i] for i in todo], k, max_depth=depth)
        again = []
        for i, lg in zip(todo, logits):
            out[i] = bool(lg[-1, 2 * k] > 0)
            if lg[-1, 2 * k + 1] > 0 and depth < len(syms[i]) // 2 + 1:
                again.append(i)
        todo = again
        depth *= 2
    return out
