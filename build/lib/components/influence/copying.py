"""No-copying detectors, and the spliced controls that calibrate them.

    shared run   the longest run of consecutive codebook-0 tokens a generation shares with the reference
                 song (longest common substring, in seconds): a copied phrase is a long shared run
    n-grams      1-second windows of codebook-0 tokens, hashed (crc32 of the bytes), shared with any
                 training recording: memorised training music (windows of < 4 distinct codes, such as
                 silence, are skipped: unrelated recordings share those)
    mel xcorr    the highest correlation of a 1-second log-mel patch of the generation (each band
                 centred in time) with any patch of the reference song at any lag (0.25 s hops over the
                 generation, every frame over the reference): a copy that a re-encoding moved off the
                 token grid

A generation is flagged if any detector fires. Spliced controls paste `share` of the reference
song (or of a training recording) into a generation: the detectors must flag them.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch.nn.functional as F

from components.influence.evaluator import log_mel


def longest_shared_run(a: np.ndarray, b: np.ndarray) -> int:
    """Length of the longest common contiguous run of two 1-D token arrays (DP over a, vectorised over b)."""
    a, b = np.asarray(a), np.asarray(b)
    best, prev = 0, np.zeros(len(b) + 1, dtype=np.int32)
    for x in a:
        cur = np.zeros_like(prev)
        cur[1:] = np.where(b == x, prev[:-1] + 1, 0)
        best = max(best, int(cur.max()))
        prev = cur
    return best


MIN_DISTINCT = 4      # an n-gram of fewer distinct codes (silence, a held note) is shared by unrelated music


def ngram_hashes(tokens: np.ndarray, n: int) -> set[int]:
    """crc32 of every length-n window with at least MIN_DISTINCT distinct codes."""
    t = np.ascontiguousarray(np.asarray(tokens, dtype=np.int16))
    return {zlib.crc32(t[i:i + n].tobytes()) for i in range(len(t) - n + 1)
            if len(np.unique(t[i:i + n])) >= MIN_DISTINCT}


def shared_ngrams(tokens: np.ndarray, table: set[int], n: int) -> int:
    return len(ngram_hashes(tokens, n) & table)


def mel_xcorr(audio: np.ndarray, reference: np.ndarray, sample_rate: int, window_s: float = 1.0) -> float:
    """Max over generation windows and reference lags of the Pearson correlation of log-mel patches."""
    g, r = log_mel(audio, sample_rate), log_mel(reference, sample_rate)         # [64, Fg], [64, Fr]
    w = max(1, int(round(window_s * sample_rate / 256)))
    if g.shape[1] < w or r.shape[1] < w:
        return 0.0
    hop = max(1, w // 4)
    # each band centred within its patch: the correlation sees what changes over time (notes, onsets),
    # not the spectral envelope every piece for the same instrument shares (uncentred: 0.88 between
    # unrelated tone sequences)
    gp = g.clamp_min(-8.0).unfold(1, w, hop).permute(1, 0, 2)                   # [G, 64, w]
    rp = r.clamp_min(-8.0).unfold(1, w, 1).permute(1, 0, 2)                     # [L, 64, w]
    gp = F.normalize((gp - gp.mean(-1, keepdim=True)).flatten(1), dim=1)
    rp = F.normalize((rp - rp.mean(-1, keepdim=True)).flatten(1), dim=1)
    return float((gp @ rp.T).max())


def splice(codes: np.ndarray, source: np.ndarray, share_frames: int, rng: np.random.Generator) -> np.ndarray:
    """codes [K, T] with `share_frames` consecutive frames replaced by a run of source [K, T'] (a copy)."""
    out = np.array(codes, copy=True)
    n = min(share_frames, out.shape[1], source.shape[1])
    at = int(rng.integers(0, out.shape[1] - n + 1))
    src = int(rng.integers(0, source.shape[1] - n + 1))
    out[:, at:at + n] = source[:out.shape[0], src:src + n]
    return out


def detect(codes: np.ndarray, audio: np.ndarray, song_codes: np.ndarray, song_audio: np.ndarray, train_table: set[int],
           *, sample_rate: int, frame_rate: float, ngram: int, max_run_frames: int, mel_threshold: float) -> dict:
    """One generation's detector readings and whether it is flagged."""
    run = longest_shared_run(codes[0], song_codes[0])
    grams = shared_ngrams(codes[0], train_table, ngram)
    mel = mel_xcorr(audio, song_audio, sample_rate)
    return {"run_seconds": run / frame_rate, "shared_ngrams": grams, "mel_xcorr": mel,
            "flag_run": run >= max_run_frames, "flag_ngram": grams > 0, "flag_mel": mel >= mel_threshold,
            "flagged": bool(run >= max_run_frames or grams > 0 or mel >= mel_threshold)}
