"""Mel spectrograms in plain torch (torch.stft + a mel filterbank).

With `htk=True, norm=None` the filterbank is the one torchaudio's MelSpectrogram uses by default,
so numbers are comparable with audiocraft/DAC losses computed there.
"""

from __future__ import annotations

import functools

import torch


@functools.lru_cache(maxsize=32)
def _mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float | None) -> torch.Tensor:
    import librosa

    fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=f_min, fmax=f_max, htk=True, norm=None)
    return torch.from_numpy(fb).float()  # (n_mels, n_fft // 2 + 1)


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
