"""Training batches from token shards: random windows, END frames, delay pattern, padding.

A window is up to W frames of one clip. When the clip is the last of its piece and the window
reaches its end, one END frame follows (that is how the model learns, with the timing prefix,
where pieces stop); such clips are also cut late, so that END shows up at every position of a
window, not only the last. Windows shorter than W are padded with SPECIAL, never scored:

    frames  [K, W]     a b c d E _ _        E = END, _ = SPECIAL (padding)
    labels  [K, W+K-1] delay pattern of the frames, -100 wherever it holds SPECIAL
    inputs  [K, W+K-1] labels shifted right by one step, BOS (SPECIAL) first

Every example is a pure function of (seed, step, example number): a resumed run sees the
batches it would have seen, and N processes together draw exactly the batch one process draws
with N times the gradient accumulation.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from components.common.seeds import rng as seeded_rng
from components.lyra.conditioners import ConditionDropout, Conditions
from components.lyra.delay import build_delay_pattern, shift_right
from components.tokens.dataset import TokenDataset

IGNORE = -100


@dataclasses.dataclass
class Batch:
    inputs: torch.Tensor            # [B, K, S] long
    labels: torch.Tensor            # [B, K, S] long, IGNORE where not scored
    text_embedding: torch.Tensor    # [B, D] float32
    seconds_start: torch.Tensor     # [B] float32, where the window starts in its piece
    seconds_total: torch.Tensor     # [B] float32, the piece's length
    drop_text: torch.Tensor         # [B] bool, train this window without its text (CFG)

    def to(self, device) -> "Batch":
        return Batch(**{f.name: getattr(self, f.name).to(device, non_blocking=True) for f in dataclasses.fields(self)})

    @property
    def conditions(self) -> Conditions:
        return Conditions(text=self.text_embedding, seconds_start=self.seconds_start, seconds_total=self.seconds_total,
                          dropped={"text": self.drop_text})

    def model_inputs(self) -> dict:
        return {"codes": self.inputs, "labels": self.labels, "conditions": self.conditions}


@dataclasses.dataclass(frozen=True)
class Window:
    clip: int                       # row of the dataset
    start: int                      # first frame
    phrasing: int                   # which caption phrasing conditions it
    drop_text: bool


# Curation trims trailing silence (0.3-0.8 s on the demo corpus), so a piece's last clip ends a
# little before seconds_total; clips that are not last end >= min_clip_s (2 s) before it.
END_TOLERANCE_S = 1.0


def ends_piece(seconds_start: float, n_frames: int, seconds_total: float, frame_rate: float) -> bool:
    """Does the clip run to the end of its piece (up to trimmed trailing silence)?"""
    return seconds_start + n_frames / frame_rate >= seconds_total - max(END_TOLERANCE_S, 1.5 / frame_rate)


def piece_ends(dataset: TokenDataset) -> np.ndarray:
    """[n_clips] bool: which clips run to the end of their piece (and so are followed by END)."""
    index = dataset.index
    return np.array([ends_piece(s, n, t, dataset.frame_rate) for s, n, t in
                     zip(index["seconds_start"], index["n_frames"], index["seconds_total"])], dtype=bool)


class WindowSampler:
    """Draws training windows from a TokenDataset, each frame about equally likely."""

    def __init__(self, dataset: TokenDataset, window_frames: int, *, special: int, end: int, seed: int = 0,
                 cond_dropout: float = 0.0, phrasing: str = "random"):
        if len(dataset) == 0:
            raise ValueError(f"no clips in split {dataset.split!r} of {dataset.root}")
        self.ds, self.W, self.special, self.end = dataset, window_frames, special, end
        self.seed, self.phrasing = seed, phrasing
        self.dropout = ConditionDropout({"text": cond_dropout})
        index = dataset.index
        self.n_frames = index["n_frames"].to_numpy()
        self.ends = piece_ends(dataset)
        self.weights = self.n_frames / self.n_frames.sum()
        self.n_phrasings = dataset[0].text_embeddings.shape[0]

    def window(self, step: int, example: int) -> Window:
        rng = seeded_rng(self.seed, step, example)
        clip = int(rng.choice(len(self.weights), p=self.weights))
        n = int(self.n_frames[clip])
        if self.ends[clip]:     # any start up to the END frame itself, so END is seen at every window position
            start = int(rng.integers(0, n + 1))
        else:                   # full windows inside the clip
            start = int(rng.integers(0, max(0, n - self.W) + 1))
        phrasing = int(rng.integers(self.n_phrasings)) if self.phrasing == "random" else 0
        return Window(clip, start, phrasing, self.dropout.draw(rng)["text"])

    def batch(self, step: int, examples: range | list[int]) -> Batch:
        return make_batch(self.ds, [self.window(step, j) for j in examples], self.W, self.special, self.end, self.ends)


def make_batch(ds: TokenDataset, windows: list[Window], W: int, special: int, end: int, ends: np.ndarray) -> Batch:
    K = ds.num_codebooks
    frames = np.full((len(windows), K, W), special, dtype=np.int64)
    text = np.zeros((len(windows), ds.text_dim), dtype=np.float32)
    start_s = np.zeros(len(windows), dtype=np.float32)
    total_s = np.zeros(len(windows), dtype=np.float32)
    for b, w in enumerate(windows):
        clip = ds[w.clip]
        piece = clip.codes[:, w.start:w.start + W]                         # [K, <=W] memory-mapped view
        frames[b, :, :piece.shape[1]] = piece
        if ends[w.clip] and w.start + piece.shape[1] == clip.codes.shape[1] and piece.shape[1] < W:
            frames[b, :, piece.shape[1]] = end
        text[b] = clip.text_embeddings[w.phrasing]
        start_s[b] = clip.seconds_start + w.start / ds.frame_rate
        total_s[b] = clip.seconds_total
    delayed = build_delay_pattern(torch.from_numpy(frames), special)   # [B, K, W+K-1]
    labels = delayed.masked_fill(delayed == special, IGNORE)
    return Batch(inputs=shift_right(delayed, special), labels=labels, text_embedding=torch.from_numpy(text),
                 seconds_start=torch.from_numpy(start_s), seconds_total=torch.from_numpy(total_s),
                 drop_text=torch.tensor([w.drop_text for w in windows], dtype=torch.bool))


def evaluation_windows(dataset: TokenDataset, window_frames: int, max_windows: int) -> list[Window]:
    """The same held-out windows every time: consecutive windows of each clip, clips spread evenly."""
    windows = []
    for clip in range(len(dataset)):
        n = int(dataset.index["n_frames"].iloc[clip])
        windows.append([Window(clip, start, 0, False) for start in range(0, max(n, 1), window_frames)])
    # round-robin over clips so that a cap keeps as many different pieces as possible
    out = []
    for depth in range(max((len(w) for w in windows), default=0)):
        out.extend(w[depth] for w in windows if depth < len(w))
    return out[:max_windows]


def unigram_log_probs(dataset: TokenDataset, end: int) -> torch.Tensor:
    """[K, V+1] log-frequencies of each code (and END) per codebook over a split, add-one smoothed."""
    counts = dataset.unigram_counts().astype(np.float64)                 # [K, V]
    n_ends = int(piece_ends(dataset).sum())
    counts = np.concatenate([counts, np.full((counts.shape[0], 1), float(n_ends))], axis=1)
    probs = (counts + 1.0) / (counts + 1.0).sum(axis=1, keepdims=True)
    assert probs.shape[1] == end + 1
    return torch.from_numpy(np.log(probs)).float()


def unigram_cross_entropy(labels: torch.Tensor, log_probs: torch.Tensor) -> tuple[float, int]:
    """Summed cross-entropy (nats) of labels [B, K, S] under per-codebook unigrams, and the count."""
    K = labels.shape[1]
    mask = labels != IGNORE
    codebook = torch.arange(K)[None, :, None].expand_as(labels)
    nll = -log_probs[codebook[mask], labels[mask]]
    return float(nll.sum()), int(mask.sum())
