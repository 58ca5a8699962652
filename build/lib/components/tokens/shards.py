"""Writing token shards: fixed-size groups of clips, each shard a memory-mappable .npy file."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from components.common.atomic import atomic_path, atomic_write_json

CODE_DTYPE = np.int16  # codebook sizes up to 32767 (the default codec has 1024 entries)
EMBED_DTYPE = np.float16
SHARD_DIR = "shards"
INDEX_COLUMNS = (
    "clip_id", "piece_id", "split", "shard", "offset", "n_frames", "seconds_start", "seconds_total",
    "duration_s", "caption", "captions", "text_row", "instrument",
)


@dataclasses.dataclass
class ClipTokens:
    """One clip's codes and conditioning, as handed to the writer."""

    clip_id: str
    codes: np.ndarray               # [K, n_frames] integer codes
    text_embeddings: np.ndarray     # [n_phrasings, D]
    captions: Sequence[str]
    seconds_start: float            # where the clip starts within its source piece
    seconds_total: float            # duration of the whole source piece
    piece_id: str = ""
    split: str = "train"
    instrument: str | None = None   # from the corpus metadata, when known (the conditioning probe's label)


def known_instrument(value) -> str | None:
    """An index/manifest cell -> the instrument name, or None where the corpus does not record one
    (missing column, NaN/None, empty string)."""
    return value if isinstance(value, str) and value else None


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.npy"


def plan_shards(clip_ids: Sequence[str], clips_per_shard: int) -> list[list[str]]:
    """Clips sorted by id, cut into groups of `clips_per_shard` (the last one may be shorter).

    Sorting makes the plan a function of the clip set alone, so an unchanged corpus gives the
    same shards and each shard can be (re)built on its own.
    """
    if clips_per_shard < 1:
        raise ValueError("clips_per_shard must be >= 1")
    ordered = sorted(clip_ids)
    return [ordered[i:i + clips_per_shard] for i in range(0, len(ordered), clips_per_shard)]


def shard_key(codec_digest: str, clip_digests: Iterable[tuple[str, str]], n_quantizers: int) -> str:
    """Content key of a shard: everything its codes depend on, i.e. the codec version, how many of
    its codebooks are kept, and the (clip_id, audio digest) pairs in it."""
    h = hashlib.sha1(f"{codec_digest}\nquantizers:{n_quantizers}".encode())
    for clip_id, digest in clip_digests:
        h.update(f"\n{clip_id}:{digest}".encode())
    return h.hexdigest()[:16]


def write_shard(path: str | os.PathLike, clips: Sequence[tuple[str, np.ndarray]], codebook_size: int) -> list[dict]:
    """Write (clip_id, codes [K, n_frames]) pairs back to back into one .npy (atomically); return index rows."""
    if codebook_size > np.iinfo(CODE_DTYPE).max + 1:
        raise ValueError(f"codebook_size {codebook_size} does not fit {np.dtype(CODE_DTYPE).name}")
    num_codebooks = {np.shape(codes)[0] for _, codes in clips}
    if len(num_codebooks) > 1:
        raise ValueError(f"clips disagree on the number of codebooks: {sorted(num_codebooks)}")
    rows, chunks, offset = [], [], 0
    for clip_id, codes in clips:
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] == 0:
            raise ValueError(f"{clip_id}: codes must be [K, n_frames>0], got {codes.shape}")
        if codes.min() < 0 or codes.max() >= codebook_size:
            raise ValueError(f"{clip_id}: codes outside [0, {codebook_size})")
        chunks.append(codes.T.astype(CODE_DTYPE))          # frame-major: a window is one contiguous block
        rows.append({"clip_id": clip_id, "offset": offset, "n_frames": codes.shape[1]})
        offset += codes.shape[1]
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, np.concatenate(chunks, axis=0) if chunks else np.zeros((0, 0), CODE_DTYPE))
    return rows


def write_token_shards(
    out_dir: str | os.PathLike,
    clips: Sequence[ClipTokens],
    *,
    codebook_size: int,
    frame_rate: float,
    sample_rate: int,
    clips_per_shard: int = 64,
    extra_meta: dict | None = None,
) -> pd.DataFrame:
    """Write a complete token dataset (shards + index + embeddings + meta) from in-memory clips."""
    out = Path(out_dir)
    by_id = {c.clip_id: c for c in clips}
    if len(by_id) != len(clips):
        raise ValueError("clip ids must be unique")
    rows = []
    for shard_idx, group in enumerate(plan_shards(list(by_id), clips_per_shard)):
        pairs = [(c, by_id[c].codes) for c in group]
        for row in write_shard(out / SHARD_DIR / shard_name(shard_idx), pairs, codebook_size):
            rows.append({**row, "shard": shard_idx})
    index = finalize_index(out, rows, by_id, frame_rate)
    write_meta(out, num_codebooks=int(clips[0].codes.shape[0]) if clips else 0,
               text_dim=int(np.asarray(clips[0].text_embeddings).shape[-1]) if clips else 0,
               codebook_size=codebook_size, frame_rate=frame_rate, sample_rate=sample_rate,
               clips_per_shard=clips_per_shard, n_shards=int(index["shard"].max()) + 1 if len(index) else 0,
               n_clips=len(index), extra=extra_meta)
    return index


def finalize_index(out: Path, rows: list[dict], by_id: dict[str, ClipTokens], frame_rate: float) -> pd.DataFrame:
    """Write index.parquet + text_embeddings.npy, rows ordered by (shard, offset)."""
    rows = sorted(rows, key=lambda r: (r["shard"], r["offset"]))
    records, embeddings = [], []
    for text_row, row in enumerate(rows):
        clip = by_id[row["clip_id"]]
        n_frames = row["n_frames"]
        records.append({
            "clip_id": clip.clip_id, "piece_id": clip.piece_id, "split": clip.split,
            "shard": row["shard"], "offset": row["offset"], "n_frames": n_frames,
            "seconds_start": float(clip.seconds_start), "seconds_total": float(clip.seconds_total),
            "duration_s": n_frames / frame_rate, "caption": clip.captions[0] if len(clip.captions) else "",
            "captions": list(clip.captions), "text_row": text_row, "instrument": clip.instrument,
        })
        embeddings.append(np.asarray(clip.text_embeddings, dtype=EMBED_DTYPE))
    index = pd.DataFrame.from_records(records, columns=list(INDEX_COLUMNS))
    if embeddings:
        phrasings = {e.shape for e in embeddings}
        if len(phrasings) != 1:
            raise ValueError(f"text embeddings disagree in shape: {sorted(phrasings)}")
        stacked = np.stack(embeddings)
    else:
        stacked = np.zeros((0, 0, 0), EMBED_DTYPE)
    with atomic_path(out / "text_embeddings.npy", suffix=".npy") as tmp:
        np.save(tmp, stacked)
    write_index(out, index)
    return index


def write_meta(out: Path, *, num_codebooks: int, text_dim: int, codebook_size: int, frame_rate: float,
               sample_rate: int, clips_per_shard: int, n_shards: int, n_clips: int, extra: dict | None) -> None:
    meta = {
        "format": "lyra-token-shards/1",
        "num_codebooks": num_codebooks, "codebook_size": int(codebook_size),
        "frame_rate": float(frame_rate), "sample_rate": int(sample_rate), "text_dim": text_dim,
        "code_dtype": np.dtype(CODE_DTYPE).name, "layout": "frame-major [n_frames, K]",
        "clips_per_shard": clips_per_shard, "n_shards": n_shards, "n_clips": n_clips,
        **(extra or {}),
    }
    atomic_write_json(out / "meta.json", meta)


def write_index(out: Path, index: pd.DataFrame) -> None:
    with atomic_path(out / "index.parquet", suffix=".parquet") as tmp:
        index.to_parquet(tmp, index=False)


def read_meta(out: str | os.PathLike) -> dict:
    return json.loads((Path(out) / "meta.json").read_text())
