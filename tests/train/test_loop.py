import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxml.train import NonFiniteLossError, train, train_pure

X = jax.random.normal(jax.random.key(0), (64, 4))
W_TRUE = jnp.array([1.0, -2.0, 0.5, 3.0])
Y = X @ W_TRUE


def loss_fn(w, batch, key):
    x, y = batch
    r = x @ w - y
    return jnp.mean(r * r), {"wnorm": jnp.sum(w * w)}


def test_full_batch_training_converges_to_the_least_squares_solution():
    res = train(loss_fn, jnp.zeros(4), optax.sgd(0.1), data=(X, Y), num_steps=200, key=jax.random.key(1),
                log_every=50, eval_fn=lambda w: {"err": float(jnp.max(jnp.abs(w - W_TRUE)))}, eval_every=100)
    assert res.history["loss"].shape == (200,)
    assert res.history["wnorm"].shape == (200,)
    assert res.history["loss"][-1] < 1e-8 < res.history["loss"][0]
    assert [e["step"] for e in res.evals] == [100, 200]
    assert res.evals[-1]["err"] < 1e-4
    assert int(res.state.step) == 200


def test_minibatch_function_and_train_pure_agree_with_train():
    def batch_fn(key, step):
        idx = jax.random.randint(key, (16,), 0, 64)
        return X[idx], Y[idx]
    a = train(loss_fn, jnp.zeros(4), optax.adam(0.05), data=batch_fn, num_steps=60, key=jax.random.key(3), log_every=7)
    state, metrics = jax.jit(lambda k: train_pure(loss_fn, jnp.zeros(4), optax.adam(0.05), data=batch_fn,
                                                  num_steps=60, key=k))(jax.random.key(3))
    np.testing.assert_allclose(a.state.params, state.params, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(a.history["loss"], metrics["loss"], rtol=1e-6)


def test_resume_from_checkpoint_gives_the_uninterrupted_result(tmp_path):
    kw = dict(data=(X, Y), key=jax.random.key(2), checkpoint_every=10, log_every=10)
    full = train(loss_fn, jnp.zeros(4), optax.adam(0.01), num_steps=40, checkpoint_dir=tmp_path / "a", **kw)
    part = train(loss_fn, jnp.zeros(4), optax.adam(0.01), num_steps=20, checkpoint_dir=tmp_path / "b", **kw)
    assert int(part.state.step) == 20
    resumed = train(loss_fn, jnp.zeros(4), optax.adam(0.01), num_steps=40, checkpoint_dir=tmp_path / "b",
                    resume=True, **kw)
    np.testing.assert_array_equal(np.asarray(full.state.params), np.asarray(resumed.state.params))
    np.testing.assert_array_equal(full.history["loss"], resumed.history["loss"])


def test_nan_guard_names_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    def exploding(w, batch, key):
        x, y = batch
        return jnp.mean((x @ w - y) ** 2), {}
    with pytest.raises(NonFiniteLossError) as err:
        train(exploding, jnp.zeros(4), optax.sgd(10.0), data=(X, Y), num_steps=200, key=jax.random.key(0),
              checkpoint_dir=tmp_path, checkpoint_every=5, log_every=5)
    e = err.value
    assert 5 < e.step < 200
    assert f"step {e.step}" in str(e)
    assert e.checkpoint is not None and int(e.checkpoint.rsplit("/", 1)[1]) <= e.step
    import orbax.checkpoint as ocp
    saved = ocp.CheckpointManager(tmp_path).all_steps()
    assert max(saved) <= e.step


@pytest.mark.parametrize("bad,match", [(dict(num_steps=0), "num_steps"), (dict(resume=True), "checkpoint_dir"),
                                       (dict(log_every=-1), "log_every")])
def test_bad_arguments_are_named(bad, match):
    kw = dict(data=(X, Y), num_steps=5, key=jax.random.key(0))
    kw.update(bad)
    with pytest.raises(ValueError, match=match):
        train(loss_fn, jnp.zeros(4), optax.sgd(0.1), **kw)
