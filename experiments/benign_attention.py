"""Benign overfitting in token selection of attention (Sakamoto & Sato, ICML 2025, arXiv 2409.17625).

Claims reproduced (paper's table: balanced 100% train / 100% test; large noise 100% / 91%;
large signal 90% / 100%):
  * balanced regime (d=2000, ||mu||=20): train accuracy 100% (noisy labels memorised) and clean
    test accuracy >= 95%: benign overfitting;
  * large-noise regime (d=4500, ||mu||=5): train 100% and test clearly below the balanced case:
    harmful overfitting;
  * large-signal regime (d=1000, ||mu||=80): train below 100% (noisy labels not fitted) and test
    >= 95%: no overfitting;
  (each averaged over >= 3 seeds), the (d, ||mu||) test-accuracy heatmap with its three regions
  (computed through ``jaxml.experiment.sweep``), attention trajectories of clean vs noisy training
  samples, and the theorem's construction (p = signal + noise tokens of noisy samples) fitting
  every training label while classifying clean test data.

Runtime on 2 CPU cores: smoke ~10 s, quick ~4 min (234 s measured on 2 idle cores), full (paper's 20 x 20 heatmap, 5 seeds)
about an hour on one GPU.

    jaxml run benign_attention --mode quick
    python experiments/benign_attention.py --mode smoke --out /tmp/ba
"""

from __future__ import annotations

import dataclasses
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxml.constructions.token_selection import benign_solution
from jaxml.experiment import Claim, ExperimentConfig, Result, context, log, new_figure, param, run_script, sweep
from jaxml.tasks.token_selection import (
    accuracy,
    apply_token_selection,
    attention_probs,
    init_token_selection,
    logistic_loss,
    make_dataset,
    nu_vector,
)
from jaxml.train import train, train_pure

REGIMES = ("balanced", "large_noise", "large_signal")  # the paper's (d, ||mu||): (2000, 20), (4500, 5), (1000, 80)


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    """Knobs of the benign-attention study (defaults: the paper's values)."""

    d: tuple = param((2000, 4500, 1000), lo=2, hi=100_000,
                     help="token dimension of the (balanced, large-noise, large-signal) regimes")
    mu_norm: tuple = param((20.0, 5.0, 80.0), lo=0.01, hi=10_000.0,
                           help="signal norm ||mu|| of the (balanced, large-noise, large-signal) regimes")
    T: int = param(8, lo=3, hi=256, help="tokens per sample")
    rho: float = param(0.1, lo=0.0, hi=1.0, help="weakly relevant signal strength")
    n_train: int = param(20, lo=4, hi=100_000, help="training samples (even)")
    n_test: int = param(1000, lo=10, hi=1_000_000, help="clean test samples")
    noise_rate: float = param(0.2, lo=0.0, hi=0.49, help="label-noise rate (flipped per class)")
    lr: float = param(5e-3, lo=1e-8, hi=10.0, help="gradient-descent step size")
    steps: int = param(1000, lo=1, hi=10_000_000, help="full-batch GD steps")
    seeds: int = param(3, lo=1, hi=1000, help="seeds per regime")
    heat_d: tuple = param((500, 2000, 3500), lo=2, hi=100_000, help="heatmap d values")
    heat_mu: tuple = param((5.0, 20.0, 60.0), lo=0.1, hi=10_000.0, help="heatmap ||mu|| values")
    heat_seeds: int = param(1, lo=1, hi=1000, help="seeds per heatmap cell")
    heat_chunk: int = param(12, lo=1, hi=100_000, help="heatmap cells per vmapped call (memory bound)")
    checkpoint_every: int = param(500, lo=0, hi=10_000_000, help="checkpoint interval of regime runs")
    eval_every: int = param(100, lo=1, hi=10_000_000, help="test-accuracy interval of regime runs")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("d", "mu_norm"):
            if len(getattr(self, name)) != len(REGIMES):
                raise ValueError(f"config field '{name}' needs {len(REGIMES)} values, one per regime {REGIMES}")
        if self.n_train % 2:
            raise ValueError(f"config field 'n_train' = {self.n_train} must be even (balanced classes)")


def get_config(mode: str) -> Config:
    """smoke: scaled-down dimensions, few steps; quick: the paper's regimes and a coarse heatmap;
    full: the paper's 20 x 20 heatmap (d 250..5000, ||mu|| 5..100) with 5 seeds."""
    if mode == "smoke":
        # d scaled by 1/20 and ||mu|| by 1/sqrt(20): the same signal-to-noise geometry, seconds to run
        return Config(d=(100, 225, 50), mu_norm=(4.5, 1.1, 18.0), steps=60, seeds=1, n_test=200,
                      heat_d=(50, 150), heat_mu=(2.0, 10.0), heat_seeds=1, checkpoint_every=20, eval_every=20)
    if mode == "full":
        return Config(seeds=5, heat_d=tuple(range(250, 5001, 250)), heat_mu=tuple(float(m) for m in range(5, 101, 5)),
                      heat_seeds=5, heat_chunk=20)
    return Config()


def _regime(cfg: Config, name: str) -> tuple[int, float]:
    i = REGIMES.index(name)
    return int(cfg.d[i]), float(cfg.mu_norm[i])


def _loss_fn(nu: jax.Array):
    def loss_fn(params, batch, key):
        del key
        X, y, noisy = batch
        f = apply_token_selection(params, X, nu)
        s = attention_probs(params, X)
        clean_w = (~noisy).astype(s.dtype) / jnp.maximum(jnp.sum(~noisy), 1)
        noisy_w = noisy.astype(s.dtype) / jnp.maximum(jnp.sum(noisy), 1)
        aux = {"train_acc": accuracy(f, y)}
        for tag, w in (("clean", clean_w), ("noisy", noisy_w)):
            aux[f"attn_{tag}_relevant"] = jnp.sum(w * s[:, 0])
            aux[f"attn_{tag}_weak"] = jnp.sum(w * (s[:, 1] + s[:, 2]))
            aux[f"attn_{tag}_noise"] = jnp.sum(w * jnp.sum(s[:, 3:], axis=1))
        return logistic_loss(y * f), aux
    return loss_fn


def train_cell(key: jax.Array, mu_norm: jax.Array, *, cfg: Config, d: int) -> dict:
    """One (d, ||mu||, seed) cell: draw data, train by GD (``train_pure``), return accuracies."""
    k_data, k_test, k_init, k_train = jax.random.split(key, 4)
    tr = make_dataset(k_data, n=cfg.n_train, d=d, mu_norm=mu_norm, T=cfg.T, rho=cfg.rho, noise_rate=cfg.noise_rate)
    te = make_dataset(k_test, n=cfg.n_test, d=d, mu_norm=mu_norm, T=cfg.T, rho=cfg.rho)
    nu = nu_vector(d, mu_norm)
    state, _ = train_pure(_loss_fn(nu), init_token_selection(k_init, d), optax.sgd(cfg.lr),
                          data=(tr.X, tr.y, tr.noisy), num_steps=cfg.steps, key=k_train)
    f_tr = apply_token_selection(state.params, tr.X, nu)
    return {"train_acc": accuracy(f_tr, tr.y), "test_acc": accuracy(apply_token_selection(state.params, te.X, nu), te.clean),
            "noisy_fit": jnp.sum((f_tr * tr.y > 0) & tr.noisy) / jnp.maximum(jnp.sum(tr.noisy), 1)}


def heatmap(cfg: Config, key: jax.Array) -> dict[str, np.ndarray]:
    """Train/test accuracy over ``heat_d`` x ``heat_mu`` x seeds via ``sweep`` (one call per d,
    since d sets array shapes). Returns arrays of shape (len(heat_d), len(heat_mu), heat_seeds)."""
    rows = []
    for d in cfg.heat_d:
        out = sweep(lambda k, mu_norm, d=d: train_cell(k, mu_norm, cfg=cfg, d=d), {"mu_norm": list(cfg.heat_mu)},
                    seeds=cfg.heat_seeds, key=jax.random.fold_in(key, d), chunk_size=cfg.heat_chunk)
        rows.append(out)
        log("heatmap d=%d: test acc %s", d, np.round(out["test_acc"].mean(-1), 3).tolist())
    return {k: np.stack([r[k] for r in rows]) for k in rows[0]}


def run_regime(cfg: Config, name: str, seed: int) -> dict:
    """Train one regime/seed with the jaxml training loop (checkpointed, resumable)."""
    d, mu = _regime(cfg, name)
    key = jax.random.fold_in(jax.random.fold_in(jax.random.key(cfg.seed), seed), REGIMES.index(name))
    k_data, k_test, k_init, k_train = jax.random.split(key, 4)
    tr = make_dataset(k_data, n=cfg.n_train, d=d, mu_norm=mu, T=cfg.T, rho=cfg.rho, noise_rate=cfg.noise_rate)
    te = make_dataset(k_test, n=cfg.n_test, d=d, mu_norm=mu, T=cfg.T, rho=cfg.rho)
    nu = nu_vector(d, mu)
    predict = jax.jit(lambda p, X: apply_token_selection(p, X, nu))
    ctx = context()
    res = train(_loss_fn(nu), init_token_selection(k_init, d), optax.sgd(cfg.lr),
                data=(tr.X, tr.y, tr.noisy), num_steps=cfg.steps, key=k_train,
                eval_fn=lambda p: {"test_acc": float(accuracy(predict(p, te.X), te.clean))},
                eval_every=cfg.eval_every, log_every=cfg.eval_every,
                checkpoint_dir=ctx.checkpoint_dir(f"{name}_seed{seed}"),
                checkpoint_every=cfg.checkpoint_every, resume=ctx.resume, desc=f"{name}/seed{seed}")
    params = res.state.params
    f_tr = predict(params, tr.X)
    out = {"train_acc": float(accuracy(f_tr, tr.y)), "test_acc": float(accuracy(predict(params, te.X), te.clean)),
           "noisy_fit": float(jnp.mean((f_tr * tr.y > 0)[tr.noisy])) if bool(jnp.any(tr.noisy)) else float("nan"),
           "history": res.history, "evals": res.evals}
    if name == "balanced":
        sol = benign_solution(tr.X, tr.y, tr.noisy, nu, mu)
        out["construction_train_acc"] = float(accuracy(predict(sol, tr.X), tr.y))
        out["construction_test_acc"] = float(accuracy(predict(sol, te.X), te.clean))
    return out


def _figures(cfg: Config, runs: dict, heat: dict) -> dict:
    figs = {}
    fig, ax = new_figure(1, 2, size=(11, 4))
    hist = runs["balanced"][0]["history"]
    steps = np.arange(1, len(hist["loss"]) + 1)
    for tag, ls in (("clean", "-"), ("noisy", "--")):
        for part, c in (("relevant", "C0"), ("weak", "C1"), ("noise", "C3")):
            ax[0].plot(steps, hist[f"attn_{tag}_{part}"], ls, color=c, label=f"{tag}: {part}")
    ax[0].set(xlabel="GD step", ylabel="mean attention probability", title="balanced regime, seed 0")
    ax[0].legend(fontsize=7)
    for name, c in zip(REGIMES, ("C0", "C3", "C2")):
        ev = runs[name][0]["evals"]
        ax[1].plot([e["step"] for e in ev], [e["test_acc"] for e in ev], color=c, label=f"{name} test")
        h = runs[name][0]["history"]["train_acc"]
        ax[1].plot(np.arange(1, len(h) + 1), h, ":", color=c, label=f"{name} train")
    ax[1].set(xlabel="GD step", ylabel="accuracy", title="train (dotted) and clean test accuracy", ylim=(0.4, 1.02))
    ax[1].legend(fontsize=7)
    figs["attention_trajectories"] = fig

    fig, ax = new_figure(1, 2, size=(11, 4))
    test = heat["test_acc"].mean(-1)
    train_ = heat["train_acc"].mean(-1)
    for a, z, title in ((ax[0], test, "clean test accuracy"), (ax[1], train_, "train accuracy (noisy labels)")):
        im = a.imshow(z.T, origin="lower", aspect="auto", vmin=0.5, vmax=1.0, cmap="viridis",
                      extent=(-0.5, len(cfg.heat_d) - 0.5, -0.5, len(cfg.heat_mu) - 0.5))
        a.set_xticks(range(len(cfg.heat_d)), [str(d) for d in cfg.heat_d], rotation=45)
        a.set_yticks(range(len(cfg.heat_mu)), [f"{m:g}" for m in cfg.heat_mu])
        a.set(xlabel="d", ylabel="||mu||", title=title)
        fig.colorbar(im, ax=a)
    region = _regions(heat)
    for i in range(len(cfg.heat_d)):
        for j in range(len(cfg.heat_mu)):
            ax[0].text(i, j, {0: "B", 1: "H", 2: "N", 3: ""}[int(region[i, j])], ha="center", va="center",
                       color="w", fontsize=8)
    ax[0].set_title("clean test accuracy (B benign, H harmful, N no overfit)")
    figs["heatmap"] = fig
    return figs


def _regions(heat: dict) -> np.ndarray:
    """0 benign (train 100%, test >= 95%), 1 harmful (train 100%, test < 95%), 2 no overfitting
    (train < 100%, test >= 95%), 3 neither, per cell from seed-averaged accuracies."""
    test, tr = heat["test_acc"].mean(-1), heat["train_acc"].mean(-1)
    fit = tr >= 1.0 - 1e-9
    good = test >= 0.95
    return np.where(fit & good, 0, np.where(fit & ~good, 1, np.where(~fit & good, 2, 3)))


def main(cfg: Config) -> Result:
    """Run the three regimes (>= 3 seeds, checkpointed training loop), the heatmap sweep and the
    construction check; compute the claims from what was measured."""
    runs = {name: [run_regime(cfg, name, s) for s in range(cfg.seeds)] for name in REGIMES}
    metrics: dict[str, float] = {}
    for name, rs in runs.items():
        for k in ("train_acc", "test_acc", "noisy_fit"):
            metrics[f"{name}_{k}"] = float(np.nanmean([r[k] for r in rs]))
        log("%s: train %.3f test %.3f noisy-fit %.3f", name, metrics[f"{name}_train_acc"],
            metrics[f"{name}_test_acc"], metrics[f"{name}_noisy_fit"])
    metrics["construction_train_acc"] = float(np.mean([r["construction_train_acc"] for r in runs["balanced"]]))
    metrics["construction_test_acc"] = float(np.mean([r["construction_test_acc"] for r in runs["balanced"]]))
    bal = runs["balanced"]
    metrics["balanced_final_attn_noisy_noise"] = float(np.mean([r["history"]["attn_noisy_noise"][-1] for r in bal]))
    metrics["balanced_final_attn_clean_relevant"] = float(np.mean([r["history"]["attn_clean_relevant"][-1] for r in bal]))

    heat = heatmap(cfg, jax.random.fold_in(jax.random.key(cfg.seed), 7))
    region = _regions(heat)
    for r, nm in enumerate(("benign", "harmful", "no_overfit")):
        metrics[f"heatmap_cells_{nm}"] = float(np.sum(region == r))
    metrics["heatmap_cells"] = float(region.size)
    # Region geometry: harmful overfitting needs large d and small ||mu||, no overfitting small d
    # and large ||mu||. Measured as the mean (d-rank - mu-rank) of each region's cells.
    di, mj = np.meshgrid(np.arange(len(cfg.heat_d)), np.arange(len(cfg.heat_mu)), indexing="ij")
    axis = (di / max(len(cfg.heat_d) - 1, 1)) - (mj / max(len(cfg.heat_mu) - 1, 1))  # +1: large d, small mu
    for r, nm in ((1, "harmful"), (2, "no_overfit"), (0, "benign")):
        metrics[f"heatmap_{nm}_position"] = float(axis[region == r].mean()) if np.any(region == r) else float("nan")

    claims = [
        Claim.check("balanced_fits_train", "balanced regime (d=2000, ||mu||=20): train accuracy 100% incl. noisy labels",
                    metrics["balanced_train_acc"], 1.0, ">="),
        Claim.check("balanced_generalises", "balanced regime: clean test accuracy >= 95% (benign overfitting)",
                    metrics["balanced_test_acc"], 0.95, ">="),
        Claim.check("large_noise_fits_train", "large-noise regime (d=4500, ||mu||=5): train accuracy 100%",
                    metrics["large_noise_train_acc"], 1.0, ">="),
        Claim.check("large_noise_harmful",
                    "large-noise regime: test accuracy clearly below the balanced case (gap in points >= 3)",
                    100 * (metrics["balanced_test_acc"] - metrics["large_noise_test_acc"]), 3.0, ">="),
        Claim.check("large_signal_no_overfit", "large-signal regime (d=1000, ||mu||=80): train accuracy below 100%",
                    metrics["large_signal_train_acc"], 1.0, "<"),
        Claim.check("large_signal_generalises", "large-signal regime: clean test accuracy >= 95%",
                    metrics["large_signal_test_acc"], 0.95, ">="),
        Claim.check("heatmap_three_regions", "heatmap shows all three regions (fewest cells of any region >= 1)",
                    min(metrics["heatmap_cells_benign"], metrics["heatmap_cells_harmful"],
                        metrics["heatmap_cells_no_overfit"]), 1.0, ">="),
        Claim.check("heatmap_geometry", "harmful region lies at larger d / smaller ||mu|| than the no-overfitting "
                    "region (position difference > 0)",
                    metrics["heatmap_harmful_position"] - metrics["heatmap_no_overfit_position"], 0.0, ">"),
        Claim.check("noisy_attend_noise", "balanced regime: noisy training samples end up attending more to noise "
                    "tokens than clean ones attend to them (noisy noise-attention minus clean)",
                    metrics["balanced_final_attn_noisy_noise"]
                    - float(np.mean([r["history"]["attn_clean_noise"][-1] for r in bal])), 0.0, ">"),
        Claim.check("construction_interpolates", "theorem's construction fits every training label (noisy included)",
                    metrics["construction_train_acc"], 1.0, ">="),
        Claim.check("construction_generalises", "theorem's construction classifies clean test data (accuracy >= 95%)",
                    metrics["construction_test_acc"], 0.95, ">="),
    ]
    table = ["| regime | d | ||mu|| | train acc | test acc | noisy labels fitted | paper (train / test) |",
             "|---|---|---|---|---|---|---|"]
    paper = {"balanced": "100% / 100%", "large_noise": "100% / 91%", "large_signal": "90% / 100%"}
    for name in REGIMES:
        d, mu = _regime(cfg, name)
        table.append(f"| {name} | {d} | {mu:.3g} | "
                     f"{100 * metrics[f'{name}_train_acc']:.1f}% | {100 * metrics[f'{name}_test_acc']:.1f}% | "
                     f"{100 * metrics[f'{name}_noisy_fit']:.0f}% | {paper[name]} |")
    return Result(metrics=metrics, claims=claims, figures=_figures(cfg, runs, heat),
                  tables={"regimes (mean over seeds)": "\n".join(table)},
                  data=["synthetic token-selection data (jaxml.tasks.token_selection)"],
                  notes=f"{cfg.seeds} seeds per regime; heatmap {len(cfg.heat_d)} x {len(cfg.heat_mu)} cells x "
                        f"{cfg.heat_seeds} seeds.")


if __name__ == "__main__":
    run_script(__file__)
