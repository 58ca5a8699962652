"""The interim reward until ORAQL: how typical a piece's sound is of the real corpus.

    real clips --codec--> audio --mel statistics (mean and spread of the log-mel spectrum, 128-d)-->
        a diagonal Gaussian;   reward(piece) = exp(-mean_f z_f^2 / 2)   in (0, 1]   (z: standardised statistics)

(bounded, so that one odd piece, e.g. one that ended at once, does not outweigh a whole group of rollouts)

Independent of Lyra (fitted on real audio, through the codec so both sides carry its artefacts),
batched, prompt-free: the same interface as ORAQL's quality score (audio, sample_rate -> scores).
A weak judge of quality (it rewards the corpus's average timbre and level), so the stage also
reports diversity and loudness, which a reward hacked this way would move.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class MelRealism:
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, audio: list[np.ndarray], sample_rate: int) -> "MelRealism":
        from components.common.mel import mel_statistics

        if len(audio) < 2:
            raise ValueError(f"the realism reward needs >= 2 real clips, got {len(audio)}")
        feats = np.stack([mel_statistics(a, sample_rate) for a in audio])
        return cls(mean=feats.mean(axis=0), std=feats.std(axis=0) + 1e-3)

    def __call__(self, audio: list[np.ndarray], sample_rate: int) -> list[float]:
        from components.common.mel import mel_statistics

        if not len(audio):
            return []
        z = (np.stack([mel_statistics(a, sample_rate) for a in audio]) - self.mean) / self.std
        return np.exp(-0.5 * np.mean(z ** 2, axis=1)).tolist()
