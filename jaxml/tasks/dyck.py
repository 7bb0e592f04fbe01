"""Dyck and Shuffle-Dyck languages: alphabets, samplers, near misses, per-prefix labels.

Dyck_k is the language of well-nested strings over ``k`` bracket pairs; Shuffle-Dyck_k is the
language of strings whose restriction to each pair is a Dyck_1 word (the pairs may interleave,
``([)]`` is in Shuffle-Dyck_2 but not in Dyck_2). Both are the test bed of Hayakawa & Sato,
"Theoretical Analysis of Hierarchical Language Recognition and Generation by Transformers
without Positional Encoding" (ACL 2025, arXiv:2410.12413).

Representations (``k`` pairs):

* **characters** (``k <= 4``): the pairs ``()``, ``[]``, ``{}``, ``<>``.
* **symbols**: integers, ``t`` is the opening bracket of type ``t`` and ``k + t`` its closing
  bracket (``0 <= t < k``); padded arrays use :data:`PAD_SYMBOL` (-1) after the end.
* **tokens** (model input): ``BOS = 0``, opening ``1 + t``, closing ``1 + k + t``, padding
  ``2k + 1``; :func:`vocab_size` is ``2k + 2``.

Labels follow the paper's generation task: after each prefix (the empty prefix included) the
legal next-token set over ``2k + 1`` outcomes ``[open_0..open_{k-1}, close_0..close_{k-1}, END]``.
A prefix that can no longer be completed has the empty set.

The NumPy functions (``is_valid``, ``next_token_sets``, ...) are the reference stack algorithms;
the JAX functions (``sample``, ``sample_batch``, ``near_miss``, ``next_token_labels``) are pure,
keyed and jittable so that they run inside the training loop's ``lax.scan``.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "BRACKETS",
    "BOS",
    "PAD_SYMBOL",
    "DyckKind",
    "EditKind",
    "DyckBatch",
    "alphabet",
    "vocab_size",
    "pad_token",
    "num_labels",
    "to_symbols",
    "to_string",
    "encode",
    "decode",
    "depth_profile",
    "max_depth",
    "is_valid",
    "prefix_labels",
    "next_token_sets",
    "next_token_sets_batch",
    "completion_log_counts",
    "sample",
    "sample_batch",
    "near_miss",
    "next_token_labels",
    "tokens_from_symbols",
]

BRACKETS: tuple[str, ...] = ("()", "[]", "{}", "<>")
BOS = 0
PAD_SYMBOL = -1


class DyckKind(enum.Enum):
    """Which bracket language.

    DYCK: well-nested (a closing bracket must match the most recent unmatched opening one).
    SHUFFLE: each pair's subsequence is balanced on its own; pairs may cross. Its "depth" is the
    total number of unmatched opening brackets.
    """

    DYCK = "dyck"
    SHUFFLE = "shuffle"


class EditKind(enum.IntEnum):
    """Single edits that turn a valid string into a near miss (each always invalid)."""

    SWAP_TYPE = 0  # change the pair type of one bracket (needs k >= 2)
    DROP = 1  # delete one bracket (odd length)
    INSERT = 2  # insert one bracket (odd length)
    FLIP = 3  # turn one opening bracket into the closing one of its type or back (net +-2)


class DyckBatch(NamedTuple):
    """A padded batch: ``symbols`` (B, max_len) int32 padded with -1, ``lengths`` (B,) int32."""

    symbols: jax.Array
    lengths: jax.Array


# ----------------------------------------------------------------------------- alphabet, codes


def _check_k(k: int) -> None:
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k (number of bracket pairs) must be an integer >= 1, got {k!r}")


def alphabet(k: int) -> str:
    """The character alphabet ``"()[]..."`` of Dyck_k for ``k <= 4``.

    Raises:
        ValueError: when ``k`` exceeds the four character pairs (use integer symbols instead).
    """
    _check_k(k)
    if k > len(BRACKETS):
        raise ValueError(
            f"k={k} exceeds the {len(BRACKETS)} character bracket pairs {''.join(BRACKETS)!r}; "
            "use integer symbols (t opens pair t, k + t closes it) instead of a character string")
    return "".join(BRACKETS[:k])


def vocab_size(k: int) -> int:
    """Model vocabulary: BOS, k opening, k closing brackets and one padding token (2k + 2)."""
    _check_k(k)
    return 2 * k + 2


def pad_token(k: int) -> int:
    """The padding token id ``2k + 1`` (never fed to a position that is read)."""
    return 2 * k + 1


def num_labels(k: int) -> int:
    """Size of the next-token label vector: k opening, k closing brackets and END (2k + 1)."""
    return 2 * k + 1


def to_symbols(s: str | Sequence[int] | np.ndarray, k: int) -> np.ndarray:
    """Convert a character string (or an integer sequence, checked) to symbols.

    Args:
        s: characters from :func:`alphabet` or integers in ``[0, 2k)``.
        k: number of bracket pairs.

    Returns:
        int32 array of symbols: ``t`` opens pair ``t``, ``k + t`` closes it.

    Raises:
        ValueError: naming the first character (and its position) outside the alphabet, or
            the first integer out of range.
    """
    _check_k(k)
    if isinstance(s, str):
        chars = alphabet(k)
        lookup = {c: i for i, c in enumerate(chars[0::2])}
        lookup.update({c: k + i for i, c in enumerate(chars[1::2])})
        out = np.empty(len(s), dtype=np.int32)
        for pos, c in enumerate(s):
            if c not in lookup:
                raise ValueError(
                    f"character {c!r} at position {pos} is not in the Dyck_{k} alphabet {chars!r}")
            out[pos] = lookup[c]
        return out
    arr = np.asarray(s, dtype=np.int64).reshape(-1)
    bad = np.nonzero((arr < 0) | (arr >= 2 * k))[0]
    if bad.size:
        pos = int(bad[0])
        raise ValueError(
            f"symbol {int(arr[pos])} at position {pos} is outside [0, {2 * k}) for k={k}")
    return arr.astype(np.int32)


def to_string(symbols: Sequence[int] | np.ndarray, k: int) -> str:
    """Symbols to characters (``k <= 4``); padding symbols (-1) end the string."""
    chars = alphabet(k)
    out = []
    for x in np.asarray(symbols).reshape(-1):
        x = int(x)
        if x == PAD_SYMBOL:
            break
        if not 0 <= x < 2 * k:
            raise ValueError(f"symbol {x} is outside [0, {2 * k}) for k={k}")
        out.append(chars[2 * x] if x < k else chars[2 * (x - k) + 1])
    return "".join(out)


def encode(s: str | Sequence[int] | np.ndarray, k: int, *, bos: bool = True) -> np.ndarray:
    """Characters or symbols to model tokens, with a leading BOS token unless ``bos=False``."""
    sym = to_symbols(s, k)
    tok = sym + 1
    if bos:
        tok = np.concatenate([np.array([BOS], np.int32), tok])
    return tok.astype(np.int32)


def decode(tokens: Sequence[int] | np.ndarray, k: int) -> str:
    """Model tokens back to characters; BOS is skipped and padding ends the string."""
    out = []
    for x in np.asarray(tokens).reshape(-1):
        x = int(x)
        if x == BOS:
            continue
        if x == pad_token(k):
            break
        if not 1 <= x <= 2 * k:
            raise ValueError(f"token {x} is not a bracket token of Dyck_{k} (1..{2 * k})")
        out.append(x - 1)
    return to_string(np.array(out, np.int32), k)


def tokens_from_symbols(symbols: jax.Array, k: int, *, bos: bool = True) -> jax.Array:
    """Padded symbols (..., L) to tokens (..., L + bos): bracket ``x -> x + 1``, -1 -> padding."""
    tok = jnp.where(symbols == PAD_SYMBOL, pad_token(k), symbols + 1).astype(jnp.int32)
    if bos:
        lead = jnp.full(tok.shape[:-1] + (1,), BOS, jnp.int32)
        tok = jnp.concatenate([lead, tok], axis=-1)
    return tok


# ----------------------------------------------------------------------------- stack references


def _as_symbols(x: str | Sequence[int] | np.ndarray, k: int) -> np.ndarray:
    sym = to_symbols(x, k) if isinstance(x, str) else np.asarray(x, np.int64).reshape(-1)
    if not isinstance(x, str):
        cut = np.nonzero(sym == PAD_SYMBOL)[0]
        sym = sym[: cut[0]] if cut.size else sym
        sym = to_symbols(sym, k)
    return sym


def depth_profile(x: str | Sequence[int] | np.ndarray, k: int) -> np.ndarray:
    """Net depth after each prefix (length n + 1, starts at 0): #opening - #closing brackets."""
    sym = _as_symbols(x, k)
    steps = np.where(sym < k, 1, -1)
    return np.concatenate([[0], np.cumsum(steps)]).astype(np.int64)


def max_depth(x: str | Sequence[int] | np.ndarray, k: int) -> int:
    """Largest net depth over all prefixes."""
    return int(depth_profile(x, k).max())


def _step_stack(s: int, k: int, kind: "DyckKind", stack: list[int], counts: list[int]) -> bool:
    """Apply symbol s (open < k <= close) to the stack (Dyck) / counters (Shuffle); False if illegal."""
    if s < k:
        stack.append(s)
        counts[s] += 1
        return True
    if kind is DyckKind.DYCK:
        if stack and stack[-1] == s - k:
            stack.pop()
            return True
        return False
    if counts[s - k] > 0:
        counts[s - k] -= 1
        return True
    return False


def prefix_labels(x: str | Sequence[int] | np.ndarray, k: int,
                  kind: DyckKind = DyckKind.DYCK) -> tuple[np.ndarray, np.ndarray]:
    """Stack algorithm: for each prefix length 0..n, is it a valid prefix, is it complete.

    A prefix is *valid* when some continuation puts it in the language; it is *complete* when it
    is itself in the language.
    """
    sym = _as_symbols(x, k)
    n = len(sym)
    valid = np.zeros(n + 1, bool)
    complete = np.zeros(n + 1, bool)
    stack: list[int] = []
    counts = [0] * k
    ok = True
    valid[0] = complete[0] = True
    for i, s in enumerate(sym):
        s = int(s)
        if ok:
            ok = _step_stack(s, k, kind, stack, counts)
        valid[i + 1] = ok
        depth = len(stack) if kind is DyckKind.DYCK else sum(counts)
        complete[i + 1] = ok and depth == 0
    return valid, complete


def is_valid(x: str | Sequence[int] | np.ndarray, k: int, kind: DyckKind = DyckKind.DYCK) -> bool:
    """Membership in Dyck_k (or Shuffle-Dyck_k) by the stack (counter) algorithm."""
    return bool(prefix_labels(x, k, kind)[1][-1])


def next_token_sets(x: str | Sequence[int] | np.ndarray, k: int,
                    kind: DyckKind = DyckKind.DYCK) -> np.ndarray:
    """Stack algorithm for the legal next-token sets after every prefix.

    Returns:
        bool array (n + 1, 2k + 1): row i is the set after the first i symbols, columns
        ``[open_0..open_{k-1}, close_0..close_{k-1}, END]``. Opening brackets are legal after any
        valid prefix; closing bracket t when it may close (Dyck: t is the innermost open type;
        Shuffle: an unmatched t exists); END when the prefix is complete. Rows after an invalid
        prefix are all False.
    """
    sym = _as_symbols(x, k)
    n = len(sym)
    out = np.zeros((n + 1, 2 * k + 1), bool)
    stack: list[int] = []
    counts = [0] * k
    ok = True
    for i in range(n + 1):
        if ok:
            out[i, :k] = True
            if kind is DyckKind.DYCK:
                if stack:
                    out[i, k + stack[-1]] = True
                else:
                    out[i, 2 * k] = True
            else:
                for t in range(k):
                    out[i, k + t] = counts[t] > 0
                out[i, 2 * k] = sum(counts) == 0
        if i == n or not ok:
            continue
        ok = _step_stack(int(sym[i]), k, kind, stack, counts)
    return out


def next_token_sets_batch(symbols: np.ndarray, lengths: np.ndarray, k: int,
                          kind: DyckKind = DyckKind.DYCK) -> np.ndarray:
    """The stack algorithm of :func:`next_token_sets` run on a padded batch at once.

    One pass over the positions with one stack (Dyck) or counter vector (Shuffle) per string,
    vectorised over the strings: the same algorithm, about a thousand times faster than a
    Python loop per string for thousands of strings of length ~1,000.

    Args:
        symbols: int (N, L) symbols, anything (e.g. :data:`PAD_SYMBOL`) after each length.
        lengths: int (N,) lengths, each in ``[0, L]``.
        k: number of bracket pairs.
        kind: DYCK or SHUFFLE.

    Returns:
        bool (N, L + 1, 2k + 1): ``out[j, :lengths[j] + 1]`` equals
        ``next_token_sets(symbols[j, :lengths[j]], k, kind)``; rows after the length are False.
        ``out[j, lengths[j], 2k]`` is membership of string j.

    Raises:
        ValueError: for a symbol outside ``[0, 2k)`` within a string's length.
    """
    _check_k(k)
    sym = np.asarray(symbols, np.int64)
    if sym.ndim != 2:
        raise ValueError(f"symbols must be a 2-D padded batch (N, L), got shape {sym.shape}")
    n, size = sym.shape
    lens = np.asarray(lengths, np.int64).reshape(-1)
    if lens.shape != (n,) or (lens < 0).any() or (lens > size).any():
        raise ValueError(f"lengths must be {n} integers in [0, {size}], got {lengths!r}")
    inside = np.arange(size)[None, :] < lens[:, None]
    bad = inside & ((sym < 0) | (sym >= 2 * k))
    if bad.any():
        j, pos = (int(v[0]) for v in np.nonzero(bad))
        raise ValueError(f"symbol {int(sym[j, pos])} at position {pos} of string {j} is outside "
                         f"[0, {2 * k}) for k={k}")
    rows = np.arange(n)
    out = np.zeros((n, size + 1, 2 * k + 1), bool)
    stack = np.zeros((n, size + 1), np.int64)  # Dyck: open types, innermost at depth - 1
    counts = np.zeros((n, k), np.int64)  # Shuffle: unmatched brackets per type
    depth = np.zeros(n, np.int64)
    ok = np.ones(n, bool)
    for i in range(size + 1):
        live = ok & (i <= lens)
        out[:, i, :k] = live[:, None]
        if kind is DyckKind.DYCK:
            top = stack[rows, np.maximum(depth - 1, 0)]
            closing = live & (depth > 0)
            out[rows[closing], i, k + top[closing]] = True
            out[:, i, 2 * k] = live & (depth == 0)
        else:
            out[:, i, k: 2 * k] = live[:, None] & (counts > 0)
            out[:, i, 2 * k] = live & (depth == 0)
        if i == size:
            break
        act = ok & (i < lens)
        s = sym[:, i]
        is_open = s < k
        t = np.clip(np.where(is_open, s, s - k), 0, k - 1)
        if kind is DyckKind.DYCK:
            match = (depth > 0) & (stack[rows, np.maximum(depth - 1, 0)] == t)
        else:
            match = counts[rows, t] > 0
        ok = np.where(act, is_open | match, ok)
        opened = act & is_open
        closed = act & ~is_open & match
        stack[rows[opened], depth[opened]] = t[opened]
        counts[rows[opened], t[opened]] += 1
        counts[rows[closed], t[closed]] -= 1
        depth += opened.astype(np.int64) - closed.astype(np.int64)
    return out


# ----------------------------------------------------------------------------- JAX samplers


@functools.lru_cache(maxsize=64)
def completion_log_counts(max_len: int, max_depth: int) -> np.ndarray:
    """log N(r, h): number of bracket *shapes* finishing at depth 0 from depth h in r steps.

    N(0, h) = [h = 0]; N(r, h) = [h < D] N(r-1, h+1) + [h > 0] N(r-1, h-1), depth capped at
    D = ``max_depth``. Sampling "open" with probability N(r-1, h+1) / N(r, h) draws a shape
    uniformly among all capped Dyck paths of the requested length (types are then uniform, so
    words are uniform over capped Dyck_k). Entries are float64 logs (-inf where N = 0), shape
    (max_len + 1, max_depth + 2); column D + 1 is a -inf sentinel.
    """
    if max_len < 0 or max_depth < 1:
        raise ValueError(f"need max_len >= 0 and max_depth >= 1, got {max_len}, {max_depth}")
    logn = np.full((max_len + 1, max_depth + 2), -np.inf)
    logn[0, 0] = 0.0
    for r in range(1, max_len + 1):
        up = logn[r - 1, 1: max_depth + 2]  # h + 1 for h = 0..D  (h = D hits the sentinel)
        down = np.concatenate([[-np.inf], logn[r - 1, 0: max_depth]])  # h - 1 for h = 0..D
        logn[r, : max_depth + 1] = np.logaddexp(up, down)
    return logn


def _check_sampler_args(k: int, length_cap: int, max_depth_: int) -> None:
    _check_k(k)
    if length_cap < 0:
        raise ValueError(f"max_len must be >= 0, got {length_cap}")
    if max_depth_ < 1:
        raise ValueError(f"max_depth must be >= 1, got {max_depth_}")


def sample(key: jax.Array, length: jax.Array | int, k: int, max_depth: int, *, max_len: int,
           kind: DyckKind = DyckKind.DYCK) -> jax.Array:
    """Draw one valid string of a given even length, padded to ``max_len``.

    The shape is a uniform random capped Dyck path (see :func:`completion_log_counts`). Dyck_k:
    each opening bracket gets a uniform type and each closing bracket closes the innermost open
    one, so the word is uniform over Dyck_k strings of that length and depth <= ``max_depth``.
    Shuffle-Dyck_k: "depth" is the total number of unmatched brackets; a closing step closes a
    type drawn in proportion to its unmatched count (a random walk, not uniform over words).

    Args:
        key: PRNG key.
        length: even length in ``[0, max_len]`` (may be traced). An odd length is rounded down.
        k: number of bracket pairs.
        max_depth: depth cap D.
        max_len: static size of the output.
        kind: DYCK or SHUFFLE.

    Returns:
        int32 (max_len,) symbols, -1 after the end.
    """
    _check_sampler_args(k, max_len, max_depth)
    logn = jnp.asarray(completion_log_counts(max_len, max_depth), jnp.float32)
    length = (jnp.asarray(length, jnp.int32) // 2) * 2
    # all randomness drawn up front: the scan body stays free of PRNG ops (fast to compile)
    u = jax.random.uniform(key, (max_len, 2))

    def step(carry, inp):
        depth, stack, counts = carry
        i, u_dir, u_type = inp
        active = i < length
        r = length - i  # steps remaining including this one
        lp_open = logn[jnp.maximum(r - 1, 0), depth + 1] - logn[jnp.maximum(r, 0), depth]
        go_open = jnp.log(u_dir) < lp_open
        t_open = jnp.minimum(jnp.floor(u_type * k).astype(jnp.int32), k - 1)
        if kind is DyckKind.DYCK:
            t_close = stack[jnp.maximum(depth - 1, 0)]
        else:  # inverse CDF of the unmatched counts
            cdf = jnp.cumsum(counts).astype(jnp.float32)
            t_close = jnp.minimum(jnp.sum(cdf <= u_type * jnp.maximum(cdf[-1], 1.0)), k - 1)
        sym = jnp.where(go_open, t_open, k + t_close)
        sym = jnp.where(active, sym, PAD_SYMBOL).astype(jnp.int32)
        opened = active & go_open
        closed = active & ~go_open
        new_stack = jnp.where(opened, stack.at[depth].set(t_open), stack)
        types = jnp.arange(k)
        new_counts = counts + jnp.where(opened & (types == t_open), 1, 0) \
            - jnp.where(closed & (types == t_close), 1, 0)
        new_depth = depth + jnp.where(opened, 1, 0) - jnp.where(closed, 1, 0)
        return (new_depth, new_stack, new_counts), sym

    init = (jnp.int32(0), jnp.zeros((max_depth + 1,), jnp.int32), jnp.zeros((k,), jnp.int32))
    _, syms = jax.lax.scan(step, init, (jnp.arange(max_len, dtype=jnp.int32), u[:, 0], u[:, 1]))
    return syms


def sample_batch(key: jax.Array, batch_size: int, k: int, *, min_len: int, max_len: int,
                 max_depth: int, kind: DyckKind = DyckKind.DYCK,
                 pad_to: int | None = None) -> DyckBatch:
    """A batch of valid strings with even lengths uniform in ``[min_len, max_len]``.

    Args:
        key: PRNG key.
        batch_size: number of strings.
        k: number of bracket pairs.
        min_len, max_len: length range (rounded to even numbers).
        max_depth: depth cap.
        kind: DYCK or SHUFFLE.
        pad_to: static padded size (default ``max_len``).

    Returns:
        :class:`DyckBatch` with symbols (batch_size, pad_to) and lengths (batch_size,).
    """
    pad_to = max_len if pad_to is None else pad_to
    if not 0 <= min_len <= max_len <= pad_to:
        raise ValueError(
            f"need 0 <= min_len <= max_len <= pad_to, got {min_len}, {max_len}, {pad_to}")
    if max_len - (min_len + min_len % 2) < 0:
        raise ValueError(f"no even length in [{min_len}, {max_len}]")
    k_len, k_str = jax.random.split(key)
    lo = (min_len + 1) // 2
    hi = max_len // 2
    u = jax.random.uniform(k_len, (batch_size,))
    lengths = 2 * (lo + jnp.minimum(jnp.floor(u * (hi - lo + 1)).astype(jnp.int32), hi - lo))
    keys = jax.random.split(k_str, batch_size)
    syms = jax.vmap(lambda kk, n: sample(kk, n, k, max_depth, max_len=pad_to, kind=kind))(
        keys, lengths)
    return DyckBatch(syms, lengths.astype(jnp.int32))


def near_miss(key: jax.Array, symbols: jax.Array, length: jax.Array | int, k: int
              ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Apply one random single edit to a valid string; the result is never in the language.

    Edits (:class:`EditKind`): change the type of one bracket (k >= 2), drop one bracket,
    insert a random bracket, or flip one bracket between opening and closing. Each is invalid
    for both Dyck_k and Shuffle-Dyck_k: drop and insert make the length odd, a flip changes the
    net depth by 2, and a type change unbalances the changed pair type.

    Args:
        key: PRNG key.
        symbols: (L,) padded valid string (-1 after ``length``); L must exceed ``length``
            so that an insertion fits.
        length: its length.
        k: number of bracket pairs.

    Returns:
        (edited symbols (L,), new length, edit kind as int32).
    """
    _check_k(k)
    size = symbols.shape[-1]
    length = jnp.asarray(length, jnp.int32)
    u = jax.random.uniform(key, (4,))  # one draw for every choice (cheap to compile)

    def pick(x: jax.Array, n: jax.Array | int) -> jax.Array:  # uniform integer in [0, n)
        return jnp.minimum(jnp.floor(x * n).astype(jnp.int32), jnp.asarray(n, jnp.int32) - 1)

    kinds = jnp.array([EditKind.SWAP_TYPE, EditKind.DROP, EditKind.INSERT, EditKind.FLIP]
                      if k >= 2 else [EditKind.DROP, EditKind.INSERT, EditKind.FLIP], jnp.int32)
    edit = kinds[pick(u[0], kinds.shape[0])]
    edit = jnp.where(length == 0, EditKind.INSERT, edit).astype(jnp.int32)
    pos = pick(u[1], jnp.maximum(length, 1))
    idx = jnp.arange(size)
    cur = symbols[pos]
    is_open = cur < k
    ctype = jnp.where(is_open, cur, cur - k)
    ntype = (ctype + 1 + pick(u[2], max(k - 1, 1))) % k
    swapped = jnp.where(is_open, ntype, k + ntype)
    flipped = jnp.where(is_open, cur + k, cur - k)
    # insertion position in [0, length] and a random bracket
    ins_pos = pick(u[3], length + 1)
    ins_sym = pick(u[2], 2 * k)
    prev = jnp.concatenate([symbols[:1], symbols[:-1]])
    nxt = jnp.concatenate([symbols[1:], jnp.array([PAD_SYMBOL], symbols.dtype)])
    inserted = jnp.where(idx < ins_pos, symbols, jnp.where(idx == ins_pos, ins_sym, prev))
    inserted = jnp.where(idx <= length, inserted, PAD_SYMBOL)
    dropped = jnp.where(idx < pos, symbols, nxt)
    dropped = jnp.where(idx < length - 1, dropped, PAD_SYMBOL)
    out = jnp.select(
        [edit == EditKind.SWAP_TYPE, edit == EditKind.DROP, edit == EditKind.INSERT],
        [jnp.where(idx == pos, swapped, symbols), dropped, inserted],
        jnp.where(idx == pos, flipped, symbols))
    new_len = length + jnp.where(edit == EditKind.DROP, -1, 0) + jnp.where(
        edit == EditKind.INSERT, 1, 0)
    return out.astype(jnp.int32), new_len.astype(jnp.int32), edit


def next_token_labels(symbols: jax.Array, length: jax.Array | int, k: int,
                      kind: DyckKind = DyckKind.DYCK) -> tuple[jax.Array, jax.Array]:
    """Jittable legal next-token sets for one padded string (the JAX twin of next_token_sets).

    Args:
        symbols: (L,) padded symbols.
        length: number of real symbols.
        k: number of bracket pairs.
        kind: DYCK or SHUFFLE.

    Returns:
        (labels, mask): labels bool (L + 1, 2k + 1), row i the legal set after i symbols
        (all False after an invalid prefix); mask bool (L + 1,), True for rows 0..length.
    """
    size = symbols.shape[-1]
    length = jnp.asarray(length, jnp.int32)

    def row(depth_stack_counts_ok):
        depth, stack, counts, ok = depth_stack_counts_ok
        opens = jnp.broadcast_to(ok, (k,))
        if kind is DyckKind.DYCK:
            top = stack[jnp.maximum(depth - 1, 0)]
            closes = ok & (depth > 0) & (jnp.arange(k) == top)
            end = ok & (depth == 0)
        else:
            closes = ok & (counts > 0)
            end = ok & (jnp.sum(counts) == 0)
        return jnp.concatenate([opens, closes, end[None]])

    def step(carry, inp):
        depth, stack, counts, ok = carry
        i, s = inp
        out = row(carry)
        active = i < length
        is_open = s < k
        t = jnp.where(is_open, s, s - k)
        if kind is DyckKind.DYCK:
            match = (depth > 0) & (stack[jnp.maximum(depth - 1, 0)] == t)
        else:
            match = counts[jnp.clip(t, 0, k - 1)] > 0
        new_ok = ok & (is_open | match)
        upd = active & ok
        opened = upd & is_open
        closed = upd & ~is_open & match
        stack = jnp.where(opened, stack.at[jnp.minimum(depth, size - 1)].set(t), stack)
        onehot = jax.nn.one_hot(jnp.clip(t, 0, k - 1), k, dtype=jnp.int32)
        counts = counts + jnp.where(opened, 1, 0) * onehot - jnp.where(closed, 1, 0) * onehot
        depth = depth + jnp.where(opened, 1, 0) - jnp.where(closed, 1, 0)
        ok = jnp.where(active, new_ok, ok)
        return (depth, stack, counts, ok), out

    init = (jnp.int32(0), jnp.zeros((max(size, 1),), jnp.int32), jnp.zeros((k,), jnp.int32),
            jnp.bool_(True))
    carry, rows = jax.lax.scan(step, init, (jnp.arange(size, dtype=jnp.int32), symbols))
    last = row(carry)
    labels = jnp.concatenate([rows, last[None, :]], axis=0)
    # rows after `length` are not part of the string
    mask = jnp.arange(size + 1) <= length
    labels = labels & mask[:, None]
    return labels, mask
