"""Bitrate arithmetic: how many bits per second a stack of codebooks costs.

    frame_rate = sample_rate / hop_length                   24000 / 480 = 50 frames/s
    bits/frame = n_quantizers * log2(codebook_size)         4 * log2(1024) = 40 bits
    bitrate    = frame_rate * bits/frame                    50 * 40 = 2000 bit/s = 2.0 kbps
"""

from __future__ import annotations

import math


def frame_rate(sample_rate: int, hop_length: int) -> float:
    """Code frames per second."""
    if sample_rate <= 0 or hop_length <= 0:
        raise ValueError("sample_rate and hop_length must be positive")
    return sample_rate / hop_length


def bits_per_code(codebook_size: int) -> float:
    """Bits one index into a codebook of `codebook_size` entries costs (10 for 1024)."""
    if codebook_size < 2:
        raise ValueError("a codebook needs at least 2 entries")
    return math.log2(codebook_size)


def bitrate_bps(sample_rate: int, hop_length: int, n_quantizers: int, codebook_size: int) -> float:
    """Bits per second of `n_quantizers` codebooks at the model's frame rate."""
    if n_quantizers < 1:
        raise ValueError("n_quantizers must be >= 1")
    return frame_rate(sample_rate, hop_length) * n_quantizers * bits_per_code(codebook_size)


def bitrate_kbps(sample_rate: int, hop_length: int, n_quantizers: int, codebook_size: int) -> float:
    return bitrate_bps(sample_rate, hop_length, n_quantizers, codebook_size) / 1000.0
