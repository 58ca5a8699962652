"""Reading token shards at memory speed: every shard is memory-mapped, a clip is a slice."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pandas as pd

from components.common.splits import SPLITS
from components.tokens.shards import SHARD_DIR, known_instrument, read_meta, shard_name


@dataclasses.dataclass(frozen=True)
class TokenClip:
    clip_id: str
    piece_id: str
    codes: np.ndarray               # [K, n_frames] view into a memory-mapped shard (int16)
    text_embeddings: np.ndarray     # [n_phrasings, D] float32
    captions: list[str]
    seconds_start: float
    seconds_total: float
    instrument: str | None = None   # None in shard folders built before it was recorded


class TokenDataset:
    """Clips of one split (or all, `split=None`) of a token-shard folder.

        ds = TokenDataset("data/tokens", split="train")
        clip = ds[0]                 # TokenClip, codes [K, n_frames]
        ds.num_codebooks, ds.codebook_size, ds.frame_rate, ds.text_dim
    """

    def __init__(self, root: str | os.PathLike, split: str | None = "train"):
        self.root = Path(root)
        if not (self.root / "meta.json").is_file():
            raise FileNotFoundError(f"{self.root} is not a token-shard folder (no meta.json); run `lyra tokens build`")
        if split is not None and split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
        self.meta = read_meta(self.root)
        index = pd.read_parquet(self.root / "index.parquet")
        self.index = (index if split is None else index[index["split"] == split]).reset_index(drop=True)
        self.split = split
        self._embeddings = np.load(self.root / "text_embeddings.npy", mmap_mode="r")
        self._shards: dict[int, np.ndarray] = {}

    # --- facts about the codes
    @property
    def num_codebooks(self) -> int:
        return int(self.meta["num_codebooks"])

    @property
    def codebook_size(self) -> int:
        return int(self.meta["codebook_size"])

    @property
    def frame_rate(self) -> float:
        return float(self.meta["frame_rate"])

    @property
    def sample_rate(self) -> int:
        return int(self.meta["sample_rate"])

    @property
    def text_dim(self) -> int:
        return int(self.meta["text_dim"])

    @property
    def total_frames(self) -> int:
        return int(self.index["n_frames"].sum())

    def shard(self, number: int) -> np.ndarray:
        """Shard `number` as a read-only memory map, [n_frames, K]."""
        if number not in self._shards:
            self._shards[number] = np.load(self.root / SHARD_DIR / shard_name(number), mmap_mode="r")
        return self._shards[number]

    def __len__(self) -> int:
        return len(self.index)

    def codes(self, i: int) -> np.ndarray:
        row = self.index.iloc[i]
        start = int(row["offset"])
        return self.shard(int(row["shard"]))[start:start + int(row["n_frames"])].T   # [K, n_frames]

    def __getitem__(self, i: int) -> TokenClip:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        row = self.index.iloc[i]
        return TokenClip(
            clip_id=str(row["clip_id"]), piece_id=str(row["piece_id"]), codes=self.codes(i),
            text_embeddings=np.asarray(self._embeddings[int(row["text_row"])], dtype=np.float32),
            captions=list(row["captions"]), seconds_start=float(row["seconds_start"]),
            seconds_total=float(row["seconds_total"]),
            instrument=known_instrument(row.get("instrument")),
        )

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def unigram_counts(self) -> np.ndarray:
        """[K, codebook_size] token counts over this split (for the unigram baseline)."""
        counts = np.zeros((self.num_codebooks, self.codebook_size), dtype=np.int64)
        for i in range(len(self)):
            codes = self.codes(i)
            for k in range(self.num_codebooks):
                counts[k] += np.bincount(codes[k].astype(np.int64), minlength=self.codebook_size)
        return counts
