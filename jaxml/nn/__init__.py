"""Model building blocks as pure functions over parameter pytrees (plain nested dicts).

Layers (dense, MLP, LayerNorm, RMSNorm, embeddings), attention with softmax / hardmax /
uniform probabilities, positional encodings as an enum, and a transformer
(``TransformerConfig``, ``init_transformer``, ``apply_transformer``; also exported as
``Config``, ``init``, ``apply``).
"""

from jaxml.nn.attention import (
    AttentionKind,
    attention,
    attention_probs,
    causal_attention,
    causal_block_size,
    causal_mask,
)
from jaxml.nn.layers import (
    Activation,
    NormKind,
    dense,
    dense_init,
    embed,
    embedding_init,
    layer_norm,
    layer_norm_init,
    mlp,
    mlp_init,
    norm,
    norm_init,
    rms_norm,
    rms_norm_init,
)
from jaxml.nn.positional import PosEncoding, apply_rope, relative_bias, relative_bias_init, sinusoidal_table
from jaxml.nn.transformer import TransformerConfig, apply_transformer, init_transformer

Config = TransformerConfig
init = init_transformer
apply = apply_transformer

__all__ = [
    "Activation", "AttentionKind", "NormKind", "PosEncoding",
    "attention", "attention_probs", "causal_attention", "causal_block_size", "causal_mask",
    "dense", "dense_init", "embed", "embedding_init", "layer_norm", "layer_norm_init",
    "mlp", "mlp_init", "norm", "norm_init", "rms_norm", "rms_norm_init",
    "apply_rope", "relative_bias", "relative_bias_init", "sinusoidal_table",
    "TransformerConfig", "init_transformer", "apply_transformer", "Config", "init", "apply",
]
