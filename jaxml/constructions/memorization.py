"""Hand-built hardmax transformer that memorises a data set with O~(sqrt(N)) parameters.

Reconstruction of the upper-bound construction of Kajitsuka & Sato, "On the Optimal Memorization
Capacity of Transformers", ICLR 2025 (arXiv 2409.17677), Theorems 4.1 (next-token, ``O~(sqrt N)``)
and 5.1 (seq2seq, ``O~(sqrt(nN))``). The proof has two stages, and so does this code:

1. **Contextual id (self-attention as averaging).** Token ``x_i`` at position ``i`` is embedded as
   ``e_i = x_i + V i``; a token-wise ReLU FFN with ``2n - 1`` hidden units maps it to
   ``s_i = w_i x_i`` (a piecewise-linear function of ``e_i`` with one piece per position); one
   hardmax self-attention head with zero query/key weights ties all scores, so it averages the
   values, and the output weight ``n`` turns the average into the integer id

       z(X) = sum_i w_i x_i,     w_i ~ Uniform{0, ..., R-1},  R = 2^ceil(log2 N^2).

   A pair of distinct sequences collides with probability <= 1/R, so ``z`` is injective on the
   data set with probability >= 1/2; :func:`build_memorizer` redraws ``w`` until it is (the
   contextual-mapping step of the proof; the weights do not depend on N beyond the bit width).
   In the seq2seq setting attention is bidirectional and the token-level key is
   ``kappa = n z + i``, injective over (sequence, position) pairs.
2. **Id-to-label FFN (the bottleneck).** The ``M`` keys (``M = N`` or ``nN``) are sorted and cut
   into ``g = ceil(M / s)`` groups of ``s`` consecutive keys (Vardi, Yehudai & Shamir 2022,
   arXiv 2110.03187, Thm 3.1, the technique the paper reuses). One FFN layer with ``2(g-1)``
   hidden units computes, by exact integer step functions ``[u >= 0] = relu(u+1) - relu(u)``, the
   group's start key and two big integers ``U`` and ``W`` that pack the ``s`` key offsets
   (``b_o`` bits each) and labels (``b_y`` bits each). Then ``s`` rounds of *bit extraction*
   (width-2 FFN blocks on the residual stream, one bit per block) read the offsets and labels
   back; a hat unit ``relu(d+1) - 2 relu(d) + relu(d-1) = [d == 0]`` tests the key against each
   offset and gates the label into the output register.

Parameter count: embeddings and attention cost ``O(D (V + n))`` (independent of N); the label
map costs ``a (g - 1) + s c (b_o + 2 b_y)`` for constants ``a, c``; choosing ``s ~ sqrt(M)``
gives ``O(sqrt(M log M))``: slope 1/2 in N on a log-log plot, up to the log factor.
:func:`parameter_count` is that closed form, minimised over ``s``, and equals the size of the
parameters :func:`build_memorizer` writes (dense matrices over a residual stream of
``D = 11`` named registers).

Exactness and bit complexity. Each bit-extraction parameter holds ``O~(sqrt M)`` bits (the paper's
and Vardi et al.'s constructions need this precision; it is why parameter count and bit count
differ). Float64 cannot hold them, so parameters are NumPy ``object`` arrays of Python integers
and :func:`apply_memorizer` evaluates the network in exact integer arithmetic (hardmax averages
are exact rationals that the output weight ``n`` makes integral). The architecture is the
paper's: embeddings, one token-wise FFN, one hardmax attention layer, then residual FFN blocks of
varying width; we place the token-wise FFN before the attention as the proof does.

Departures (documented in docs/memorization.md): the paper states the contextual map for
``(r, delta)``-separated real vectors via a projection; for tokens we use the random integer
position weights ``w_i`` above, an equivalent injective linear form on the finite data set.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from typing import Any

import jax
import numpy as np

from jaxml.tasks.memorize import MemorizeDataset, Setting, numpy_rng

__all__ = [
    "REGISTERS",
    "MemorizerSpec",
    "hash_range",
    "key_bound",
    "parameter_count",
    "optimal_group_size",
    "build_memorizer",
    "apply_memorizer",
    "count_parameters",
]

#: Residual-stream registers (one coordinate each), in order.
REGISTERS = ("e", "p", "s", "z", "start", "U", "W", "c", "ind", "bit", "out")
_R = {name: i for i, name in enumerate(REGISTERS)}
_D = len(REGISTERS)


@dataclasses.dataclass(frozen=True)
class MemorizerSpec:
    """Static description of a built memoriser (what :func:`apply_memorizer` needs).

    Attributes:
      setting: next-token or seq2seq.
      vocab_size: V.
      seq_len: n.
      num_classes: C.
      num_keys: M, the number of labelled keys (N or n N).
      group_size: s.
      offset_bits: b_o.
      label_bits: b_y.
      hash_range: R, the position weights lie in ``[0, R)``.
      causal: attention mask (next-token: causal decoder; seq2seq: bidirectional).
    """

    setting: Setting
    vocab_size: int
    seq_len: int
    num_classes: int
    num_keys: int
    group_size: int
    offset_bits: int
    label_bits: int
    hash_range: int
    causal: bool


def _bitlen(x: int) -> int:
    return max(int(x).bit_length(), 1)


def hash_range(num_sequences: int) -> int:
    """R = 2^ceil(log2 N^2): the range of the random position weights (collision prob <= 1/2)."""
    return 1 << max(int(num_sequences) ** 2 - 1, 1).bit_length()


def key_bound(num_sequences: int, seq_len: int, vocab_size: int, setting: Setting) -> int:
    """Exclusive upper bound K on the keys: ``z < n (V-1)(R-1) + 1`` and ``kappa = n z + i < n K_z``."""
    bound_z = seq_len * (vocab_size - 1) * (hash_range(num_sequences) - 1) + 1
    return bound_z if setting is Setting.NEXT_TOKEN else seq_len * bound_z


def _block_size(hidden: int) -> int:
    """Dense FFN block over the D registers: w1 (D,h) + b1 (h) + w2 (h,D) + b2 (D)."""
    return 2 * _D * hidden + hidden + _D


def _counts(num_sequences: int, seq_len: int, vocab_size: int, num_classes: int, setting: Setting):
    num_keys = num_sequences if setting is Setting.NEXT_TOKEN else seq_len * num_sequences
    offset_bits = _bitlen(key_bound(num_sequences, seq_len, vocab_size, setting) - 1)
    label_bits = _bitlen(num_classes - 1)
    fixed = (vocab_size * _D + seq_len * _D            # token and position embeddings
             + _block_size(2 * seq_len - 1)            # token-wise FFN s_i = w_i x_i
             + 4 * _D                                  # hardmax head: wq, wk, wv (D,1), wo (1,D)
             + _D)                                     # readout
    per_round = (offset_bits * _block_size(2) + _block_size(4)
                 + label_bits * 2 * _block_size(2) + _block_size(1))
    return num_keys, offset_bits, label_bits, fixed, per_round


def _label_map_size(num_keys: int, group_size: np.ndarray, per_round: int) -> np.ndarray:
    groups = -(-num_keys // group_size)
    return _block_size(2 * (groups - 1)) + group_size * per_round


def optimal_group_size(num_sequences: int, seq_len: int, vocab_size: int, num_classes: int,
                       setting: Setting = Setting.NEXT_TOKEN) -> int:
    """The group size s minimising :func:`parameter_count` (about ``sqrt(2 D M / per_round)``)."""
    num_keys, _, _, _, per_round = _counts(num_sequences, seq_len, vocab_size, num_classes, setting)
    sizes = np.arange(1, num_keys + 1, dtype=np.int64)
    return int(sizes[np.argmin(_label_map_size(num_keys, sizes, per_round))])


def parameter_count(num_sequences: int, seq_len: int, vocab_size: int, num_classes: int,
                    setting: Setting = Setting.NEXT_TOKEN) -> int:
    """Parameters of the construction for N sequences of length n (closed form).

    ``P = D (V + n) + B(2n-1) + 4D + D + B(2(g-1)) + s [b_o B(2) + B(4) + 2 b_y B(2) + B(1)]`` with
    ``B(h) = 2Dh + h + D`` a dense FFN block of width h on D = 11 registers, ``g = ceil(M/s)``,
    ``M = N`` (next-token) or ``nN`` (seq2seq), ``b_o = bitlen(K-1)`` (:func:`key_bound`),
    ``b_y = bitlen(C-1)``, minimised over s. Asymptotically ``Theta(sqrt(M log(nVM)))``, the
    ``O~(sqrt N)`` / ``O~(sqrt(nN))`` of arXiv 2409.17677 Theorems 4.1 and 5.1.

    Args:
      num_sequences: N >= 1.
      seq_len: n >= 1.
      vocab_size: V >= 2.
      num_classes: C >= 2.
      setting: next-token or seq2seq.

    Returns:
      The exact number of scalars :func:`build_memorizer` writes for such a data set.
    """
    for name, value, low in (("num_sequences", num_sequences, 1), ("seq_len", seq_len, 1),
                             ("vocab_size", vocab_size, 2), ("num_classes", num_classes, 2)):
        if int(value) < low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
    num_keys, _, _, fixed, per_round = _counts(num_sequences, seq_len, vocab_size, num_classes, setting)
    size = optimal_group_size(num_sequences, seq_len, vocab_size, num_classes, setting)
    return int(fixed + _label_map_size(num_keys, np.int64(size), per_round))


def _zeros(*shape: int) -> np.ndarray:
    out = np.empty(shape, dtype=object)
    out.fill(0)
    return out


class _Block:
    """Builder of one residual FFN block: ``h <- h + W2 relu(W1 h + b1) + b2``."""

    def __init__(self) -> None:
        self.units: list[tuple[dict[str, int], int, dict[str, int]]] = []
        self.bias: dict[str, int] = {}

    def unit(self, reads: dict[str, int], bias: int, writes: dict[str, int]) -> None:
        self.units.append((reads, int(bias), writes))

    def params(self) -> dict[str, np.ndarray]:
        h = len(self.units)
        w1, b1, w2, b2 = _zeros(_D, h), _zeros(h), _zeros(h, _D), _zeros(_D)
        for u, (reads, bias, writes) in enumerate(self.units):
            for name, coef in reads.items():
                w1[_R[name], u] = int(coef)
            b1[u] = bias
            for name, coef in writes.items():
                w2[u, _R[name]] = int(coef)
        for name, value in self.bias.items():
            b2[_R[name]] = int(value)
        return {"w1": w1, "b1": b1, "w2": w2, "b2": b2}


def _step_units(block: _Block, reads: dict[str, int], threshold: int, writes: dict[str, int]) -> None:
    """Add ``writes * [reads . h >= threshold]`` (exact on integers) as two ReLU units."""
    block.unit(reads, 1 - threshold, dict(writes))
    block.unit(reads, -threshold, {k: -v for k, v in writes.items()})


def _context_ffn(weights: list[int], vocab_size: int) -> _Block:
    """Token-wise FFN: ``s = w_i (e - V i)`` for ``e = x + V i`` (piecewise linear, one piece per i)."""
    block = _Block()
    block.unit({"e": 1}, 0, {"s": weights[0]})
    for k in range(1, len(weights)):
        prev, cur = weights[k - 1], weights[k]
        # slope change (cur - prev) at e = Vk and a jump of -V prev: relu(e-Vk) and relu(e-Vk+1)
        block.unit({"e": 1}, -vocab_size * k, {"s": cur - prev + vocab_size * prev})
        block.unit({"e": 1}, 1 - vocab_size * k, {"s": -vocab_size * prev})
    return block


def _keys(tokens: np.ndarray, weights: list[int], setting: Setting) -> list[int]:
    n = tokens.shape[1]
    z = [sum(w * int(x) for w, x in zip(weights, row)) for row in tokens]
    if setting is Setting.NEXT_TOKEN:
        return z
    return [n * zk + i for zk in z for i in range(n)]


def build_memorizer(key: jax.Array, dataset: MemorizeDataset, *, max_tries: int = 64
                    ) -> tuple[dict[str, Any], MemorizerSpec]:
    """Write the weights of a hardmax transformer that memorises ``dataset`` exactly.

    Args:
      key: PRNG key for the random position weights of the contextual id.
      dataset: distinct sequences with labels (:mod:`jaxml.tasks.memorize`).
      max_tries: redraws of the position weights until the id is injective (each succeeds with
        probability >= 1/2).

    Returns:
      ``(params, spec)``. ``params`` is a nested dict of NumPy object arrays of Python ints:
      ``embed/{token (V,D), pos (n,D)}``, ``context_ffn``, ``attn/{wq, wk, wv (D,1), wo (1,D)}``,
      ``label_ffn`` (a list of FFN blocks ``{w1, b1, w2, b2}``) and ``readout (D,)``.

    Raises:
      ValueError: repeated input sequences, labels out of range, or no injective id found.
    """
    tokens = np.asarray(dataset.tokens)
    labels = np.asarray(dataset.labels)
    num, n = tokens.shape
    V, C, setting = int(dataset.vocab_size), int(dataset.num_classes), dataset.setting
    if np.unique(tokens, axis=0).shape[0] != num:
        raise ValueError("the data set repeats an input sequence, so it is not (r, delta)-separated and a "
                         "repeated sequence could carry two labels; deduplicate it with "
                         "jaxml.tasks.memorize.deduplicate")
    if tokens.min() < 0 or tokens.max() >= V:
        raise ValueError(f"tokens must lie in [0, {V}), got range [{tokens.min()}, {tokens.max()}]")
    if labels.min() < 0 or labels.max() >= C:
        raise ValueError(f"labels must lie in [0, {C}), got range [{labels.min()}, {labels.max()}]")
    num_keys, offset_bits, label_bits, _, _ = _counts(num, n, V, C, setting)
    R = hash_range(num)
    flat_labels = [int(y) for y in labels.reshape(-1)]
    rng = numpy_rng(key)
    for _ in range(max_tries):
        weights = [int(w) for w in rng.integers(0, R, n, dtype=np.uint64)] if R < 2**63 else \
            [int.from_bytes(rng.bytes(R.bit_length() // 8 + 1), "little") % R for _ in range(n)]
        keys = _keys(tokens, weights, setting)
        if len(set(keys)) == len(keys):
            break
    else:
        raise ValueError(f"no injective contextual id in {max_tries} draws of the position weights; "
                         "raise max_tries")

    group_size = optimal_group_size(num, n, V, C, setting)
    order = sorted(range(num_keys), key=lambda k: keys[k])
    groups = [order[j:j + group_size] for j in range(0, num_keys, group_size)]
    starts, packed_u, packed_w = [], [], []
    for members in groups:
        start = keys[members[0]]
        offsets = [keys[m] - start for m in members] + [0] * (group_size - len(members))
        ys = [flat_labels[m] for m in members] + [0] * (group_size - len(members))  # padding adds label 0
        U = W = 0
        for o, y in zip(offsets, ys):
            U = (U << offset_bits) | o
            W = (W << label_bits) | y
        starts.append(start)
        packed_u.append(U)
        packed_w.append(W)

    key_reads = {"z": 1} if setting is Setting.NEXT_TOKEN else {"z": n, "p": 1}
    blocks: list[_Block] = []
    group = _Block()
    group.bias = {"start": starts[0], "U": packed_u[0], "W": packed_w[0]}
    for j in range(1, len(groups)):
        _step_units(group, key_reads, starts[j], {"start": starts[j] - starts[j - 1],
                                                  "U": packed_u[j] - packed_u[j - 1],
                                                  "W": packed_w[j] - packed_w[j - 1]})
    blocks.append(group)
    for t in range(group_size):
        for m in reversed(range(offset_bits)):               # read offset o_t into c, top bit first
            blk = _Block()
            _step_units(blk, {"U": 1}, 1 << (offset_bits * (group_size - 1 - t) + m), {"U": -(1 << (offset_bits * (group_size - 1 - t) + m)), "c": 1 << m})
            blocks.append(blk)
        blk = _Block()                                        # ind = [key - start - c == 0]; c <- 0
        d_reads = {**key_reads, "start": -1, "c": -1}
        blk.unit(d_reads, 1, {"ind": 1})
        blk.unit(d_reads, 0, {"ind": -2})
        blk.unit(d_reads, -1, {"ind": 1})
        blk.unit({"c": 1}, 0, {"c": -1})
        blocks.append(blk)
        for m in reversed(range(label_bits)):                 # read label bit; out += 2^m (bit AND ind)
            blk = _Block()
            shift = label_bits * (group_size - 1 - t) + m
            _step_units(blk, {"W": 1}, 1 << shift, {"W": -(1 << shift), "bit": 1})
            blocks.append(blk)
            blk = _Block()
            blk.unit({"bit": 1, "ind": 1}, -1, {"out": 1 << m})
            blk.unit({"bit": 1}, 0, {"bit": -1})
            blocks.append(blk)
        blk = _Block()                                        # ind <- 0
        blk.unit({"ind": 1}, 0, {"ind": -1})
        blocks.append(blk)

    token = _zeros(V, _D)
    for v in range(V):
        token[v, _R["e"]] = v
    pos = _zeros(n, _D)
    for i in range(n):
        pos[i, _R["e"]] = V * i
        pos[i, _R["p"]] = i
    wq, wk, wv, wo = _zeros(_D, 1), _zeros(_D, 1), _zeros(_D, 1), _zeros(1, _D)
    wv[_R["s"], 0] = 1
    wo[0, _R["z"]] = n   # hardmax average of s times n = sum_i w_i x_i
    readout = _zeros(_D)
    readout[_R["out"]] = 1
    params = {
        "embed": {"token": token, "pos": pos},
        "context_ffn": _context_ffn(weights, V).params(),
        "attn": {"wq": wq, "wk": wk, "wv": wv, "wo": wo},
        "label_ffn": [b.params() for b in blocks],
        "readout": readout,
    }
    spec = MemorizerSpec(setting=setting, vocab_size=V, seq_len=n, num_classes=C, num_keys=num_keys,
                         group_size=group_size, offset_bits=offset_bits, label_bits=label_bits,
                         hash_range=R, causal=setting is Setting.NEXT_TOKEN)
    return params, spec


def count_parameters(params: dict[str, Any]) -> int:
    """Number of scalars in a parameter pytree (object or numeric leaves)."""
    return int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(params)))


def _relu(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, 0)


def _ffn(h: list[np.ndarray], block: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Exact residual FFN over register columns (sparse in the weights, vectorised over tokens)."""
    w1, b1, w2, b2 = block["w1"], block["b1"], block["w2"], block["b2"]
    out = list(h)
    for u in range(w1.shape[1]):
        pre = b1[u]
        for r in np.flatnonzero(w1[:, u] != 0):
            pre = pre + w1[r, u] * h[r]
        act = _relu(pre)
        for r in np.flatnonzero(w2[u] != 0):
            out[r] = out[r] + w2[u, r] * act
    for r in np.flatnonzero(b2 != 0):
        out[r] = out[r] + b2[r]
    return out


def _integral(x: Any) -> Any:
    return int(x) if isinstance(x, Fraction) and x.denominator == 1 else x


def apply_memorizer(params: dict[str, Any], tokens: np.ndarray, spec: MemorizerSpec) -> np.ndarray:
    """Run the memoriser in exact arithmetic and return its predicted labels.

    The network is ``h = E[x] + P``; ``h += FFN_0(h)`` token-wise; ``h += hardmax-attention(h)``
    (ties split uniformly over the argmax set, causal in the next-token setting); then the label
    FFN blocks; the prediction is ``readout . h``. Only the positions that are read are computed
    after the attention: the last one (next-token) or all (seq2seq).

    Args:
      params: from :func:`build_memorizer`.
      tokens: ``(B, n)`` integer sequences.
      spec: from :func:`build_memorizer`.

    Returns:
      int64 labels ``(B,)`` (next-token) or ``(B, n)`` (seq2seq).
    """
    tokens = np.asarray(tokens)
    if tokens.ndim != 2 or tokens.shape[1] != spec.seq_len:
        raise ValueError(f"tokens must have shape (B, {spec.seq_len}), got {tokens.shape}")
    if tokens.min() < 0 or tokens.max() >= spec.vocab_size:
        raise ValueError(f"tokens must lie in [0, {spec.vocab_size}), got [{tokens.min()}, {tokens.max()}]")
    batch, n = tokens.shape
    emb = params["embed"]["token"][tokens] + params["embed"]["pos"][None, :, :]        # (B, n, D)
    cols = _ffn([emb[:, :, r].reshape(-1) for r in range(_D)], params["context_ffn"])
    h = np.stack(cols, axis=-1).reshape(batch, n, _D)
    attn = params["attn"]
    q, k, v = h @ attn["wq"], h @ attn["wk"], h @ attn["wv"]                            # (B, n, 1)
    scores = q @ np.swapaxes(k, 1, 2)                                                   # (B, n, n)
    queries = [n - 1] if spec.setting is Setting.NEXT_TOKEN else list(range(n))
    rows = []
    for i in queries:
        visible = i + 1 if spec.causal else n
        s_i = scores[:, i, :visible]
        best = np.array([max(row) for row in s_i], dtype=object)[:, None]
        tie = s_i == best                                                               # hardmax ties
        avg = np.array([Fraction(sum(v[b, :visible, 0][tie[b]]), int(tie[b].sum())) for b in range(batch)],
                       dtype=object)
        upd = np.array([[_integral(a * w) for w in attn["wo"][0]] for a in avg], dtype=object)
        rows.append(h[:, i, :] + upd)
    h_out = np.stack(rows, axis=1)                                                      # (B, Q, D)
    cols = [h_out[:, :, r].reshape(-1) for r in range(_D)]
    for block in params["label_ffn"]:
        cols = _ffn(cols, block)
    pred = sum(params["readout"][r] * cols[r] for r in np.flatnonzero(params["readout"] != 0))
    pred = np.asarray([int(p) for p in np.asarray(pred).reshape(-1)], dtype=np.int64)
    return pred.reshape(batch) if spec.setting is Setting.NEXT_TOKEN else pred.reshape(batch, n)
