"""Mel spectrograms in plain torch (torch.stft + a mel filterbank).

The filterbank is HTK-scale triangles without area normalisation (librosa's
`filters.mel(htk=True, norm=None)`, which a test holds it equal to; torchaudio's MelSpectrogram
default), so numbers are comparable with audiocraft/DAC losses computed there.

It is computed here rather than by librosa because importing librosa compiles and caches its
numba gufuncs, and training ranks that start together (torchrun) would all write the same numba
cache files at once. In CI a process that loaded such a shared cache died of SIGSEGV in
`librosa.util.peak_pick`; loading that cache file reproduced the crash, a fresh cache did not.
"""

from __future__ import annotations

import functools

import numpy as np
import torch


def _hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def _mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


@functools.lru_cache(maxsize=32)
def _mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float | None) -> torch.Tensor:
    """(n_mels, n_fft // 2 + 1) triangles, equally spaced on the HTK mel scale from f_min to f_max."""
    f_max = sample_rate / 2.0 if f_max is None else f_max
    bin_hz = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)                       # [F]
    edges = _mel_to_hz(np.linspace(_hz_to_mel(f_min), _hz_to_mel(f_max), n_mels + 2))   # [M + 2]
    widths = np.diff(edges)                                                     # [M + 1]
    ramps = edges[:, None] - bin_hz[None, :]                                    # [M + 2, F]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    return torch.from_numpy(np.maximum(0.0, np.minimum(rising, falling))).float()


@functools.lru_cache(maxsize=32)
def _hann(n_fft: int) -> torch.Tensor:
    return torch.hann_window(n_fft)


def mel_spectrogram(
    audio: torch.Tensor,
    sample_rate: int,
    *,
    n_fft: int = 1024,
    hop_length: int | None = None,
    n_mels: int = 80,
    f_min: float = 0.0,
    f_max: float | None = None,
    power: float = 2.0,
) -> torch.Tensor:
    """(..., samples) -> (..., n_mels, frames) power mel spectrogram."""
    hop_length = hop_length or n_fft // 4
    shape = audio.shape
    flat = audio.reshape(-1, shape[-1])
    window = _hann(n_fft).to(audio.device, audio.dtype)
    spec = torch.stft(flat, n_fft, hop_length, window=window, center=True, return_complex=True)
    mag = spec.abs().pow(power)
    fb = _mel_filterbank(sample_rate, n_fft, n_mels, f_min, f_max).to(audio.device, mag.dtype)
    mel = torch.einsum("mf,bft->bmt", fb, mag)
    return mel.reshape(*shape[:-1], n_mels, mel.shape[-1])


def log_mel_spectrogram(audio: torch.Tensor, sample_rate: int, *, eps: float = 1e-5, **kwargs) -> torch.Tensor:
    return torch.log10(mel_spectrogram(audio, sample_rate, **kwargs).clamp_min(eps))


def mel_statistics(audio: np.ndarray, sample_rate: int, n_mels: int = 64) -> np.ndarray:
    """Mono audio -> [2 * n_mels] numpy: mean and spread over time of its log-mel spectrum (timbre, register)."""
    audio = np.asarray(audio, dtype=np.float32)
    if len(audio) < 1024:
        audio = np.pad(audio, (0, 1024 - len(audio)))
    mel = log_mel_spectrogram(torch.from_numpy(audio), sample_rate, n_fft=1024, n_mels=n_mels)   # [n_mels, frames]
    return np.concatenate([mel.mean(-1).numpy(), mel.std(-1).numpy()])
