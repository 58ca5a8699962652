"""Mono audio -> what the judge looks at: timbre, register and texture statistics of a crop.

    crop [n] --log-mel (1024-point FFT, hop 256)--> mel [M, frames]
      mean over frames        [M]   spectral envelope: which instrument, which register
      spread over frames      [M]   how much the spectrum moves
      mean |frame difference| [M]   attacks and decays: plucked/struck vs sustained
      loudness envelope (dB): spread, mean |difference|   [2]   phrasing, note density
    -> [3M + 2]

Level-invariant: each crop's mel is referenced to its own loudest frame, so the gain a generation
happens to come out at does not change the answer.
"""

from __future__ import annotations

import numpy as np
import torch

from components.common.mel import log_mel_spectrogram

N_FFT, HOP = 1024, 256


def crop_features(crop: np.ndarray, sample_rate: int, n_mels: int) -> np.ndarray:
    audio = np.asarray(crop, dtype=np.float32)
    if len(audio) < N_FFT:
        audio = np.pad(audio, (0, N_FFT - len(audio)))
    mel = log_mel_spectrogram(torch.from_numpy(audio), sample_rate, n_fft=N_FFT, hop_length=HOP,
                              n_mels=n_mels).numpy()                                      # [M, frames]
    frame_level = np.log10(np.mean(10.0 ** mel, axis=0))                                   # [frames], log10 power
    mel = mel - frame_level.max()
    diff = np.abs(np.diff(mel, axis=1)).mean(axis=1) if mel.shape[1] > 1 else np.zeros(n_mels)
    level_diff = float(np.abs(np.diff(frame_level)).mean()) if frame_level.size > 1 else 0.0
    return np.concatenate([mel.mean(1), mel.std(1), diff, [frame_level.std(), level_diff]]).astype(np.float32)


def crop_starts(n_samples: int, crop: int, n_crops: int) -> list[int]:
    """Start samples of up to n_crops crops spread evenly over a piece (one crop if it is short)."""
    if n_samples <= crop:
        return [0]
    return sorted(set(np.linspace(0, n_samples - crop, n_crops).round().astype(int).tolist()))


def piece_features(audio: np.ndarray, sample_rate: int, crop_seconds: float, n_crops: int,
                   n_mels: int) -> np.ndarray:
    """Mono audio -> [n_crops', 3M + 2], one row per crop."""
    crop = int(round(crop_seconds * sample_rate))
    return np.stack([crop_features(audio[s:s + crop], sample_rate, n_mels)
                     for s in crop_starts(len(audio), crop, n_crops)])
