"""The independent evaluator as the stages use it: musicnn's tag posteriors and embedding for a list of clips,
each clip scored once (a content-hash cache on disk: the same real clips are read by several stages and runs).

    Evaluator().score(clips, sample_rate) -> Scores(tags [n, 50], embeddings [n, 200])

The cache lives outside the stages' outputs (`LYRA_EVALUATOR_CACHE`, default ~/.cache/lyra/evaluator): it can
only save time, never change a figure (a clip's key is its samples' bytes, its rate and the weights' digest).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from components.evaluation import musicnn

CACHE_ENV = "LYRA_EVALUATOR_CACHE"


@dataclass(frozen=True)
class Scores:
    tags: np.ndarray        # [n, 50] sigmoid posteriors (musicnn.MTT_TAGS), averaged over 3 s patches
    embeddings: np.ndarray  # [n, 200] penultimate layer, averaged over patches

    def __len__(self) -> int:
        return len(self.tags)

    def take(self, index) -> "Scores":
        return Scores(self.tags[index], self.embeddings[index])


def _weights_digest(prefix: str) -> str:
    h = hashlib.sha256()
    for suffix in (".index", ".data-00000-of-00001"):
        h.update(Path(prefix + suffix).read_bytes())
    return h.hexdigest()[:16]


class Evaluator:
    """musicnn MTT, loaded once, with the content-hash cache."""

    name = "musicnn-MTT (Pons & Serra 2019; weights from the musicnn 0.1.0 wheel)"

    def __init__(self, cache_dir: str | Path | None = None, threads: int | None = None):
        prefix = musicnn.checkpoint_prefix()
        self.model = musicnn.load_musicnn(prefix)
        self.version = _weights_digest(prefix)
        default = Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "lyra" / "evaluator"))
        self.cache = Path(cache_dir) if cache_dir is not None else default
        self.threads = threads
        self.hits = self.misses = 0

    def _key(self, audio: np.ndarray, sample_rate: int) -> str:
        h = hashlib.sha256(np.ascontiguousarray(audio, dtype=np.float32).tobytes())
        h.update(f"{sample_rate}:{self.version}:{musicnn.PEAK}:{musicnn.POWER_LIMIT}".encode())
        return h.hexdigest()

    def _one(self, audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
        path = self.cache / (self._key(audio, sample_rate) + ".npy")
        if path.is_file():
            try:
                cached = np.load(path)
                self.hits += 1
                return cached[:50], cached[50:]
            except (OSError, ValueError):
                pass  # a torn cache file: score again and overwrite it
        clip = musicnn.score(self.model, audio, sample_rate)
        self.misses += 1
        try:
            self.cache.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                np.save(f, np.concatenate([clip.tags, clip.embedding]).astype(np.float32))
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only home: the figure is the same, only slower next time
        return clip.tags, clip.embedding

    def score(self, clips: list[np.ndarray], sample_rate: int) -> Scores:
        if not clips:
            return Scores(np.zeros((0, len(musicnn.MTT_TAGS)), np.float32), np.zeros((0, 200), np.float32))
        previous = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            out = [self._one(np.asarray(c, np.float32).reshape(-1), sample_rate) for c in clips]
        finally:
            torch.set_num_threads(previous)
        return Scores(np.stack([t for t, _ in out]), np.stack([e for _, e in out]))
