import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np

from jaxml.experiment import grid_points, sweep


def cell(key, a, b):
    x = jax.random.normal(key, (3,))
    return {"v": a * jnp.sum(x) + b, "vec": x * b}


def test_sweep_matches_a_python_loop_over_cells():
    grid = {"a": [1.0, 2.0, 3.0], "b": [0.5, -1.0]}
    key = jax.random.key(0)
    out = sweep(cell, grid, seeds=2, key=key, chunk_size=5)
    assert out["v"].shape == (3, 2, 2) and out["vec"].shape == (3, 2, 2, 3)
    for i, a in enumerate(grid["a"]):
        for j, b in enumerate(grid["b"]):
            for s in range(2):
                ref = cell(jax.random.fold_in(key, s), a, b)
                np.testing.assert_allclose(out["v"][i, j, s], ref["v"], rtol=1e-6)
    plain = sweep(cell, grid, seeds=2, key=key, shard=False)
    np.testing.assert_allclose(out["vec"], plain["vec"], rtol=1e-6)
    assert grid_points(grid)[1] == {"a": 1.0, "b": -1.0}


def test_sharded_sweep_over_four_cpu_devices_equals_unsharded(tmp_path):
    script = textwrap.dedent("""
        import json, jax, jax.numpy as jnp, numpy as np
        from jaxml.experiment import sweep
        def cell(key, a, b):
            x = jax.random.normal(key, (3,))
            return {"v": a * jnp.sum(x) + b}
        assert jax.device_count() == 4, jax.devices()
        grid = {"a": [1.0, 2.0, 3.0], "b": [0.5, -1.0, 2.0]}
        sh = sweep(cell, grid, seeds=3, key=jax.random.key(0))
        un = sweep(cell, grid, seeds=3, key=jax.random.key(0), shard=False)
        print(json.dumps({"sharded": sh["v"].tolist(), "plain": un["v"].tolist(), "n": jax.device_count()}))
    """)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["n"] == 4
    np.testing.assert_allclose(res["sharded"], res["plain"], rtol=1e-6)
