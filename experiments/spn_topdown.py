"""Top-down Bayesian posterior sampling for sum-product networks (Yokoi & Sato, KDD 2024, arXiv 2406.12353).

Baseline: the bottom-up Gibbs sampler of Trapp et al. (NeurIPS 2019, arXiv 1905.10884).

Claims checked (paper: "tens to more than one hundred times faster" per sweep on large SPNs, with
equal or better test log-likelihood, on 20+ data sets):
  * top-down is >= 10x faster per sweep than bottom-up on every quick data set at the quick
    structure size (RAT-SPN, depth 4, 10 sums / 10 inputs per region, 40 repetitions as in Trapp
    et al.'s and the paper's structures: 5.6e5 sum edges against an induced tree of 15 sum nodes);
  * at equal wall-clock, top-down's posterior-predictive test log-likelihood is at least
    bottom-up's minus 0.1 nats;
  * both samplers beat the independent-Bernoulli baseline;
  * as the network grows 8x (repetitions 2 -> 16), bottom-up seconds per sweep grow about linearly
    (cost growth >= half the network growth) while top-down's grow sublinearly (< 0.4 of it).
Published orientation (test LL): nltcs ~ -6.0, plants ~ -12.5 to -13 (LearnSPN-class models);
independent Bernoulli on nltcs ~ -9.2.

Protocol: both samplers share the structure, the initial trees and the leaf prior (empirical Bayes
per dimension, jaxml.spn.tuning, the paper's tuning; ``--set leaf_prior=fixed`` gives Trapp's
Beta(1/2, 1/2)); their sweeps are interleaved so that machine load hits both alike; each gets
``time_budget`` seconds of sampling (compilation excluded).

Runtime on 2 shared CPU cores (load average 3-7 from other jobs): smoke ~40-75 s (compile-bound),
quick ~12-15 min wall at load 5 (five data sets, 20 s of sampling per sampler and data set,
training rows capped at 5,000, test LL on 1,000 random test rows; about half is XLA compilation
and test-LL evaluation); full: the
20-set protocol with larger structures and 5,000 + 10,000 iterations (accelerator, hours).

    jaxml run spn_topdown --mode quick
    python experiments/spn_topdown.py --mode smoke --out /tmp/spn
    jaxml run spn_topdown --set datasets=nltcs,/path/to/mydata --set time_budget=60

Data: ``$JAXML_DATA/debd/<name>/<name>.{train,valid,test}.data`` (see ``jaxml.data.debd``); a
``datasets`` entry may also be a path to any folder in that format.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxml.data.debd import load_debd
from jaxml.experiment import Claim, ExperimentConfig, Result, log, new_figure, param, run_script
from jaxml.spn.bayes import SamplerKind, SpnPrior, make_prior, make_sampler, posterior_predictive_ll
from jaxml.spn.structure import LeafKind, RatSpnConfig, build_structure, describe
from jaxml.spn.tuning import LeafPriorTuning, empirical_bayes_prior

SAMPLERS = (SamplerKind.TOP_DOWN, SamplerKind.BOTTOM_UP)


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    """Knobs of the sampler comparison."""

    datasets: tuple = param(("nltcs", "plants", "jester", "dna", "baudio"),
                            help="DEBD names under the data root, or paths to folders in DEBD format")
    depth: int = param(4, lo=1, hi=12, help="region-graph depth L (capped at log2 D per data set)")
    num_sums: int = param(10, lo=1, hi=256, help="sum nodes per region (the paper's C_s)")
    num_inputs: int = param(10, lo=1, hi=256, help="input distributions per leaf region")
    num_repetitions: int = param(40, lo=1, hi=4096, help="random partitions R joined at the root")
    alpha: float = param(1.0, lo=1e-6, hi=1e6, help="Dirichlet concentration of sum weights")
    beta_a: float = param(0.5, lo=1e-6, hi=1e6, help="Beta prior first shape of Bernoulli leaves")
    beta_b: float = param(0.5, lo=1e-6, hi=1e6, help="Beta prior second shape of Bernoulli leaves")
    leaf_prior: str = param("empirical_bayes", choices=[t.value for t in LeafPriorTuning],
                            help="fixed: Beta(beta_a, beta_b) on every leaf; empirical_bayes: per-dimension "
                                 "Beta fitted on neighbourhood subsamples (jaxml.spn.tuning)")
    eb_subsamples: int = param(64, lo=1, hi=100_000, help="empirical Bayes: subsamples per dimension")
    eb_subsample_size: int = param(0, lo=0, hi=100_000_000,
                                   help="empirical Bayes: rows per subsample (0 = N / (R * I), the mean "
                                        "data per input, clipped to [10, 500])")
    block_size: int = param(128, lo=1, hi=1_000_000,
                            help="top-down: data whose proposals are drawn in parallel (exact blocked MH)")
    xla_opt_level: int = param(-1, lo=-1, hi=3,
                               help="XLA CPU backend optimisation level of every jitted function (-1 = "
                                    "XLA's default; smoke mode uses 0: tiny runs are compile-bound)")
    max_train: int = param(5000, lo=0, hi=100_000_000,
                           help="cap on training rows (train+valid merged, random subset; 0 = all)")
    max_test: int = param(1000, lo=0, hi=100_000_000,
                          help="cap on test rows, a random subset shared by every model (0 = all)")
    time_budget: float = param(20.0, lo=0.1, hi=1e6, help="seconds of sampling per sampler and data set")
    max_sweeps: int = param(2000, lo=1, hi=10_000_000, help="sweep cap per sampler and data set")
    burn_in: float = param(0.5, lo=0.0, hi=0.95,
                           help="fraction of the sweeps so far discarded before averaging predictives")
    keep: int = param(5, lo=1, hi=1000, help="retained states (evenly thinned) per predictive estimate")
    evals: int = param(4, lo=2, hi=100, help="test-LL evaluations along each run, at geometrically "
                                             "spaced sampling times ending at the time budget")
    scaling_dataset: str = param("nltcs", help="data set of the cost-vs-size measurement")
    scaling_rows: int = param(2000, lo=10, hi=100_000_000, help="training rows of the scaling runs")
    scaling_repetitions: tuple = param((2, 4, 16), lo=1, hi=4096,
                                       help="repetition counts of the scaling runs (network sizes)")
    scaling_sweeps: int = param(3, lo=1, hi=1000, help="timed sweeps per scaling point (the fastest counts)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.datasets:
            raise ValueError("config field 'datasets' needs at least one data set name or folder")
        if len(self.scaling_repetitions) < 2:
            raise ValueError("config field 'scaling_repetitions' needs at least two sizes")


def get_config(mode: str) -> Config:
    """smoke: nltcs, a tiny structure and a few seconds; quick: five data sets; full: the 20-set
    protocol with Trapp et al.'s largest structure and iteration counts."""
    if mode == "smoke":
        return Config(datasets=("nltcs",), depth=2, num_sums=3, num_inputs=3, num_repetitions=2,
                      max_train=300, max_test=200, time_budget=1.0, max_sweeps=6, keep=2, evals=2,
                      scaling_rows=100, scaling_repetitions=(1, 2), scaling_sweeps=1, xla_opt_level=0,
                      leaf_prior=LeafPriorTuning.FIXED.value)
    if mode == "full":
        from jaxml.data.debd import DEBD_NAMES

        return Config(datasets=DEBD_NAMES, num_sums=10, num_inputs=10, num_repetitions=40,
                      max_train=0, max_test=0, time_budget=36_000.0, max_sweeps=15_000, burn_in=1 / 3, keep=50,
                      evals=15, scaling_rows=16_181, scaling_repetitions=(5, 10, 20, 40, 80),
                      scaling_sweeps=3)
    return Config()


def _load(cfg: Config, name: str, key: jax.Array) -> tuple[str, np.ndarray, np.ndarray]:
    data = load_debd(name)
    train = np.concatenate([data.train, data.valid])  # Trapp et al.: train and valid merged
    k_tr, k_te = jax.random.split(key)
    if cfg.max_train and len(train) > cfg.max_train:
        train = train[np.asarray(jax.random.permutation(k_tr, len(train)))[: cfg.max_train]]
    test = data.test
    if cfg.max_test and len(test) > cfg.max_test:
        test = test[np.asarray(jax.random.permutation(k_te, len(test)))[: cfg.max_test]]
    return data.name, train.astype(np.float32), test.astype(np.float32)


def _structure(cfg: Config, num_vars: int, repetitions: int, key: jax.Array):
    depth = min(cfg.depth, int(np.floor(np.log2(num_vars))))
    scfg = RatSpnConfig(num_vars=num_vars, depth=depth, num_sums=cfg.num_sums,
                        num_inputs=cfg.num_inputs, num_repetitions=repetitions)
    return build_structure(key, scfg)


def independent_ll(train: np.ndarray, test: np.ndarray, a: float, b: float) -> float:
    """Test LL of independent Bernoullis with the Beta(a, b) posterior mean ``(k + a)/(n + a + b)``."""
    p = (train.sum(0) + a) / (len(train) + a + b)
    return float(np.mean(test @ np.log(p) + (1 - test) @ np.log1p(-p)))


def _prior(cfg: Config, train: np.ndarray, st, key: jax.Array) -> tuple[SpnPrior, float]:
    """Trapp et al.'s fixed Beta(beta_a, beta_b), or the empirical-Bayes Beta per dimension; and
    the seconds the tuning took."""
    if cfg.leaf_prior == LeafPriorTuning.FIXED.value:
        return make_prior(train.shape[1], alpha=cfg.alpha, a=cfg.beta_a, b=cfg.beta_b), 0.0
    size = cfg.eb_subsample_size or int(np.clip(
        len(train) / (st.cfg.num_repetitions * st.cfg.num_inputs), 10, 500))
    t0 = time.perf_counter()
    prior = empirical_bayes_prior(key, jnp.asarray(train), LeafKind.BERNOULLI, alpha=cfg.alpha,
                                  num_subsamples=cfg.eb_subsamples, subsample_size=size)
    jax.block_until_ready(prior.leaf)
    return prior, time.perf_counter() - t0


def _jit(cfg: Config, fn):
    """``jax.jit`` with the configured XLA backend optimisation level."""
    if cfg.xla_opt_level < 0:
        return jax.jit(fn)
    return jax.jit(fn, compiler_options={"xla_backend_optimization_level": cfg.xla_opt_level})


def _make(kind: SamplerKind, st, train: np.ndarray, prior: SpnPrior, cfg: Config):
    extra = {"block_size": cfg.block_size} if kind is SamplerKind.TOP_DOWN else {}
    return make_sampler(kind, st, jnp.asarray(train), prior, **extra)


class _Chain:
    """One sampler's chain under the experiment's budgets: compiled step, state, history of count
    buffers (host copies), per-sweep seconds and acceptance, and test-LL evaluations."""

    def __init__(self, kind: SamplerKind, structure, train, prior, cfg: Config, key: jax.Array):
        k_init, self.k_run = jax.random.split(key)
        sampler = _make(kind, structure, train, prior, cfg)
        t0 = time.perf_counter()
        self.state = _jit(cfg, sampler.init)(k_init)
        # compile outside the clock
        self.step_fn = _jit(cfg, sampler.step).lower(self.k_run, self.state).compile()
        self.compile_seconds = time.perf_counter() - t0
        self.cfg = cfg
        self.history: list = []
        self.secs: list[float] = []
        self.accept: list[float] = []
        self.evals: list[tuple[int, float, float]] = []
        self.eval_seconds = 0.0
        # evaluations at geometrically spaced sampling times, the last at the time budget
        self.thresholds = [cfg.time_budget * 2.0 ** -(cfg.evals - 1 - k) for k in range(cfg.evals)]

    @property
    def sweeps(self) -> int:
        return len(self.secs)

    @property
    def elapsed(self) -> float:
        return float(sum(self.secs))

    def done(self) -> bool:
        return self.sweeps >= self.cfg.max_sweeps or self.elapsed >= self.cfg.time_budget

    def sweep(self, ll_fn) -> None:
        t0 = time.perf_counter()
        self.state, info = self.step_fn(jax.random.fold_in(self.k_run, self.sweeps), self.state)
        jax.block_until_ready(self.state.counts)
        self.secs.append(time.perf_counter() - t0)
        self.accept.append(float(info.acceptance_rate))
        self.history.append(np.asarray(self.state.counts))
        if self.done() or (self.thresholds and self.elapsed >= self.thresholds[0]):
            self.evaluate(ll_fn)
            self.thresholds = [th for th in self.thresholds if th > self.elapsed]
        # bounded memory: keep the first 128 states (for "same sweeps" comparisons) and the
        # retained window of the last (1 - burn_in) of the run
        start = int(np.floor(self.cfg.burn_in * self.sweeps))
        for i in range(128, start):
            self.history[i] = None

    def evaluate(self, ll_fn, sweeps: int | None = None) -> float:
        """Test LL of the predictive from the states up to ``sweeps`` (default: all so far; NaN
        when those states were already dropped)."""
        t = self.sweeps if sweeps is None else min(sweeps, self.sweeps)
        if any(h is None for h in self.history[int(np.floor(self.cfg.burn_in * t)): t]):
            return float("nan")
        t0 = time.perf_counter()
        ll = float(ll_fn(_kept(self.history[:t], self.cfg)))
        self.eval_seconds += time.perf_counter() - t0
        if sweeps is None:
            self.evals.append((t, self.elapsed, ll))
        return ll

    def summary(self) -> dict:
        return {"sec_per_sweep": float(np.median(self.secs)), "sweeps": self.sweeps,
                "seconds": self.elapsed, "acceptance": float(np.mean(self.accept)),
                "evals": self.evals, "test_ll": self.evals[-1][2],
                "compile_seconds": self.compile_seconds, "eval_seconds": self.eval_seconds}


def run_pair(structure, train, prior, cfg: Config, key: jax.Array, ll_fn) -> dict[str, dict]:
    """Both samplers from the same initial trees under the same budgets, their sweeps interleaved
    so that both are timed under the same machine load (the chain with less sampling time so far
    sweeps next). Returns per-sampler summaries; the top-down one also holds its test LL after as
    many sweeps as bottom-up made (``test_ll_same_sweeps``) and at bottom-up's total sampling time
    (``test_ll_same_time``)."""
    chains = {kind: _Chain(kind, structure, train, prior, cfg, key) for kind in SAMPLERS}
    while not all(c.done() for c in chains.values()):
        chain = min((c for c in chains.values() if not c.done()), key=lambda c: c.elapsed)
        chain.sweep(ll_fn)
    td, bu = chains[SamplerKind.TOP_DOWN], chains[SamplerKind.BOTTOM_UP]
    out = {kind.value: c.summary() for kind, c in chains.items()}
    out["top_down"]["test_ll_same_sweeps"] = td.evaluate(ll_fn, sweeps=bu.sweeps)
    out["top_down"]["test_ll_same_time"] = ll_at_seconds(out["top_down"], bu.elapsed)
    return out


def _kept(history: list, cfg: Config) -> jnp.ndarray:
    # always `keep` states (repeats when fewer sweeps exist) so the predictive compiles once
    t = len(history)
    start = min(int(np.floor(cfg.burn_in * t)), t - 1)
    idx = np.linspace(start, t - 1, cfg.keep).round().astype(int)
    return jnp.stack([jnp.asarray(history[i]) for i in idx])


def _loadavg() -> str:
    """The 1-minute load average (the machine may be shared; timings depend on it)."""
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return "n/a"


def ll_at_seconds(run: dict, seconds: float) -> float:
    """Test LL of ``run`` at the last evaluation within ``seconds`` of sampling."""
    before = [e for e in run["evals"] if e[1] <= seconds * 1.0001]
    return before[-1][2] if before else float("nan")


def scaling(cfg: Config, key: jax.Array) -> dict:
    """Seconds per sweep of both samplers as the number of repetitions (network size) grows."""
    _, train, _ = _load(cfg, cfg.scaling_dataset, key)
    train = train[: cfg.scaling_rows]
    prior = make_prior(train.shape[1], alpha=cfg.alpha, a=cfg.beta_a, b=cfg.beta_b)
    out = {"sum_edges": [], "top_down": [], "bottom_up": []}
    for reps in cfg.scaling_repetitions:
        st = _structure(cfg, train.shape[1], reps, jax.random.fold_in(key, reps))
        out["sum_edges"].append(describe(st.cfg)["sum_edges"])
        for kind in SAMPLERS:
            sampler = _make(kind, st, train, prior, cfg)
            state = _jit(cfg, sampler.init)(key)
            step = _jit(cfg, sampler.step).lower(key, state).compile()
            secs = []
            for i in range(cfg.scaling_sweeps):
                t0 = time.perf_counter()
                state, _ = step(jax.random.fold_in(key, i), state)
                jax.block_until_ready(state.counts)
                secs.append(time.perf_counter() - t0)
            out[kind.value].append(float(np.min(secs)))
        log("scaling R=%d (%d sum edges): top-down %.3fs, bottom-up %.3fs per sweep", reps,
            out["sum_edges"][-1], out["top_down"][-1], out["bottom_up"][-1])
    return out


def main(cfg: Config) -> Result:
    """Both samplers on every data set under the same budgets, the independent baseline, and the
    cost-vs-size scaling; claims computed from the measurements."""
    key = jax.random.key(cfg.seed)
    metrics: dict[str, float] = {}
    runs: dict[str, dict] = {}
    names = []
    for di, entry in enumerate(cfg.datasets):
        k_data, k_struct, k_chain = jax.random.split(jax.random.fold_in(key, di), 3)
        name, train, test = _load(cfg, entry, k_data)
        names.append(name)
        st = _structure(cfg, train.shape[1], cfg.num_repetitions, k_struct)
        prior, prior_secs = _prior(cfg, train, st, jax.random.fold_in(k_struct, 1))
        info = describe(st.cfg)
        if cfg.leaf_prior == LeafPriorTuning.EMPIRICAL_BAYES.value:
            a, b = np.asarray(prior.leaf.a), np.asarray(prior.leaf.b)
            metrics[f"{name}.eb.mean_concentration"] = float(np.mean(a + b))
            metrics[f"{name}.eb.seconds"] = prior_secs
        metrics[f"{name}.sum_edges"] = float(info["sum_edges"])
        metrics[f"{name}.n_train"] = float(len(train))
        metrics[f"{name}.num_vars"] = float(train.shape[1])
        metrics[f"{name}.independent.test_ll"] = independent_ll(train, test, cfg.beta_a, cfg.beta_b)
        test_j = jnp.asarray(test)
        ll_fn = _jit(cfg, lambda c, st=st, prior=prior, test_j=test_j: posterior_predictive_ll(
            c, test_j, st, prior, batch_size=256))
        t0 = time.perf_counter()
        pair = run_pair(st, train, prior, cfg, k_chain, ll_fn)
        td, bu = pair["top_down"], pair["bottom_up"]
        runs[name] = pair
        for tag, r in (("top_down", td), ("bottom_up", bu)):
            metrics[f"{name}.{tag}.test_ll"] = r["test_ll"]
            metrics[f"{name}.{tag}.sec_per_sweep"] = r["sec_per_sweep"]
            metrics[f"{name}.{tag}.sweeps"] = float(r["sweeps"])
            metrics[f"{name}.{tag}.acceptance"] = r["acceptance"]
        metrics[f"{name}.speedup"] = bu["sec_per_sweep"] / td["sec_per_sweep"]
        metrics[f"{name}.top_down.test_ll_same_sweeps"] = td["test_ll_same_sweeps"]
        metrics[f"{name}.top_down.test_ll_same_time"] = td["test_ll_same_time"]
        metrics[f"{name}.wall_seconds"] = time.perf_counter() - t0 + prior_secs
        log("%s (N=%d, D=%d, %d sum edges): speed-up %.1fx; test LL top-down %.3f (%d sweeps, "
            "acceptance %.2f), bottom-up %.3f (%d sweeps), independent %.3f", name, len(train),
            train.shape[1], info["sum_edges"], metrics[f"{name}.speedup"], td["test_ll"],
            td["sweeps"], td["acceptance"], bu["test_ll"], bu["sweeps"],
            metrics[f"{name}.independent.test_ll"])
        log("%s wall %.0fs: compile top-down %.0fs, bottom-up %.0fs; test-LL evaluations %.0fs + "
            "%.0fs; prior tuning %.0fs; load average %s", name, metrics[f"{name}.wall_seconds"],
            td["compile_seconds"], bu["compile_seconds"], td["eval_seconds"], bu["eval_seconds"],
            prior_secs, _loadavg())

    scale = scaling(cfg, jax.random.fold_in(key, 10_000))
    growth = scale["sum_edges"][-1] / scale["sum_edges"][0]
    metrics["scaling.network_growth"] = growth
    metrics["scaling.top_down.cost_growth"] = scale["top_down"][-1] / scale["top_down"][0]
    metrics["scaling.bottom_up.cost_growth"] = scale["bottom_up"][-1] / scale["bottom_up"][0]

    min_speedup = min(metrics[f"{n}.speedup"] for n in names)
    gap_time = min(metrics[f"{n}.top_down.test_ll_same_time"] - metrics[f"{n}.bottom_up.test_ll"]
                   for n in names)
    beat_td = min(metrics[f"{n}.top_down.test_ll"] - metrics[f"{n}.independent.test_ll"] for n in names)
    beat_bu = min(metrics[f"{n}.bottom_up.test_ll"] - metrics[f"{n}.independent.test_ll"] for n in names)
    metrics["min_speedup"] = min_speedup
    claims = [
        Claim.check("speedup_10x", "top-down is >= 10x faster per sweep than bottom-up on every data "
                    "set at the quick structure size (smallest speed-up)", min_speedup, 10.0),
        Claim.check("equal_time_ll", "at equal wall-clock, top-down test LL >= bottom-up test LL - 0.1 "
                    "nats on every data set (smallest difference)", gap_time, -0.1),
        Claim.check("top_down_beats_independent", "top-down test LL exceeds the independent-Bernoulli "
                    "baseline on every data set (smallest margin, nats)", beat_td, 0.0, ">"),
        Claim.check("bottom_up_beats_independent", "bottom-up test LL exceeds the independent-Bernoulli "
                    "baseline on every data set (smallest margin, nats)", beat_bu, 0.0, ">"),
        Claim.check("bottom_up_cost_linear", f"bottom-up seconds per sweep grow about linearly as the "
                    f"network grows {growth:.1f}x (cost growth >= half the network growth)",
                    metrics["scaling.bottom_up.cost_growth"] / growth, 0.5),
        Claim.check("top_down_cost_sublinear", f"top-down seconds per sweep grow sublinearly as the "
                    f"network grows {growth:.1f}x (cost growth / network growth < 0.4)",
                    metrics["scaling.top_down.cost_growth"] / growth, 0.4, "<"),
    ]
    table = ["| data set | N train | D | sum edges | s/sweep top-down | s/sweep bottom-up | speed-up | "
             "test LL top-down (same time) | top-down (same sweeps) | bottom-up | independent | published |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    published = {"nltcs": "~ -6.0 (LearnSPN class); indep. -9.2", "plants": "~ -12.5 to -13"}
    for n in names:
        m = lambda k: metrics[f"{n}.{k}"]  # noqa: E731
        table.append(
            f"| {n} | {int(m('n_train'))} | {int(m('num_vars'))} | {int(m('sum_edges'))} | "
            f"{m('top_down.sec_per_sweep'):.3f} | {m('bottom_up.sec_per_sweep'):.3f} | {m('speedup'):.1f}x | "
            f"{m('top_down.test_ll_same_time'):.3f} | {m('top_down.test_ll_same_sweeps'):.3f} | "
            f"{m('bottom_up.test_ll'):.3f} | {m('independent.test_ll'):.3f} | {published.get(n, '')} |")
    scale_table = ["| repetitions | sum edges | s/sweep top-down | s/sweep bottom-up | ratio |",
                   "|---|---|---|---|---|"]
    for r, e, a, b in zip(cfg.scaling_repetitions, scale["sum_edges"], scale["top_down"], scale["bottom_up"]):
        scale_table.append(f"| {r} | {e} | {a:.3f} | {b:.3f} | {b / a:.1f}x |")
    curve_table = ["| data set | sampler | (sampling seconds, sweeps, test LL) at each evaluation |",
                   "|---|---|---|"]
    for n in names:
        for tag in ("top_down", "bottom_up"):
            points = "; ".join(f"{sec:.1f} s, {t}, {ll:.3f}" for t, sec, ll in runs[n][tag]["evals"])
            curve_table.append(f"| {n} | {tag.replace('_', '-')} | {points} |")
    return Result(
        metrics=metrics, claims=claims, figures=_figures(names, runs, metrics, scale),
        tables={"samplers per data set": "\n".join(table),
                "test LL along the runs": "\n".join(curve_table),
                f"cost vs network size ({cfg.scaling_dataset}, {cfg.scaling_rows} rows)": "\n".join(scale_table)},
        data=[f"DEBD {n} (train+valid merged, test split)" for n in names],
        notes=(f"RAT-SPN depth <= {cfg.depth}, {cfg.num_sums} sums / {cfg.num_inputs} inputs per region, "
               f"{cfg.num_repetitions} repetitions; Dirichlet({cfg.alpha}), "
               + (f"Beta({cfg.beta_a}, {cfg.beta_b}); " if cfg.leaf_prior == "fixed"
                  else "empirical-Bayes Beta per dimension; ")
               + f"top-down blocks of {cfg.block_size}; "
               f"{cfg.time_budget:g} s sampling per sampler; predictive = likelihood averaged over "
               f"{cfg.keep} retained states of the last {1 - cfg.burn_in:.0%} of sweeps "
               f"(posterior means given Z)."))


def _log_axis(axis) -> None:
    """Plain-number labels on a log axis, no crowded minor-tick labels."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    axis.set_major_formatter(ScalarFormatter())
    axis.set_minor_formatter(NullFormatter())


def _figures(names, runs, metrics, scale) -> dict:
    figs = {}
    ncol = len(names)
    fig, axes = new_figure(1, ncol, size=(3.6 * ncol, 3.2))
    axes = np.atleast_1d(axes)
    for ax, n in zip(axes, names):
        lls = []
        for tag, color in (("top_down", "C0"), ("bottom_up", "C3")):
            ev = runs[n][tag]["evals"]
            lls += [e[2] for e in ev]
            ax.plot([e[1] for e in ev], [e[2] for e in ev], "o-", color=color, label=tag.replace("_", "-"))
        ax.set_xscale("log")
        _log_axis(ax.xaxis)
        # y range of the samplers' curves; the independent baseline is drawn only when it falls
        # inside it (it is far below on most sets) and is always given in the title
        lo, hi = min(lls), max(lls)
        pad = 0.08 * (hi - lo) + 1e-3
        indep = metrics[f"{n}.independent.test_ll"]
        if indep >= lo - pad:
            ax.axhline(indep, color="gray", ls="--", label="independent")
            lo = min(lo, indep)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set(title=f"{n} (independent {indep:.2f})", xlabel="sampling wall-clock (s)",
               ylabel="test log-likelihood")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    figs["test_ll_vs_time"] = fig

    fig, ax = new_figure(1, 1, size=(4.8, 3.6))
    ax.loglog(scale["sum_edges"], scale["bottom_up"], "s-", color="C3", label="bottom-up Gibbs")
    ax.loglog(scale["sum_edges"], scale["top_down"], "o-", color="C0", label="top-down MH")
    e0 = scale["sum_edges"][0]
    ax.loglog(scale["sum_edges"], [scale["bottom_up"][0] * e / e0 for e in scale["sum_edges"]], ":",
              color="gray", label="linear")
    ax.set_xticks(scale["sum_edges"])
    _log_axis(ax.xaxis)
    ax.set(xlabel="sum edges of the network", ylabel="seconds per sweep", title="cost vs network size")
    ax.legend(fontsize=7)
    fig.tight_layout()
    figs["cost_vs_size"] = fig
    return figs


if __name__ == "__main__":
    run_script(__file__)
