"""Dynamic-programming tasks as token sequences: edit distance and longest common subsequence.

Used by the looped-transformer study (Xu & Sato, arXiv 2410.01405, following Feng et al. 2023):
a sequence is ``a_1..a_n SEP b_1..b_n ANS`` and the target is one answer token after ``ANS``:
the weighted edit distance (insert / delete cost 2, substitute cost 3, as in the paper) or the
LCS length. Token ids: letters ``0..A-1``, ``SEP = A``, ``ANS = A + 1``, answer value v is token
``A + 2 + v``. The model is trained on the answer only (loss after the separator), and scored by
exact match of the answer token.

Generation is pure and keyed (uniform letters); labels come from a vectorised DP in JAX, checked
against the plain Python DP (``edit_distance_py``, ``lcs_py``) and brute force in the tests.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "DPTask",
    "DPBatch",
    "edit_distance",
    "lcs_length",
    "edit_distance_py",
    "lcs_py",
    "max_answer",
    "vocab_size",
    "seq_len",
    "sample_batch",
    "decode_answer",
]


class DPTask(enum.Enum):
    """EDIT: weighted edit distance (ins/del 2, sub 3); LCS: longest common subsequence length."""

    EDIT = "edit"
    LCS = "lcs"


class DPBatch(NamedTuple):
    """tokens (B, 2n + 2) int32 ending in ANS; answer (B,) int32 value; target (B,) answer token id."""

    tokens: jax.Array
    answer: jax.Array
    target: jax.Array


def edit_distance(a: jax.Array, b: jax.Array, ins_del: int = 2, sub: int = 3) -> jax.Array:
    """Weighted edit distance of int sequences a (n,), b (m,) by the DP
    ``D[i, j] = min(D[i-1, j] + c_del, D[i, j-1] + c_ins, D[i-1, j-1] + c_sub 1[a_i != b_j])``.

    One ``lax.scan`` over the rows i; within a row the left-to-right recurrence
    ``D[i, j] = min(c_j, D[i, j-1] + c_ins)`` with ``c_j = min(D[i-1, j] + c_del,
    D[i-1, j-1] + c_sub 1[a_i != b_j])`` (``c_0 = D[i-1, 0] + c_del``) unrolls to
    ``D[i, j] = c_ins j + min_{k <= j} (c_k - c_ins k)``, a prefix minimum (``lax.cummin``), so
    there is no inner sequential loop (cheaper to compile and to run than a nested scan).
    """
    m = b.shape[0]
    ramp = jnp.arange(m + 1, dtype=jnp.int32) * ins_del

    def row_step(prev: jax.Array, ai: jax.Array):
        diag = prev[:-1] + sub * (ai != b).astype(jnp.int32)
        c = jnp.concatenate([prev[:1] + ins_del, jnp.minimum(prev[1:] + ins_del, diag)])
        row = ramp + jax.lax.cummin(c - ramp)
        return row, None

    last, _ = jax.lax.scan(row_step, ramp, a)
    return last[m]


def lcs_length(a: jax.Array, b: jax.Array) -> jax.Array:
    """LCS length by ``L[i, j] = L[i-1, j-1] + 1 if a_i = b_j else max(L[i-1, j], L[i, j-1])``.

    Because ``L[i-1, j-1] + 1 >= max(L[i-1, j], L[i, j-1])``, the recurrence equals
    ``L[i, j] = max(L[i, j-1], L[i-1, j], 1[a_i = b_j] (L[i-1, j-1] + 1))``, so a row is the prefix
    maximum (``lax.cummax``) of ``max(L[i-1, j], 1[a_i = b_j] (L[i-1, j-1] + 1))``: one scan over
    rows, no inner loop.
    """
    m = b.shape[0]

    def row_step(prev: jax.Array, ai: jax.Array):
        cand = jnp.maximum(prev[1:], jnp.where(ai == b, prev[:-1] + 1, 0))
        row = jnp.concatenate([jnp.zeros((1,), jnp.int32), jax.lax.cummax(cand)])
        return row, None

    last, _ = jax.lax.scan(row_step, jnp.zeros(m + 1, jnp.int32), a)
    return last[m]


def edit_distance_py(a: list[int], b: list[int], ins_del: int = 2, sub: int = 3) -> int:
    """The plain Python DP (checker)."""
    n, m = len(a), len(b)
    D = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        D[i][0] = i * ins_del
    for j in range(m + 1):
        D[0][j] = j * ins_del
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            D[i][j] = min(D[i - 1][j] + ins_del, D[i][j - 1] + ins_del, D[i - 1][j - 1] + (sub if a[i - 1] != b[j - 1] else 0))
    return D[n][m]


def lcs_py(a: list[int], b: list[int]) -> int:
    """The plain Python LCS DP (checker)."""
    n, m = len(a), len(b)
    L = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            L[i][j] = L[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(L[i - 1][j], L[i][j - 1])
    return L[n][m]


def max_answer(task: DPTask, n: int) -> int:
    """Largest answer value for strings of length n: 3n (substitute everything) or n."""
    return 3 * n if task is DPTask.EDIT else n


def vocab_size(task: DPTask, n: int, alphabet: int) -> int:
    """Letters + SEP + ANS + one token per answer value 0..max_answer."""
    return alphabet + 2 + max_answer(task, n) + 1


def seq_len(n: int) -> int:
    """Length of a task sequence: 2n letters, SEP and ANS."""
    return 2 * n + 2


def sample_batch(key: jax.Array, task: DPTask, *, batch: int, n: int, alphabet: int) -> DPBatch:
    """Draw ``batch`` pairs of uniform strings of length n over ``alphabet`` letters with labels.

    Raises:
      ValueError: n < 1 or alphabet < 2.
    """
    if n < 1 or alphabet < 2:
        raise ValueError(f"DP task needs n >= 1 and alphabet >= 2, got n={n}, alphabet={alphabet}")
    ka, kb = jax.random.split(key)
    a = jax.random.randint(ka, (batch, n), 0, alphabet, dtype=jnp.int32)
    b = jax.random.randint(kb, (batch, n), 0, alphabet, dtype=jnp.int32)
    fn = edit_distance if task is DPTask.EDIT else lcs_length
    ans = jax.vmap(fn)(a, b).astype(jnp.int32)
    sep = jnp.full((batch, 1), alphabet, jnp.int32)
    q = jnp.full((batch, 1), alphabet + 1, jnp.int32)
    tokens = jnp.concatenate([a, sep, b, q], axis=1)
    return DPBatch(tokens=tokens, answer=ans, target=ans + alphabet + 2)


def decode_answer(token: jax.Array, alphabet: int) -> jax.Array:
    """Answer value of an answer token id (negative if the token is not an answer token)."""
    return token - (alphabet + 2)
