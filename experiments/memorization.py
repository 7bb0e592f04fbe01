"""Optimal memorisation capacity of transformers (Kajitsuka & Sato, ICLR 2025, arXiv 2409.17677).

Claims reproduced:
  * the hand-built hardmax construction (averaging attention as a contextual id, bit-extraction
    FFN as the id-to-label map; ``jaxml.constructions.memorization``) memorises every data set
    exactly (random and tiny-Shakespeare windows, next-token and seq2seq), and its parameter
    count grows like sqrt(N): fitted log-log slope within 0.1 of 0.5 (expected ~0.51);
  * trained transformers (smallest width reaching 100% training accuracy, found by k-section
    over widths with ``jaxml.train.capacity``): in the next-token setting the minimum parameter
    count vs N has a clearly sublinear fitted slope (< 0.8), below the seq2seq slope (whose
    labels grow like nN), and depends only weakly on n (slope < 0.3).
    Measured in quick mode (seed 0): 5/6 claims on one machine (next-token slope 0.80 against
    < 0.8), 4/6 on another (slope 1.07, and seq2seq minus next-token -0.13): the same code and
    seeds, with float rounding moving one integer width. The trained claims hinge on one or two
    integer widths (<= 8) decided by a few optimisation restarts, and flip between seeds and
    machines; the memorisation map below shows why (docs/memorization.md).
Reported, not claimed: the memorisation map (``--set map_steps=S``; ``jaxml.train.capacity.capacity_map``)
trains every width of ``map_widths`` on random data sets of every ``map_n`` (next-token) and
``map_seq2seq_n`` (seq2seq) for S Adam steps, with no search, so cells that fail above a memorising
width (the search's monotonicity assumption broken by the step budget) and the regime above the
width floor are visible; docs/memorization.md reads it.
Fits are least squares on log-log points with 95% t-intervals on the slope; with
``--set replicates=R`` every sweep point is measured on R independent data draws (same training
seeds) and the fit pools them. At quick scale the trained claims are not stable across seeds, with
or without replicates (docs/memorization.md).

Runtime: smoke ~1 min CPU (dominated by one XLA compile); quick about 3 min of CPU time on 2 cores
(9 min wall on a heavily shared machine); full (N up to 1024, widths up to 64, 4 seeds) for a GPU.

    jaxml run memorization --mode quick
    python experiments/memorization.py --mode smoke --out /tmp/mem
"""

from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np
from scipy import stats

from jaxml.constructions.memorization import apply_memorizer, build_memorizer, count_parameters, parameter_count
from jaxml.experiment import Claim, ExperimentConfig, Result, log, new_figure, param, run_script
from jaxml.tasks.memorize import MemorizeDataset, Setting, TextLabel, accuracy, random_dataset, text_dataset
from jaxml.train.capacity import CapacityConfig, CapacityMap, capacity_map, capacity_search


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    """Knobs of the memorisation study."""

    vocab: int = param(4, lo=2, hi=1024, help="vocabulary of the random data sets")
    classes: int = param(2, lo=2, hi=1024, help="label classes of the random data sets (and random text labels)")
    seq_len: int = param(6, lo=2, hi=512, help="sequence length n of the N sweeps")
    train_n: tuple = param((8, 16, 24, 40, 64), lo=2, hi=1_000_000, help="N values of the trained sweeps")
    n_values: tuple = param((3, 6, 9), lo=2, hi=512, help="n values of the n sweeps (at N = n_sweep_num)")
    n_sweep_num: int = param(24, lo=2, hi=1_000_000, help="N of the n sweeps")
    construction_n: tuple = param((64, 128, 256, 512, 1024), lo=2, hi=1_000_000,
                                  help="N values for the construction (next-token)")
    construction_seq2seq_n: tuple = param((16, 32, 64, 128), lo=2, hi=1_000_000,
                                          help="N values for the construction (seq2seq)")
    depth: int = param(2, lo=1, hi=64, help="transformer blocks of the trained models")
    max_width: int = param(16, lo=2, hi=1024, help="largest d_model searched")
    ff_ratio: int = param(2, lo=1, hi=16, help="FFN width / d_model")
    steps: int = param(500, lo=1, hi=10_000_000, help="Adam steps per training run (full batch)")
    lr: float = param(2e-2, lo=1e-6, hi=1.0, help="Adam learning rate")
    seeds: int = param(2, lo=1, hi=64, help="seeds per size (a size memorises if any seed does)")
    replicates: int = param(1, lo=1, hi=64, help="independent data draws per sweep point; the fits pool all of them")
    probes: int = param(2, lo=1, hi=16, help="widths trained in parallel per search round (1 = bisection)")
    text: bool = param(True, choices=(True, False), help="include tiny-Shakespeare data sets (needs the data file)")
    map_steps: int = param(0, lo=0, hi=10_000_000, help="Adam steps of the memorisation map (0: no map); the map "
                           "trains every width of map_widths on random data sets of every map_n / map_seq2seq_n")
    map_n: tuple = param((16, 32, 64, 128, 256), lo=2, hi=1_000_000, help="N values of the map, next-token setting")
    map_seq2seq_n: tuple = param((8, 16, 32, 64), lo=2, hi=1_000_000, help="N values of the map, seq2seq setting")
    map_widths: tuple = param((2, 3, 4, 5, 6, 8, 10, 12), lo=1, hi=1024, help="widths (d_model) of the map")


def get_config(mode: str) -> Config:
    """smoke: tiny sweeps (one compile, a few seconds of training); quick: the default; full: GPU scale."""
    if mode == "smoke":
        return Config(train_n=(4, 6, 8), n_values=(3, 4, 6), n_sweep_num=4, construction_n=(16, 32, 64),
                      construction_seq2seq_n=(8, 16), max_width=4, steps=40, seeds=1, probes=2, depth=1)
    if mode == "full":
        return Config(seq_len=8, train_n=(32, 64, 128, 256, 512, 1024), n_values=(4, 8, 16, 32), n_sweep_num=128,
                      construction_n=(256, 512, 1024, 2048, 4096, 8192), construction_seq2seq_n=(32, 64, 128, 256, 512),
                      max_width=64, steps=3000, lr=1e-2, seeds=4, probes=3)
    # quick: 2 cores, one compile; N spans 8x with 5 points, short sequences, widths <= 8
    # (3 rounds of 2 probes), 2 seeds; every data set is padded to n = 8 (the longest).
    return Config(train_n=(8, 12, 16, 32, 64), n_values=(3, 5, 8), n_sweep_num=16, max_width=8,
                  steps=400, seeds=2, probes=2)


def fit_slope(x, y) -> dict[str, float]:
    """Least-squares slope of log y on log x with a 95% t-interval (needs >= 3 points)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if ok.sum() < 3:
        return {"slope": float("nan"), "lo": float("nan"), "hi": float("nan"), "intercept": float("nan"), "points": int(ok.sum())}
    fit = stats.linregress(np.log(x[ok]), np.log(y[ok]))
    half = stats.t.ppf(0.975, ok.sum() - 2) * fit.stderr
    return {"slope": float(fit.slope), "lo": float(fit.slope - half), "hi": float(fit.slope + half),
            "intercept": float(fit.intercept), "points": int(ok.sum())}


def _text_ids():
    from jaxml.data import char_vocab, encode_chars, load_tinyshakespeare

    text = load_tinyshakespeare()
    vocab = char_vocab(text)
    return encode_chars(text, vocab), len(vocab)


def _construction(cfg: Config, key, text) -> tuple[dict, list[str]]:
    """Build and run the hardmax construction on each data set; exactness and counts."""
    rows, lines = {}, []
    plans = [("random", Setting.NEXT_TOKEN, n) for n in cfg.construction_n]
    plans += [("random", Setting.SEQ2SEQ, n) for n in cfg.construction_seq2seq_n]
    if text is not None:
        plans += [("text", Setting.NEXT_TOKEN, n) for n in cfg.construction_n]
    for i, (source, setting, num) in enumerate(plans):
        k_data, k_build = jax.random.split(jax.random.fold_in(key, i))
        if source == "random":
            ds = random_dataset(k_data, num, cfg.seq_len, cfg.vocab, cfg.classes, setting)
        else:   # real language-model labels: the next character (65 classes)
            ds = text_dataset(k_data, text[0], text[1], num, cfg.seq_len, TextLabel.NEXT_CHAR, setting)
        params, spec = build_memorizer(k_build, ds)
        acc = accuracy(apply_memorizer(params, ds.tokens, spec), ds.labels)
        count = count_parameters(params)
        assert count == parameter_count(num, ds.seq_len, ds.vocab_size, ds.num_classes, setting)
        rows.setdefault((source, setting), []).append((num, count, acc))
        lines.append(f"| {source} | {setting.value} | {num} | {count} | {spec.group_size} | {spec.offset_bits} | {acc:.3f} |")
    return rows, lines


def _datasets(cfg: Config, key, text) -> tuple[list[MemorizeDataset], list[tuple[str, Setting, str, int]]]:
    sets, tags = [], []

    def add(source, setting, axis, num, n):
        for _ in range(cfg.replicates):   # independent data draws of the same sweep point
            k = jax.random.fold_in(key, len(sets))
            if source == "random":
                sets.append(random_dataset(k, num, n, cfg.vocab, cfg.classes, setting))
            else:   # real text inputs, random labels: the same label entropy as the random sets
                sets.append(text_dataset(k, text[0], text[1], num, n, TextLabel.RANDOM, setting, cfg.classes))
            tags.append((source, setting, axis, num if axis == "N" else n))

    for setting in Setting:
        for num in cfg.train_n:
            add("random", setting, "N", num, cfg.seq_len)
        for n in cfg.n_values:
            add("random", setting, "n", cfg.n_sweep_num, n)
    if text is not None:
        for num in cfg.train_n:
            add("text", Setting.NEXT_TOKEN, "N", num, cfg.seq_len)
    return sets, tags


def _memorisation_map(cfg: Config, key) -> tuple[CapacityMap, list[tuple[Setting, int]], list[MemorizeDataset]]:
    """Every width of ``map_widths`` trained on random data sets of every map N, both settings (no
    search, so the oracle's departures from monotonicity show); ``map_steps`` Adam steps."""
    k_data, k_train = jax.random.split(key)
    tags = [(Setting.NEXT_TOKEN, n) for n in cfg.map_n] + [(Setting.SEQ2SEQ, n) for n in cfg.map_seq2seq_n]
    sets = [random_dataset(jax.random.fold_in(k_data, i), num, cfg.seq_len, cfg.vocab, cfg.classes, setting)
            for i, (setting, num) in enumerate(tags)]
    cap = CapacityConfig(max_size=max(cfg.map_widths), depth=cfg.depth, ff_ratio=cfg.ff_ratio,
                         num_steps=cfg.map_steps, learning_rate=cfg.lr, num_seeds=cfg.seeds)
    return capacity_map(k_train, sets, cfg.map_widths, cap, progress=log), tags, sets


def _map_outputs(cmap: CapacityMap, tags, sets, metrics: dict[str, float]) -> tuple[str, object]:
    """Metrics, table and heat-map figure of the memorisation map."""
    rows = []
    for j, ((setting, num), ds) in enumerate(zip(tags, sets)):
        tag = f"map_{setting.value}_N{num}"
        z = cmap.min_size[j]
        metrics[f"{tag}_min_width"] = float("nan") if z is None else float(z)
        metrics[f"{tag}_min_params"] = (float("nan") if z is None
                                        else float(cmap.params[j, list(cmap.sizes).index(z)]))
        metrics[f"{tag}_violations"] = float(len(cmap.violations[j]))
        cells = " | ".join("**M**" if m else f"{a:.2f}" for m, a in zip(cmap.memorised[j], cmap.accuracy[j].max(-1)))
        rows.append(f"| {setting.value} | {num} | {ds.num_labels} | {cells} | {z if z is not None else '-'} | "
                    f"{', '.join(map(str, cmap.violations[j])) or '-'} |")
    metrics["map_violations"] = float(sum(len(v) for v in cmap.violations))
    for setting in Setting:
        idx = [j for j, (st, _) in enumerate(tags) if st is setting]
        pts = [(tags[j][1], metrics[f"map_{setting.value}_N{tags[j][1]}_min_params"]) for j in idx]
        f = fit_slope([p[0] for p in pts], [p[1] for p in pts])
        metrics[f"map_{setting.value}_slope"] = f["slope"]
    widths = " | ".join(f"w={int(z)} ({cmap.params[0, i]})" for i, z in enumerate(cmap.sizes))
    table = (f"| setting | N | labels | {widths} | min width | failed above it |\n"
             + "|---|---|---|" + "---|" * len(cmap.sizes) + "---|---|\n" + "\n".join(rows))
    fig, axes = new_figure(1, 2, size=(11, 4))
    for ax, setting in zip(axes, Setting):
        idx = [j for j, (st, _) in enumerate(tags) if st is setting]
        if not idx:
            ax.set_axis_off()
            continue
        best = cmap.accuracy[idx].max(-1)
        im = ax.imshow(best, vmin=0.5, vmax=1.0, cmap="viridis", aspect="auto", origin="lower")
        for r, j in enumerate(idx):
            for c in range(len(cmap.sizes)):
                if cmap.memorised[j, c]:
                    ax.text(c, r, "M", ha="center", va="center", color="black", fontsize=9, fontweight="bold")
        ax.set_xticks(range(len(cmap.sizes)), [str(int(z)) for z in cmap.sizes])
        ax.set_yticks(range(len(idx)), [str(tags[j][1]) for j in idx])
        ax.set(xlabel="width d_model", ylabel="N sequences",
               title=f"{setting.value}: best training accuracy (M = memorised)")
        fig.colorbar(im, ax=ax)
    fig.tight_layout()
    return table, fig


def main(cfg: Config) -> Result:
    key = jax.random.PRNGKey(cfg.seed)
    k_cons, k_data, k_train = jax.random.split(key, 3)
    text = _text_ids() if cfg.text else None
    metrics: dict[str, float] = {}

    t0 = time.time()
    cons, cons_lines = _construction(cfg, k_cons, text)
    metrics["construction_seconds"] = time.time() - t0
    cons_acc = min(a for rows in cons.values() for _, _, a in rows)
    cons_fit = {k: fit_slope([r[0] for r in v], [r[1] for r in v]) for k, v in cons.items()}
    metrics["construction_min_accuracy"] = cons_acc
    for (source, setting), f in cons_fit.items():
        for name in ("slope", "lo", "hi"):
            metrics[f"construction_{source}_{setting.value}_{name}"] = f[name]
    log(f"construction: min accuracy {cons_acc}, fits {cons_fit}")

    t0 = time.time()
    sets, tags = _datasets(cfg, k_data, text)
    cap = CapacityConfig(max_size=cfg.max_width, depth=cfg.depth, ff_ratio=cfg.ff_ratio, num_steps=cfg.steps,
                         learning_rate=cfg.lr, num_seeds=cfg.seeds, probes_per_round=cfg.probes)
    results = capacity_search(k_train, sets, cap, progress=log)
    metrics["training_seconds"] = time.time() - t0
    series: dict[tuple, list[tuple[int, float, int | None]]] = {}
    train_lines = []
    for (source, setting, axis, x), ds, res in zip(tags, sets, results):
        p = float(res.min_params) if res.min_params is not None else float("nan")
        series.setdefault((source, setting, axis), []).append((x, p, res.min_size))
        train_lines.append(f"| {source} | {setting.value} | {axis}={x} | {ds.num_labels} | {res.min_size} | "
                           f"{res.min_params} | {res.rounds} | "
                           + ", ".join(f"{s}:{f:.1f}" for s, f in res.probes.items()) + " |")
    fits = {k: fit_slope([r[0] for r in v], [r[1] for r in v]) for k, v in series.items()}
    for (source, setting, axis), f in fits.items():
        for name in ("slope", "lo", "hi"):
            metrics[f"trained_{source}_{setting.value}_vs_{axis}_{name}"] = f[name]
    unresolved = sum(res.min_size is None for res in results)
    metrics["trained_unresolved_searches"] = float(unresolved)
    log(f"trained fits: {fits}")

    nt = fits[("random", Setting.NEXT_TOKEN, "N")]["slope"]
    s2s = fits[("random", Setting.SEQ2SEQ, "N")]["slope"]
    nn = fits[("random", Setting.NEXT_TOKEN, "n")]["slope"]
    claims = [
        Claim.check("construction_exact", "the hardmax construction memorises every data set exactly "
                    "(min training accuracy over all data sets)", cons_acc, 1.0, ">="),
        Claim.check("construction_sqrt_n", "construction parameter count grows like sqrt(N) in the next-token "
                    "setting: |fitted log-log slope - 0.5| <= 0.1",
                    abs(cons_fit[("random", Setting.NEXT_TOKEN)]["slope"] - 0.5), 0.1, "<="),
        Claim.check("trained_next_token_sublinear", "trained next-token: fitted slope of minimum parameter count "
                    "vs N is clearly sublinear (< 0.8)", nt, 0.8, "<"),
        Claim.check("trained_next_below_seq2seq", "trained: seq2seq slope minus next-token slope vs N is positive",
                    s2s - nt, 0.0, ">"),
        Claim.check("trained_next_token_weak_n", "trained next-token: slope of minimum parameter count vs n "
                    "at fixed N is below 0.3", nn, 0.3, "<"),
    ]
    if text is not None:
        claims.append(Claim.check("trained_text_sublinear", "trained next-token on tiny-Shakespeare windows: "
                                  "slope vs N < 0.8", fits[("text", Setting.NEXT_TOKEN, "N")]["slope"], 0.8, "<"))

    figures = {"min_size_vs_N": _plot_vs_n(cons, cons_fit, series, fits),
               "min_size_vs_seq_len": _plot_vs_seq_len(series, fits)}
    map_table = None
    if cfg.map_steps > 0:
        t0 = time.time()
        cmap, map_tags, map_sets = _memorisation_map(cfg, jax.random.fold_in(key, 7))
        metrics["map_seconds"] = time.time() - t0
        map_table, figures["memorisation_map"] = _map_outputs(cmap, map_tags, map_sets, metrics)
    fit_lines = [f"| {src} | {st.value} | {ax} | {f['slope']:.3f} | [{f['lo']:.3f}, {f['hi']:.3f}] | {f['points']} |"
                 for (src, st, ax), f in fits.items()]
    fit_lines += [f"| construction {src} | {st.value} | N | {f['slope']:.3f} | [{f['lo']:.3f}, {f['hi']:.3f}] | {f['points']} |"
                  for (src, st), f in cons_fit.items()]
    tables = {
        "fits": "| data | setting | vs | slope | 95% CI | points |\n|---|---|---|---|---|---|\n" + "\n".join(fit_lines),
        "construction": "| data | setting | N | parameters | group size s | offset bits | accuracy |\n"
                        "|---|---|---|---|---|---|---|\n" + "\n".join(cons_lines),
        "trained": "| data | setting | point | labels | min width | min params | rounds | probes (width:fraction memorised) |\n"
                   "|---|---|---|---|---|---|---|---|\n" + "\n".join(train_lines),
    }
    if map_table is not None:
        tables[f"memorisation map ({cfg.map_steps} Adam steps, best over {cfg.seeds} seed(s); cells: best training "
               "accuracy, M = memorised; column heads: width (parameters for the first data set))"] = map_table
    data = ["random sequences (jaxml.tasks.memorize.random_dataset)"]
    if text is not None:
        data.append("tiny Shakespeare windows: <data root>/tinyshakespeare/input.txt (jaxml.data.load_tinyshakespeare)")
    notes = (f"Trained models: {cfg.depth}-block, 1-head, RMS-norm transformers, width searched in [1, {cfg.max_width}] "
             f"by {cfg.probes}-section, {cfg.steps} Adam steps (lr {cfg.lr}), {cfg.seeds} seeds; "
             f"{cfg.replicates} independent data draws per sweep point, pooled in each fit; "
             f"{unresolved} searches found no memorising width (excluded from fits).")
    if cfg.map_steps > 0:
        notes += (f" Memorisation map: widths {list(cfg.map_widths)} x next-token N {list(cfg.map_n)} and seq2seq N "
                  f"{list(cfg.map_seq2seq_n)}, {cfg.map_steps} Adam steps, every cell trained; "
                  f"{int(metrics['map_violations'])} cells failed above a memorising width.")
    return Result(metrics=metrics, claims=claims, figures=figures, tables=tables, data=data, notes=notes)


def _line(ax, xs, f, style):
    if np.isfinite(f["slope"]):
        grid = np.geomspace(min(xs), max(xs), 20)
        ax.plot(grid, np.exp(f["intercept"]) * grid ** f["slope"], style, lw=1,
                label=f"slope {f['slope']:.2f} [{f['lo']:.2f}, {f['hi']:.2f}]")


def _plot_vs_n(cons, cons_fit, series, fits):
    fig, ax = new_figure(1, 2, size=(11, 4))
    for (src, st), rows in cons.items():
        xs = [r[0] for r in rows]
        ax[0].loglog(xs, [r[1] for r in rows], "o", label=f"{src} {st.value}")
        _line(ax[0], xs, cons_fit[(src, st)], "--")
    ax[0].set(title="hardmax construction (exact)", xlabel="N sequences", ylabel="parameters")
    ax[0].legend(fontsize=7)
    for (src, st, axis), rows in series.items():
        if axis != "N":
            continue
        xs = [r[0] for r in rows]
        ax[1].loglog(xs, [r[1] for r in rows], "o", label=f"{src} {st.value}")
        _line(ax[1], xs, fits[(src, st, axis)], "--")
    ax[1].set(title="trained: minimum size reaching 100% train acc.", xlabel="N sequences", ylabel="parameters")
    ax[1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def _plot_vs_seq_len(series, fits):
    fig, ax = new_figure(1, 1, size=(5.5, 4))
    for (src, st, axis), rows in series.items():
        if axis != "n":
            continue
        xs = [r[0] for r in rows]
        ax.loglog(xs, [r[1] for r in rows], "o", label=f"{src} {st.value}")
        _line(ax, xs, fits[(src, st, axis)], "--")
    ax.set(title="trained: minimum size vs sequence length n", xlabel="n", ylabel="parameters")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    run_script(__file__)
