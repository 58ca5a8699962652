"""A synthetic token dataset Lyra can learn, where the caption and the timing both matter.

Each piece belongs to one of `n_classes` "styles". A style is a random unit text embedding
(its phrasings slightly different noisy copies of it, shared by all its pieces, as captions
of similar pieces are) and a cycle of codes: codebook 0 walks
the style's cycle (a permutation of the same shared codes for every style, so the first frame
cannot be guessed without the text), codebook k>0 is a fixed function of codebook 0, the
style and k. Pieces last 2-5 s (the longest cut into two clips), so where a piece ends (END) is
only predictable from the timing prefix.
"""

from __future__ import annotations

import numpy as np

from components.tokens.shards import ClipTokens, write_token_shards

FRAME_RATE = 10.0
CODEBOOK_SIZE = 16
NUM_CODEBOOKS = 4
TEXT_DIM = 384
CYCLE = 6                 # codes in each style's cycle (a permutation of codes 0..CYCLE-1)


def style_embeddings(n_classes: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.normal(size=(n_classes, TEXT_DIM)).astype(np.float32)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def cycle_steps(cycle) -> set[tuple[int, int]]:
    return {(int(cycle[i]), int(cycle[(i + 1) % len(cycle)])) for i in range(len(cycle))}


def style_cycles(n_classes: int, seed: int = 0) -> np.ndarray:
    """Permutations of the same codes with distinct openings and no step (a -> b) in common."""
    rng = np.random.default_rng(seed + 1)
    cycles = []
    while len(cycles) < n_classes:
        perm = rng.permutation(CYCLE)
        if all(perm[0] != c[0] and not cycle_steps(perm) & cycle_steps(c) for c in cycles):
            cycles.append(perm)
    return np.stack(cycles)


def piece_codes(style: int, n_frames: int, cycles: np.ndarray, rng, noise: float) -> np.ndarray:
    """[K, n_frames] codes of one piece of a style (codebook 0 with a little noise)."""
    base = cycles[style][np.arange(n_frames) % CYCLE]
    flip = rng.random(n_frames) < noise
    base = np.where(flip, rng.integers(0, CYCLE, n_frames), base)
    codes = [base]
    for k in range(1, NUM_CODEBOOKS):
        codes.append((base * 3 + 5 * k + style) % CODEBOOK_SIZE)
    return np.stack(codes).astype(np.int64)


def write_synthetic_tokens(out, *, n_classes: int = 3, pieces_per_class: int = 16, seed: int = 0,
                           noise: float = 0.03, n_phrasings: int = 2, with_test: bool = False) -> dict:
    """Write the dataset; returns the facts tests need (style embeddings and cycles)."""
    rng = np.random.default_rng(seed + 2)
    emb, cycles = style_embeddings(n_classes, seed), style_cycles(n_classes, seed)
    phrasings = emb[:, None, :] + 0.05 * rng.normal(size=(n_classes, n_phrasings, TEXT_DIM)).astype(np.float32)
    clips = []
    for style in range(n_classes):
        for p in range(pieces_per_class):
            seconds = float(rng.choice([2.0, 3.0, 4.0, 5.0]))
            n = int(seconds * FRAME_RATE)
            codes = piece_codes(style, n, cycles, rng, noise)
            split = "valid" if p % 6 == 5 else "test" if with_test and p % 6 == 4 else "train"
            # pieces over 4 s are cut in two at 2.5 s (a clip that is not last ends >= 2 s before its
            # piece does, as curated clips do: see data.END_TOLERANCE_S)
            per_clip = int(2.5 * FRAME_RATE) if seconds > 4.0 else n
            for c, start in enumerate(range(0, n, per_clip)):
                clips.append(ClipTokens(
                    clip_id=f"s{style}-p{p:02d}-c{c}", codes=codes[:, start:start + per_clip],
                    text_embeddings=phrasings[style], captions=[f"style {style} piece {p}"] * n_phrasings,
                    seconds_start=start / FRAME_RATE, seconds_total=seconds, piece_id=f"s{style}-p{p:02d}", split=split,
                ))
    write_token_shards(out, clips, codebook_size=CODEBOOK_SIZE, frame_rate=FRAME_RATE, sample_rate=16_000,
                       clips_per_shard=16)
    return {"embeddings": emb, "cycles": cycles, "n_classes": n_classes, "clips": clips}


def write_curated_manifest(out, clips: list[ClipTokens]) -> None:
    """A curated folder's manifest for the synthetic clips: instrument = style, collection = style's parity."""
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    rows = [{"clip_id": c.clip_id, "split": c.split, "piece_id": c.piece_id, "instrument": c.clip_id.split("-")[0],
             "collection": "even" if int(c.clip_id[1]) % 2 == 0 else "odd"} for c in clips]
    pd.DataFrame(rows).to_parquet(out / "manifest.parquet", index=False)
