"""Looped transformers with timestep encoding (Xu & Sato, ICML 2025, arXiv 2410.01405).

Compares a non-looped transformer with L layers, a looped transformer (one block applied r
times) and the timestep-encoded looped transformer (adaLN gates/scales conditioned on the loop
index) at the same width and step budget, on two dynamic-programming tasks: weighted edit
distance (insert/delete 2, substitute 3) and LCS length.

Claims by mode (the paper's r = 100 / length-60 setting is an accelerator job):
  * quick (2 CPU cores): every model learns well above the majority class (>= 15 points, seed
    mean); parameter counts of looped models are constant in r; one trained looped model
    evaluated at several r uses its loops (accuracy at the trained r above r = 1); training
    curves. Length-5 strings over 4 letters, width 32, r = L = 4, batch 32, AdamW 2e-3 after a
    100-step linear warm-up, 1,500 steps, 2 seeds.
  * full (accelerator): accuracy vs r for r in 2..16 on length-8 strings with 3 seeds; the
    timestep-encoded model's accuracy does not decrease with r, and at the largest r it beats the
    plain looped model on edit distance (paper: 88.3 vs 47.7 at r = 100, length 60).

Each (model, r) is one ``sweep`` over tasks x seeds (one compiled program: the tasks share one
vocabulary). Keys use JAX's ``rbg`` PRNG: on CPU its programs compile markedly faster than
threefry's (measured 57 s -> 39 s for one quick cell on the loaded 2-core machine), and XLA
compilation is a large part of the quick run.

Runtime on 2 CPU cores shared with other jobs (load 5-7): smoke about 1.5 minutes (mostly XLA
compilation); quick 7-9 minutes wall, about 310 s of CPU time (about 5 minutes on idle cores);
full is an accelerator job, estimated 10-30 minutes on one H100 (see docs/looped_timestep.md).

    jaxml run looped_timestep --mode quick
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxml import nn
from jaxml.experiment import Claim, ExperimentConfig, Result, log, new_figure, param, run_script, sweep
from jaxml.nn.looped import LoopedConfig, apply_looped, init_looped, parameter_count
from jaxml.tasks.dp import DPBatch, DPTask, max_answer, sample_batch, seq_len, vocab_size
from jaxml.train import train_pure

MODELS = ("transformer", "looped", "looped_timestep")


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    """Knobs of the looped-transformer study."""

    tasks: tuple = param(("edit", "lcs"), choices=("edit", "lcs"), help="DP tasks")
    n: int = param(5, lo=1, hi=512, help="string length")
    alphabet: int = param(4, lo=2, hi=26, help="alphabet size")
    d_model: int = param(32, lo=4, hi=4096, help="width")
    n_heads: int = param(4, lo=1, hi=64, help="attention heads")
    loops: tuple = param((4,), lo=1, hi=1000, help="r values trained for the looped models")
    baseline_layers: int = param(4, lo=1, hi=96, help="layers of the non-looped transformer")
    eval_loops: tuple = param((1, 2, 3, 4, 6, 8), lo=1, hi=1000, help="r values to evaluate one trained looped model at")
    batch: int = param(32, lo=1, hi=65536, help="batch size (fresh samples every step)")
    steps: int = param(1500, lo=1, hi=10_000_000, help="training steps")
    lr: float = param(2e-3, lo=1e-8, hi=1.0, help="AdamW learning rate (after the warm-up)")
    warmup: int = param(100, lo=0, hi=10_000_000, help="linear learning-rate warm-up steps from 0 (then constant)")
    weight_decay: float = param(0.01, lo=0.0, hi=10.0, help="AdamW weight decay")
    seeds: int = param(2, lo=1, hi=100, help="seeds per model (vmapped)")
    n_test: int = param(1000, lo=10, hi=1_000_000, help="test samples")
    margin: float = param(0.15, lo=0.0, hi=1.0, help="'well above majority': accuracy - majority >= margin")


def get_config(mode: str) -> Config:
    """smoke: tiny, one task; quick (the defaults): length-5 strings over 4 letters, width 32,
    r = L = 4, batch 32, lr 2e-3 with 100 warm-up steps, 1,500 steps, 2 seeds; full: length-8
    strings, r in 2..16, L = 12, width 128, batch 64, lr 1e-4 (paper), 10,000 steps, 3 seeds."""
    if mode == "smoke":
        return Config(tasks=("edit",), d_model=16, n_heads=2, loops=(2,), baseline_layers=2, eval_loops=(1, 2, 3),
                      batch=16, steps=40, seeds=1, n_test=100, n=3)
    if mode == "full":
        return Config(n=8, d_model=128, loops=(2, 4, 8, 16), baseline_layers=12, eval_loops=(1, 2, 4, 8, 16, 24, 32),
                      batch=64, steps=10_000, lr=1e-4, seeds=3)
    return Config()


def _tasks(cfg: Config) -> tuple[DPTask, ...]:
    return tuple(DPTask(t) for t in cfg.tasks)


def shared_vocab(cfg: Config) -> int:
    """One vocabulary for all tasks (letters, SEP, ANS, answer values up to the largest task's
    maximum), so a model's runs on every task share one compiled program."""
    return max(vocab_size(t, cfg.n, cfg.alphabet) for t in _tasks(cfg))


def _block_cfg(cfg: Config, n_layers: int) -> nn.TransformerConfig:
    return nn.TransformerConfig(vocab_size=shared_vocab(cfg), d_model=cfg.d_model,
                                n_layers=n_layers, n_heads=cfg.n_heads, d_ff=4 * cfg.d_model, max_len=seq_len(cfg.n),
                                norm=nn.NormKind.RMS, pos_encoding=nn.PosEncoding.LEARNED)


def model_fns(cfg: Config, model: str, r: int):
    """``(init(key) -> params, apply(params, tokens) -> logits)`` for one model kind."""
    if model == "transformer":
        tcfg = _block_cfg(cfg, cfg.baseline_layers)
        return (lambda k: nn.init_transformer(k, tcfg)), (lambda p, x: nn.apply_transformer(p, x, tcfg))
    lcfg = LoopedConfig(_block_cfg(cfg, 1), timestep=(model == "looped_timestep"))
    return (lambda k: init_looped(k, lcfg)), (lambda p, x, rr=r: apply_looped(p, x, lcfg, rr))


def learning_rate(cfg: Config) -> optax.Schedule | float:
    """Linear warm-up from 0 to ``lr`` over ``warmup`` steps, then constant (``lr`` if no warm-up)."""
    if cfg.warmup == 0:
        return cfg.lr
    return optax.linear_schedule(0.0, cfg.lr, cfg.warmup)


def task_batch(key: jax.Array, task_index: jax.Array, cfg: Config, batch: int) -> DPBatch:
    """A batch of task ``cfg.tasks[task_index]`` (``task_index`` may be traced: every task's batch
    is drawn from the same key and the one asked for is selected)."""
    batches = [sample_batch(key, t, batch=batch, n=cfg.n, alphabet=cfg.alphabet) for t in _tasks(cfg)]
    if len(batches) == 1:
        return batches[0]
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs)[task_index], *batches)


def _answer_logits(apply, params, tokens):
    return apply(params, tokens)[:, -1, :]


def train_cell(key: jax.Array, task_index: jax.Array, *, cfg: Config, model: str, r: int) -> dict:
    """Train one model on fresh batches of task ``cfg.tasks[task_index]`` (``train_pure``) and score
    exact match on a test set. ``task_index`` may be traced, so ``sweep`` vmaps tasks x seeds."""
    init, apply = model_fns(cfg, model, r)
    k_init, k_train, k_test = jax.random.split(jax.random.fold_in(key, task_index), 3)

    def batch_fn(k, step):
        return task_batch(k, task_index, cfg, cfg.batch)

    def loss_fn(params, b, k):
        logits = _answer_logits(apply, params, b.tokens)
        loss = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, b.target))
        return loss, {"acc": jnp.mean(jnp.argmax(logits, -1) == b.target)}

    opt = optax.adamw(learning_rate(cfg), weight_decay=cfg.weight_decay)
    state, hist = train_pure(loss_fn, init(k_init), opt, data=batch_fn, num_steps=cfg.steps, key=k_train)
    test = task_batch(k_test, task_index, cfg, cfg.n_test)
    pred = jnp.argmax(_answer_logits(apply, state.params, test.tokens), -1)
    return {"test_acc": jnp.mean(pred == test.target), "loss": hist["loss"], "train_acc": hist["acc"],
            "params": state.params}


def majority_rate(cfg: Config, task: DPTask, key: jax.Array) -> float:
    """Accuracy of always predicting the most frequent answer (estimated on 20,000 samples)."""
    b = sample_batch(key, task, batch=20_000, n=cfg.n, alphabet=cfg.alphabet)
    counts = np.bincount(np.asarray(b.answer), minlength=max_answer(task, cfg.n) + 1)
    return float(counts.max() / counts.sum())


def main(cfg: Config) -> Result:
    """Train every (model, r) on all tasks x seeds with one ``sweep`` each; evaluate; check the claims."""
    key = jax.random.key(cfg.seed, impl="rbg")
    metrics: dict[str, float] = {}
    curves: dict[str, np.ndarray] = {}
    eval_r: dict[str, np.ndarray] = {}
    acc: dict[tuple[str, str, int], np.ndarray] = {}
    counts: dict[tuple[str, str], list[int]] = {}
    for ti, tname in enumerate(cfg.tasks):
        metrics[f"{tname}_majority"] = majority_rate(cfg, DPTask(tname), jax.random.fold_in(key, 1000 + ti))
    lcfg_plain = LoopedConfig(_block_cfg(cfg, 1))
    run_r = jax.jit(lambda p, tokens, target, rr: jnp.mean(
        jnp.argmax(apply_looped(p, tokens, lcfg_plain, rr)[:, -1, :], -1) == target))
    for model in MODELS:
        rs = (cfg.baseline_layers,) if model == "transformer" else cfg.loops
        for r in rs:
            out = sweep(lambda k, task_index, model=model, r=r: train_cell(k, task_index, cfg=cfg, model=model, r=r),
                        {"task_index": list(range(len(cfg.tasks)))}, seeds=cfg.seeds, key=key)
            init, _ = model_fns(cfg, model, r)
            n_par = parameter_count(jax.eval_shape(init, jax.random.key(0)))
            for ti, tname in enumerate(cfg.tasks):
                a = out["test_acc"][ti]
                acc[(tname, model, r)] = a
                tag = f"{tname}_{model}_r{r}" if model != "transformer" else f"{tname}_transformer_L{r}"
                metrics[f"{tag}_acc"] = float(a.mean())
                metrics[f"{tag}_acc_std"] = float(a.std())
                curves[tag] = out["loss"][ti].mean(0)
                log("%s: test exact match %s (majority %.3f)", tag, np.round(a, 3).tolist(), metrics[f"{tname}_majority"])
                metrics[f"{tag}_params"] = float(n_par)
                if model != "transformer":  # the model built for every r we train or evaluate at
                    counts[(tname, model)] = [parameter_count(jax.eval_shape(model_fns(cfg, model, rr)[0],
                                                                             jax.random.key(0)))
                                              for rr in sorted(set(cfg.loops) | set(cfg.eval_loops))]
                if model == "looped" and r == max(cfg.loops):
                    params0 = jax.tree_util.tree_map(lambda x, ti=ti: x[ti, 0], out["params"])
                    test = sample_batch(jax.random.fold_in(key, 2000 + ti), DPTask(tname), batch=cfg.n_test, n=cfg.n,
                                        alphabet=cfg.alphabet)
                    eval_r[tname] = np.array([float(run_r(params0, test.tokens, test.target, jnp.asarray(rr)))
                                              for rr in cfg.eval_loops])
                    for rr, v in zip(cfg.eval_loops, eval_r[tname]):
                        metrics[f"{tname}_looped_trained_r{r}_eval_r{rr}"] = float(v)

    # --- claims -------------------------------------------------------------------------
    margins = [acc[k].mean() - metrics[f"{k[0]}_majority"] for k in acc]
    claims = [Claim.check("all_above_majority",
                          f"every model (all tasks, models, r) beats the majority class by >= {cfg.margin:.2f} "
                          "(smallest margin)", float(min(margins)), cfg.margin, ">=")]
    spread = max(max(v) - min(v) for v in counts.values())
    claims.append(Claim.check("looped_params_constant_in_r",
                              "looped models' parameter counts do not depend on r (max - min over r)",
                              float(spread), 0.0, "<="))
    r_train = max(cfg.loops)
    gains = []
    for tname, vals in eval_r.items():
        at_train = vals[list(cfg.eval_loops).index(r_train)] if r_train in cfg.eval_loops else np.nan
        at_one = vals[list(cfg.eval_loops).index(1)] if 1 in cfg.eval_loops else np.nan
        gains.append(at_train - at_one)
    claims.append(Claim.check("looped_uses_its_loops",
                              f"a looped model trained at r={r_train} scores higher evaluated at r={r_train} than at r=1 "
                              "(smallest gain over tasks)", float(np.min(gains)) if gains else float("nan"), 0.0, ">"))
    if len(cfg.loops) >= 3:  # the full-mode claims (accuracy vs r)
        for tname in cfg.tasks:
            ts = np.array([acc[(tname, "looped_timestep", r)].mean() for r in cfg.loops])
            worst_drop = float(np.max(np.maximum(0.0, ts[:-1] - ts[1:])))
            claims.append(Claim.check(f"{tname}_timestep_nondecreasing_in_r",
                                      f"{tname}: timestep-encoded accuracy does not decrease as r grows "
                                      "(largest drop between consecutive r, tolerance 0.02)", worst_drop, 0.02, "<="))
        if "edit" in cfg.tasks:
            rmax = max(cfg.loops)
            gap = acc[("edit", "looped_timestep", rmax)].mean() - acc[("edit", "looped", rmax)].mean()
            claims.append(Claim.check("edit_timestep_beats_plain_at_max_r",
                                      f"edit distance at r={rmax}: timestep-encoded minus plain looped accuracy > 0",
                                      float(gap), 0.0, ">"))

    # --- figures ------------------------------------------------------------------------
    figs = {}
    fig, axes = new_figure(1, len(cfg.tasks), size=(5.5 * len(cfg.tasks), 4))
    axes = np.atleast_1d(axes)
    for ax, tname in zip(axes, cfg.tasks):
        for tag, c in curves.items():
            if tag.startswith(tname + "_"):
                ax.plot(np.convolve(c, np.ones(25) / 25, mode="valid"), label=tag[len(tname) + 1:])
        ax.set(title=f"{tname}: training loss (25-step mean, seed mean)", xlabel="step", ylabel="cross-entropy")
        ax.legend(fontsize=7)
    figs["training_curves"] = fig
    fig, axes = new_figure(1, len(cfg.tasks), size=(5.5 * len(cfg.tasks), 4))
    axes = np.atleast_1d(axes)
    for ax, tname in zip(axes, cfg.tasks):
        for model, c, dx in (("looped", "C1", -0.06), ("looped_timestep", "C2", 0.06)):  # dx: keep both visible
            ys = [acc[(tname, model, r)].mean() for r in cfg.loops]
            es = [acc[(tname, model, r)].std() for r in cfg.loops]
            ax.errorbar(np.asarray(cfg.loops) + dx, ys, yerr=es, marker="o", color=c, capsize=3,
                        label=f"{model} (trained at r; seed mean ± sd)")
        ax.axhline(acc[(tname, "transformer", cfg.baseline_layers)].mean(), color="C0", ls="--",
                   label=f"transformer L={cfg.baseline_layers}")
        ax.axhline(metrics[f"{tname}_majority"], color="gray", ls=":", label="majority class")
        if tname in eval_r:
            ax.plot(cfg.eval_loops, eval_r[tname], "x-", color="C3", alpha=0.7,
                    label=f"looped trained at r={r_train}, evaluated at r")
        ax.set(title=f"{tname} (n={cfg.n}, |A|={cfg.alphabet})", xlabel="loops r", ylabel="test exact match", ylim=(0, 1.02))
        ax.legend(fontsize=7)
    figs["accuracy_vs_r"] = fig

    rows = ["| task | model | r / L | params | test exact match (mean ± sd over seeds) |", "|---|---|---|---|---|"]
    for (tname, model, r), a in acc.items():
        tag = f"{tname}_{model}_r{r}" if model != "transformer" else f"{tname}_transformer_L{r}"
        rows.append(f"| {tname} | {model} | {r} | {int(metrics[tag + '_params'])} | {a.mean():.3f} ± {a.std():.3f} |")
    return Result(metrics=metrics, claims=claims, figures=figs, tables={"accuracy": "\n".join(rows)},
                  data=[f"synthetic DP tasks (jaxml.tasks.dp): {', '.join(cfg.tasks)}, n={cfg.n}, alphabet={cfg.alphabet}"],
                  notes=f"{cfg.seeds} seeds; {cfg.steps} AdamW steps of batch {cfg.batch} (lr {cfg.lr:g}, {cfg.warmup} warm-up "
                         f"steps); width {cfg.d_model}.")


if __name__ == "__main__":
    run_script(__file__)
