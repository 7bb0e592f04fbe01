"""Sweeps: map a pure function over a grid of settings x seeds with ``vmap``, sharded over all
local devices with ``jax.sharding`` (and over hosts after ``jax.distributed.initialize()``).

``sweep(fn, {"a": [1, 2], "b": [0.1, 0.2, 0.3]}, seeds=4, key=k)`` evaluates
``fn(key_s, a=a_i, b=b_j)`` for every (i, j, s) and returns the output pytree with leading axes
(2, 3, 4). Seed s uses ``fold_in(key, s)`` for every cell (common random numbers across the grid,
so differences between cells are not seed noise). The flattened cells are padded to a multiple
of the device count, laid out along a 1-D ``Mesh`` axis ``"sweep"``, and computed by one jitted
vmapped call per chunk; the result equals the unsharded ``vmap`` (tests check it).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["sweep", "grid_points"]


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The Cartesian product of ``grid`` as a list of dicts, last key fastest (row-major)."""
    names = list(grid)
    return [dict(zip(names, vals)) for vals in itertools.product(*(list(grid[n]) for n in names))]


def sweep(fn: Callable[..., Any], grid: Mapping[str, Sequence[Any]], *, seeds: int | Sequence[int],
          key: jax.Array, shard: bool = True, chunk_size: int | None = None,
          devices: Sequence[jax.Device] | None = None) -> Any:
    """Evaluate ``fn(key, **settings)`` over ``grid`` x ``seeds``, vmapped and sharded.

    Args:
      fn: pure, jittable ``fn(key, **settings) -> pytree of arrays``; settings arrive as traced
        scalars, so they may not change array shapes (loop over shape-changing settings outside).
      grid: ``{name: values}``; numeric values only.
      seeds: number of seeds (0..n-1) or explicit seed indices.
      key: base PRNG key.
      shard: place the flattened cells on a 1-D mesh over ``devices`` (default all local
        devices); False runs a plain ``jit(vmap(fn))``.
      chunk_size: at most this many cells per call (rounded up to a multiple of the device count),
        to bound memory; None does all cells in one call.
      devices: devices for the mesh (default ``jax.local_devices()``).

    Returns:
      The output pytree of ``fn`` with leading axes ``(*[len(v) for v in grid.values()], n_seeds)``,
      as host numpy arrays.
    """
    if not grid:
        raise ValueError("sweep: grid must name at least one setting, e.g. {'lr': [1e-3, 1e-2]}")
    for name, values in grid.items():
        if len(values) == 0:
            raise ValueError(f"sweep: grid setting {name!r} has no values")
    seed_ids = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not seed_ids:
        raise ValueError("sweep: seeds must be >= 1")
    names = list(grid)
    shape = tuple(len(grid[n]) for n in names) + (len(seed_ids),)
    cells = list(itertools.product(*(range(len(grid[n])) for n in names), range(len(seed_ids))))
    n = len(cells)
    cols = {nm: np.asarray([grid[nm][c[i]] for c in cells]) for i, nm in enumerate(names)}
    seed_col = np.asarray([seed_ids[c[-1]] for c in cells], dtype=np.uint32)

    def one(seed: jax.Array, *vals: jax.Array) -> Any:
        return fn(jax.random.fold_in(key, seed), **dict(zip(names, vals)))

    batched = jax.vmap(one)
    devs = list(devices) if devices is not None else jax.local_devices()
    n_dev = len(devs) if shard else 1
    per_call = n if chunk_size is None else max(1, min(n, chunk_size))
    per_call = int(math.ceil(per_call / n_dev) * n_dev)
    if shard:
        mesh = Mesh(np.asarray(devs), ("sweep",))
        sharding = NamedSharding(mesh, PartitionSpec("sweep"))
        call = jax.jit(batched, in_shardings=sharding, out_shardings=sharding)
    else:
        sharding = None
        call = jax.jit(batched)

    outs = []
    for start in range(0, n, per_call):
        idx = np.arange(start, start + per_call)
        idx = np.minimum(idx, n - 1)  # pad the last chunk by repeating the last cell
        args = [seed_col[idx]] + [cols[nm][idx] for nm in names]
        args = [jnp.asarray(a) for a in args]
        if sharding is not None:
            args = [jax.device_put(a, sharding) for a in args]
        out = call(*args)
        valid = min(per_call, n - start)
        outs.append(jax.tree_util.tree_map(lambda x, v=valid: np.asarray(jax.device_get(x))[:v], out))
    joined = jax.tree_util.tree_map(lambda *xs: np.concatenate(xs, axis=0), *outs)
    return jax.tree_util.tree_map(lambda x: x.reshape(shape + x.shape[1:]), joined)
