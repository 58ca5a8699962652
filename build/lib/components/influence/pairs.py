"""Recordings and reference / target pairs from token shards.

A recording is one rendering of a piece (`<piece>__<instrument>`), its clips in order; during
fine-tuning the reference and the target are different, non-overlapping segments of it:

    recording codes [K, T]   |---- reference (R frames) ----|        |==== target window (W frames) ====|
                             r                                       t          (or the other way round)

The target is what Lyra learns to continue (its own delay pattern, timing and text); the reference
reaches it only through the bottleneck.
"""

from __future__ import annotations

import dataclasses
import zlib

import numpy as np
import torch

from components.common.seeds import rng as seeded_rng
from components.lyra.conditioners import Conditions
from components.lyra.delay import build_delay_pattern, shift_right


@dataclasses.dataclass
class Recording:
    name: str                     # <piece>__<instrument>-<hash>: the clip ids without their segment number
    piece_id: str
    split: str
    codes: np.ndarray             # [K, T] int64, the clips concatenated in order
    text: np.ndarray              # [D] the first clip's first caption embedding
    caption: str
    seconds_total: float
    instrument: str | None
    clip_starts: list[float]      # seconds_start of each clip (curated wav names come from the clip ids)
    clip_ids: list[str]


def recordings(tokens, split: str) -> list[Recording]:
    """Every recording of `split`, in index order."""
    from components.tokens.dataset import TokenDataset

    ds = TokenDataset(tokens, split=split)
    groups: dict[str, list[int]] = {}
    for i, clip_id in enumerate(ds.index["clip_id"]):
        groups.setdefault(str(clip_id).rsplit("-", 1)[0], []).append(i)
    out = []
    for name, rows in groups.items():
        rows = sorted(rows, key=lambda i: float(ds.index.iloc[i]["seconds_start"]))
        first = ds[rows[0]]
        out.append(Recording(name=name, piece_id=first.piece_id, split=split,
                             codes=np.concatenate([np.asarray(ds.codes(i), dtype=np.int64) for i in rows], axis=1),
                             text=np.asarray(first.text_embeddings[0], dtype=np.float32), caption=first.captions[0],
                             seconds_total=first.seconds_total, instrument=first.instrument,
                             clip_starts=[float(ds.index.iloc[i]["seconds_start"]) for i in rows],
                             clip_ids=[str(ds.index.iloc[i]["clip_id"]) for i in rows]))
    return out


def split_by_piece(recs: list[Recording], share: float, seed: int) -> tuple[list[Recording], list[Recording]]:
    """(fine-tune pool, evaluator pool): disjoint by piece (every rendering of a piece on one side),
    decided by a hash of the piece id so adding pieces does not move the others."""
    def side(piece: str) -> bool:
        return (zlib.crc32(f"{seed}:{piece}".encode()) % 10_000) / 10_000 < share

    a = [r for r in recs if side(r.piece_id)]
    b = [r for r in recs if not side(r.piece_id)]
    pieces = sorted({r.piece_id for r in recs})
    if (not a or not b) and len(pieces) >= 2:       # a tiny corpus the hash put on one side: alternate pieces
        first = set(pieces[::2])
        a, b = [r for r in recs if r.piece_id in first], [r for r in recs if r.piece_id not in first]
    return a, b


def usable(recs: list[Recording], reference_frames: int, window_frames: int) -> list[Recording]:
    """Recordings long enough for a reference and a disjoint target window."""
    return [r for r in recs if r.codes.shape[1] >= reference_frames + window_frames]


@dataclasses.dataclass
class PairBatch:
    inputs: torch.Tensor          # [B, K, S] delayed codes shifted right (SPECIAL = BOS / padding)
    labels: torch.Tensor          # [B, K, S] delayed targets, -100 where ignored
    conditions: Conditions        # text, timing, reference codes [B, K, R], per-condition drops


def pair_batch(recs: list[Recording], step: int, batch: int, *, reference_frames: int, window_frames: int,
               frame_rate: float, special: int, text_dropout: float, reference_dropout: float,
               seed: int) -> PairBatch:
    """Batch `step`: a function of (seed, step) only, so a resumed run sees what the first run saw."""
    g = seeded_rng(seed, "pairs", step)
    R, W = reference_frames, window_frames
    targets, refs, texts, starts, totals, drop_text, drop_ref = [], [], [], [], [], [], []
    for _ in range(batch):
        rec = recs[int(g.integers(len(recs)))]
        T = rec.codes.shape[1]
        # a reference start, then a target start in the part of the recording the reference does not cover
        r = int(g.integers(0, T - R + 1))
        free = [t for t in (range(0, r - W + 1), range(r + R, T - W + 1)) if len(t)]
        if not free:                                    # the reference sits mid-way: move it to one end
            r = 0 if g.random() < 0.5 else T - R
            free = [range(R, T - W + 1)] if r == 0 else [range(0, T - R - W + 1)]
        span = free[int(g.integers(len(free)))]
        t = int(span[int(g.integers(len(span)))])
        targets.append(rec.codes[:, t:t + W])
        refs.append(rec.codes[:, r:r + R])
        texts.append(rec.text)
        starts.append(t / frame_rate)
        totals.append(rec.seconds_total)
        drop_text.append(g.random() < text_dropout)
        drop_ref.append(g.random() < reference_dropout)
    frames = torch.from_numpy(np.stack(targets))                                    # [B, K, W]
    delayed = build_delay_pattern(frames, special)
    conditions = Conditions.build(np.stack(texts), seconds_total=np.asarray(totals, np.float32),
                                  seconds_start=np.asarray(starts, np.float32))
    conditions = conditions.with_reference(torch.from_numpy(np.stack(refs)))
    conditions = conditions.drop("text", torch.tensor(drop_text)).drop("reference", torch.tensor(drop_ref))
    return PairBatch(inputs=shift_right(delayed, special), labels=delayed.masked_fill(delayed == special, -100),
                     conditions=conditions)
