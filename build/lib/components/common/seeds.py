"""Randomness that is a function of a run's seed and a few keys (step, rank, example, clip...).

Every stage derives its random streams the same way, numpy's SeedSequence over (seed, *keys), so
that a resumed or N-process run draws exactly what an uninterrupted 1-process run draws, whatever
order the work happens in:

    derive_seed(seed, step, rank)        -> a 32-bit seed (for torch.manual_seed / a torch.Generator)
    rng(seed, step, example)             -> a numpy Generator on the same SeedSequence
    torch_generator(seed, step, rank)    -> a CPU (or `device`) torch.Generator seeded with derive_seed

String keys (clip ids) enter as their CRC-32; negative integers as 2^64 + |k|.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch


def _key(k: int | str) -> int:
    if isinstance(k, str):
        return zlib.crc32(k.encode("utf-8"))
    k = int(k)
    return k if k >= 0 else (1 << 64) - k        # negative keys (e.g. "before step 0") in a range of their own


def _entropy(seed: int, keys) -> list[int]:
    return [_key(seed), *(_key(k) for k in keys)]


def derive_seed(seed: int, *keys: int | str) -> int:
    return int(np.random.SeedSequence(_entropy(seed, keys)).generate_state(1)[0])


def rng(seed: int, *keys: int | str) -> np.random.Generator:
    return np.random.default_rng(_entropy(seed, keys))


def torch_generator(seed: int, *keys: int | str, device=None) -> torch.Generator:
    return torch.Generator(device=device or "cpu").manual_seed(derive_seed(seed, *keys))
