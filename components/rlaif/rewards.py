"""Rewards for RLAIF: any batched callable that scores generated pieces, plugged into TRL.

    reward(codes: list of [K, L_i] int arrays, prompts: list[str]) -> list[float]     (one score a piece)

`AudioReward` makes one from an audio scorer (ORAQL: audio in, quality out): it decodes the codes
with the codec the tokens came from, then calls `score(audio: list of mono float32 arrays,
sample_rate) -> list[float]`. `load_audio_scorer("package.module:factory", path)` loads a scorer
named in params.yaml: `factory(path, device)` returns the callable, so the platform's quality
model plugs in without this package importing it.
"""

from __future__ import annotations

import importlib
from typing import Callable, Sequence

import numpy as np

from components.common.errors import LyraError

Reward = Callable[[Sequence[np.ndarray], Sequence[str]], Sequence[float]]
AudioScorer = Callable[[Sequence[np.ndarray], int], Sequence[float]]


class RewardError(LyraError, ValueError):
    """A reward that cannot be loaded or that answered wrongly (said with its name)."""


class AudioReward:
    """codes -> audio (the codec's decoder, in batches) -> score(audio, sample_rate)."""

    def __init__(self, codec, score: AudioScorer, batch_size: int = 16):
        self.codec, self.score, self.batch_size = codec, score, batch_size

    def audio(self, codes: Sequence[np.ndarray]) -> list[np.ndarray]:
        from components.omnicodec.decoding import decode_in_batches

        return decode_in_batches(self.codec, list(codes), self.batch_size)

    def __call__(self, codes: Sequence[np.ndarray], prompts: Sequence[str]) -> list[float]:
        return checked(self.score(self.audio(codes), int(self.codec.sample_rate)), len(codes), "audio scorer")


def checked(scores, n: int, name: str) -> list[float]:
    scores = [float(s) for s in scores]
    if len(scores) != n:
        raise RewardError(f"{name} returned {len(scores)} scores for {n} pieces")
    if not all(np.isfinite(scores)):
        raise RewardError(f"{name} returned non-finite scores: {scores}")
    return scores


def load_audio_scorer(spec: str, path: str | None, device: str = "cpu") -> AudioScorer:
    """`module:factory` -> factory(path, device), the scorer (e.g. ORAQL's)."""
    module_name, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise RewardError(f"reward {spec!r} cannot be loaded: {exc}") from exc
    return factory(path, device)


def as_trl_reward(reward: Reward, name: str = "reward"):
    """A TRL reward function: GRPO passes the rollout's extra `codes` column (see policy.LyraRollout)."""

    def trl_reward(prompts, completions, completion_ids, codes, **_):
        return checked(reward(codes, prompts), len(prompts), name)

    trl_reward.__name__ = name
    return trl_reward
